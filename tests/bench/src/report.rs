//! A benchmark's results: a table for people and JSON for scripts.

use std::fmt::Write as _;

/// One measurement, with its floor or peer where one exists.
#[derive(Debug, Clone)]
pub struct Row {
    /// What was measured.
    pub name: String,
    /// Unit of the values.
    pub unit: &'static str,
    /// Our value.
    pub ours: f64,
    /// The floor or peer: what it is, and its value.
    pub peer: Option<(String, f64)>,
}

impl Row {
    /// `ours / peer`.
    #[must_use]
    pub fn ratio(&self) -> Option<f64> {
        self.peer
            .as_ref()
            .and_then(|(_, peer)| (*peer != 0.0).then(|| self.ours / peer))
    }
}

/// The table: measure, ours, peer value, ratio, what the peer is.
#[must_use]
pub fn table(rows: &[Row]) -> String {
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

/// The rows as a JSON array.
#[must_use]
pub fn rows_json(rows: &[Row]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|row| {
            let (peer, peer_value) = row.peer.as_ref().map_or_else(
                || ("null".to_owned(), "null".to_owned()),
                |(name, value)| (json_string(name), json_number(*value)),
            );
            let ratio = row.ratio().map_or_else(|| "null".to_owned(), json_number);
            format!(
                "{{\"name\": {}, \"unit\": {}, \"mptcpd\": {}, \"peer\": {peer}, \
                 \"peer_value\": {peer_value}, \"ratio\": {ratio}}}",
                json_string(&row.name),
                json_string(row.unit),
                json_number(row.ours),
            )
        })
        .collect();
    format!("[\n    {}\n  ]", items.join(",\n    "))
}

/// A JSON string literal.
#[must_use]
pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _infallible = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON number (finite; NaN and infinities become `null`).
#[must_use]
pub fn json_number(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "null".to_owned()
    }
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
    use super::{Row, json_string, rows_json, table};

    #[test]
    fn table_and_json_carry_the_ratio() {
        let rows = [
            Row {
                name: "dumps/s".to_owned(),
                unit: "1/s",
                ours: 200.0,
                peer: Some(("ip".to_owned(), 50.0)),
            },
            Row {
                name: "drain".to_owned(),
                unit: "1/s",
                ours: 1.5,
                peer: None,
            },
        ];
        let text = table(&rows);
        assert!(text.contains("4.00"), "{text}");
        assert!(text.contains("(none)"), "{text}");
        let json = rows_json(&rows);
        assert!(json.contains("\"ratio\": 4.000"), "{json}");
        assert!(json.contains("\"peer\": null"), "{json}");
        assert_eq!(json_string("a\"b\n"), "\"a\\\"b\\u000a\"");
    }
}
