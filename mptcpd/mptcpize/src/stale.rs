//! Enabling a cgroup without filling the map with stale ids: before each insert, the ids of
//! removed cgroups are forgotten, and so are the `mptcpize run` cgroups whose `mptcpize` is gone
//! (a `SIGKILL` gives it no time to clean up) once nothing runs in them.

use std::{fs, path::Path};

use mptcpd_bpf::{Upgrade, cgroup};

use super::MptcpizeError;

/// Name prefix of the cgroups `mptcpize run` makes.
pub(super) const RUN_PREFIX: &str = "mptcpize-run-";

/// Enables cgroup `id` after forgetting stale ids; `false` if it already was enabled.
pub(super) fn enable(upgrade: &mut Upgrade, id: u64) -> Result<bool, MptcpizeError> {
    forget_stale(upgrade)?;
    Ok(upgrade.enable(id)?)
}

/// The name of this process's `run` cgroup: its pid and start time, so that a later `mptcpize`
/// can tell whether the process that made it still runs (pids are reused, start times are not).
pub(super) fn run_cgroup_name() -> String {
    let pid = std::process::id();
    let start = fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| start_time(&stat));
    match start {
        Some(start) => format!("{RUN_PREFIX}{pid}-{start}"),
        None => format!("{RUN_PREFIX}{pid}"),
    }
}

/// Forgets the ids (enabled or opted out) of cgroups that no longer exist (a unit's cgroup is
/// new at each start, and ids are never reused), after removing empty `run` cgroups whose `mptcpize` is gone. The keys
/// are read before the tree, so a cgroup enabled meanwhile by another process is never taken for
/// a removed one.
fn forget_stale(upgrade: &mut Upgrade) -> Result<(), MptcpizeError> {
    let known = upgrade.entries()?;
    let Ok(root) = cgroup::cgroup2_root() else {
        return Ok(());
    };
    let mut live = cgroup::paths_by_id(&root);
    live.retain(|_, relative| {
        let name = relative.rsplit('/').next().unwrap_or_default();
        // rmdir fails (EBUSY) while processes the command left behind run there.
        !(is_orphaned_run_cgroup(name, owner_start_time)
            && fs::remove_dir(root.join(relative.trim_start_matches('/'))).is_ok())
    });
    for id in known.keys().filter(|id| !live.contains_key(id)) {
        upgrade.disable(*id)?;
    }
    Ok(())
}

fn owner_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?;
    start_time(&stat)
}

/// Whether `name` is a `run` cgroup whose `mptcpize` no longer runs: `start_time_of(pid)` is the
/// start time of the process with that pid now, `None` if there is none. A name without a start
/// time (older versions) is orphaned when its pid is gone.
fn is_orphaned_run_cgroup(name: &str, start_time_of: impl Fn(u32) -> Option<u64>) -> bool {
    let Some(owner) = name.strip_prefix(RUN_PREFIX) else {
        return false;
    };
    let (pid, start) = match owner.split_once('-') {
        Some((pid, start)) => (pid, start.parse::<u64>().ok()),
        None => (owner, None),
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    match (start_time_of(pid), start) {
        (None, _) => true,
        (Some(now), Some(then)) => now != then,
        (Some(_), None) => false,
    }
}

/// Field 22 (`starttime`) of a `/proc/PID/stat` line; the command name before it may hold
/// spaces and parentheses, so fields are counted after its last `)`.
fn start_time(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{is_orphaned_run_cgroup, start_time};

    #[test]
    fn reads_the_start_time_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    12345 67 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(start_time(stat), Some(987_654));
        assert_eq!(start_time("4242 (short) S 1"), None);
    }

    #[test]
    fn a_run_cgroup_is_orphaned_when_its_process_is_gone_or_is_another_one() {
        let running = |pid| (pid == 7).then_some(100);
        assert!(!is_orphaned_run_cgroup("mptcpize-run-7-100", running));
        // The pid was reused by a process started later.
        assert!(is_orphaned_run_cgroup("mptcpize-run-7-99", running));
        assert!(is_orphaned_run_cgroup("mptcpize-run-8-100", running));
        // Names of older versions carry the pid only.
        assert!(!is_orphaned_run_cgroup("mptcpize-run-7", running));
        assert!(is_orphaned_run_cgroup("mptcpize-run-8", running));
        // Not ours.
        assert!(!is_orphaned_run_cgroup("mptcpize-run-x", running));
        assert!(!is_orphaned_run_cgroup("system.slice", running));
    }
}
