//! The kernels the VM tests boot: Debian's packages, fetched by name with apt into the download
//! cache outside the clone ([`mptcpd_deb_cache`]), once per kernel version.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use mptcpd_deb_cache::Debs;

use crate::cmd;

/// A kernel to test on, and what it must support.
#[derive(Debug)]
pub(crate) struct KernelSpec {
    /// Name on the command line (`--kernel`).
    pub(crate) name: &'static str,
    /// Debian's meta package, which depends on the current versioned image.
    meta_package: &'static str,
    /// Features the tests must find (`MPTCPD_EXPECT_FEATURES`); any other missing one is a skip.
    pub(crate) expect: &'static [&'static str],
    /// Modules to load at boot (paths below `lib/modules/VERSION/kernel/`, without `.xz`).
    pub(crate) modules: &'static [&'static str],
    /// Extra kernel command-line arguments.
    pub(crate) cmdline: &'static str,
}

/// The kernels `vm-test` knows. To add one, add a row: the tests need no change.
pub(crate) const KERNELS: &[KernelSpec] = &[
    // Full features: kprobes, BPF trampolines (fentry, fmod_ret), update_socket_protocol.
    KernelSpec {
        name: "6.12",
        meta_package: "linux-image-6.12-cloud-amd64",
        expect: &[
            "kprobe",
            "fentry",
            "fmod_ret",
            "tp_btf_reset",
            "reset_reason",
            "tp_btf_get_send",
            "netem",
        ],
        // inet_diag before tcp_diag (loaded in name order): `ss -K` in the telemetry tests.
        // netem: the telemetry benchmark's delays (the host kernel has none). mptcp_diag:
        // `MPTCP_INFO`'s retransmissions in the telemetry tests (no modprobe to autoload it).
        modules: &[
            "drivers/net/veth.ko",
            "net/ipv4/inet_diag.ko",
            "net/ipv4/tcp_diag.ko",
            "net/mptcp/mptcp_diag.ko",
            "net/sched/sch_netem.ko",
        ],
        // Debian's kernels are PREEMPT_DYNAMIC: BPF programs can then be preempted mid-run,
        // which the eBPF counters' stress test needs.
        cmdline: "preempt=full",
    },
    // Debian 12's default kernel: kprobes and trampolines, but no update_socket_protocol and no
    // reason in tcp:tcp_send_reset (6.10+).
    KernelSpec {
        name: "6.1",
        meta_package: "linux-image-cloud-amd64",
        expect: &["kprobe", "fentry", "tp_btf_reset", "tp_btf_get_send"],
        // inet_diag before tcp_diag (loaded in name order): `ss -K` in the telemetry tests.
        modules: &[
            "drivers/net/veth.ko",
            "net/ipv4/inet_diag.ko",
            "net/ipv4/tcp_diag.ko",
        ],
        cmdline: "",
    },
];

/// An unpacked kernel package.
pub(crate) struct Boot {
    pub(crate) package: String,
    pub(crate) vmlinuz: PathBuf,
    pub(crate) modules: PathBuf,
}

/// Downloads and unpacks the kernel (once per version; later runs and clones reuse the cache).
pub(crate) fn fetch(spec: &KernelSpec) -> anyhow::Result<Boot> {
    let package = resolve(spec.meta_package)?;
    let root = Debs {
        label: "kernel",
        packages: &[&package],
        marker: "boot",
    }
    .get()
    .with_context(|| format!("kernel package {package}"))?
    .root;
    let vmlinuz = first_entry(&root.join("boot"), "vmlinuz-")?;
    let modules = first_entry(&root.join("lib/modules"), "")?;
    Ok(Boot {
        package,
        vmlinuz,
        modules,
    })
}

/// The versioned image package a meta package currently depends on.
fn resolve(meta: &str) -> anyhow::Result<String> {
    let depends = || cmd::stdout(Command::new("apt-cache").args(["depends", meta]));
    let text = match depends() {
        Ok(text) if text.contains("Depends:") => text,
        // A fresh machine has no package lists yet.
        _ => {
            cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
            depends()?
        }
    };
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("Depends: "))
        .find(|dep| dep.starts_with("linux-image-"))
        .map(str::to_owned)
        .with_context(|| format!("apt-cache depends {meta} names no linux-image package"))
}

fn first_entry(dir: &Path, prefix: &str) -> anyhow::Result<PathBuf> {
    fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .with_context(|| format!("nothing named {prefix}* in {}", dir.display()))
}
