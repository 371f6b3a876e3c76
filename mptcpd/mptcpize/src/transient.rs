//! The cgroup `mptcpize run` makes for its command: below the caller's own cgroup, so that the
//! command stays in the caller's unit, under its limits and systemd's tracking (`mptcpize`
//! itself stays where it is); enabled for the upgrade while the command runs.

use mptcpd_common::Chain;
use std::{
    fs::{self, OpenOptions},
    io,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
};

use mptcpd_bpf::{Upgrade, cgroup};

use super::{MptcpizeError, stale};

/// What to do when the caller's cgroup cannot take a child cgroup.
const DELEGATE_HINT: &str = "run mptcpize in a service or scope with Delegate=yes, e.g. \
                             `systemd-run --scope -p Delegate=yes mptcpize run CMD`";

/// Why `parent` (the caller's cgroup, `is_root` if it is the hierarchy's root) cannot hold the
/// command's cgroup, given its `cgroup.subtree_control`; `None` if it can. A cgroup with
/// processes (the caller) cannot enable controllers for children (the "no internal processes"
/// rule), so a child would escape the limits those controllers set; the root is exempt.
pub(super) fn unfit_parent(is_root: bool, subtree_control: &str) -> Option<String> {
    let controllers = subtree_control.split_ascii_whitespace().collect::<Vec<_>>();
    (!is_root && !controllers.is_empty()).then(|| {
        format!(
            "it enables controllers for its children ({}), so it may not hold both this \
             process and the command's cgroup",
            controllers.join(" ")
        )
    })
}

/// A cgroup made for one run, enabled for the upgrade; disabled and removed on drop.
pub(super) struct Transient<'u> {
    pub(super) dir: PathBuf,
    id: u64,
    pub(super) procs: OwnedFd,
    upgrade: &'u mut Upgrade,
}

impl<'u> Transient<'u> {
    /// Makes and enables `CALLER/mptcpize-run-PID-START`.
    pub(super) fn create(upgrade: &'u mut Upgrade) -> Result<Self, MptcpizeError> {
        let caller = cgroup::current_cgroup().map_err(|e| cg_err(Path::new("self"), e))?;
        let root = cgroup::cgroup2_root().map_err(|e| cg_err(Path::new("cgroup2"), e))?;
        let control = fs::read_to_string(caller.join("cgroup.subtree_control"))
            .map_err(|e| cg_err(&caller, e))?;
        if let Some(why) = unfit_parent(caller == root, &control) {
            return Err(unfit(&caller, why));
        }
        let dir = caller.join(stale::run_cgroup_name());
        fs::create_dir(&dir).map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => {
                unfit(&caller, format!("it is not writable here ({e})"))
            }
            _ => cg_err(&dir, e),
        })?;
        let opened = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .and_then(|procs| Ok((cgroup::cgroup_id(&dir)?, procs)));
        let (id, procs) = match opened {
            Ok(found) => found,
            Err(e) => {
                let _removed = fs::remove_dir(&dir);
                return Err(cg_err(&dir, e));
            }
        };
        if let Err(e) = stale::enable(upgrade, id) {
            let _removed = fs::remove_dir(&dir);
            return Err(e);
        }
        Ok(Self {
            dir,
            id,
            procs: procs.into(),
            upgrade,
        })
    }
}

impl Drop for Transient<'_> {
    /// Disables and removes the cgroup, unless processes the command left behind still run
    /// there: they keep MPTCP, and the cgroup stays enabled (a later `enable` or `run` forgets
    /// it once they are gone).
    fn drop(&mut self) {
        match fs::remove_dir(&self.dir) {
            Ok(()) => {
                if let Err(e) = self.upgrade.disable(self.id) {
                    eprintln!("mptcpize: disabling cgroup id {}: {}", self.id, Chain(&e));
                }
            }
            Err(e) => eprintln!(
                "mptcpize: leaving {} enabled: {e} (processes started by the command still run \
                 there)",
                self.dir.display()
            ),
        }
    }
}

fn unfit(caller: &Path, why: String) -> MptcpizeError {
    MptcpizeError::RunCgroup {
        parent: caller.to_owned(),
        why,
        hint: DELEGATE_HINT,
    }
}

fn cg_err(path: &Path, source: io::Error) -> MptcpizeError {
    MptcpizeError::Cgroup {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{unfit, unfit_parent};

    #[test]
    fn an_unfit_parent_is_one_line_that_says_what_to_do() {
        let why = unfit_parent(false, "memory\n").unwrap();
        let line = unfit(Path::new("/sys/fs/cgroup/user.slice"), why).to_string();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("cannot run the command in a cgroup below /sys/fs/cgroup/user.slice: it enables controllers for its children (memory)"), "{line}");
        assert!(
            line.contains("systemd-run --scope -p Delegate=yes mptcpize run CMD"),
            "{line}"
        );
    }

    #[test]
    fn a_cgroup_with_controllers_for_children_cannot_hold_the_command() {
        assert_eq!(unfit_parent(false, ""), None);
        assert_eq!(unfit_parent(false, "\n"), None);
        let why = unfit_parent(false, "cpu memory pids\n").unwrap();
        assert!(why.contains("(cpu memory pids)"), "{why}");
        // The root has no "no internal processes" rule.
        assert_eq!(unfit_parent(true, "cpu memory pids\n"), None);
    }
}
