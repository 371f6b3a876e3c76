//! The failover benchmark's results: one row per scenario and measure with each subject's
//! median and spread, the target and whether `health` (and the kernel alone, where the target
//! does not compare with it) meets it; as a table and as JSON.

use std::{fmt::Write as _, time::Duration};

use serde::Serialize;

use super::{
    Config, Scenario, Subject,
    figures::{Summary, Target, Verdict},
};

/// What a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    Stall,
    Goodput(Scenario),
    BackAfter,
    P99,
}

impl Measure {
    fn name(self) -> &'static str {
        match self {
            Self::Stall => "longest stall",
            Self::Goodput(Scenario::Blackhole) => "goodput during the outage",
            Self::Goodput(_) => "goodput",
            Self::BackAfter => "B carries data again after",
            Self::P99 => "p99 of 1 KiB request/response",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Self::Stall | Self::P99 => "ms",
            Self::Goodput(_) => "Mbit/s",
            Self::BackAfter => "s",
        }
    }
}

/// One row: the subjects' summaries (kernel, health, path A) and the target, if any.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Row {
    scenario: Scenario,
    measure: &'static str,
    unit: &'static str,
    kernel: Option<Summary>,
    health: Option<Summary>,
    path_a: Option<Summary>,
    target: String,
    /// `health` against the target.
    health_verdict: Option<Verdict>,
    /// The kernel alone against the same target, where it does not compare with the kernel.
    kernel_verdict: Option<Verdict>,
}

impl Row {
    pub(crate) fn new(
        scenario: Scenario,
        measure: Measure,
        subjects: [Option<Summary>; 3],
    ) -> Self {
        let [kernel, health, path_a] = subjects;
        Self {
            scenario,
            measure: measure.name(),
            unit: measure.unit(),
            kernel,
            health,
            path_a,
            target: String::new(),
            health_verdict: None,
            kernel_verdict: None,
        }
    }

    /// Judges the row by `target` against `reference` (none for a fixed limit).
    #[must_use]
    pub(crate) fn target(self, target: Target, reference: Option<Subject>) -> Self {
        let summary = |subject| match subject {
            Subject::Kernel => self.kernel.as_ref(),
            Subject::Health => self.health.as_ref(),
            Subject::PathA => self.path_a.as_ref(),
        };
        let against = reference.and_then(summary);
        let health_verdict = self.health.as_ref().and_then(|h| target.judge(h, against));
        let kernel_verdict = (reference != Some(Subject::Kernel))
            .then(|| self.kernel.as_ref().and_then(|k| target.judge(k, against)))
            .flatten();
        let reference_name = match reference {
            Some(Subject::Kernel) => "kernel",
            Some(Subject::PathA) => "path A",
            Some(Subject::Health) => "health",
            None => "",
        };
        let text = match target {
            Target::AtMostFractionOf { fraction } => format!("<= {fraction} x {reference_name}"),
            Target::AtLeastFractionOf { fraction } => format!(">= {fraction} x {reference_name}"),
            Target::AtMost { limit } => format!("<= {limit} {}", self.unit),
            Target::NoDifference => format!("same as {reference_name}"),
        };
        Self {
            target: text,
            health_verdict,
            kernel_verdict,
            ..self
        }
    }
}

/// The table and the JSON.
pub(crate) struct Outcome {
    pub(crate) table: String,
    pub(crate) json: String,
}

/// The benchmark's JSON document.
#[derive(Serialize)]
struct Report<'a> {
    kernel: String,
    runs: usize,
    secs: u64,
    outage_secs: u64,
    health_hold_secs: u64,
    health_args: &'a [String],
    rows: &'a [Row],
    wall_s: f64,
}

pub(crate) fn outcome(rows: &[Row], config: &Config, wall: Duration) -> Outcome {
    let &Config {
        which: _,
        runs,
        secs,
        outage,
        hold,
        ref health_args,
    } = config;
    let report = Report {
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned()),
        runs,
        secs,
        outage_secs: outage,
        health_hold_secs: hold,
        health_args,
        rows,
        wall_s: wall.as_secs_f64(),
    };
    let mut table = table(rows);
    let _infallible = writeln!(
        table,
        "bench: {runs} runs per subject, kernel {}, health-hold {hold} s{}; this run took {:.0} s",
        report.kernel,
        health_args.iter().fold(String::new(), |mut out, kv| {
            let _infallible = write!(out, ", health-{kv}");
            out
        }),
        report.wall_s
    );
    let json = crate::report::json(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"));
    Outcome { table, json }
}

/// Markdown: scenario, measure, each subject's median [min-max], target, verdicts.
fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | measure | kernel alone | kernel + health | path A alone | target | health | kernel alone |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for row in rows {
        let _infallible = writeln!(
            out,
            "| {:?} | {} ({}) | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.measure,
            row.unit,
            summary(row.kernel.as_ref()),
            summary(row.health.as_ref()),
            summary(row.path_a.as_ref()),
            row.target,
            verdict(row.health_verdict),
            verdict(row.kernel_verdict),
        );
    }
    out
}

fn summary(s: Option<&Summary>) -> String {
    s.map_or_else(
        || "-".to_owned(),
        |s| format!("{} [{}-{}]", number(s.median), number(s.min), number(s.max)),
    )
}

fn number(value: f64) -> String {
    if value.is_infinite() {
        "never".to_owned()
    } else if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn verdict(v: Option<Verdict>) -> &'static str {
    match v {
        Some(Verdict::Met) => "met",
        Some(Verdict::WithinSpread) => "within spread",
        Some(Verdict::Missed) => "MISSED",
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::{Measure, Row, Scenario, Subject, Summary, Target, table};

    #[test]
    fn a_row_judges_health_and_says_where_the_kernel_alone_meets_the_target() {
        let s = |median: f64| Summary {
            median,
            min: median - 0.5,
            max: median + 0.5,
            runs: 5,
        };
        let row = Row::new(
            Scenario::Blackhole,
            Measure::Goodput(Scenario::Blackhole),
            [Some(s(18.5)), Some(s(10.0)), Some(s(19.0))],
        )
        .target(
            Target::AtLeastFractionOf { fraction: 0.9 },
            Some(Subject::PathA),
        );
        let text = table(&[row]);
        assert!(
            text.contains("| >= 0.9 x path A | MISSED | met |"),
            "{text}"
        );
        let row = Row::new(
            Scenario::Loss,
            Measure::P99,
            [Some(s(100.0)), Some(s(20.0)), None],
        )
        .target(
            Target::AtMostFractionOf { fraction: 0.5 },
            Some(Subject::Kernel),
        );
        let text = table(&[row]);
        assert!(text.contains("| <= 0.5 x kernel | met |  |"), "{text}");
        assert!(text.contains("| 20.0 [19.5-20.5] |"), "{text}");
    }
}
