//! The TCP-to-MPTCP upgrade (`fmod_ret/update_socket_protocol`) against the real kernel, through
//! the library. The host kernel refuses BPF trampolines: the `vm_` tests run in the VM (6.12 has
//! the hook; 6.1 lacks it and reports so).

use std::path::PathBuf;

use mptcpd::ebpf::{Upgrade, chain};
use mptcpd_tests::{cgroup::TestCgroup, features, mptcp, skip};

/// A pin directory of this test's own, removed (with the upgrade) on drop.
struct Pins(PathBuf);

impl Pins {
    fn new(test: &str) -> Self {
        Self(PathBuf::from(format!(
            "/sys/fs/bpf/mptcpd-test-{}-{test}",
            std::process::id()
        )))
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _removed = Upgrade::uninstall(&self.0);
        let _removed = std::fs::remove_dir(&self.0);
    }
}

/// Installs the upgrade, or reports the missing feature (fails where the runner expects it).
fn install(test: &str, pins: &Pins) -> Option<Upgrade> {
    match Upgrade::install(&pins.0) {
        Ok((upgrade, _)) => Some(upgrade),
        Err(e) => {
            features::missing("fmod_ret", test, &chain(&e));
            None
        }
    }
}

#[test]
fn probing_the_upgrade_names_what_is_missing() {
    if !skip::require_root("probing_the_upgrade_names_what_is_missing") {
        return;
    }
    match Upgrade::probe() {
        Ok(()) => eprintln!("fmod_ret upgrade: available"),
        Err(e) => {
            let reason = chain(&e);
            assert_ne!(reason.trim(), "");
            assert!(!reason.contains('\n'), "one line: {reason}");
            // Not a skip: the host kernel refuses trampolines, and saying so is what is tested.
            assert!(
                !features::expected("fmod_ret"),
                "fmod_ret expected here, but: {reason}"
            );
            eprintln!("fmod_ret upgrade: not available: {reason}");
        }
    }
}

#[test]
fn vm_static_binary_gets_mptcp_only_in_an_enabled_cgroup() {
    const TEST: &str = "vm_static_binary_gets_mptcp_only_in_an_enabled_cgroup";
    if !skip::require_root(TEST) {
        return;
    }
    let pins = Pins::new("static");
    let Some(mut upgrade) = install(TEST, &pins) else {
        return;
    };
    let enabled = TestCgroup::new("mptcpd-t-up-on").unwrap();
    let other = TestCgroup::new("mptcpd-t-up-off").unwrap();
    assert!(upgrade.enable(enabled.id().unwrap()).unwrap());
    assert!(!upgrade.enable(enabled.id().unwrap()).unwrap(), "already");

    assert_eq!(
        mptcp::new_process_socket(&enabled, None, "tcp").unwrap(),
        262
    );
    assert_eq!(mptcp::new_process_socket(&other, None, "tcp").unwrap(), 6);
    assert_eq!(
        mptcp::new_process_socket(&enabled, None, "tcp").unwrap(),
        262
    );
    let counts = upgrade.cgroups().unwrap();
    assert_eq!(counts.get(&enabled.id().unwrap()), Some(&2), "{counts:?}");
    assert_eq!(counts.get(&other.id().unwrap()), None, "{counts:?}");
}

#[test]
fn vm_an_enabled_parent_covers_its_children_until_disabled() {
    const TEST: &str = "vm_an_enabled_parent_covers_its_children_until_disabled";
    if !skip::require_root(TEST) {
        return;
    }
    let pins = Pins::new("parent");
    let Some(mut upgrade) = install(TEST, &pins) else {
        return;
    };
    let parent = TestCgroup::new("mptcpd-t-up-parent").unwrap();
    let child = parent.child("child").unwrap();
    let grandchild = child.child("grandchild").unwrap();
    assert!(upgrade.enable(parent.id().unwrap()).unwrap());

    assert_eq!(
        mptcp::new_process_socket(&grandchild, None, "tcp").unwrap(),
        262
    );
    assert_eq!(mptcp::new_process_socket(&child, None, "tcp").unwrap(), 262);
    // Counted for the enabled cgroup that covered them.
    assert_eq!(
        upgrade.cgroups().unwrap().get(&parent.id().unwrap()),
        Some(&2)
    );

    assert!(upgrade.disable(parent.id().unwrap()).unwrap());
    assert!(
        !upgrade.disable(parent.id().unwrap()).unwrap(),
        "already off"
    );
    assert_eq!(
        mptcp::new_process_socket(&grandchild, None, "tcp").unwrap(),
        6
    );
    assert_eq!(mptcp::new_process_socket(&parent, None, "tcp").unwrap(), 6);
}

#[test]
fn vm_the_pinned_upgrade_outlives_its_handle() {
    const TEST: &str = "vm_the_pinned_upgrade_outlives_its_handle";
    if !skip::require_root(TEST) {
        return;
    }
    let pins = Pins::new("pinned");
    let Some(mut upgrade) = install(TEST, &pins) else {
        return;
    };
    let cgroup = TestCgroup::new("mptcpd-t-up-pin").unwrap();
    upgrade.enable(cgroup.id().unwrap()).unwrap();
    drop(upgrade);

    // Nothing of this process holds the program now: only the pins do.
    assert_eq!(
        mptcp::new_process_socket(&cgroup, None, "tcp").unwrap(),
        262
    );
    let reopened = Upgrade::open(&pins.0).unwrap().expect("still installed");
    assert_eq!(
        reopened.cgroups().unwrap().get(&cgroup.id().unwrap()),
        Some(&1)
    );
    drop(reopened);

    assert!(Upgrade::uninstall(&pins.0).unwrap());
    assert_eq!(
        mptcp::new_process_socket(&cgroup, None, "tcp").unwrap(),
        6,
        "detached with its pins"
    );
}
