//! The binaries tests run: the daemon and our own tools, built into the same target directory.

use std::path::PathBuf;

use anyhow::bail;

/// Overrides where binaries are looked up.
const BIN_DIR_ENV: &str = "MPTCPD_BIN_DIR";

/// Path of binary `name` (`mptcpd`, `mptcp-xfer`, ...).
pub fn path(name: &str) -> anyhow::Result<PathBuf> {
    let dir = if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        PathBuf::from(dir)
    } else {
        let exe = std::env::current_exe()?;
        let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
        // Test binaries live in target/PROFILE/deps, the others one level up.
        if dir.ends_with("deps") {
            dir.pop();
        }
        dir
    };
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build it first (cargo build -p mptcpd -p mptcpctl -p mptcpize -p mptcpd-tests --bins; \
             cargo xtask test does) or set {BIN_DIR_ENV}",
            path.display()
        );
    }
    Ok(path)
}
