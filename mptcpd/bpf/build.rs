//! Builds `mptcpd-ebpf` for the BPF target with its pinned nightly and leaves the object in
//! `OUT_DIR/mptcpd-ebpf`, where `mptcpd_bpf::OBJECT` embeds it. This is the only way the
//! object is built; `cargo xtask build-ebpf` runs this script and copies its output.

use std::fs;

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "mptcpd-ebpf")
        .ok_or_else(|| anyhow!("mptcpd-ebpf is not in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", ebpf.manifest_path))?;

    let toolchain_file = root_dir.join("rust-toolchain.toml");
    println!("cargo::rerun-if-changed={toolchain_file}");
    let toolchain =
        fs::read_to_string(&toolchain_file).with_context(|| format!("reading {toolchain_file}"))?;
    let channel = toolchain_channel(&toolchain)
        .ok_or_else(|| anyhow!("{toolchain_file} names no channel"))?;

    aya_build::build_ebpf(
        [Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::Custom(channel),
    )
    .context("building mptcpd-ebpf (run `cargo xtask setup` if a tool is missing)")
}

/// The `channel = "..."` value of a rust-toolchain.toml (the file is ours and flat).
fn toolchain_channel(toml: &str) -> Option<&str> {
    toml.lines().find_map(|line| {
        let value = line
            .trim()
            .strip_prefix("channel")?
            .trim_start()
            .strip_prefix('=')?;
        value.trim().strip_prefix('"')?.split('"').next()
    })
}
