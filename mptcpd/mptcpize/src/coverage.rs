//! What decides whether a cgroup's sockets are upgraded, as far as user space can tell: the
//! deepest cgroup with an entry among it and its ancestors (the program's rule), and whether
//! MPTCP is on in the caller's network namespace (the program's allow-list: see
//! docs/architecture.md).

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use mptcpd_common::upgrade::{CgroupEntry, MODE_ENABLED};

use mptcpd_bpf::cgroup;

/// `net.mptcp.enabled` of the caller's network namespace.
const MPTCP_ENABLED: &str = "/proc/sys/net/mptcp/enabled";

/// Why MPTCP sockets would fail here, if they would: `net.mptcp.enabled` is 0 (or the kernel
/// has no MPTCP). Such a namespace is kept off the upgrade's allow-list: its sockets stay TCP.
#[must_use]
pub(super) fn mptcp_off() -> Option<String> {
    match fs::read_to_string(MPTCP_ENABLED) {
        Ok(value) if value.trim() == "0" => Some(
            "net.mptcp.enabled is 0 in this network namespace: it is not on the upgrade's \
             allow-list, so enabled cgroups keep TCP here (sysctl -w net.mptcp.enabled=1, \
             then mptcpize netns allow)"
                .to_owned(),
        ),
        Ok(_) => None,
        Err(e) => Some(format!(
            "{MPTCP_ENABLED}: {e}: no MPTCP in this kernel or namespace: enabled cgroups keep \
             TCP here"
        )),
    }
}

/// Prints the warning of [`mptcp_off`], if any.
pub(super) fn warn_if_mptcp_off() {
    if let Some(why) = mptcp_off() {
        eprintln!("mptcpize: warning: {why}");
    }
}

/// The cgroup directories from `dir`'s parent up to the cgroup2 root, nearest first.
fn ancestors(dir: &Path) -> Vec<PathBuf> {
    let Ok(root) = cgroup::cgroup2_root() else {
        return Vec::new();
    };
    dir.ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(&root))
        .map(Path::to_path_buf)
        .collect()
}

/// The nearest ancestor of `dir` with an entry, if it is enabled: `dir` is then upgraded
/// unless it has an entry of its own.
#[must_use]
pub(super) fn enabled_ancestor(
    dir: &Path,
    entries: &BTreeMap<u64, CgroupEntry>,
) -> Option<PathBuf> {
    for ancestor in ancestors(dir) {
        let Ok(id) = cgroup::cgroup_id(&ancestor) else {
            continue;
        };
        if let Some(entry) = entries.get(&id) {
            return (entry.mode == MODE_ENABLED).then_some(ancestor);
        }
    }
    None
}

/// Whether `dir` is the cgroup2 root (every process of the host).
#[must_use]
pub(super) fn is_root(dir: &Path) -> bool {
    cgroup::cgroup2_root().is_ok_and(|root| root == dir)
}
