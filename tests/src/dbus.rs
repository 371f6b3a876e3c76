//! A private `dbus-daemon` configured like the system bus (Debian's `system.conf` default
//! policy) with mptcpd's policy file (`dist/dbus/org.mptcpd.Mptcpd.conf`) included, for the
//! D-Bus tests. Stopped on drop.

use std::{
    io::{BufRead as _, BufReader},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use anyhow::Context as _;

/// The bus daemon Debian's `dbus-daemon` package installs.
pub const DBUS_DAEMON: &str = "/usr/bin/dbus-daemon";

/// The default policy of Debian's system bus: nobody owns names or calls methods unless a
/// package's policy says so.
const SYSTEM_POLICY: &str = r#"
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
"#;

/// mptcpd's policy file in the source tree.
#[must_use]
pub fn policy_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/dbus/org.mptcpd.Mptcpd.conf")
}

/// A running private bus.
#[derive(Debug)]
pub struct SystemLikeBus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl SystemLikeBus {
    /// Starts the bus and waits until it listens (it prints its address then). `None` when
    /// `dbus-daemon` is not installed (`cargo xtask setup` installs it).
    pub fn start() -> anyhow::Result<Option<Self>> {
        Self::start_with("")
    }

    /// With `extra` policy rules (`<policy>` elements) after ours: a looser policy, to show
    /// that the daemon checks its callers itself.
    pub fn start_with(extra: &str) -> anyhow::Result<Option<Self>> {
        if !Path::new(DBUS_DAEMON).exists() {
            return Ok(None);
        }
        let dir = tempfile::Builder::new().prefix("mptcpd-dbus-").tempdir()?;
        // Readable by others: the unprivileged-reader check connects as another user.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
        let config = dir.path().join("system.conf");
        let policy = policy_file()
            .canonicalize()
            .context("dist/dbus policy file")?;
        let address = format!("unix:path={}", dir.path().join("bus.sock").display());
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration \
                 1.0//EN\" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig>\n  <type>system</type>\n  <listen>{address}</listen>\n  \
                 <auth>EXTERNAL</auth>\n{SYSTEM_POLICY}\n  <include>{}</include>\n{extra}\n\
                 </busconfig>\n",
                policy.display()
            ),
        )?;
        let mut child = Command::new(DBUS_DAEMON)
            .arg(format!("--config-file={}", config.display()))
            .arg(format!("--address={address}"))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {DBUS_DAEMON}"))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut line)?;
        }
        if line.trim().is_empty() {
            let _killed = child.kill();
            let _reaped = child.wait();
            anyhow::bail!("{DBUS_DAEMON} exited without printing its address");
        }
        Ok(Some(Self {
            child,
            address,
            _dir: dir,
        }))
    }

    /// The bus for `test` (with `extra` policy rules, as [`Self::start_with`]), or `None`
    /// after a skip line: not root, or no `dbus-daemon`.
    pub fn for_test(test: &str, extra: &str) -> anyhow::Result<Option<Self>> {
        if !crate::skip::require_root(test) {
            return Ok(None);
        }
        let bus = Self::start_with(extra)?;
        if bus.is_none() {
            crate::skip::skip(test, "no dbus-daemon here (cargo xtask setup installs it)");
        }
        Ok(bus)
    }

    /// The address to put in `DBUS_SYSTEM_BUS_ADDRESS`.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }
}

impl Drop for SystemLikeBus {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

/// A client of the bus at `address`.
///
/// # Panics
/// If the bus cannot be reached (a test helper: the test fails).
pub async fn client(address: &str) -> zbus::Connection {
    zbus::connection::Builder::address(address)
        .expect("a bus address")
        .build()
        .await
        .expect("connect to the bus")
}

/// Our daemon in `ns` on the bus at `address`, logging to stderr at debug, loopback skipped
/// (it adds no endpoints); the caller adds its pin directory and the rest.
pub fn daemon_command(ns: &crate::net::netns::NetNs, address: &str) -> anyhow::Result<Command> {
    let mut cmd = ns.command(crate::bins::path("mptcpd")?)?;
    cmd.args([
        "--log",
        "stderr",
        "--debug",
        "--notify-flags",
        "skip_loopback",
    ])
    .env("DBUS_SYSTEM_BUS_ADDRESS", address);
    Ok(cmd)
}

/// `mptcpctl ARGS` run in `ns`, with the system bus at `address`.
///
/// # Panics
/// If it cannot be started (a test helper: the test fails).
#[must_use]
pub fn mptcpctl(
    ns: &crate::net::netns::NetNs,
    address: &str,
    args: &[&str],
) -> std::process::Output {
    let mut cmd = ns
        .command(crate::bins::path("mptcpctl").expect("mptcpctl built"))
        .expect("a command in the namespace");
    cmd.args(args).env("DBUS_SYSTEM_BUS_ADDRESS", address);
    cmd.output().expect("run mptcpctl")
}
