//! Debian's C mptcpd (0.12 in Debian 12) as a peer to compare against: fetched with
//! `apt-get download` and unpacked with `dpkg-deb -x` into the download cache
//! ([`mptcpd_deb_cache`]), once per version, never installed (its package would create `/etc/mptcpd/mptcpd.conf`, which our daemon reads), and
//! run only inside test namespaces.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::bail;

use crate::{daemon::process::Daemon, debian::Unpacked, net::netns::NetNs};

/// The packages that make up the daemon, its plugins and the libraries Debian 12 lacks
/// (`apt-cache depends mptcpd mptcpd-plugins`).
const PACKAGES: &[&str] = &["mptcpd", "mptcpd-plugins", "libmptcpd3", "libell0"];

/// Overrides where the unpacked peer lives (default: a `c-mptcpd-*` entry of the cache).
const DIR_ENV: &str = "MPTCPD_C_PEER_DIR";

/// What the C `addr_adv` plugin logs from its init: the plugins are loaded and the network
/// monitor's events reach them from then on. The C daemon sends no `READY=1`.
pub const READY_LINE: &str = "MPTCP address advertiser path manager initialized";

/// What the C `sspi` plugin logs from its init (plugins initialise in turn: `addr_adv`'s line
/// alone does not say that `sspi` is ready).
pub const SSPI_READY_LINE: &str = "MPTCP single-subflow-per-interface path manager initialized";

/// The unpacked C daemon.
#[derive(Debug, Clone)]
pub struct CPeer {
    root: PathBuf,
    version: String,
}

impl CPeer {
    /// The peer, fetched and unpacked first if the cache has none of this version yet.
    pub fn get() -> anyhow::Result<Self> {
        let (root, version) = Unpacked {
            name: "c-mptcpd",
            dir_env: DIR_ENV,
            packages: PACKAGES,
            marker: "usr/libexec/mptcpd",
        }
        .get()?;
        Ok(Self { root, version })
    }

    /// The Debian package version (`0.12-1`).
    #[must_use]
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Where the packages are unpacked (`etc/`, `lib/`, `usr/` below it).
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The package's default configuration file (`/etc/mptcpd/mptcpd.conf`).
    #[must_use]
    pub fn config_file(&self) -> PathBuf {
        self.root.join("etc/mptcpd/mptcpd.conf")
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
        self.command_for(netns, "addr_adv", addr_flags, notify_flags)
    }

    /// [`Self::command`] with another default plugin (`sspi`; both plugins are loaded, as the
    /// C daemon loads every plugin of its directory).
    pub fn command_for(
        &self,
        netns: &NetNs,
        path_manager: &str,
        addr_flags: Option<&str>,
        notify_flags: Option<&str>,
    ) -> anyhow::Result<Command> {
        let lib = self.lib_dir()?;
        let mut cmd = netns.command(self.binary())?;
        cmd.env("LD_LIBRARY_PATH", &lib)
            .arg(format!("--plugin-dir={}", lib.join("mptcpd").display()))
            .arg(format!("--path-manager={path_manager}"))
            .args(["-l", "stderr"]);
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

    /// What an installation of the daemon holds: the binary, its libraries (`libmptcpd`,
    /// `libell`) and its plugins; symbolic links left out.
    pub fn installed_files(&self) -> anyhow::Result<Vec<PathBuf>> {
        let lib = self.lib_dir()?;
        let mut files = vec![self.binary()];
        for dir in [lib.join("mptcpd"), lib] {
            for entry in fs::read_dir(&dir)? {
                let entry = entry?;
                let name = entry.file_name();
                if entry.file_type()?.is_file() && name.to_string_lossy().contains(".so") {
                    files.push(entry.path());
                }
            }
        }
        files.sort();
        Ok(files)
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
