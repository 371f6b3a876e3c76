//! Tests of the wire format: kernel-captured fixtures, every command, and nests at the edge of
//! the length field (`tests/fuzz` fuzzes the decoders).

mod commands;
mod fixtures;
mod oversized;

use std::{fs, path::PathBuf};

/// The directory of the captured fixtures (see its README.md).
fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The bytes of fixture `name` (`NAME.hex`: `#` comment lines, then hex bytes).
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_dir().join(format!("{name}.hex"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_hex(&text)
}

pub(crate) fn parse_hex(text: &str) -> Vec<u8> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|byte| u8::from_str_radix(byte, 16).expect("a hex byte"))
        .collect()
}

/// Every fixture, by name, sorted.
fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = fs::read_dir(fixture_dir())
        .expect("the fixture directory")
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".hex")?.to_owned())
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| (name.clone(), fixture(&name)))
        .collect()
}
