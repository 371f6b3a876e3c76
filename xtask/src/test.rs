//! `cargo xtask test`: every check CI runs, in order, and a closing `N passed, N failed` line.
//! A stage that fails (formatting, clippy, a build) counts as one failure; the later stages
//! still run so one report shows everything.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Command, Stdio},
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use anyhow::{Context as _, bail};

use crate::{cmd, deb, vm, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Skip formatting and clippy.
    #[arg(long)]
    no_lint: bool,
    /// Skip the VM stage (`cargo xtask vm-test`).
    #[arg(long)]
    no_vm: bool,
    /// Run only tests whose names contain this (unit and integration).
    filter: Option<String>,
}

#[derive(Debug, Default)]
struct Tally {
    passed: u64,
    failed: u64,
    skipped: u64,
    failures: Vec<String>,
}

pub(crate) fn run(args: &TestArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let nightly = workspace::ebpf_toolchain()?;

    if !args.no_lint {
        stage(
            &tally,
            "cargo fmt",
            cmd::cargo().args(["fmt", "--all", "--", "--check"]),
        );
        // Dependencies no code uses (false positives are listed, with a reason, under
        // `[package.metadata.cargo-machete]` in their crate's Cargo.toml).
        stage(&tally, "unused dependencies", &mut unused_dependencies());
        stage(
            &tally,
            "clippy",
            cmd::cargo().args([
                "clippy",
                "--workspace",
                "--exclude",
                "mptcpd-ebpf",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        );
        let mut ebpf_clippy = Command::new("rustup");
        ebpf_clippy
            .current_dir(workspace::root().join("mptcpd-ebpf"))
            .args([
                "run",
                &nightly,
                "cargo",
                "clippy",
                "--package",
                "mptcpd-ebpf",
            ])
            .args([
                "--target",
                "bpfel-unknown-none",
                "-Z",
                "build-std=core",
                "--release",
            ])
            .args(["--", "-D", "warnings"])
            .env_remove("RUSTC")
            .env_remove("CARGO");
        stage(&tally, "clippy (eBPF)", &mut ebpf_clippy);
    }
    stage(&tally, "build", &mut cmd::build_test_binaries());
    // The package tests/tests/package.rs reads: a release build (the longest stage on a
    // machine without a release build yet).
    eprintln!("\n== Debian package (cargo xtask deb)");
    outcome(
        &tally,
        "Debian package (cargo xtask deb)",
        deb::build(deb::DEFAULT_REVISION).and_then(|deb| deb::lintian(&deb)),
    );

    let filter: Vec<&str> = args.filter.as_deref().into_iter().collect();
    let mut unit = cmd::cargo();
    // --no-fail-fast: a failing test binary must not hide the results of the next ones.
    unit.args([
        "test",
        "--no-fail-fast",
        "--workspace",
        "--exclude",
        "mptcpd-ebpf",
        "--exclude",
        "mptcpd-tests",
    ])
    .arg("--")
    .args(&filter);
    tests(&tally, "unit and library tests", &mut unit)?;
    // Integration tests share kernel state (cgroup root, bpffs): one at a time. The `vm_`
    // tests need what this kernel lacks; the VM stage runs them.
    let mut integration = cmd::cargo();
    integration
        .args(["test", "--no-fail-fast", "-p", "mptcpd-tests", "--"])
        .args(["--test-threads=1", "--skip", "vm_"])
        .args(&filter);
    tests(&tally, "integration tests (real kernel)", &mut integration)?;
    if !args.no_vm {
        vm_stage(&tally, args.filter.as_deref());
    }

    let tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    eprintln!("\nxtask test: {:.0?}", started.elapsed());
    for failure in &tally.failures {
        eprintln!("FAILED: {failure}");
    }
    let skipped = if tally.skipped > 0 {
        format!(", {} skipped", tally.skipped)
    } else {
        String::new()
    };
    println!("{} passed, {} failed{skipped}", tally.passed, tally.failed);
    if tally.failed > 0 {
        bail!("{} failed", tally.failed);
    }
    Ok(())
}

/// `cargo machete`: fails on a dependency that no code of its crate names.
fn unused_dependencies() -> Command {
    let mut machete = cmd::cargo();
    // cargo-machete takes itself for a cargo subcommand (and skips the `machete` argument)
    // only when CARGO_PKG_NAME is unset; `cargo xtask` runs with xtask's.
    machete.arg("machete").env_remove("CARGO_PKG_NAME");
    machete
}

/// The VM tests on every kernel, counted like the host's.
fn vm_stage(tally_ref: &Arc<Mutex<Tally>>, filter: Option<&str>) {
    let tally = tally_ref;
    eprintln!("\n== VM tests (cargo xtask vm-test)");
    let failed_before = tally.lock().unwrap_or_else(PoisonError::into_inner).failed;
    let result = vm::run_kernels("all", vm::Guest::Tests(filter), &mut |line| {
        println!("{line}");
        count(tally, line);
    });
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(runs) => {
            for run in runs.iter().filter(|run| !run.passed) {
                tally.failures.push(format!("VM tests on {}", run.kernel));
            }
            // A guest that failed without a failing test (a hang, a boot failure) counts once.
            if runs.iter().any(|run| !run.passed) && tally.failed == failed_before {
                tally.failed += 1;
            }
        }
        Err(e) => {
            tally.failed += 1;
            tally.failures.push(format!("VM stage: {e:#}"));
        }
    }
    drop(tally);
    if filter.is_some() {
        return;
    }
    eprintln!("\n== systemd VM stage (cargo xtask vm-test --only-systemd)");
    let result = vm::run_systemd(&mut |line| {
        println!("{line}");
        count(tally_ref, line);
    });
    let mut tally = tally_ref.lock().unwrap_or_else(PoisonError::into_inner);
    match result {
        Ok(true) => {}
        Ok(false) => {
            tally.failed += 1;
            tally.failures.push("the systemd VM stage".to_owned());
        }
        Err(e) => {
            tally.failed += 1;
            tally.failures.push(format!("systemd VM stage: {e:#}"));
        }
    }
}

/// A check that passes or fails as a whole.
fn stage(tally: &Arc<Mutex<Tally>>, name: &str, command: &mut Command) {
    eprintln!("\n== {name}: {}", cmd::display(command));
    let ok = command.status().is_ok_and(|s| s.success());
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    if !ok {
        tally.failed += 1;
        tally.failures.push(name.to_owned());
    }
}

/// A check done in this process that passes or fails as a whole.
fn outcome(tally: &Arc<Mutex<Tally>>, name: &str, result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("{name}: {e:#}");
        let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.failed += 1;
        tally.failures.push(name.to_owned());
    }
}

/// A libtest run: its results are counted from its output, which is passed through.
fn tests(tally: &Arc<Mutex<Tally>>, name: &str, command: &mut Command) -> anyhow::Result<()> {
    eprintln!("\n== {name}: {}", cmd::display(command));
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", cmd::display(command)))?;
    let failed_before = tally.lock().unwrap_or_else(PoisonError::into_inner).failed;
    let readers = [
        child
            .stdout
            .take()
            .map(|out| echo_and_count(out, Echo::Stdout, tally)),
        child
            .stderr
            .take()
            .map(|err| echo_and_count(err, Echo::Stderr, tally)),
    ];
    for reader in readers.into_iter().flatten() {
        let _joined = reader.join();
    }
    let status = child.wait()?;
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    if !status.success() {
        tally.failures.push(format!("{name} ({status})"));
        // A build failure or a crash reports no failed test: count it as one.
        if tally.failed == failed_before {
            tally.failed += 1;
        }
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Echo {
    Stdout,
    Stderr,
}

/// Passes `stream` through line by line, counting results as they go by.
fn echo_and_count(
    stream: impl std::io::Read + Send + 'static,
    echo: Echo,
    tally: &Arc<Mutex<Tally>>,
) -> std::thread::JoinHandle<()> {
    let tally = Arc::clone(tally);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let _echoed = match echo {
                Echo::Stdout => writeln!(std::io::stdout(), "{line}"),
                Echo::Stderr => writeln!(std::io::stderr(), "{line}"),
            };
            count(&tally, &line);
        }
    })
}

/// Counts `test result:` lines and the harness's `skipped:` lines (libtest counts a skipped
/// test as passed, so it moves from passed to skipped).
fn count(tally: &Mutex<Tally>, line: &str) {
    let mut tally = tally.lock().unwrap_or_else(PoisonError::into_inner);
    // The skip line stands alone, or follows libtest's `test NAME ... ` when output interleaves.
    if line.starts_with("skipped: ")
        || (line.starts_with("test ") && line.contains(" ... skipped: "))
    {
        tally.skipped += 1;
        tally.passed = tally.passed.saturating_sub(1);
        return;
    }
    let Some(result) = line.strip_prefix("test result: ") else {
        return;
    };
    for part in result.split(['.', ';']) {
        let mut words = part.split_whitespace();
        if let (Some(n), Some(what)) = (words.next(), words.next())
            && let Ok(n) = n.parse::<u64>()
        {
            match what {
                "passed" => tally.passed += n,
                "failed" => tally.failed += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::{Tally, count, unused_dependencies};

    #[test]
    fn unused_dependencies_are_checked_by_cargo_machete() {
        let machete = unused_dependencies();
        let args: Vec<_> = machete.get_args().collect();
        assert_eq!(args, ["machete"]);
        assert_eq!(
            machete.get_current_dir(),
            Some(crate::workspace::root().as_path())
        );
    }

    /// The stage as `cargo xtask test` runs it (this test, like xtask, runs with
    /// `CARGO_PKG_NAME` set): an unused dependency fails, a used one passes.
    #[test]
    fn the_unused_dependency_stage_fails_on_an_unused_dependency() {
        if std::process::Command::new("cargo-machete")
            .arg("--version")
            .output()
            .is_err()
        {
            mptcpd_test_skip::skip(
                "the_unused_dependency_stage_fails_on_an_unused_dependency",
                "cargo-machete is not installed (cargo xtask setup installs it)",
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"probe\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
             [dependencies]\nlibc = \"0.2\"\n",
        )
        .unwrap();
        let run = |source: &str| {
            std::fs::write(dir.path().join("src/lib.rs"), source).unwrap();
            let mut machete = unused_dependencies();
            machete.current_dir(dir.path());
            machete.output().unwrap()
        };
        let unused = run("");
        assert!(!unused.status.success(), "{unused:?}");
        assert!(
            String::from_utf8_lossy(&unused.stdout).contains("libc"),
            "{unused:?}"
        );
        let used = run("pub use libc::c_int;\n");
        assert!(used.status.success(), "{used:?}");
    }

    #[test]
    fn counts_libtest_results_and_skips() {
        let tally = Mutex::new(Tally::default());
        count(
            &tally,
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; \
             finished in 0.01s",
        );
        count(&tally, "test result: FAILED. 3 passed; 2 failed; 0 ignored");
        count(&tally, "skipped: observer_counts: needs root");
        count(&tally, "test observer ... ok");
        count(
            &tally,
            "test vm_x ... skipped: vm_x: no fmod_ret here: reason",
        );
        let tally = tally.into_inner().unwrap();
        assert_eq!((tally.passed, tally.failed, tally.skipped), (13, 2, 2));
    }
}
