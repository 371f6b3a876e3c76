//! The fuzz targets: one function per decoder of kernel or user input, that must not panic
//! and checks a property of what decodes (decoding what it encodes gives it back, printing
//! and parsing agree, ...). Each is called by its libFuzzer target (`fuzz_targets/`,
//! `cargo xtask fuzz TARGET`) and by this crate's tests, which replay the committed corpora
//! (`corpus/TARGET/`) and the seeds, then a bounded number of fresh mutations of them.

use std::path::PathBuf;

pub mod cli;
pub mod config;
pub mod diag;
pub mod pm;
mod print;
pub mod rtnetlink;
pub mod state;

#[cfg(test)]
mod mutate;
#[cfg(test)]
mod replay;

/// A fuzz target.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Its name: the libFuzzer binary and the corpus directory.
    pub name: &'static str,
    /// The body: panics on a finding.
    pub run: fn(&[u8]),
    /// Inputs to start from, built from the captured fixtures and the tests' examples.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// Every target, as `cargo xtask fuzz --list` shows them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "pm",
        run: pm::run,
        seeds: pm::seeds,
    },
    Target {
        name: "rtnetlink",
        run: rtnetlink::run,
        seeds: rtnetlink::seeds,
    },
    Target {
        name: "diag",
        run: diag::run,
        seeds: diag::seeds,
    },
    Target {
        name: "state",
        run: state::run,
        seeds: state::seeds,
    },
    Target {
        name: "config",
        run: config::run,
        seeds: config::seeds,
    },
    Target {
        name: "cli",
        run: cli::run,
        seeds: cli::seeds,
    },
];

/// The messages of the captured fixtures `DIR/*.hex` (`DIR` relative to the repository; `#`
/// comment lines, then hex bytes; see their README.md), in name order.
///
/// # Panics
/// If they cannot be read.
#[must_use]
pub fn hex_fixtures(dir: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(dir);
    mptcpd_hex_fixtures::all(&dir)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

/// The target called `name`.
#[must_use]
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}
