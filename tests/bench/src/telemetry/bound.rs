//! The overhead targets where the direct on/off ratio is too noisy to judge them (a shared
//! machine spreads single transfers far wider than 2%): the kernel's run-time statistics give
//! the programs' own time, which bounds what they can take from a transfer.

/// What the programs cost in one transfer with telemetry on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ProgramCost {
    /// Time the telemetry programs ran, ns.
    pub(crate) program_ns: f64,
    /// Times they ran.
    pub(crate) calls: f64,
    /// Bytes the transfer carried.
    pub(crate) bytes: f64,
    /// The transfer's CPU time (sender and receiver, user + system, programs included), ns.
    pub(crate) cpu_ns: f64,
    /// The transfer's wall time, ns.
    pub(crate) wall_ns: f64,
}

impl ProgramCost {
    /// Programs' CPU ns per byte carried.
    pub(crate) fn ns_per_byte(&self) -> f64 {
        self.program_ns / self.bytes
    }

    /// Program runs per MiB carried.
    pub(crate) fn calls_per_mib(&self) -> f64 {
        self.calls / (self.bytes / f64::from(1_u32 << 20))
    }

    /// Their share of the transfer's CPU time, %.
    pub(crate) fn cpu_share_pct(&self) -> f64 {
        100.0 * self.program_ns / self.cpu_ns
    }

    /// Their time as a share of the transfer's wall time, %: the most they can have added to
    /// its critical path, so the most throughput they can have cost, CPU-bound or not (the
    /// CPU share is smaller when sender and receiver run on two cores at once).
    pub(crate) fn wall_share_pct(&self) -> f64 {
        100.0 * self.program_ns / self.wall_ns
    }

    /// How much more CPU per byte than without them, %: the transfer's CPU less theirs is
    /// what it would have used without them.
    pub(crate) fn cpu_increase_pct(&self) -> f64 {
        100.0 * self.program_ns / (self.cpu_ns - self.program_ns)
    }
}

/// Half the interquartile range of the per-run ratios `on[i] / off[i]` (each run measures both
/// modes back to back): how far the direct ratio wanders by noise alone. NaN with no pairs.
pub(crate) fn ratio_spread(on: &[f64], off: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = on.iter().zip(off).map(|(on, off)| on / off).collect();
    if ratios.is_empty() {
        return f64::NAN;
    }
    ratios.sort_by(f64::total_cmp);
    let last = ratios.len() - 1;
    // Nearest rank: enough for a spread, no interpolation to explain.
    let quartile = |q: usize| ratios[(last * q).div_ceil(4)];
    (quartile(3) - quartile(1)) / 2.0
}

/// How a target was judged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judgement {
    pub(crate) met: bool,
    /// How, in words, for the table's notes.
    pub(crate) note: String,
}

/// Which way a ratio (on / off) shows a cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Worse {
    /// Below 1 (throughput).
    Lower,
    /// Above 1 (CPU per byte).
    Higher,
}

/// `ratio` (on / off) against a cost of at most `target_pct`% (an overhead target: telemetry
/// on doing better is no cost). Directly while its `spread` (ratio units) is within the target;
/// else by the programs' `bound_pct` (the most they can cost, %; `bound_text` says what it is,
/// with its value): met if the bound is within the target. A direct ratio outside its spread
/// is named: on a shared machine the load drifts between the runs of a pair too.
pub(crate) fn judge(
    (ratio, worse): (f64, Worse),
    spread: f64,
    target_pct: f64,
    bound_pct: f64,
    bound_text: &str,
) -> Judgement {
    let cost = match worse {
        Worse::Lower => 1.0 - ratio,
        Worse::Higher => ratio - 1.0,
    };
    let (cost_pct, spread_pct) = (cost * 100.0, spread * 100.0);
    if spread_pct <= target_pct {
        return Judgement {
            met: cost_pct <= target_pct,
            note: format!(
                "judged by the direct ratio, a cost of {cost_pct:.1}% (spread ±{spread_pct:.1}%)"
            ),
        };
    }
    let seen = if cost.abs() <= spread {
        format!("direct ratio inside its spread ±{spread_pct:.1}%")
    } else {
        format!(
            "direct ratio, a cost of {cost_pct:.1}%, outside its spread ±{spread_pct:.1}%: load \
             drift beyond what the programs' time explains"
        )
    };
    Judgement {
        met: bound_pct <= target_pct,
        note: format!("bounded by {bound_text} ({seen})"),
    }
}

#[cfg(test)]
mod tests {
    use super::{ProgramCost, Worse, judge, ratio_spread};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_programs_cost_per_byte_per_mib_and_as_shares() {
        let cost = ProgramCost {
            program_ns: 10e6,
            calls: 40_000.0,
            bytes: f64::from(512_u32 << 20),
            cpu_ns: 1e9,
            wall_ns: 0.5e9,
        };
        assert!(close(cost.ns_per_byte(), 10e6 / f64::from(512_u32 << 20)));
        assert!(close(cost.calls_per_mib(), 40_000.0 / 512.0));
        assert!(close(cost.cpu_share_pct(), 1.0));
        assert!(close(cost.wall_share_pct(), 2.0));
        // 10 ms more on 990 ms.
        assert!(close(cost.cpu_increase_pct(), 100.0 * 10.0 / 990.0));
    }

    #[test]
    fn the_spread_is_half_the_interquartile_range_of_the_paired_ratios() {
        let off = [100.0; 5];
        let on = [90.0, 120.0, 100.0, 80.0, 110.0];
        // Ratios sorted 0.8 0.9 1.0 1.1 1.2: quartiles 0.9 and 1.1.
        assert!(close(ratio_spread(&on, &off), 0.1));
        assert!(ratio_spread(&[], &[]).is_nan());
    }

    #[test]
    fn a_quiet_ratio_is_judged_directly() {
        let judged = judge((0.97, Worse::Lower), 0.005, 2.0, 0.1, "x");
        assert!(!judged.met, "{judged:?}");
        assert!(judged.note.contains("direct ratio"), "{judged:?}");
        assert!(judge((0.99, Worse::Lower), 0.005, 2.0, 5.0, "x").met);
    }

    #[test]
    fn a_noisy_ratio_inside_its_spread_is_judged_by_the_bound() {
        let judged = judge(
            (0.968, Worse::Lower),
            0.15,
            2.0,
            0.4,
            "their time, 0.40% of the wall time",
        );
        assert!(judged.met, "{judged:?}");
        assert_eq!(
            judged.note,
            "bounded by their time, 0.40% of the wall time (direct ratio inside its spread \
             ±15.0%)"
        );
        assert!(!judge((0.968, Worse::Lower), 0.15, 2.0, 2.5, "x").met);
    }

    #[test]
    fn a_noisy_ratio_outside_its_spread_is_still_the_bounds_call_and_named() {
        let judged = judge((0.797, Worse::Lower), 0.112, 2.0, 1.35, "x");
        assert!(judged.met, "{judged:?}");
        assert!(
            judged
                .note
                .contains("a cost of 20.3%, outside its spread ±11.2%"),
            "{judged:?}"
        );
        assert!(!judge((1.3, Worse::Higher), 0.1, 5.0, 5.5, "x").met);
    }

    #[test]
    fn telemetry_on_doing_better_is_no_cost() {
        // Quiet: judged directly, and better is met.
        assert!(judge((1.03, Worse::Lower), 0.005, 2.0, 9.0, "x").met);
        assert!(judge((0.9, Worse::Higher), 0.005, 5.0, 9.0, "x").met);
        // Noisy and better beyond the spread: still the bound's call.
        let judged = judge((1.26, Worse::Lower), 0.155, 2.0, 0.97, "y");
        assert!(judged.met, "{judged:?}");
        assert!(
            judged.note.contains("a cost of -26.0%, outside"),
            "{judged:?}"
        );
        assert!(!judge((1.26, Worse::Lower), 0.155, 2.0, 2.5, "y").met);
    }
}
