//! `cargo xtask install [--destdir DIR] [--prefix /usr]`: release binaries, the default
//! configuration file and a hardened systemd unit, DESTDIR-aware as `make install`.
//!
//! | what | where |
//! | --- | --- |
//! | `mptcpd` | `PREFIX/libexec/mptcpd` (where Debian's C mptcpd is) |
//! | `mptcpctl`, `mptcpize` | `PREFIX/bin/` |
//! | `libmptcpwrap.so` | `PREFIX/lib/mptcpize/` (where `mptcpize` looks, beside `../lib`) |
//! | `mptcpd.conf` | `/etc/mptcpd/` (the path the daemon reads; an existing one is kept) |
//! | `mptcp.service` | `PREFIX/lib/systemd/system/` |
//! | `org.mptcpd.Mptcpd.conf` | `/usr/share/dbus-1/system.d/` (the D-Bus policy: root owns the name, everyone reads, root and group `mptcpd` change) |
//! | `mptcpd.conf` (sysusers) | `PREFIX/lib/sysusers.d/` (the group `mptcpd`; created at once by `systemd-sysusers` when installing to `/`) |

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;

use crate::{cmd, workspace};

/// The default configuration file, every key documented and commented out.
const CONFIG: &str = include_str!("../../dist/mptcpd.conf");
/// The unit, with `@LIBEXECDIR@` to fill in.
const UNIT: &str = include_str!("../../dist/mptcp.service.in");
/// The D-Bus policy of the daemon's name.
const DBUS_POLICY: &str = include_str!("../../dist/dbus/org.mptcpd.Mptcpd.conf");
/// The group the D-Bus policy and the daemon's `dbus-group` name.
const SYSUSERS: &str = include_str!("../../dist/sysusers.d/mptcpd.conf");

#[derive(Debug, clap::Args)]
pub(crate) struct InstallArgs {
    /// Staging root prepended to every installed path (as `make install DESTDIR=`).
    #[arg(long, value_name = "DIR", default_value = "/")]
    destdir: PathBuf,
    /// Installation prefix.
    #[arg(long, value_name = "DIR", default_value = "/usr")]
    prefix: PathBuf,
    /// Install what `target/release` holds without building it first.
    #[arg(long)]
    no_build: bool,
}

pub(crate) fn run(args: &InstallArgs) -> anyhow::Result<()> {
    if !args.no_build {
        cmd::run(cmd::build(["mptcpd", "mptcpctl", "mptcpize", "mptcpwrap"]).arg("--release"))?;
    }
    let built = workspace::target_dir().join("release");
    let installed = install(&built, &args.destdir, &args.prefix)?;
    for path in &installed {
        eprintln!("installed {}", path.display());
    }
    if args.destdir == Path::new("/")
        && let Some(sysusers) = installed
            .iter()
            .find(|p| p.ends_with("sysusers.d/mptcpd.conf"))
    {
        // The group now rather than at the next boot; a failure only delays it.
        if let Err(e) = cmd::run(std::process::Command::new("systemd-sysusers").arg(sysusers)) {
            eprintln!("systemd-sysusers: {e:#}; the group mptcpd is created at the next boot");
        }
    }
    Ok(())
}

/// The file layout below `destdir`, relative to `prefix`.
#[derive(Debug)]
struct Layout {
    root: PathBuf,
    prefix: PathBuf,
}

impl Layout {
    /// `path` (absolute) below the staging root.
    fn staged(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    fn under_prefix(&self, relative: &str) -> PathBuf {
        self.prefix.join(relative)
    }
}

/// Copies the binaries found in `built` and writes the configuration and the unit. Returns
/// the staged paths written.
pub(crate) fn install(built: &Path, destdir: &Path, prefix: &Path) -> anyhow::Result<Vec<PathBuf>> {
    anyhow::ensure!(prefix.is_absolute(), "--prefix must be absolute");
    let layout = Layout {
        root: destdir.to_owned(),
        prefix: prefix.to_owned(),
    };
    let libexec = layout.under_prefix("libexec");
    let files: [(&str, PathBuf, u32); 4] = [
        ("mptcpd", libexec.join("mptcpd"), 0o755),
        ("mptcpctl", layout.under_prefix("bin/mptcpctl"), 0o755),
        ("mptcpize", layout.under_prefix("bin/mptcpize"), 0o755),
        (
            "libmptcpwrap.so",
            layout.under_prefix("lib/mptcpize/libmptcpwrap.so"),
            0o644,
        ),
    ];
    let mut written = Vec::new();
    for (name, target, mode) in files {
        let from = built.join(name);
        let to = layout.staged(&target);
        create_parent(&to)?;
        // Through a temporary name, so that a running binary is replaced, not overwritten.
        let temporary = to.with_extension("xtask-new");
        fs::copy(&from, &temporary)
            .with_context(|| format!("copying {} (build it first)", from.display()))?;
        fs::set_permissions(&temporary, fs::Permissions::from_mode(mode))?;
        fs::rename(&temporary, &to)?;
        written.push(to);
    }

    let config = layout.staged(Path::new("/etc/mptcpd/mptcpd.conf"));
    if config.exists() {
        eprintln!(
            "kept {} (the default is dist/mptcpd.conf)",
            config.display()
        );
    } else {
        write(&config, CONFIG, 0o644)?;
        written.push(config);
    }

    let unit = layout.staged(&layout.under_prefix("lib/systemd/system/mptcp.service"));
    write(&unit, &unit_text(&libexec), 0o644)?;
    written.push(unit);

    // Where the system bus reads packages' policies (dbus 1.9+), whatever the prefix.
    let policy = layout.staged(Path::new(
        "/usr/share/dbus-1/system.d/org.mptcpd.Mptcpd.conf",
    ));
    write(&policy, DBUS_POLICY, 0o644)?;
    written.push(policy);

    let sysusers = layout.staged(&layout.under_prefix("lib/sysusers.d/mptcpd.conf"));
    write(&sysusers, SYSUSERS, 0o644)?;
    written.push(sysusers);
    Ok(written)
}

/// `mptcp.service` for a daemon installed in `libexec` (the package's too).
pub(crate) fn unit_text(libexec: &Path) -> String {
    UNIT.replace("@LIBEXECDIR@", &libexec.display().to_string())
}

fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    create_parent(path)?;
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::PermissionsExt as _, path::Path, process::Command};

    use super::install;

    /// Stands in for `target/release`: scripts named as the binaries.
    fn fake_build(dir: &Path) {
        for name in ["mptcpd", "mptcpctl", "mptcpize", "libmptcpwrap.so"] {
            fs::write(dir.join(name), "#!/bin/sh\nexit 0\n").unwrap();
        }
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn installs_the_tree_below_destdir() {
        let built = tempfile::tempdir().unwrap();
        fake_build(built.path());
        let dest = tempfile::tempdir().unwrap();
        let written = install(built.path(), dest.path(), Path::new("/usr")).unwrap();
        let root = dest.path();
        for (path, expected) in [
            ("usr/libexec/mptcpd", 0o755),
            ("usr/bin/mptcpctl", 0o755),
            ("usr/bin/mptcpize", 0o755),
            ("usr/lib/mptcpize/libmptcpwrap.so", 0o644),
            ("etc/mptcpd/mptcpd.conf", 0o644),
            ("usr/lib/systemd/system/mptcp.service", 0o644),
            ("usr/share/dbus-1/system.d/org.mptcpd.Mptcpd.conf", 0o644),
            ("usr/lib/sysusers.d/mptcpd.conf", 0o644),
        ] {
            assert_eq!(mode(&root.join(path)), expected, "{path}");
        }
        assert_eq!(written.len(), 8);
        let unit = fs::read_to_string(root.join("usr/lib/systemd/system/mptcp.service")).unwrap();
        assert!(
            unit.contains("ExecStart=/usr/libexec/mptcpd --log=journal\n"),
            "{unit}"
        );
        assert!(!unit.contains("@LIBEXECDIR@"), "{unit}");
        // Root needs no ambient capabilities; the daemon drops CAP_BPF/CAP_PERFMON itself.
        assert!(!unit.contains("\nAmbientCapabilities="), "{unit}");
        // It would make /sys/fs/bpf read-only whatever ReadWritePaths= says: no pins.
        assert!(!unit.contains("\nProtectKernelTunables="), "{unit}");
        for line in [
            "Type=notify",
            "CapabilityBoundingSet=CAP_NET_ADMIN CAP_BPF CAP_PERFMON",
            "NoNewPrivileges=yes",
            "UMask=0077",
            "ProtectControlGroups=yes",
            "MemoryDenyWriteExecute=yes",
            "SystemCallFilter=@system-service bpf",
            "SystemCallErrorNumber=EPERM",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "RuntimeDirectory=mptcpd",
            "ReadOnlyPaths=/sys /proc/sys /proc/sysrq-trigger",
            "ReadWritePaths=/sys/fs/bpf",
            "ExecReload=/bin/kill -HUP $MAINPID",
            "Restart=on-failure",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line}");
        }

        // A second install keeps the administrator's configuration.
        let config = root.join("etc/mptcpd/mptcpd.conf");
        fs::write(&config, "[core]\nlog=null\n").unwrap();
        install(built.path(), dest.path(), Path::new("/usr")).unwrap();
        assert_eq!(fs::read_to_string(&config).unwrap(), "[core]\nlog=null\n");
    }

    #[test]
    fn the_unit_passes_systemd_analyze_verify() {
        let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
            mptcpd_test_skip::skip(
                "the_unit_passes_systemd_analyze_verify",
                "no systemd-analyze here (apt-get install systemd)",
            );
            return;
        };
        assert!(version.status.success());
        let built = tempfile::tempdir().unwrap();
        fake_build(built.path());
        let dest = tempfile::tempdir().unwrap();
        install(built.path(), dest.path(), Path::new("/usr")).unwrap();
        // ExecStart pointed at the staged binary, so that verify finds a real executable.
        let staged = dest.path().join("usr/lib/systemd/system/mptcp.service");
        let daemon = dest.path().join("usr/libexec/mptcpd");
        let text = fs::read_to_string(staged)
            .unwrap()
            .replace("/usr/libexec/mptcpd", &daemon.display().to_string());
        let unit = dest.path().join("mptcp.service");
        fs::write(&unit, text).unwrap();
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&unit)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            !stderr.contains("mptcp.service"),
            "systemd-analyze has remarks on the unit:\n{stderr}"
        );
    }
}
