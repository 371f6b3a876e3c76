//! `cargo xtask fuzz TARGET [--seconds N]`: `cargo fuzz run` on the eBPF crate's nightly, from
//! the committed corpus (`tests/fuzz/corpus/TARGET/`) and the target's seeds, then
//! `cargo fuzz cmin` so that the corpus stays minimal. `--list` lists the targets.
//!
//! No sanitizer: the decoders are safe Rust, so a finding is a panic (a failed property
//! check, an overflow: debug assertions are on), and `AddressSanitizer` would only halve the
//! rate. The nested eBPF build of `mptcpd/bpf/build.rs` sets its own `CARGO_ENCODED_RUSTFLAGS`,
//! so cargo-fuzz's `RUSTFLAGS` do not reach it.

use std::{
    fs,
    io::{BufRead as _, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::{cmd, setup, workspace};

/// The fuzz crate, relative to the workspace root.
const FUZZ_DIR: &str = "tests/fuzz";
/// Its feature that brings in libFuzzer and the `[[bin]]` targets.
const FEATURE: &str = "libfuzzer";

#[derive(Debug, clap::Args)]
pub(crate) struct FuzzArgs {
    /// The target to fuzz (`--list` names them).
    #[arg(required_unless_present = "list")]
    target: Option<String>,
    /// How long to fuzz; 0 only minimises the corpus.
    #[arg(long, default_value_t = 600)]
    seconds: u64,
    /// List the targets and what each checks.
    #[arg(long)]
    list: bool,
    /// More libFuzzer options (after `--`, e.g. `-- -jobs=2`).
    #[arg(last = true)]
    libfuzzer: Vec<String>,
}

pub(crate) fn run(args: &FuzzArgs) -> anyhow::Result<()> {
    let FuzzArgs {
        target,
        seconds,
        list,
        libfuzzer,
    } = args;
    let targets = targets()?;
    if *list {
        for (name, about) in &targets {
            println!("{name:<10} {about}");
        }
        return Ok(());
    }
    let Some(target) = target else {
        bail!("name a target (cargo xtask fuzz --list)");
    };
    if !targets.iter().any(|(name, _)| name == target) {
        bail!("no fuzz target {target:?} (cargo xtask fuzz --list)");
    }
    setup::CARGO_FUZZ.ensure()?;
    let root = workspace::root();
    let corpus = root.join(FUZZ_DIR).join("corpus").join(target);
    fs::create_dir_all(&corpus)?;
    let executions = if *seconds == 0 {
        None
    } else {
        fuzz(target, &corpus, *seconds, libfuzzer)?
    };

    // Edges only, by set cover: hit counts would keep thousands of inputs for the parsers'
    // and the state machine's loops.
    let mut cmin = cargo_fuzz("cmin", target)?;
    cmin.arg(&corpus)
        .args(["--", "-use_counters=0", "-set_cover_merge=1"]);
    cmd::run(&mut cmin)?;
    let kept = files(&corpus)?;
    let bytes: u64 = kept
        .iter()
        .filter_map(|path| fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum();
    let fuzzed = if *seconds == 0 {
        String::new()
    } else {
        let runs = executions.map_or_else(|| "?".to_owned(), |n| n.to_string());
        format!("{runs} executions in {seconds} s, no findings; ")
    };
    println!(
        "fuzz {target}: {fuzzed}corpus {} inputs, {} KiB ({})",
        kept.len(),
        bytes.div_ceil(1024),
        corpus.display()
    );
    Ok(())
}

/// Runs libFuzzer on `target` for `seconds`; the number of executions it reported.
fn fuzz(
    target: &str,
    corpus: &Path,
    seconds: u64,
    libfuzzer: &[String],
) -> anyhow::Result<Option<u64>> {
    let root = workspace::root();
    let seeds = write_seeds(target)?;

    let mut fuzz = cargo_fuzz("run", target)?;
    fuzz.arg(corpus).arg(&seeds).arg("--");
    fuzz.arg(format!("-max_total_time={seconds}"))
        .args(["-timeout=10", "-print_final_stats=1"]);
    let dict = root
        .join(FUZZ_DIR)
        .join("dicts")
        .join(format!("{target}.dict"));
    if dict.is_file() {
        fuzz.arg(format!("-dict={}", dict.display()));
    }
    fuzz.args(libfuzzer);
    let executions = run_counting(&mut fuzz);
    let artifacts = root.join(FUZZ_DIR).join("artifacts").join(target);
    let findings = files(&artifacts).unwrap_or_default();
    if let Err(e) = executions {
        bail!(
            "{e:#}\nfindings in {}: {}; fix each, then move the input into {} as a \
             regression input",
            artifacts.display(),
            findings.len(),
            corpus.display()
        );
    }
    executions
}

/// The targets (the fuzz crate's binaries that need libFuzzer) and the first line of their
/// module's documentation.
fn targets() -> anyhow::Result<Vec<(String, String)>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .manifest_path(workspace::root().join(FUZZ_DIR).join("Cargo.toml"))
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let package = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "mptcpd-fuzz")
        .context("no mptcpd-fuzz package")?;
    let src = workspace::root().join(FUZZ_DIR).join("src");
    Ok(package
        .targets
        .iter()
        .filter(|t| t.required_features.iter().any(|f| f == FEATURE))
        .map(|t| {
            let about = fs::read_to_string(src.join(format!("{}.rs", t.name)))
                .ok()
                .map(|text| first_sentence(&text))
                .unwrap_or_default();
            (t.name.clone(), about)
        })
        .collect())
}

/// The first sentence of a module's documentation, without the `NAME: ` it starts with.
fn first_sentence(source: &str) -> String {
    let paragraph: Vec<&str> = source
        .lines()
        .map_while(|line| line.strip_prefix("//! "))
        .collect();
    let text = paragraph.join(" ");
    let text = text
        .split_once(": ")
        .map_or(text.as_str(), |(_, rest)| rest);
    let first = text.split_once(". ").map_or(text, |(first, _)| first);
    first.trim_end_matches('.').to_owned()
}

/// Writes the target's seeds (built from the fixtures by the fuzz crate, on stable) where
/// libFuzzer reads them beside the corpus without adding to them.
fn write_seeds(target: &str) -> anyhow::Result<PathBuf> {
    let dir = workspace::target_dir().join("fuzz-seeds").join(target);
    if dir.exists() {
        fs::remove_dir_all(&dir)?;
    }
    cmd::run(
        cmd::cargo()
            .args([
                "run",
                "-q",
                "-p",
                "mptcpd-fuzz",
                "--bin",
                "mptcpd-fuzz-seeds",
                "--",
            ])
            .arg(target)
            .arg(&dir),
    )?;
    Ok(dir)
}

/// `cargo fuzz SUBCOMMAND` for `target` on the nightly, with this project's options.
fn cargo_fuzz(subcommand: &str, target: &str) -> anyhow::Result<Command> {
    let nightly = workspace::ebpf_toolchain()?;
    let mut command = Command::new("rustup");
    command
        .current_dir(workspace::root())
        .args(["run", &nightly, "cargo", "fuzz", subcommand])
        .args(["--fuzz-dir", FUZZ_DIR, "--features", FEATURE])
        .args(["--sanitizer", "none"])
        .arg(target)
        // The stable toolchain's, from `cargo xtask`: the nightly's own must be used.
        .env_remove("RUSTC")
        .env_remove("CARGO");
    Ok(command)
}

/// Runs libFuzzer with its output passed through; the number of executions it reported.
fn run_counting(command: &mut Command) -> anyhow::Result<Option<u64>> {
    eprintln!("+ {}", cmd::display(command));
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", cmd::display(command)))?;
    let mut executions = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                executions = n.trim().parse().ok();
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("{} failed ({status})", cmd::display(command));
    }
    Ok(executions)
}

fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::first_sentence;

    #[test]
    fn a_targets_description_is_its_first_sentence() {
        let source = "//! `pm`: a datagram, as the kernel\n//! sends it. Checked: more.\n//!\n\
                      //! Later.\n\nuse x;\n";
        assert_eq!(first_sentence(source), "a datagram, as the kernel sends it");
        assert_eq!(first_sentence("//! `x`: one line.\n"), "one line");
    }
}
