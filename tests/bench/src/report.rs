//! A benchmark's results: a table for people and JSON for scripts.

use std::fmt::Write as _;

use serde::Serialize;

/// One measurement, with its floor or peer where one exists. In JSON: `name`, `unit`,
/// `mptcpd` (ours), `peer` and `peer_value` (null without one), `ratio`.
#[derive(Debug, Clone, Serialize)]
#[serde(into = "RowJson")]
pub(crate) struct Row {
    /// What was measured.
    pub(crate) name: String,
    /// Unit of the values.
    pub(crate) unit: &'static str,
    /// Our value.
    pub(crate) ours: f64,
    /// The floor or peer: what it is, and its value.
    pub(crate) peer: Option<(String, f64)>,
}

impl Row {
    /// `ours / peer`.
    #[must_use]
    pub(crate) fn ratio(&self) -> Option<f64> {
        self.peer
            .as_ref()
            .and_then(|(_, peer)| (*peer != 0.0).then(|| self.ours / peer))
    }
}

/// [`Row`] as JSON has it.
#[derive(Serialize)]
struct RowJson {
    name: String,
    unit: &'static str,
    mptcpd: f64,
    peer: Option<String>,
    peer_value: Option<f64>,
    ratio: Option<f64>,
}

impl From<Row> for RowJson {
    fn from(row: Row) -> Self {
        let ratio = row.ratio();
        let Row {
            name,
            unit,
            ours,
            peer,
        } = row;
        let (peer, peer_value) = peer.unzip();
        Self {
            name,
            unit,
            mptcpd: ours,
            peer,
            peer_value,
            ratio,
        }
    }
}

/// The table: measure, ours, peer value, ratio, what the peer is.
#[must_use]
pub(crate) fn table(rows: &[Row]) -> String {
    let label = |row: &Row| format!("{} ({})", row.name, row.unit);
    let name_width = rows.iter().map(|r| label(r).len()).max().unwrap_or(0);
    let mut out = format!(
        "{:<name_width$}  {:>12}  {:>12}  {:>7}  {}\n",
        "measure", "mptcpd", "peer", "ratio", "peer is"
    );
    for row in rows {
        let (peer_value, peer_name) = row.peer.as_ref().map_or_else(
            || ("-".to_owned(), "(none)".to_owned()),
            |(name, value)| (number(*value), name.clone()),
        );
        let ratio = row
            .ratio()
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        let _infallible = writeln!(
            out,
            "{:<name_width$}  {:>12}  {:>12}  {:>7}  {peer_name}",
            label(row),
            number(row.ours),
            peer_value,
            ratio,
        );
    }
    out
}

/// A benchmark's JSON document, pretty-printed, with a closing newline.
pub(crate) fn json(report: &impl Serialize) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(report)? + "\n")
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e12 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{Row, table};

    fn rows() -> [Row; 2] {
        [
            Row {
                name: "dumps/s \"quoted\"\n".to_owned(),
                unit: "1/s",
                ours: 100.0,
                peer: Some(("ip".to_owned(), 300.0)),
            },
            Row {
                name: "drain".to_owned(),
                unit: "1/s",
                ours: f64::NAN,
                peer: None,
            },
        ]
    }

    #[test]
    fn the_table_carries_the_ratio() {
        let text = table(&rows());
        assert!(text.contains("0.33"), "{text}");
        assert!(text.contains("(none)"), "{text}");
    }

    #[test]
    fn rows_are_json_with_full_precision_and_null_for_what_is_absent() {
        let text = super::json(&rows()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            json!([
                {"name": "dumps/s \"quoted\"\n", "unit": "1/s", "mptcpd": 100.0, "peer": "ip",
                 "peer_value": 300.0, "ratio": 100.0 / 300.0},
                {"name": "drain", "unit": "1/s", "mptcpd": null, "peer": null,
                 "peer_value": null, "ratio": null},
            ])
        );
    }
}
