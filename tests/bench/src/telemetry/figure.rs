//! The telemetry benchmark's results: each figure beside its target, as a table and as JSON.
//! Figures measured elsewhere (the VM's) are merged in from their JSON.

use std::{fmt::Write as _, path::Path};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// One measured figure (or one that could not be measured here: `value` is then `None` and
/// `note` says why).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Figure {
    /// Which part of the benchmark: `rtt`, `detection`, `overhead`, `memory`, `connect-cost`.
    pub(crate) part: String,
    /// Where it was measured: the kernel release (`uname -r`).
    pub(crate) kernel: String,
    /// What was measured.
    pub(crate) name: String,
    /// Unit of `value` and `reference_value`.
    pub(crate) unit: String,
    /// The figure.
    pub(crate) value: Option<f64>,
    /// What it is compared with, and that value.
    pub(crate) reference: Option<String>,
    /// See `reference`.
    pub(crate) reference_value: Option<f64>,
    /// `value / reference_value`.
    pub(crate) ratio: Option<f64>,
    /// The target, in words (empty where the figure has none).
    pub(crate) target: String,
    /// Whether the target was met (`None`: no target, or not measured).
    pub(crate) met: Option<bool>,
    /// Why a figure is missing, or what to know about it.
    pub(crate) note: String,
}

impl Figure {
    /// A figure without a reference or target.
    pub(crate) fn plain(part: &str, name: &str, unit: &str, value: f64) -> Self {
        Self {
            part: part.to_owned(),
            kernel: kernel_release(),
            name: name.to_owned(),
            unit: unit.to_owned(),
            value: Some(value),
            reference: None,
            reference_value: None,
            ratio: None,
            target: String::new(),
            met: None,
            note: String::new(),
        }
    }

    /// `value` beside `reference`, their ratio judged by `target` (described as `target_text`).
    pub(crate) fn compared(
        part: &str,
        name: &str,
        unit: &str,
        value: f64,
        reference: (&str, f64),
        target: (&str, fn(f64) -> bool),
    ) -> Self {
        let (reference, reference_value) = reference;
        let (target_text, judge) = target;
        let ratio = (reference_value != 0.0).then(|| value / reference_value);
        Self {
            reference: Some(reference.to_owned()),
            reference_value: Some(reference_value),
            ratio,
            target: target_text.to_owned(),
            met: ratio.map(judge),
            ..Self::plain(part, name, unit, value)
        }
    }

    /// The same figure reported beside its reference, without a target.
    #[must_use]
    pub(crate) fn untargeted(self) -> Self {
        Self {
            target: String::new(),
            met: None,
            ..self
        }
    }

    /// A figure that could not be measured here, and why.
    pub(crate) fn missing(part: &str, name: &str, why: &str) -> Self {
        Self {
            value: None,
            note: why.to_owned(),
            ..Self::plain(part, name, "", 0.0)
        }
    }
}

/// The benchmark's JSON document.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Report {
    /// Every figure, the merged ones first.
    pub(crate) figures: Vec<Figure>,
    /// Wall time of this run (without the merged figures' run), seconds.
    pub(crate) wall_s: f64,
}

/// The figures of an earlier run's JSON (e.g. the VM's).
pub(crate) fn read_figures(path: &Path) -> anyhow::Result<Vec<Figure>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report: Report =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(report.figures)
}

/// The table: part, measure, value, reference, ratio, target, met; notes below.
#[must_use]
pub(crate) fn table(figures: &[Figure]) -> String {
    let label = |f: &Figure| {
        if f.unit.is_empty() {
            f.name.clone()
        } else {
            format!("{} ({})", f.name, f.unit)
        }
    };
    let width = figures.iter().map(|f| label(f).len()).max().unwrap_or(0);
    let mut out = format!(
        "{:<12}  {:<width$}  {:>10}  {:>10}  {:>6}  {:<22}  {}\n",
        "part", "measure", "value", "reference", "ratio", "target", "met"
    );
    let mut notes = String::new();
    for f in figures {
        let met = match f.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None if f.value.is_none() => "not measured",
            None => "",
        };
        let _infallible = writeln!(
            out,
            "{:<12}  {:<width$}  {:>10}  {:>10}  {:>6}  {:<22}  {met}",
            f.part,
            label(f),
            f.value.map_or_else(|| "-".to_owned(), number),
            f.reference_value.map_or_else(|| "-".to_owned(), number),
            f.ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.3}")),
            f.target,
        );
        if !f.note.is_empty() || f.reference.is_some() {
            let _infallible = writeln!(
                notes,
                "  {} / {} [{}]: {}{}{}",
                f.part,
                f.name,
                f.kernel,
                f.reference
                    .as_deref()
                    .map_or_else(String::new, |r| format!("reference: {r}")),
                if f.note.is_empty() || f.reference.is_none() {
                    ""
                } else {
                    "; "
                },
                f.note
            );
        }
    }
    if !notes.is_empty() {
        out.push_str("notes:\n");
        out.push_str(&notes);
    }
    out
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e12 {
        format!("{value:.0}")
    } else if value.abs() < 1.0 {
        // Small figures (a program's ns per byte) keep their digits.
        format!("{value:.4}")
    } else {
        format!("{value:.2}")
    }
}

/// The running kernel's release, where a figure was measured.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "?".to_owned(), |s| s.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::{Figure, Report, table};

    #[test]
    fn each_figure_sits_beside_its_target_and_missing_ones_say_why() {
        let figures = vec![
            Figure::compared(
                "rtt",
                "srtt path 1",
                "us",
                21_000.0,
                ("tcpi_rtt", 20_000.0),
                ("within 10%", |r| (r - 1.0).abs() <= 0.1),
            ),
            Figure::missing("rtt", "srtt path 2", "no netem on this kernel"),
        ];
        let text = table(&figures);
        assert!(text.contains("1.050"), "{text}");
        assert!(text.contains("within 10%"), "{text}");
        assert!(text.contains(" met"), "{text}");
        assert!(text.contains("not measured"), "{text}");
        assert!(text.contains("no netem on this kernel"), "{text}");
        let small = table(&[Figure::plain("overhead", "ns per byte", "ns/B", 0.0144)]);
        assert!(small.contains("0.0144"), "{small}");
    }

    #[test]
    fn the_json_reads_back_for_merging() {
        let report = Report {
            figures: vec![
                Figure::plain("memory", "entries", "", 0.0),
                Figure::missing("rtt", "srtt", "why"),
            ],
            wall_s: 1.5,
        };
        let text = serde_json::to_string(&report).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back.figures, report.figures);
    }
}
