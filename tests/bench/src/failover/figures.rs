//! The failover benchmark's arithmetic, kept apart from the network: what one run's records
//! say (longest stall, goodput in a window, when path B carried data again), medians and
//! spreads over runs, and whether a target is met beyond the spread.

use std::time::Duration;

use serde::Serialize;

use super::peer::Sample;

/// `p`-th percentile of `values` (sorted here; nearest rank); NaN when empty.
pub(crate) fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    if values.is_empty() {
        return f64::NAN;
    }
    // Nearest rank: the smallest value with at least p% of the values at or below it.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "a rank among at most millions of values"
    )]
    let rank = ((p / 100.0 * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// The times in `[from, to]` without a read (reads as the receiver noted them: time and
/// bytes, in order), counting the window's edges (no read at all is a stall of the whole
/// window): each as (length, when it began), in order.
fn gaps(reads: &[(Duration, u64)], from: Duration, to: Duration) -> Vec<(Duration, Duration)> {
    let mut last = from;
    let mut gaps = Vec::new();
    for &(at, _) in reads.iter().filter(|(at, _)| *at >= from && *at <= to) {
        gaps.push((at.saturating_sub(last), last));
        last = at;
    }
    gaps.push((to.saturating_sub(last), last));
    gaps
}

/// The longest time in `[from, to]` without a read.
pub(crate) fn longest_stall(reads: &[(Duration, u64)], from: Duration, to: Duration) -> Duration {
    gaps(reads, from, to)
        .into_iter()
        .map(|(len, _)| len)
        .max()
        .unwrap_or_default()
}

/// The stalls in `[from, to]` of at least `min`, as (length, when it began), in order.
pub(crate) fn stalls_over(
    reads: &[(Duration, u64)],
    from: Duration,
    to: Duration,
    min: Duration,
) -> Vec<(Duration, Duration)> {
    gaps(reads, from, to)
        .into_iter()
        .filter(|&(len, _)| len >= min)
        .collect()
}

/// Megabits per second received in `(from, to]`.
pub(crate) fn goodput_mbps(reads: &[(Duration, u64)], from: Duration, to: Duration) -> f64 {
    let bytes: u64 = reads
        .iter()
        .filter(|(at, _)| *at > from && *at <= to)
        .map(|(_, n)| n)
        .sum();
    let secs = to.saturating_sub(from).as_secs_f64();
    #[expect(
        clippy::cast_precision_loss,
        reason = "bytes of one run are far below 2^52"
    )]
    let bits = bytes as f64 * 8.0;
    if secs > 0.0 {
        bits / secs / 1e6
    } else {
        f64::NAN
    }
}

/// How long after `from` path B (`rx[1]` of the link samples) first received at least
/// `min_mbps` over `window`: the start of the first such window, or `None` if none came.
pub(crate) fn path_b_back_after(
    samples: &[Sample],
    from: Duration,
    window: Duration,
    min_mbps: f64,
) -> Option<Duration> {
    let later: Vec<&Sample> = samples.iter().filter(|s| s.at >= from).collect();
    later.iter().enumerate().find_map(|(i, start)| {
        let end = later[i..].iter().find(|s| s.at >= start.at + window)?;
        #[expect(
            clippy::cast_precision_loss,
            reason = "link counters of one run are far below 2^52"
        )]
        let bits = end.rx[1].saturating_sub(start.rx[1]) as f64 * 8.0;
        let mbps = bits / end.at.saturating_sub(start.at).as_secs_f64() / 1e6;
        (mbps >= min_mbps).then(|| start.at.saturating_sub(from))
    })
}

/// A measure over a subject's runs: median and spread (min to max). An infinite value is a
/// run where the thing never happened within the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Summary {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) runs: usize,
}

impl Summary {
    /// `None` without values.
    pub(crate) fn of(values: &[f64]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            median: *sorted.get(sorted.len() / 2)?,
            min: *sorted.first()?,
            max: *sorted.last()?,
            runs: sorted.len(),
        })
    }
}

/// What a measure of the subject with `health` must be.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Target {
    /// At most `fraction` of the reference's figure.
    AtMostFractionOf { fraction: f64 },
    /// At least `fraction` of the reference's figure.
    AtLeastFractionOf { fraction: f64 },
    /// At most `limit`.
    AtMost { limit: f64 },
    /// No difference from the reference beyond the spread (the ranges overlap).
    NoDifference,
}

/// A target's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Verdict {
    /// Met, and by more than the spread: every run of one side against every run of the other.
    Met,
    /// The medians meet it, the spreads overlap: not counted as met.
    WithinSpread,
    /// The medians do not meet it.
    Missed,
}

impl Target {
    /// Judges `subject` against `reference` (unused by [`Target::AtMost`]); `None` where a
    /// reference is needed and absent.
    pub(crate) fn judge(self, subject: &Summary, reference: Option<&Summary>) -> Option<Verdict> {
        let (by_median, beyond_spread) = match self {
            Self::AtMostFractionOf { fraction } => {
                let r = reference?;
                (
                    subject.median <= fraction * r.median,
                    subject.max <= fraction * r.min,
                )
            }
            Self::AtLeastFractionOf { fraction } => {
                let r = reference?;
                (
                    subject.median >= fraction * r.median,
                    subject.min >= fraction * r.max,
                )
            }
            Self::AtMost { limit } => (subject.median <= limit, subject.max <= limit),
            Self::NoDifference => {
                let r = reference?;
                let overlap = subject.min <= r.max && r.min <= subject.max;
                (overlap, overlap)
            }
        };
        Some(match (by_median, beyond_spread) {
            (true, true) => Verdict::Met,
            (true, false) => Verdict::WithinSpread,
            (false, _) => Verdict::Missed,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{
        Sample, Summary, Target, Verdict, goodput_mbps, longest_stall, path_b_back_after,
        percentile, stalls_over,
    };

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_p99_is_the_nearest_rank() {
        let mut values: Vec<f64> = (1..=200).map(f64::from).collect();
        assert!((percentile(&mut values, 99.0) - 198.0).abs() < f64::EPSILON);
        assert!(percentile(&mut [], 99.0).is_nan());
        assert!((percentile(&mut [5.0], 99.0) - 5.0).abs() < f64::EPSILON);
    }

    #[test]
    fn the_longest_stall_counts_the_windows_edges() {
        let reads = [(ms(100), 1), (ms(150), 1), (ms(900), 1), (ms(1000), 1)];
        assert_eq!(longest_stall(&reads, ms(0), ms(1000)), ms(750));
        // Reads outside the window do not shorten a stall inside it.
        assert_eq!(longest_stall(&reads, ms(200), ms(800)), ms(600));
        assert_eq!(longest_stall(&[], ms(0), ms(10)), ms(10));
        assert_eq!(longest_stall(&reads, ms(0), ms(2000)), ms(1000));
        assert_eq!(
            stalls_over(&reads, ms(0), ms(2000), ms(500)),
            [(ms(750), ms(150)), (ms(1000), ms(1000))]
        );
    }

    #[test]
    fn goodput_counts_the_reads_in_the_window() {
        let reads = [(ms(0), 1_000_000), (ms(500), 125_000), (ms(1000), 125_000)];
        assert!((goodput_mbps(&reads, ms(0), ms(1000)) - 2.0).abs() < 1e-9);
        assert!(goodput_mbps(&reads, ms(5), ms(5)).is_nan());
    }

    #[test]
    fn path_b_is_back_when_a_window_carries_enough() {
        let sample = |at, b| Sample {
            at: ms(at),
            rx: [0, b],
        };
        // A trickle (retransmissions) first, then 1 MB per 100 ms from 300 ms on: the first
        // 200 ms window at 5 Mbit/s or more starts at 200 ms.
        let samples = [
            sample(0, 0),
            sample(100, 100),
            sample(200, 200),
            sample(300, 300),
            sample(400, 1_000_300),
            sample(500, 2_000_300),
        ];
        assert_eq!(
            path_b_back_after(&samples, ms(100), ms(200), 5.0),
            Some(ms(100))
        );
        assert_eq!(path_b_back_after(&samples[..4], ms(0), ms(200), 5.0), None);
    }

    #[test]
    fn a_target_counts_only_beyond_the_spread() {
        let s = |median, min, max| Summary {
            median,
            min,
            max,
            runs: 5,
        };
        let half = Target::AtMostFractionOf { fraction: 0.5 };
        let kernel = s(1000.0, 900.0, 1200.0);
        assert_eq!(
            half.judge(&s(300.0, 250.0, 400.0), Some(&kernel)),
            Some(Verdict::Met)
        );
        assert_eq!(
            half.judge(&s(400.0, 250.0, 700.0), Some(&kernel)),
            Some(Verdict::WithinSpread)
        );
        assert_eq!(
            half.judge(&s(600.0, 550.0, 700.0), Some(&kernel)),
            Some(Verdict::Missed)
        );
        assert_eq!(half.judge(&kernel, None), None);
        let ninety = Target::AtLeastFractionOf { fraction: 0.9 };
        let path_a = s(19.0, 18.8, 19.2);
        assert_eq!(
            ninety.judge(&s(18.0, 17.5, 18.5), Some(&path_a)),
            Some(Verdict::Met)
        );
        assert_eq!(
            ninety.judge(&s(10.0, 9.0, 18.0), Some(&path_a)),
            Some(Verdict::Missed)
        );
        let within = Target::AtMost { limit: 4.0 };
        assert_eq!(within.judge(&s(3.0, 2.0, 3.5), None), Some(Verdict::Met));
        assert_eq!(
            within.judge(&s(3.0, 2.0, f64::INFINITY), None),
            Some(Verdict::WithinSpread)
        );
        let same = Target::NoDifference;
        assert_eq!(
            same.judge(&s(19.0, 18.0, 20.0), Some(&path_a)),
            Some(Verdict::Met)
        );
        assert_eq!(
            same.judge(&s(15.0, 14.0, 16.0), Some(&path_a)),
            Some(Verdict::Missed)
        );
    }

    #[test]
    fn a_summary_is_median_and_range() {
        let summary = Summary::of(&[3.0, 1.0, f64::INFINITY, 2.0, 5.0]).unwrap();
        assert_eq!(
            summary,
            Summary {
                median: 3.0,
                min: 1.0,
                max: f64::INFINITY,
                runs: 5
            }
        );
        assert_eq!(Summary::of(&[]), None);
    }
}
