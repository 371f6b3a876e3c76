//! `mptcpize` on kernels that run the eBPF upgrade (the VM's 6.12): a static binary gets MPTCP
//! by `run` and inside an enabled cgroup, the enabled state outlives the tool, and `disable`
//! stops it. On kernels without the hook (6.1), the fallback is named in one line.

use mptcpd::ebpf::Upgrade;
use mptcpd_tests::{
    bins, cgroup::TestCgroup, features, mptcp, mptcpize::PinDir, mptcpize::printed_protocol, skip,
};

/// `true` where the upgrade runs; otherwise reports the missing feature.
fn upgrade_available(test: &str) -> bool {
    match Upgrade::probe() {
        Ok(()) => true,
        Err(e) => {
            features::missing("fmod_ret", test, &mptcpd::ebpf::chain(&e));
            false
        }
    }
}

#[test]
fn vm_mptcpize_run_gives_a_static_binary_mptcp() {
    const TEST: &str = "vm_mptcpize_run_gives_a_static_binary_mptcp";
    if !skip::require_root(TEST) || !upgrade_available(TEST) {
        return;
    }
    let pins = PinDir::new("run");
    let xfer = bins::path("mptcp-xfer").unwrap();
    let out = pins
        .command(["run", "-d"])
        .unwrap()
        .arg(&xfer)
        .args(["socket", "tcp"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(printed_protocol(&out), Some(262), "{err}");
    assert!(
        err.contains("mptcpize: eBPF upgrade (fmod_ret/update_socket_protocol): running"),
        "{err}"
    );
    // The transient cgroup is gone and no longer enabled.
    let upgrade = Upgrade::open(pins.path()).unwrap().expect("installed");
    assert!(upgrade.cgroups().unwrap().is_empty());
    // Exit codes pass through.
    let failing = pins.run(["run", "false"]).unwrap();
    assert_eq!(failing.status.code(), Some(1));
}

#[test]
fn vm_an_enabled_cgroup_outlives_the_tool_until_disabled() {
    const TEST: &str = "vm_an_enabled_cgroup_outlives_the_tool_until_disabled";
    if !skip::require_root(TEST) || !upgrade_available(TEST) {
        return;
    }
    let pins = PinDir::new("cgroup");
    let parent = TestCgroup::new("mptcpd-t-mz").unwrap();
    let child = parent.child("child").unwrap();
    let other = TestCgroup::new("mptcpd-t-mz-other").unwrap();

    let out = pins
        .command(["enable", "--cgroup"])
        .unwrap()
        .arg(parent.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // mptcpize has exited: only the pins keep the program and the cgroup enabled.
    assert_eq!(
        mptcp::new_process_socket(&child, None, "tcp").ok(),
        Some(262)
    );
    assert_eq!(
        mptcp::new_process_socket(&parent, None, "tcp").ok(),
        Some(262)
    );
    assert_eq!(mptcp::new_process_socket(&other, None, "tcp").ok(), Some(6));

    // A new run of the tool sees the state and the counts.
    let status = pins.run(["status"]).unwrap();
    let report = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(report.starts_with("mechanism: eBPF upgrade"), "{report}");
    let name = parent
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(report.contains(&format!("/{name}  upgraded 2")), "{report}");

    // What a unit's drop-in runs at each start: enable the cgroup mptcpize runs in.
    let mut current = pins.command(["enable", "--current-cgroup"]).unwrap();
    other.join_on_spawn(&mut current).unwrap();
    assert!(current.output().unwrap().status.success());
    assert_eq!(
        mptcp::new_process_socket(&other, None, "tcp").ok(),
        Some(262)
    );

    let out = pins
        .command(["disable", "--cgroup"])
        .unwrap()
        .arg(parent.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(mptcp::new_process_socket(&child, None, "tcp").ok(), Some(6));
    assert_eq!(
        mptcp::new_process_socket(&parent, None, "tcp").ok(),
        Some(6)
    );

    // Enabling forgets the cgroups that were removed meanwhile.
    let gone = parent.child("gone").unwrap();
    let out = pins
        .command(["enable", "--cgroup"])
        .unwrap()
        .arg(gone.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let gone_id = gone.id().unwrap();
    drop(gone);
    let mut again = pins.command(["enable", "--current-cgroup"]).unwrap();
    other.join_on_spawn(&mut again).unwrap();
    assert!(again.output().unwrap().status.success());
    let upgrade = Upgrade::open(pins.path()).unwrap().unwrap();
    let enabled = upgrade.cgroups().unwrap();
    assert!(!enabled.contains_key(&gone_id), "{enabled:?}");
    assert!(enabled.contains_key(&other.id().unwrap()), "{enabled:?}");
    drop(upgrade);

    let out = pins.run(["reset"]).unwrap();
    assert!(out.status.success());
    assert_eq!(
        mptcp::new_process_socket(&other, None, "tcp").ok(),
        Some(6),
        "reset detaches the program"
    );
}

#[test]
fn vm_status_names_the_mechanism_and_why() {
    const TEST: &str = "vm_status_names_the_mechanism_and_why";
    if !skip::require_root(TEST) {
        return;
    }
    let pins = PinDir::new("status");
    let status = pins.run(["status"]).unwrap();
    let report = String::from_utf8_lossy(&status.stdout).into_owned();
    let first = report.lines().next().unwrap_or_default().to_owned();
    let enable = pins.run(["enable", "--cgroup", "/"]);
    if features::expected("fmod_ret") {
        assert!(
            first.starts_with("mechanism: eBPF upgrade available"),
            "{report}"
        );
        return;
    }
    // No hook here (6.1): one line says so, and cgroups cannot be enabled.
    assert!(
        first.starts_with("mechanism: LD_PRELOAD wrapper"),
        "{report}"
    );
    assert!(first.contains("eBPF upgrade not available: "), "{report}");
    eprintln!("{first}");
    let enable = enable.unwrap();
    assert!(!enable.status.success());
    let err = String::from_utf8_lossy(&enable.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("mptcpize: cannot enable a cgroup without the eBPF upgrade"),
        "{err}"
    );
}
