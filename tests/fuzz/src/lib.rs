//! The fuzz targets: one function per decoder of kernel or user input, that must not panic
//! and checks a property of what decodes (decoding what it encodes gives it back, printing
//! and parsing agree, ...). Each is called by its libFuzzer target (`fuzz_targets/`,
//! `cargo xtask fuzz TARGET`) and by this crate's tests, which replay the committed corpora
//! (`corpus/TARGET/`) and the seeds, then a bounded number of fresh mutations of them.

pub mod cli;
pub mod config;
pub mod pm;
mod print;
pub mod rtnetlink;

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

/// The target called `name`.
#[must_use]
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}
