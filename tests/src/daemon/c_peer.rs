//! Debian's C mptcpd (0.12 in Debian 12) as a peer to compare against: fetched with
//! `apt-get download` and unpacked with `dpkg -x` under the target directory, once, never
//! installed (its package would create `/etc/mptcpd/mptcpd.conf`, which our daemon reads), and
//! run only inside test namespaces.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::{
    daemon::process::Daemon,
    net::{ip, netns::NetNs},
};

/// The packages that make up the daemon, its plugins and the libraries Debian 12 lacks
/// (`apt-cache depends mptcpd mptcpd-plugins`).
const PACKAGES: &[&str] = &["mptcpd", "mptcpd-plugins", "libmptcpd3", "libell0"];

/// Overrides where the unpacked peer lives (default: `TARGET/c-mptcpd`).
const DIR_ENV: &str = "MPTCPD_C_PEER_DIR";

/// What the C `addr_adv` plugin logs from its init: the plugins are loaded and the network
/// monitor's events reach them from then on. The C daemon sends no `READY=1`.
pub const READY_LINE: &str = "MPTCP address advertiser path manager initialized";

/// The unpacked C daemon.
#[derive(Debug, Clone)]
pub struct CPeer {
    root: PathBuf,
    version: String,
}

impl CPeer {
    /// The peer, fetched and unpacked first if this target directory has none yet.
    pub fn get() -> anyhow::Result<Self> {
        let dir = std::env::var_os(DIR_ENV).map_or_else(default_dir, |d| Ok(PathBuf::from(d)))?;
        let root = dir.join("root");
        if !root.join("usr/libexec/mptcpd").is_file() {
            fetch(&dir)?;
        }
        let version = fs::read_to_string(dir.join("VERSION"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        Ok(Self { root, version })
    }

    /// The Debian package version (`0.12-1`).
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The daemon binary.
    #[must_use]
    pub fn binary(&self) -> PathBuf {
        self.root.join("usr/libexec/mptcpd")
    }

    /// `mptcpd` run in `netns` with the `addr_adv` path manager, logging to stderr, with these
    /// flags (`None`: the option is left out, as an empty list is a usage error there).
    pub fn command(
        &self,
        netns: &NetNs,
        addr_flags: Option<&str>,
        notify_flags: Option<&str>,
    ) -> anyhow::Result<Command> {
        let lib = self.lib_dir()?;
        let mut cmd = netns.command(self.binary())?;
        cmd.env("LD_LIBRARY_PATH", &lib)
            .arg(format!("--plugin-dir={}", lib.join("mptcpd").display()))
            .args(["--path-manager=addr_adv", "-l", "stderr"]);
        if let Some(flags) = addr_flags {
            cmd.arg(format!("--addr-flags={flags}"));
        }
        if let Some(flags) = notify_flags {
            cmd.arg(format!("--notify-flags={flags}"));
        }
        Ok(cmd)
    }

    /// Starts [`Self::command`] and waits for [`READY_LINE`].
    pub fn start(
        &self,
        netns: &NetNs,
        addr_flags: Option<&str>,
        notify_flags: Option<&str>,
    ) -> anyhow::Result<Daemon> {
        Daemon::start_logged(self.command(netns, addr_flags, notify_flags)?, READY_LINE)
    }

    /// The multiarch library directory (`usr/lib/x86_64-linux-gnu`), which holds the
    /// libraries and the `mptcpd` plugin directory.
    fn lib_dir(&self) -> anyhow::Result<PathBuf> {
        let usr_lib = self.root.join("usr/lib");
        for entry in fs::read_dir(&usr_lib)? {
            let path = entry?.path();
            if path.join("mptcpd").join("addr_adv.so").is_file() {
                return Ok(path);
            }
        }
        bail!("no mptcpd/addr_adv.so under {}", usr_lib.display())
    }
}

/// `TARGET/c-mptcpd`, TARGET being the directory above the running binary's profile directory.
fn default_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.pop();
    Ok(dir.join("c-mptcpd"))
}

/// Downloads and unpacks the packages into `dir` (built aside, then renamed into place, so
/// that concurrent runs never see half of it).
fn fetch(dir: &Path) -> anyhow::Result<()> {
    let parent = dir.parent().context("peer directory has no parent")?;
    fs::create_dir_all(parent)?;
    let staging = tempfile::Builder::new()
        .prefix("c-mptcpd-fetch-")
        .tempdir_in(parent)?;
    eprintln!(
        "harness: fetching the C mptcpd peer ({}) into {}",
        PACKAGES.join(" "),
        dir.display()
    );
    let download = |staging: &Path| {
        Command::new("apt-get")
            .arg("download")
            .args(PACKAGES)
            .current_dir(staging)
            .output()
    };
    let mut out = download(staging.path()).context("running apt-get download")?;
    if !out.status.success() {
        // A fresh machine may have no package lists yet.
        ip::run("apt-get", &["update", "-q"])?;
        out = download(staging.path()).context("running apt-get download")?;
    }
    if !out.status.success() {
        bail!(
            "apt-get download {}: {}",
            PACKAGES.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let root = staging.path().join("root");
    let mut version = String::new();
    for entry in fs::read_dir(staging.path())? {
        let path = entry?.path();
        if path.extension().is_none_or(|e| e != "deb") {
            continue;
        }
        let (Some(deb), Some(target)) = (path.to_str(), root.to_str()) else {
            bail!("non-UTF-8 path under {}", staging.path().display());
        };
        ip::run("dpkg", &["-x", deb, target])?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(rest) = name.strip_prefix("mptcpd_") {
            rest.split('_')
                .next()
                .unwrap_or_default()
                .clone_into(&mut version);
        }
    }
    fs::write(staging.path().join("VERSION"), format!("{version}\n"))?;
    let staged = staging.keep();
    if let Err(e) = fs::rename(&staged, dir) {
        let _removed = fs::remove_dir_all(&staged);
        // Another run may have put it in place meanwhile.
        if !dir.join("root/usr/libexec/mptcpd").is_file() {
            return Err(e).context(format!("moving the peer to {}", dir.display()));
        }
    }
    Ok(())
}
