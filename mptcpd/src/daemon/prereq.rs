//! What the daemon cannot work without, checked before anything starts so that the refusal is
//! one line naming the cause: MPTCP enabled in this network namespace, and `CAP_NET_ADMIN`.

use std::{fs, io};

use super::DaemonError;

/// `net.mptcp.enabled` as seen from the daemon's network namespace.
const ENABLED: &str = "/proc/sys/net/mptcp/enabled";
/// `CAP_NET_ADMIN` from linux/capability.h: needed to change endpoints and limits.
const CAP_NET_ADMIN: u32 = 12;

/// Refuses to start without MPTCP or without `CAP_NET_ADMIN`.
pub(super) fn check() -> Result<(), DaemonError> {
    mptcp_enabled(fs::read_to_string(ENABLED))?;
    let status = fs::read_to_string("/proc/self/status").map_err(DaemonError::Prerequisite)?;
    match effective_has(&status, CAP_NET_ADMIN) {
        Some(true) => Ok(()),
        Some(false) => Err(DaemonError::NoNetAdmin),
        None => Err(DaemonError::Prerequisite(io::Error::new(
            io::ErrorKind::InvalidData,
            "no CapEff line in /proc/self/status",
        ))),
    }
}

/// The sysctl's value, or why there is none.
fn mptcp_enabled(value: io::Result<String>) -> Result<(), DaemonError> {
    match value {
        Ok(v) if v.trim() == "0" => Err(DaemonError::MptcpDisabled),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DaemonError::MptcpAbsent),
        Err(e) => Err(DaemonError::Prerequisite(e)),
    }
}

/// Whether capability `cap` is in the effective set of a `/proc/PID/status` text.
fn effective_has(status: &str, cap: u32) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?
        .trim();
    let set = u64::from_str_radix(hex, 16).ok()?;
    Some(set & (1 << cap) != 0)
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::{CAP_NET_ADMIN, effective_has, mptcp_enabled};
    use crate::daemon::DaemonError;

    #[test]
    fn the_sysctl_decides() {
        mptcp_enabled(Ok("1\n".to_owned())).unwrap();
        assert!(matches!(
            mptcp_enabled(Ok("0\n".to_owned())),
            Err(DaemonError::MptcpDisabled)
        ));
        assert!(matches!(
            mptcp_enabled(Err(io::ErrorKind::NotFound.into())),
            Err(DaemonError::MptcpAbsent)
        ));
        let disabled = DaemonError::MptcpDisabled.to_string();
        assert!(disabled.contains("net.mptcp.enabled"), "{disabled}");
        assert_eq!(disabled.lines().count(), 1);
    }

    #[test]
    fn cap_net_admin_is_read_from_the_effective_set() {
        let root = "Name:\tmptcpd\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_has(root, CAP_NET_ADMIN), Some(true));
        // Everything but bit 12.
        let without = "CapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffefff\n";
        assert_eq!(effective_has(without, CAP_NET_ADMIN), Some(false));
        assert_eq!(
            effective_has("CapEff:\t0000000000001000\n", CAP_NET_ADMIN),
            Some(true)
        );
        assert_eq!(effective_has("Name:\tx\n", CAP_NET_ADMIN), None);
    }
}
