//! `cargo xtask setup`: installs what a fresh machine of this kind lacks, and nothing else.
//! Every check is cheap, so a second run is a no-op in well under a few seconds.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{cmd, workspace};

/// Debian packages, and why each is needed.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("llvm-22-dev", "bpf-linker links against LLVM 22"),
    ("libpolly-22-dev", "bpf-linker links against LLVM 22"),
    ("libzstd-dev", "bpf-linker links against LLVM 22"),
    ("zlib1g-dev", "bpf-linker links against LLVM 22"),
    ("iproute2", "the lab and the tests build namespaces with ip"),
    ("qemu-system-x86", "the VM tests boot Debian kernels"),
    ("busybox-static", "the VM tests' initramfs"),
    ("cpio", "the VM tests' initramfs"),
    ("xz-utils", "the VM tests unpack compressed kernel modules"),
    ("g++", "libfuzzer-sys compiles libFuzzer (cargo xtask fuzz)"),
];
/// Targets of the stable toolchain beyond the host's.
const STABLE_TARGETS: &[&str] = &["x86_64-unknown-linux-musl"];
/// bpf-linker reads rustc's bitcode: its LLVM must be the eBPF nightly's.
const LLVM_MAJOR: u32 = 22;
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";
const BPF_LINKER_VERSION: &str = "0.13.0";
/// `cargo xtask test` checks for unused dependencies with it.
const CARGO_MACHETE_VERSION: &str = "0.9.2";

/// Installs whatever is missing; returns what it installed.
pub(crate) fn run() -> anyhow::Result<Vec<String>> {
    let mut installed = Vec::new();
    debian_packages(&mut installed)?;
    let stable = workspace::stable_toolchain()?;
    toolchain(&stable, &["clippy", "rustfmt"], &mut installed)?;
    targets(&stable, STABLE_TARGETS, &mut installed)?;
    let nightly = workspace::ebpf_toolchain()?;
    toolchain(&nightly, &["rust-src", "clippy"], &mut installed)?;
    check_llvm(&nightly)?;
    bpf_linker(&stable, &mut installed)?;
    cargo_machete(&stable, &mut installed)?;
    if !installed.is_empty() {
        eprintln!("setup: installed {}", installed.join(", "));
    }
    Ok(installed)
}

fn debian_packages(installed: &mut Vec<String>) -> anyhow::Result<()> {
    let names: Vec<&str> = DEBIAN_PACKAGES.iter().map(|(name, _)| *name).collect();
    let out = cmd::output(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\\n"])
            .args(&names),
    )?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| {
            !listed.lines().any(|line| {
                let mut words = line.split_whitespace();
                words.next() == Some(name) && words.next() == Some("ii")
            })
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    for (name, why) in DEBIAN_PACKAGES.iter().filter(|(n, _)| missing.contains(n)) {
        eprintln!("setup: need Debian package {name}: {why}");
    }
    if !cmd::is_root() {
        bail!(
            "missing Debian packages; run as root, or: apt-get install {}",
            missing.join(" ")
        );
    }
    cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
    cmd::run(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    installed.extend(missing.iter().map(|name| format!("{name} (apt)")));
    Ok(())
}

fn toolchain(
    channel: &str,
    components: &[&str],
    installed: &mut Vec<String>,
) -> anyhow::Result<()> {
    let toolchains = cmd::stdout(Command::new("rustup").args(["toolchain", "list"]))?;
    let present = toolchains
        .lines()
        .any(|line| line.starts_with(&format!("{channel}-")) || line == channel);
    if !present {
        let mut install = Command::new("rustup");
        install.args(["toolchain", "install", channel, "--profile", "minimal"]);
        for component in components {
            install.args(["-c", component]);
        }
        cmd::run(&mut install)?;
        installed.push(format!("toolchain {channel}"));
        return Ok(());
    }
    let have = cmd::stdout(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        channel,
    ]))?;
    let missing: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| {
            !have
                .lines()
                .any(|line| line == *c || line.starts_with(&format!("{c}-")))
        })
        .collect();
    if !missing.is_empty() {
        cmd::run(
            Command::new("rustup")
                .args(["component", "add", "--toolchain", channel])
                .args(&missing),
        )?;
        installed.extend(missing.iter().map(|c| format!("{c} for {channel}")));
    }
    Ok(())
}

fn targets(channel: &str, wanted: &[&str], installed: &mut Vec<String>) -> anyhow::Result<()> {
    let have = cmd::stdout(Command::new("rustup").args([
        "target",
        "list",
        "--installed",
        "--toolchain",
        channel,
    ]))?;
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|t| !have.lines().any(|line| line.trim() == *t))
        .collect();
    if !missing.is_empty() {
        cmd::run(
            Command::new("rustup")
                .args(["target", "add", "--toolchain", channel])
                .args(&missing),
        )?;
        installed.extend(missing.iter().map(|t| format!("target {t} for {channel}")));
    }
    Ok(())
}

fn check_llvm(nightly: &str) -> anyhow::Result<()> {
    let version = cmd::stdout(Command::new("rustup").args(["run", nightly, "rustc", "-vV"]))?;
    let major = version
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse::<u32>().ok())
        .with_context(|| format!("no LLVM version in `rustc +{nightly} -vV`"))?;
    if major != LLVM_MAJOR {
        bail!(
            "{nightly} uses LLVM {major} but bpf-linker is built on LLVM {LLVM_MAJOR}; pin a \
             nightly with LLVM {LLVM_MAJOR} in mptcpd-ebpf/rust-toolchain.toml"
        );
    }
    Ok(())
}

fn bpf_linker(stable: &str, installed: &mut Vec<String>) -> anyhow::Result<()> {
    let current = Command::new("bpf-linker").arg("--version").output();
    if let Ok(out) = &current
        && out.status.success()
        && String::from_utf8_lossy(&out.stdout).contains(BPF_LINKER_VERSION)
    {
        return Ok(());
    }
    // Debian's /usr/bin/llvm-config may be another LLVM: name the one to link against.
    cmd::run(
        Command::new("rustup")
            .args(["run", stable, "cargo", "install", "bpf-linker", "--locked"])
            .args(["--version", BPF_LINKER_VERSION, "--no-default-features"])
            .args(["--features", &format!("llvm-{LLVM_MAJOR}")])
            .env("LLVM_PREFIX", LLVM_PREFIX),
    )?;
    installed.push(format!("bpf-linker {BPF_LINKER_VERSION}"));
    Ok(())
}

fn cargo_machete(stable: &str, installed: &mut Vec<String>) -> anyhow::Result<()> {
    let current = Command::new("cargo-machete").arg("--version").output();
    if let Ok(out) = &current
        && out.status.success()
        && String::from_utf8_lossy(&out.stdout).trim() == CARGO_MACHETE_VERSION
    {
        return Ok(());
    }
    // Into the cargo home's bin, beside cargo: `cargo machete` finds it there.
    cmd::run(
        Command::new("rustup")
            .args([
                "run",
                stable,
                "cargo",
                "install",
                "cargo-machete",
                "--locked",
            ])
            .args(["--version", CARGO_MACHETE_VERSION]),
    )?;
    installed.push(format!("cargo-machete {CARGO_MACHETE_VERSION}"));
    Ok(())
}
