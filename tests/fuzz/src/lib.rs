//! The fuzz targets: one function per decoder of kernel or user input, that must not panic
//! and checks a property of what decodes (decoding what it encodes gives it back, printing
//! and parsing agree, ...). Each is called by its libFuzzer target (`fuzz_targets/`,
//! `cargo xtask fuzz TARGET`) and by this crate's tests, which replay the committed corpora
//! (`corpus/TARGET/`) and the seeds, then a bounded number of fresh mutations of them.

use std::{fs, path::PathBuf};

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
    let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "hex"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let text =
                fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            text.lines()
                .filter(|line| !line.starts_with('#'))
                .flat_map(str::split_whitespace)
                .map(|byte| u8::from_str_radix(byte, 16).expect("a hex byte"))
                .collect()
        })
        .collect()
}

/// The target called `name`.
#[must_use]
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}
