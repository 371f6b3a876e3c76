//! The lab's `--external-pm` mode: the client's namespace under the userspace path manager,
//! a private system-like bus for mptcpd (`mesh` its default plugin), and the external path
//! manager example (`plugins/examples/external_pm.py`) registered on it, which opens the
//! join over path B.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::mpsc::Receiver,
    time::Instant,
};

use anyhow::{Context as _, bail};

use super::ChildGuard;
use crate::{
    dbus::SystemLikeBus,
    interrupt,
    net::{netns::NetNs, sysctl},
};

/// Debian's Python, which python3-dbus-next installs into.
const PYTHON: &str = "/usr/bin/python3";

/// The example in the source tree.
fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/examples/external_pm.py")
}

/// The userspace path manager in `client`, and the bus; refused in one line without
/// `dbus-daemon` or python3-dbus-next.
pub(super) fn prepare(client: &NetNs) -> anyhow::Result<SystemLikeBus> {
    let python = Command::new(PYTHON)
        .args(["-c", "import dbus_next"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !python {
        bail!("--external-pm needs Debian's python3-dbus-next (cargo xtask setup installs it)");
    }
    sysctl::set_in(client, "net.mptcp.pm_type", "1")?;
    SystemLikeBus::start()?
        .context("--external-pm needs dbus-daemon (cargo xtask setup installs it)")
}

/// Starts the example in `client` on `bus` and waits until it registered.
pub(super) fn start(
    client: &NetNs,
    bus: &SystemLikeBus,
) -> anyhow::Result<(ChildGuard, Receiver<String>)> {
    let mut cmd = client.command(PYTHON)?;
    cmd.arg(example())
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus.address());
    let mut example = ChildGuard::spawn(cmd)?;
    let lines = example.lines()?;
    let deadline = Instant::now() + crate::daemon::process::LIVENESS;
    loop {
        interrupt::check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .context("the external path manager example did not register")?;
        println!("lab: external_pm.py: {line}");
        if line.starts_with("registered as") {
            return Ok((example, lines));
        }
    }
}
