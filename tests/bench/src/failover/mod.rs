//! `mptcpd-bench failover`: does the `health` plugin help when a path goes bad while its link
//! stays up (issue 13)? Two tbf-shaped paths between namespaces; per repetition three subjects
//! in turn (the order rotating): the kernel alone (its in-kernel path manager with path B's
//! endpoint added by hand, every default untouched), the kernel with our daemon (`addr_adv`
//! adding the endpoints, `health` observing), and path A alone (the reference). Scenarios:
//! path B blackholed for a while and restored, 20% random loss on B, B's RTT inflated to about
//! a second by a deep queue, both healthy. Medians and spreads; a target counts as met only
//! beyond the spread.

mod figures;
pub(crate) mod peer;
pub(crate) mod plot;
mod report;
mod run;

use std::{fmt::Write as _, time::Duration};

use anyhow::Context as _;
use mptcpd_tests::interrupt;

pub(crate) use self::report::Outcome;
use self::{
    figures::{Summary, Target},
    report::{Measure, Row},
    run::{HealthSettings, Records, Timing},
};

/// What goes wrong on path B.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scenario {
    /// Every packet on B dropped in the receiver's input hook for a while, then restored.
    Blackhole,
    /// 20% of B's packets dropped at random.
    Loss,
    /// B's queue about a second deep.
    Rtt,
    /// Nothing.
    Healthy,
}

/// `--scenario`: one, or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Which {
    Blackhole,
    Loss,
    Rtt,
    Healthy,
    All,
}

impl Which {
    fn scenarios(self) -> Vec<Scenario> {
        match self {
            Self::Blackhole => vec![Scenario::Blackhole],
            Self::Loss => vec![Scenario::Loss],
            Self::Rtt => vec![Scenario::Rtt],
            Self::Healthy => vec![Scenario::Healthy],
            Self::All => vec![
                Scenario::Blackhole,
                Scenario::Loss,
                Scenario::Rtt,
                Scenario::Healthy,
            ],
        }
    }
}

/// Who carries the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Subject {
    /// The in-kernel path manager alone, path B's endpoint added by hand.
    Kernel,
    /// The same with our daemon: `addr_adv` and `health`.
    Health,
    /// Path A only (no endpoint for B).
    PathA,
}

const SUBJECTS: [Subject; 3] = [Subject::Kernel, Subject::Health, Subject::PathA];

/// What to run.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) which: Vec<Which>,
    /// Repetitions per subject and scenario.
    pub(crate) runs: usize,
    /// Measured seconds (after the outage for the blackhole).
    pub(crate) secs: u64,
    /// Seconds path B is blackholed.
    pub(crate) outage: u64,
    /// The daemon's `health-hold`.
    pub(crate) hold: u64,
    /// Other `health-*` keys for the daemon, `KEY=VALUE`.
    pub(crate) health_args: Vec<String>,
}

/// Path B counts as carrying data again at a quarter of its rate over [`BACK_WINDOW`] (more
/// than a subflow's retransmission after an RTO).
const BACK_MBPS: f64 = 5.0;
const BACK_WINDOW: Duration = Duration::from_millis(500);

pub(crate) fn run(config: &Config) -> anyhow::Result<Outcome> {
    interrupt::install()?;
    let started = std::time::Instant::now();
    let health = HealthSettings {
        hold_secs: config.hold,
        extra: config.health_args.clone(),
    };
    let mut rows = Vec::new();
    let mut scenarios: Vec<Scenario> = config.which.iter().flat_map(|w| w.scenarios()).collect();
    scenarios.dedup();
    for scenario in scenarios {
        let timing = match scenario {
            Scenario::Blackhole => Timing {
                before: Duration::from_secs(4),
                outage: Duration::from_secs(config.outage),
                after: Duration::from_secs(config.secs),
            },
            Scenario::Loss | Scenario::Rtt | Scenario::Healthy => Timing {
                before: Duration::from_secs(2),
                outage: Duration::ZERO,
                after: Duration::from_secs(config.secs),
            },
        };
        let mut measured: Vec<(Subject, Vec<Measured>)> =
            SUBJECTS.iter().map(|s| (*s, Vec::new())).collect();
        for repetition in 0..config.runs {
            for i in 0..SUBJECTS.len() {
                let subject = SUBJECTS[(i + repetition) % SUBJECTS.len()];
                let tag = format!("{}", repetition % 10);
                let records = run::once(scenario, subject, timing, &health, &tag)
                    .with_context(|| format!("{scenario:?}, {subject:?}, run {repetition}"))?;
                let figures = Measured::from_records(&records);
                eprintln!(
                    "bench: failover {scenario:?} run {repetition} {subject:?}: {figures:?}; \
                     stalls of {} ms or more: {}{}",
                    STALL_SHOWN.as_millis(),
                    stalls(&records),
                    decisions(&records)
                );
                if let Some((_, all)) = measured.iter_mut().find(|(s, _)| *s == subject) {
                    all.push(figures);
                }
            }
        }
        rows.extend(rows_of(scenario, &measured, config.hold));
    }
    Ok(report::outcome(&rows, config, started.elapsed()))
}

/// Stalls this long or longer are listed with the run's figures (where in the run they are
/// says what caused them).
const STALL_SHOWN: Duration = Duration::from_millis(300);

/// The run's stalls of [`STALL_SHOWN`] or more: `LENGTH ms at TIME s`, from the readiness.
fn stalls(records: &Records) -> String {
    let stalls = figures::stalls_over(
        &records.received.reads,
        records.ready,
        records.end,
        STALL_SHOWN,
    );
    if stalls.is_empty() {
        return "none".to_owned();
    }
    stalls
        .iter()
        .map(|(len, at)| {
            format!(
                "{} ms at {:.1} s",
                len.as_millis(),
                at.saturating_sub(records.ready).as_secs_f64()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn decisions(records: &Records) -> String {
    let mut out = String::new();
    for (at, line) in &records.decisions {
        let said = line.split_once("path ").map_or(line.as_str(), |(_, l)| l);
        let _infallible = write!(
            out,
            "\n  at {:.1} s: path {said}",
            at.saturating_sub(records.ready).as_secs_f64()
        );
    }
    out
}

/// One run's figures.
#[derive(Debug, Clone, Copy)]
struct Measured {
    /// Longest gap between received chunks over the run's timeline, ms.
    stall_ms: f64,
    /// Goodput while B was blackholed (blackhole) or over the measured time (others), Mbit/s.
    goodput: f64,
    /// Seconds from the restore until B carried data again (infinite: not within the run).
    back_s: Option<f64>,
    /// p99 of the 1 KiB exchanges, ms.
    p99_ms: f64,
}

impl Measured {
    fn from_records(r: &Records) -> Self {
        let reads = &r.received.reads;
        let (from, to) = match (r.fault, r.restored) {
            (Some(fault), Some(restored)) => (fault, restored),
            // Loss and RTT: from a settling time after the fault; healthy: the same window.
            _ => (r.ready + r.end.saturating_sub(r.ready) / 8, r.end),
        };
        Self {
            stall_ms: figures::longest_stall(reads, r.ready, r.end).as_secs_f64() * 1e3,
            goodput: figures::goodput_mbps(reads, from, to),
            back_s: r.restored.map(|restored| {
                figures::path_b_back_after(&r.samples, restored, BACK_WINDOW, BACK_MBPS)
                    .map_or(f64::INFINITY, |d| d.as_secs_f64())
            }),
            p99_ms: r.p99_us / 1e3,
        }
    }
}

/// The table's rows of one scenario.
fn rows_of(scenario: Scenario, measured: &[(Subject, Vec<Measured>)], hold: u64) -> Vec<Row> {
    let summary = |subject: Subject, pick: &dyn Fn(&Measured) -> Option<f64>| {
        measured
            .iter()
            .find(|(s, _)| *s == subject)
            .and_then(|(_, all)| Summary::of(&all.iter().filter_map(pick).collect::<Vec<_>>()))
    };
    let row = |measure: Measure, pick: &dyn Fn(&Measured) -> Option<f64>| {
        Row::new(
            scenario,
            measure,
            [Subject::Kernel, Subject::Health, Subject::PathA].map(|s| summary(s, pick)),
        )
    };
    let half_of_kernel = Target::AtMostFractionOf { fraction: 0.5 };
    let stall = row(Measure::Stall, &|m| Some(m.stall_ms));
    let goodput = row(Measure::Goodput(scenario), &|m| Some(m.goodput));
    let p99 = row(Measure::P99, &|m| Some(m.p99_ms));
    match scenario {
        Scenario::Blackhole => vec![
            stall.target(half_of_kernel, Some(Subject::Kernel)),
            goodput.target(
                Target::AtLeastFractionOf { fraction: 0.9 },
                Some(Subject::PathA),
            ),
            #[expect(clippy::cast_precision_loss, reason = "a few seconds")]
            row(Measure::BackAfter, &|m| m.back_s).target(
                Target::AtMost {
                    limit: hold as f64 + 1.0,
                },
                None,
            ),
            p99,
        ],
        Scenario::Loss | Scenario::Rtt => {
            vec![
                stall,
                goodput,
                p99.target(half_of_kernel, Some(Subject::Kernel)),
            ]
        }
        Scenario::Healthy => vec![
            stall,
            goodput.target(Target::NoDifference, Some(Subject::Kernel)),
            p99.target(Target::NoDifference, Some(Subject::Kernel)),
        ],
    }
}
