//! `cargo xtask vm-test`: the tests that need what the host kernel blocks (kprobes, BPF
//! trampolines), run on Debian's own kernels under qemu. The runner, not the tests, decides
//! which kernel runs which tests and which features each kernel must have.

mod initramfs;
mod kernel;
mod qemu;
mod systemd;

use std::{path::PathBuf, time::Instant};

use anyhow::{Context as _, bail};
use cargo_metadata::Message;

use crate::{cmd, workspace};

pub(crate) use initramfs::Guest;
pub(crate) use kernel::KERNELS;

/// Integration-test binaries that run in the VM: the harness's own tests, the observer, the
/// kernel-feature smoke tests and subflow telemetry (the lab needs tc and is host-only; the
/// telemetry tests that need nft skip there).
const VM_TESTS: &[&str] = &[
    "harness",
    "kernel_features",
    "sock_observer",
    "upgrade",
    "mptcpize_ebpf",
    "telemetry",
    "health_vm",
];
/// Binaries those tests start.
const VM_BINS: &[&str] = &["mptcpd", "mptcpize", "mptcp-xfer", "socket-bench"];
const TARGET: &str = "x86_64-unknown-linux-musl";
const PROFILE: &str = "vm";

#[derive(Debug, clap::Args)]
pub(crate) struct VmArgs {
    /// Which kernel to boot: a name from the table in `vm/kernel.rs`, or `all`.
    #[arg(long, default_value = "all")]
    kernel: String,
    /// Only tests whose names contain this.
    filter: Option<String>,
    /// Leave out the systemd stage (the package under a real systemd, `vm/systemd`).
    #[arg(long)]
    no_systemd: bool,
    /// Run only the systemd stage.
    #[arg(long, conflicts_with_all = ["no_systemd", "filter"])]
    only_systemd: bool,
}

/// What one kernel's run printed and how it ended.
pub(crate) struct VmRun {
    pub(crate) kernel: &'static str,
    pub(crate) passed: bool,
}

pub(crate) fn run(args: &VmArgs) -> anyhow::Result<()> {
    let mut failed: Vec<&str> = Vec::new();
    if !args.only_systemd {
        let runs = run_kernels(
            &args.kernel,
            Guest::Tests(args.filter.as_deref()),
            &mut |line| {
                println!("{line}");
            },
        )?;
        failed.extend(runs.iter().filter(|r| !r.passed).map(|r| r.kernel));
    }
    if !args.no_systemd
        && args.filter.is_none()
        && !run_systemd(&mut |line| {
            println!("{line}");
        })?
    {
        failed.push("the systemd stage");
    }
    if !failed.is_empty() {
        bail!("VM tests failed on {}", failed.join(", "));
    }
    Ok(())
}

/// The systemd stage: the package under a real systemd (`vm/systemd`); whether it passed.
pub(crate) fn run_systemd(out: &mut dyn FnMut(&str)) -> anyhow::Result<bool> {
    systemd::run(out)
}

/// Builds the test binaries once, then boots each selected kernel; every line the guests
/// print goes to `out`.
pub(crate) fn run_kernels(
    which: &str,
    guest: Guest<'_>,
    out: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<VmRun>> {
    run_kernels_with(which, guest, &[], out)
}

/// [`run_kernels`], with the binaries of the packages `extra` (e.g. `mptcpd-bench`) built
/// static too and put in the guest's `/tests/bin`.
pub(crate) fn run_kernels_with(
    which: &str,
    guest: Guest<'_>,
    extra: &[&str],
    out: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<VmRun>> {
    let kernels: Vec<&kernel::KernelSpec> = KERNELS
        .iter()
        .filter(|k| which == "all" || k.name == which)
        .collect();
    if kernels.is_empty() {
        let names: Vec<&str> = KERNELS.iter().map(|k| k.name).collect();
        bail!(
            "no kernel {which:?}: choose one of {} or all",
            names.join(", ")
        );
    }
    let started = Instant::now();
    let payload = build_payload(extra)?;
    let mut runs = Vec::new();
    for spec in kernels {
        let boot = kernel::fetch(spec)?;
        let initrd = initramfs::build(spec, &boot, &payload, guest)?;
        let kernel_started = Instant::now();
        let passed = qemu::boot(&boot.vmlinuz, &initrd, spec.cmdline, out)?;
        out(&format!(
            "vm: kernel {} ({}) {} in {:.1?}",
            spec.name,
            boot.package,
            if passed { "passed" } else { "FAILED" },
            kernel_started.elapsed()
        ));
        runs.push(VmRun {
            kernel: spec.name,
            passed,
        });
    }
    out(&format!("vm: stage took {:.1?}", started.elapsed()));
    Ok(runs)
}

/// Static binaries to put in the initramfs.
pub(crate) struct Payload {
    tests: Vec<PathBuf>,
    bins: Vec<PathBuf>,
}

fn build_payload(extra: &[&str]) -> anyhow::Result<Payload> {
    cmd::run(
        cmd::build(workspace::TESTED_BINS.iter().chain(extra).copied()).args([
            "--bins",
            "--profile",
            PROFILE,
            "--target",
            TARGET,
        ]),
    )?;
    let mut no_run = cmd::cargo();
    no_run
        .args([
            "test",
            "-p",
            "mptcpd-tests",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--profile", PROFILE, "--target", TARGET]);
    for test in VM_TESTS {
        no_run.args(["--test", test]);
    }
    eprintln!("+ {}", cmd::display(&no_run));
    let out = no_run.stderr(std::process::Stdio::inherit()).output()?;
    if !out.status.success() {
        bail!("{} failed", cmd::display(&no_run));
    }
    let mut tests = Vec::new();
    for message in Message::parse_stream(out.stdout.as_slice()) {
        if let Message::CompilerArtifact(artifact) = message?
            && artifact.target.kind.iter().any(|k| k.to_string() == "test")
            && let Some(exe) = artifact.executable
        {
            tests.push(exe.into_std_path_buf());
        }
    }
    if tests.len() != VM_TESTS.len() {
        bail!(
            "expected {} VM test binaries, cargo built {tests:?}",
            VM_TESTS.len()
        );
    }
    let bin_dir = workspace::target_dir().join(TARGET).join(PROFILE);
    let bins = VM_BINS
        .iter()
        .chain(extra)
        .map(|name| {
            let path = bin_dir.join(name);
            path.is_file()
                .then_some(path.clone())
                .with_context(|| format!("{} was not built", path.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(Payload { tests, bins })
}
