//! `mptcpize` on kernels that run the eBPF upgrade (the VM's 6.12): a static binary gets MPTCP
//! by `run` and inside an enabled cgroup, the enabled state outlives the tool, and `disable`
//! stops it. On kernels without the hook (6.1), the fallback is named in one line.

use mptcpd_bpf::Upgrade;
use mptcpd_tests::{
    bins,
    ebpf::{cgroup::TestCgroup, mptcpize::PinDir, mptcpize::printed_protocol},
    features,
    net::{netns::NetNs, sysctl},
    skip,
    sockets::mptcp,
};

/// `true` where the upgrade runs; otherwise reports the missing feature.
fn upgrade_available(test: &str) -> bool {
    match Upgrade::probe() {
        Ok(()) => true,
        Err(e) => {
            features::missing("fmod_ret", test, &mptcpd_common::Chain(&e).to_string());
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

    pins.on_cgroup("enable", parent.path());
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

    pins.on_cgroup("disable", parent.path());
    assert_eq!(mptcp::new_process_socket(&child, None, "tcp").ok(), Some(6));
    assert_eq!(
        mptcp::new_process_socket(&parent, None, "tcp").ok(),
        Some(6)
    );

    // Enabling forgets the cgroups that were removed meanwhile.
    let gone = parent.child("gone").unwrap();
    pins.on_cgroup("enable", gone.path());
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
    let cgroup = TestCgroup::new("mptcpd-t-mz-status").unwrap();
    let enable = pins
        .command(["enable", "--cgroup"])
        .unwrap()
        .arg(cgroup.path())
        .output();
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

/// The `mptcpize-run-*` cgroup directly below `parent`, once the command runs in it.
fn populated_run_cgroup(parent: &std::path::Path) -> Option<std::path::PathBuf> {
    std::fs::read_dir(parent)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|dir| {
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("mptcpize-run-"))
                && std::fs::read_to_string(dir.join("cgroup.events"))
                    .is_ok_and(|events| events.lines().any(|l| l == "populated 1"))
        })
}

#[test]
fn vm_mptcpize_run_stays_below_the_callers_cgroup_and_passes_sigterm_on() {
    const TEST: &str = "vm_mptcpize_run_stays_below_the_callers_cgroup_and_passes_sigterm_on";
    if !skip::require_root(TEST) || !upgrade_available(TEST) {
        return;
    }
    let pins = PinDir::new("run-signal");
    let caller = TestCgroup::new("mptcpd-t-run-caller").unwrap();
    let mut cmd = pins.command(["run", "sleep", "1000"]).unwrap();
    caller.join_on_spawn(&mut cmd).unwrap();
    let mut mptcpize = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();

    // The command runs in a cgroup of its own below the caller's, and that cgroup is enabled.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let transient = loop {
        if let Some(dir) = populated_run_cgroup(caller.path()) {
            break dir;
        }
        if let Some(status) = mptcpize.try_wait().unwrap() {
            let out = mptcpize.wait_with_output().unwrap();
            panic!(
                "mptcpize exited ({status}) before its command ran below {}: {}",
                caller.path().display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(std::time::Instant::now() < deadline, "no run cgroup");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let id = mptcpd_bpf::cgroup::cgroup_id(&transient).unwrap();
    let upgrade = Upgrade::open(pins.path()).unwrap().expect("installed");
    assert!(upgrade.cgroups().unwrap().contains_key(&id));

    // SIGTERM to mptcpize ends the command (128 + 15), then mptcpize cleans up and exits.
    let pid = libc::pid_t::try_from(mptcpize.id()).unwrap();
    // SAFETY: kill(2) on our own, not yet reaped, child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let out = mptcpize.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM), "{err}");
    assert!(!transient.exists(), "{} left behind", transient.display());
    assert!(
        !upgrade.cgroups().unwrap().contains_key(&id),
        "id left enabled"
    );
}

/// What units starting together at boot do: many `mptcpize enable` at once, each released by
/// the same barrier (a pipe whose write end the test closes), in a fresh pin directory per
/// round. Afterwards the pinned link's program reads the pinned map, and the cgroup's sockets
/// are MPTCP.
#[test]
fn vm_parallel_installers_leave_one_consistent_upgrade() {
    const TEST: &str = "vm_parallel_installers_leave_one_consistent_upgrade";
    const ROUNDS: usize = 3;
    const INSTALLERS: usize = 4;
    if !skip::require_root(TEST) || !upgrade_available(TEST) {
        return;
    }
    let cgroup = TestCgroup::new("mptcpd-t-mz-race").unwrap();
    for round in 0..ROUNDS {
        let pins = PinDir::new(&format!("race{round}"));
        let (barrier, release) = std::io::pipe().unwrap();
        let children: Vec<_> = (0..INSTALLERS)
            .map(|_| {
                let installer = pins.command(["enable", "--cgroup"]).unwrap();
                // The barrier is after exec (spawn waits for the exec): a shell that reads its
                // stdin, the pipe, to EOF (the release), then becomes the installer.
                let mut cmd = std::process::Command::new("sh");
                cmd.args(["-c", "read -r _; exec \"$0\" \"$@\""])
                    .arg(installer.get_program())
                    .args(installer.get_args())
                    .arg(cgroup.path())
                    .stdin(barrier.try_clone().unwrap());
                cmd.stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        drop(barrier);
        drop(release);
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let upgrade = Upgrade::open(pins.path()).unwrap().expect("installed");
        let (link_maps, map) = upgrade.map_ids().unwrap();
        assert!(
            link_maps.contains(&map),
            "round {round}: the link's program reads maps {link_maps:?}, the pinned one is {map}"
        );
        assert_eq!(
            mptcp::new_process_socket(&cgroup, None, "tcp").ok(),
            Some(262),
            "round {round}"
        );
    }
}

#[test]
fn vm_an_opted_out_child_stays_tcp_under_an_enabled_parent() {
    const TEST: &str = "vm_an_opted_out_child_stays_tcp_under_an_enabled_parent";
    if !skip::require_root(TEST) || !upgrade_available(TEST) {
        return;
    }
    let pins = PinDir::new("optout");
    let parent = TestCgroup::new("mptcpd-t-mz-opt").unwrap();
    let child = parent.child("out").unwrap();
    let below = child.child("below").unwrap();
    let sibling = parent.child("in").unwrap();
    pins.on_cgroup("enable", parent.path());
    let said = pins.on_cgroup("disable", child.path());
    assert!(said.contains("opted out"), "{said}");
    assert_eq!(mptcp::new_process_socket(&child, None, "tcp").ok(), Some(6));
    assert_eq!(mptcp::new_process_socket(&below, None, "tcp").ok(), Some(6));
    assert_eq!(
        mptcp::new_process_socket(&sibling, None, "tcp").ok(),
        Some(262)
    );
    let status = String::from_utf8_lossy(&pins.run(["status"]).unwrap().stdout).into_owned();
    assert!(status.contains("opted-out cgroups (TCP): 1"), "{status}");
    // Enabling it again replaces the opt-out.
    pins.on_cgroup("enable", child.path());
    assert_eq!(
        mptcp::new_process_socket(&below, None, "tcp").ok(),
        Some(262)
    );
}

#[test]
fn vm_mptcpize_enable_forgets_stale_ids_before_inserting_into_a_full_map() {
    const TEST: &str = "vm_mptcpize_enable_forgets_stale_ids_before_inserting_into_a_full_map";
    if !skip::require_root(TEST) || !upgrade_available(TEST) {
        return;
    }
    let pins = PinDir::new("stale");
    let kept = TestCgroup::new("mptcpd-t-stale-kept").unwrap();
    pins.on_cgroup("enable", kept.path());
    let mut upgrade = Upgrade::open(pins.path()).unwrap().expect("installed");

    // Removed cgroups, and a run cgroup whose mptcpize is gone (killed: it could not clean up).
    let mut stale = (0..8)
        .map(|_| {
            let gone = kept.child("gone").unwrap();
            let id = gone.id().unwrap();
            assert!(upgrade.enable(id).unwrap());
            id
        })
        .collect::<Vec<_>>();
    let mut exited = std::process::Command::new("true").spawn().unwrap();
    exited.wait().unwrap();
    let orphan = kept.path().join(format!("mptcpize-run-{}-0", exited.id()));
    std::fs::create_dir(&orphan).unwrap();
    stale.push(mptcpd_bpf::cgroup::cgroup_id(&orphan).unwrap());
    assert!(upgrade.enable(stale[8]).unwrap());
    // Ids that no cgroup has (like those of cgroups removed long ago) fill the map.
    let mut filler = u64::MAX;
    while upgrade.enable(filler).is_ok() {
        filler -= 1;
        assert!(
            u64::MAX - filler < 1 << 20,
            "the map of enabled cgroups has no bound"
        );
    }
    let enabled = upgrade.cgroups().unwrap();
    assert!(stale.iter().all(|id| enabled.contains_key(id)));

    // One more cgroup: enabling it forgets the stale ids first.
    let new = TestCgroup::new("mptcpd-t-stale-new").unwrap();
    pins.on_cgroup("enable", new.path());
    let enabled = upgrade.cgroups().unwrap();
    assert!(enabled.contains_key(&new.id().unwrap()), "{enabled:?}");
    assert!(enabled.contains_key(&kept.id().unwrap()));
    assert!(!stale.iter().any(|id| enabled.contains_key(id)));
    assert!(!orphan.exists(), "the orphaned run cgroup stays");
    assert_eq!(mptcp::new_process_socket(&new, None, "tcp").ok(), Some(262));
}

#[test]
fn vm_enable_warns_where_mptcp_is_off() {
    const TEST: &str = "vm_enable_warns_where_mptcp_is_off";
    if !skip::require_root(TEST) || !upgrade_available(TEST) {
        return;
    }
    let pins = PinDir::new("off");
    let cgroup = TestCgroup::new("mptcpd-t-mz-off").unwrap();
    let netns = NetNs::new("mptcpd-t-mz-off").unwrap();
    sysctl::set_in(&netns, "net.mptcp.enabled", "0").unwrap();
    let mut enable = pins.command(["enable", "--cgroup"]).unwrap();
    enable.arg(cgroup.path());
    netns.enter_on_spawn(&mut enable).unwrap();
    let out = enable.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("net.mptcp.enabled is 0"), "{err}");
    let mut status = pins.command(["status"]).unwrap();
    netns.enter_on_spawn(&mut status).unwrap();
    let report = String::from_utf8_lossy(&status.output().unwrap().stdout).into_owned();
    assert!(
        report.contains("warning: net.mptcp.enabled is 0"),
        "{report}"
    );
}

/// The allow-list: an enabled cgroup gets MPTCP only in namespaces on it. `enable` puts its own
/// (MPTCP on) there; a namespace where MPTCP is off, or a new one, keeps TCP instead of failing
/// `socket()`; `netns allow` refuses a namespace where MPTCP is off; a namespace that turns
/// MPTCP off after being allowed fails until an `enable` there (or `netns deny`) takes it off.
#[test]
fn vm_only_allowed_namespaces_get_mptcp_and_others_keep_tcp() {
    const TEST: &str = "vm_only_allowed_namespaces_get_mptcp_and_others_keep_tcp";
    if !skip::require_root(TEST) || !upgrade_available(TEST) {
        return;
    }
    let pins = PinDir::new("netns");
    let cgroup = TestCgroup::new("mptcpd-t-mz-ns").unwrap();
    let off = NetNs::new("mptcpd-t-ns-off").unwrap();
    sysctl::set_in(&off, "net.mptcp.enabled", "0").unwrap();
    let fresh = NetNs::new("mptcpd-t-ns-new").unwrap();
    let path = |netns: &NetNs| format!("/run/netns/{}", netns.name());
    pins.on_cgroup("enable", cgroup.path());

    let socket = |netns| mptcp::new_process_socket(&cgroup, netns, "tcp");
    assert_eq!(socket(None).unwrap(), 262, "the enabling namespace");
    // Before the allow-list, socket() failed here with ENOPROTOOPT.
    assert_eq!(socket(Some(&off)).unwrap(), 6, "MPTCP off: TCP");
    assert_eq!(socket(Some(&fresh)).unwrap(), 6, "not yet allowed: TCP");

    let allow = pins
        .run(["netns", "allow", "--netns", &path(&fresh)])
        .unwrap();
    assert!(allow.status.success(), "{allow:?}");
    assert_eq!(socket(Some(&fresh)).unwrap(), 262, "allowed");

    let refused = pins
        .run(["netns", "allow", "--netns", &path(&off)])
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("net.mptcp.enabled is 0"), "{err}");
    assert_eq!(socket(Some(&off)).unwrap(), 6, "still TCP");

    let list = pins.run(["netns", "list"]).unwrap();
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(list.contains("allowed network namespaces: 2"), "{list}");
    assert!(list.contains("(this one)"), "{list}");
    // Two sockets where MPTCP is off, one in the new namespace before it was allowed.
    assert!(
        list.contains("kept TCP (namespace not allowed): 3"),
        "{list}"
    );
    let status = String::from_utf8_lossy(&pins.run(["status"]).unwrap().stdout).into_owned();
    assert!(status.contains("allowed network namespaces: 2"), "{status}");

    // Stale: MPTCP turned off after the namespace was allowed.
    sysctl::set_in(&fresh, "net.mptcp.enabled", "0").unwrap();
    assert!(socket(Some(&fresh)).is_err(), "ENOPROTOOPT while allowed");
    let mut enable = pins.command(["enable", "--cgroup"]).unwrap();
    enable.arg(cgroup.path());
    fresh.enter_on_spawn(&mut enable).unwrap();
    let out = enable.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("taken off the allow-list"), "{err}");
    assert_eq!(socket(Some(&fresh)).unwrap(), 6, "re-checked: TCP");

    let deny = pins.run(["netns", "deny"]).unwrap();
    assert!(deny.status.success(), "{deny:?}");
    assert_eq!(socket(None).unwrap(), 6, "denied: TCP");
}
