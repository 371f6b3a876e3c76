//! The packages the stage installs: `cargo xtask deb`'s `mptcpd-rs` at revision 1, and the same
//! code at revision 2 (a newer version, for the upgrade). In `cargo xtask test` the release
//! build is already there (the package stage made it), so each costs a `cargo deb` run.

use std::{fs, path::PathBuf};

use anyhow::Context as _;

use crate::{cmd, deb, workspace};

/// Builds both; returns (file name in the guest, path) pairs.
pub(super) fn build() -> anyhow::Result<Vec<(String, PathBuf)>> {
    // The guest's test client (`mptcp-xfer`) comes from the integration tests' build.
    cmd::run(&mut cmd::build_test_binaries())?;
    let out = workspace::target_dir().join("vm").join("systemd-debs");
    let _stale = fs::remove_dir_all(&out);
    fs::create_dir_all(&out)?;
    [1, deb::DEFAULT_REVISION + 1]
        .into_iter()
        .map(|revision| {
            let built = deb::build(revision)?;
            // cargo deb deletes the package's other revisions from its output directory.
            let kept = out.join(
                built
                    .file_name()
                    .context("cargo deb's package has no file name")?,
            );
            fs::copy(&built, &kept).with_context(|| format!("copying {}", built.display()))?;
            Ok((format!("mptcpd-rs-{revision}.deb"), kept))
        })
        .collect()
}
