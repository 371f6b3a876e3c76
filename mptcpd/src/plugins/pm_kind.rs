//! Which path manager the kernel gives new connections of the daemon's network namespace,
//! read from its sysctls (`/proc/sys/net` is the reading thread's namespace).

use std::fs;

use mptcpd_plugin::PmKind;

/// `net.mptcp.path_manager` (6.15+).
const PATH_MANAGER: &str = "/proc/sys/net/mptcp/path_manager";
/// `net.mptcp.pm_type` (5.19+).
const PM_TYPE: &str = "/proc/sys/net/mptcp/pm_type";

/// The sysctls as they are now (an absent one is an older kernel: see
/// [`PmKind::from_sysctls`]).
pub(super) fn read() -> PmKind {
    let path_manager = fs::read_to_string(PATH_MANAGER).ok();
    let pm_type = fs::read_to_string(PM_TYPE).ok();
    PmKind::from_sysctls(path_manager.as_deref(), pm_type.as_deref())
}
