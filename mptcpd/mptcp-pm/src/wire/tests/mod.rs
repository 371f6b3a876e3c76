//! Tests of the wire format: kernel-captured fixtures, every command, and nests at the edge of
//! the length field (`tests/fuzz` fuzzes the decoders).

mod commands;
mod fixtures;
mod oversized;

use std::path::PathBuf;

/// The directory of the captured fixtures (see its README.md).
fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The bytes of fixture `name`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    mptcpd_hex_fixtures::read(&fixture_dir(), name)
}

/// Every fixture, by name, sorted.
fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    mptcpd_hex_fixtures::all(&fixture_dir())
}
