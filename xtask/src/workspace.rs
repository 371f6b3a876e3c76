//! Paths and pins of this workspace.

use std::{
    fs,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, anyhow};

/// The packages of the binaries the tests and the lab run: the daemon and mptcpctl, mptcpize
/// and the test tools (the tests also need the `LD_PRELOAD` wrapper, a library).
pub(crate) const TESTED_BINS: [&str; 4] = ["mptcpd", "mptcpctl", "mptcpize", "mptcpd-tests"];

/// The workspace root (xtask lives one level below it).
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The toolchain channel pinned by a rust-toolchain.toml below the root.
pub(crate) fn toolchain(relative: &str) -> anyhow::Result<String> {
    let path = root().join(relative).join("rust-toolchain.toml");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|line| {
            let value = line
                .trim()
                .strip_prefix("channel")?
                .trim_start()
                .strip_prefix('=')?;
            Some(value.trim().trim_matches('"').to_owned())
        })
        .ok_or_else(|| anyhow!("{} names no channel", path.display()))
}

/// The stable toolchain everything but the eBPF crate builds with.
pub(crate) fn stable_toolchain() -> anyhow::Result<String> {
    toolchain(".")
}

/// The nightly the eBPF crate builds with.
pub(crate) fn ebpf_toolchain() -> anyhow::Result<String> {
    toolchain("mptcpd-ebpf")
}

/// Where cargo puts build output.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

#[cfg(test)]
mod tests {
    use cargo_metadata::{DependencyKind, MetadataCommand, TargetKind};

    /// Library crates return `thiserror` enums; `anyhow` is for binaries, xtask, build scripts
    /// and the test harness.
    #[test]
    fn no_library_crate_depends_on_anyhow() {
        /// Test code: a library only so that the integration tests share it.
        const ALLOWED: &[&str] = &["mptcpd-tests"];
        let metadata = MetadataCommand::new()
            .manifest_path(super::root().join("Cargo.toml"))
            .no_deps()
            .exec()
            .unwrap();
        let offenders: Vec<&str> = metadata
            .workspace_packages()
            .into_iter()
            .filter(|package| {
                package.targets.iter().any(|target| {
                    target
                        .kind
                        .iter()
                        .any(|kind| matches!(kind, TargetKind::Lib | TargetKind::CDyLib))
                })
            })
            .filter(|package| {
                package
                    .dependencies
                    .iter()
                    .any(|dep| dep.name == "anyhow" && dep.kind == DependencyKind::Normal)
            })
            .map(|package| package.name.as_str())
            .filter(|name| !ALLOWED.contains(name))
            .collect();
        assert!(
            offenders.is_empty(),
            "library crates depending on anyhow: {offenders:?}"
        );
    }

    /// `mptcpctl` is a small netlink client: it must not link aya (eBPF) or the daemon crate
    /// (which holds the journald writer), with the features it is built with (`cargo tree`,
    /// not `cargo metadata`, whose graph unifies the features of the whole workspace).
    #[test]
    fn mptcpctl_links_neither_aya_nor_the_daemon() {
        let output = crate::cmd::cargo()
            .args(["tree", "-p", "mptcpctl", "-e", "normal", "--prefix", "none"])
            .output()
            .unwrap();
        assert!(output.status.success(), "cargo tree -p mptcpctl failed");
        let tree = String::from_utf8(output.stdout).unwrap();
        let linked: Vec<&str> = tree
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| name.starts_with("aya") || *name == "mptcpd")
            .collect();
        assert!(linked.is_empty(), "mptcpctl links {linked:?}");
    }
}
