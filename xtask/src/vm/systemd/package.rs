//! The packages the stage installs: `mptcpd-rs` at revision 1, and the same code at revision 2
//! (a newer version, for the upgrade). A stand-in made with `dpkg-deb` from the tree
//! `cargo xtask install` writes, with the real package's maintainer scripts (`dist/debian/`),
//! until the stage uses `cargo xtask deb`'s package. Its binaries are the debug build,
//! stripped: what the tests already built, where a release build takes many minutes on two
//! shared cores.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use crate::{cmd, install, workspace};

const CONFLICTS: &str = "mptcpd, mptcpd-plugins, mptcpize, libmptcpwrap0";
/// The package's own maintainer scripts (`cargo xtask deb` ships them).
const SCRIPTS: [(&str, &str); 3] = [
    ("postinst", include_str!("../../../../dist/debian/postinst")),
    ("prerm", include_str!("../../../../dist/debian/prerm")),
    ("postrm", include_str!("../../../../dist/debian/postrm")),
];

/// Builds both; returns (file name in the guest, path) pairs.
pub(super) fn build() -> anyhow::Result<Vec<(String, PathBuf)>> {
    // What the integration tests build: one feature resolution, nothing rebuilt twice.
    cmd::run(&mut cmd::build_test_binaries())?;
    let debug = workspace::target_dir().join("debug");
    let out = workspace::target_dir().join("vm").join("systemd-debs");
    let _stale = fs::remove_dir_all(&out);
    let built = out.join("stripped");
    fs::create_dir_all(&built)?;
    for name in ["mptcpd", "mptcpctl", "mptcpize", "libmptcpwrap.so"] {
        cmd::run(
            Command::new("strip")
                .arg("-o")
                .arg(built.join(name))
                .arg(debug.join(name)),
        )?;
    }
    [1, 2]
        .into_iter()
        .map(|revision| {
            let deb = stand_in(&built, &out, revision)?;
            Ok((format!("mptcpd-rs-{revision}.deb"), deb))
        })
        .collect()
}

fn stand_in(built: &Path, out: &Path, revision: u32) -> anyhow::Result<PathBuf> {
    let tree = out.join(format!("tree-{revision}"));
    install::install(built, &tree, Path::new("/usr"))?;
    // Where the C package has it and the real package puts it (merged /usr: one path only).
    let units = tree.join("lib/systemd/system");
    fs::create_dir_all(&units)?;
    fs::rename(
        tree.join("usr/lib/systemd/system/mptcp.service"),
        units.join("mptcp.service"),
    )?;
    let control = tree.join("DEBIAN");
    fs::create_dir_all(&control)?;
    let version = format!("{}-{revision}", env!("CARGO_PKG_VERSION"));
    fs::write(
        control.join("control"),
        format!(
            "Package: mptcpd-rs\nVersion: {version}\nArchitecture: amd64\n\
             Maintainer: mptcpd-rs <mptcpd-rs@example.invalid>\nSection: net\n\
             Priority: optional\nDepends: procps\nConflicts: {CONFLICTS}\n\
             Replaces: {CONFLICTS}\n\
             Description: Multipath TCP path-management daemon (Rust)\n \
             Stand-in package of the systemd VM stage.\n"
        ),
    )?;
    fs::write(control.join("conffiles"), "/etc/mptcpd/mptcpd.conf\n")?;
    for (name, text) in SCRIPTS {
        let path = control.join(name);
        fs::write(&path, text)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    let deb = out.join(format!("mptcpd-rs_{version}_amd64.deb"));
    cmd::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&tree)
            .arg(&deb),
    )?;
    Ok(deb)
}
