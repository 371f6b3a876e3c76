//! The error convention (docs/architecture.md, "Errors and logs"), checked on the sources: a
//! variant of our `thiserror` types exposes its cause (`#[source]`, `#[from]`, or a field
//! named `source`) and does not also print it in its `#[error("...")]` message, because
//! `mptcpd_common::Chain` prints every exposed source once.

use std::{
    fs,
    path::{Path, PathBuf},
};

/// Where our library and binary crates live (the eBPF crate has no std errors).
const ROOTS: &[&str] = &["mptcpd", "mptcpd-common", "plugins"];

/// `file:line: Variant` for every variant that prints a source it exposes, and how many
/// `#[error(...)]` attributes were looked at.
fn violations(root: &Path) -> (Vec<String>, usize) {
    let mut files = Vec::new();
    for dir in ROOTS {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut found = Vec::new();
    let mut seen = 0;
    for file in files {
        let text = fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (at, name) in check(&text, &mut seen) {
            let line = text[..at].lines().count();
            found.push(format!("{}:{line}: {name}", file.display()));
        }
    }
    (found, seen)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n != "target" && n != "fixtures")
            {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Byte offsets and names of the offending items in one source file.
fn check(text: &str, seen: &mut usize) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("#[error(").map(|i| i + from) {
        *seen += 1;
        let open = start + "#[error".len();
        let close = matching(text, open);
        let message = &text[open + 1..close];
        from = close;
        if message.trim() == "transparent" {
            continue;
        }
        let (name, fields) = item_after(text, close + 2);
        let sources = split_fields(fields)
            .iter()
            .enumerate()
            .filter_map(|(index, field)| source_name(field, index))
            .collect::<Vec<_>>();
        if sources.iter().any(|source| prints(message, source)) {
            found.push((start, name.to_owned()));
        }
    }
    found
}

/// The index of the delimiter closing the one at `open`, skipping string literals.
fn matching(text: &str, open: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0_usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    panic!("unbalanced delimiters after byte {open}");
}

/// The name and field list (without delimiters) of the variant or struct at `at`, past its
/// doc comments and other attributes.
fn item_after(text: &str, mut at: usize) -> (&str, &str) {
    loop {
        let rest = text[at..].trim_start();
        at = text.len() - rest.len();
        if rest.starts_with("//") {
            at += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("#[") {
            at = matching(text, at + 1) + 1;
        } else {
            break;
        }
    }
    let rest = &text[at..];
    let rest = rest.strip_prefix("pub ").unwrap_or(rest);
    let rest = rest.strip_prefix("struct ").unwrap_or(rest);
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let name = &rest[..end];
    let after = rest[end..].trim_start();
    let open = text.len() - after.len();
    match after.as_bytes().first() {
        Some(b'(' | b'{') => (name, &text[open + 1..matching(text, open)]),
        _ => (name, ""),
    }
}

/// The fields of a variant, split at top-level commas.
fn split_fields(fields: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in fields.char_indices() {
        match c {
            '(' | '[' | '{' | '<' => depth += 1,
            ')' | ']' | '}' | '>' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&fields[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&fields[start..]);
    parts.retain(|p| !p.trim().is_empty());
    parts
}

/// How the message would name the field, if the field is a source.
fn source_name(field: &str, index: usize) -> Option<String> {
    let code: String = field
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join(" ");
    let marked = code.contains("#[source]") || code.contains("#[from]");
    let mut plain = code.as_str();
    while let Some(rest) = plain.trim_start().strip_prefix("#[") {
        plain = &rest[rest.find(']').map_or(rest.len(), |i| i + 1)..];
    }
    let plain = plain.trim_start();
    let plain = plain.strip_prefix("pub ").unwrap_or(plain);
    // `name: Type` names the field; `io::Error` or `Option<a::B>` is a tuple field's type.
    let name = match plain.split_once(':') {
        Some((name, rest))
            if !rest.starts_with(':')
                && name.trim().chars().all(|c| c.is_alphanumeric() || c == '_') =>
        {
            name.trim().to_owned()
        }
        _ => index.to_string(),
    };
    (marked || name == "source").then_some(name)
}

/// Whether the `#[error(...)]` arguments mention the field: `{name}`, `{name:?}`, `.name`.
fn prints(message: &str, name: &str) -> bool {
    ["{", "."].iter().any(|prefix| {
        message
            .match_indices(&format!("{prefix}{name}"))
            .any(|(i, m)| {
                message[i + m.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
            })
    })
}

#[test]
fn no_error_of_ours_prints_a_source_it_exposes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (found, seen) = violations(&root);
    // A scanner that finds nothing checks nothing.
    assert!(seen > 50, "only {seen} #[error(...)] attributes found");
    assert!(
        found.is_empty(),
        "these variants print a source they also expose (drop it from the message; \
         mptcpd_common::Chain prints it):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_tells_printing_from_exposing() {
    let offending = r#"
        #[derive(Debug, thiserror::Error)]
        pub enum E {
            /// Prints and exposes.
            #[error("socket: {0}")]
            Io(#[from] io::Error),
            #[error("{}: {source}", path.display())]
            Named { path: PathBuf, source: io::Error },
            #[error("pin {name}: {}", .why)]
            Dotted { name: String, #[source] why: aya::pin::PinError },
        }
    "#;
    let mut seen = 0;
    let names: Vec<_> = check(offending, &mut seen)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    assert_eq!(names, ["Io", "Named", "Dotted"]);
    let fine = r#"
        pub enum E {
            #[error("socket")]
            Io(#[from] io::Error),
            #[error("{}", path.display())]
            Named { path: PathBuf, #[source] source: io::Error },
            #[error("line {0}: {1}")]
            Data(usize, LineProblem),
            #[error(transparent)]
            Other(#[from] Other),
            #[error("stopped")]
            Stopped(#[source] Option<Inner>),
            #[error("monitor")]
            Netmon(#[source] crate::netmon::NetmonError),
        }
        #[error("unknown target {0:?}")]
        pub struct TargetError(pub String);
    "#;
    assert_eq!(check(fine, &mut seen), []);
    assert_eq!(seen, 10);
}
