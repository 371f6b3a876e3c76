//! The `cgroup/sock_create` observer against the real kernel: it counts the stream sockets a
//! cgroup's tasks create, by protocol, and the daemon loads, pins and detaches it.

use std::{path::PathBuf, process::Command};

use mptcpd_bpf::{SOCK_COUNTS_PIN, SockCounts, SockObserver, read_pinned_counts};
use mptcpd_tests::{
    bins, daemon::process::Daemon, ebpf::cgroup::TestCgroup, net::netns::NetNs, skip,
    sockets::mptcp,
};

fn pin_dir(test: &str) -> PathBuf {
    PathBuf::from(format!(
        "/sys/fs/bpf/mptcpd-test-{}-{test}",
        std::process::id()
    ))
}

fn loaded_observers() -> usize {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| p.name_as_str() == Some("sock_create_obs"))
        .count()
}

#[test]
fn daemon_counts_tcp_and_mptcp_sockets_of_a_cgroup() {
    if !skip::require_root("daemon_counts_tcp_and_mptcp_sockets_of_a_cgroup") {
        return;
    }
    let netns = NetNs::new("mptcpd-t-obs").unwrap();
    let cgroup = TestCgroup::new("mptcpd-t-obs").unwrap();
    let pins = pin_dir("obs");
    let observers_before = loaded_observers();

    let mut cmd = netns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug", "--bpf-pin-dir"])
        .arg(&pins);
    let mut daemon = Daemon::start(cmd).unwrap();
    // Logged before READY=1, but the harness's reader of its stderr may not have it yet.
    daemon.wait_for_log("socket observer attached").unwrap();
    assert_eq!(loaded_observers(), observers_before + 1);

    // Protocol 0 and IPPROTO_MPTCP, each from a fresh process inside the test cgroup.
    assert_eq!(
        mptcp::new_process_socket(&cgroup, Some(&netns), "tcp").unwrap(),
        6
    );
    assert_eq!(
        mptcp::new_process_socket(&cgroup, Some(&netns), "mptcp").unwrap(),
        262
    );
    assert_eq!(
        mptcp::new_process_socket(&cgroup, Some(&netns), "mptcp").unwrap(),
        262
    );

    let counts = read_pinned_counts(&pins.join(SOCK_COUNTS_PIN)).unwrap();
    assert_eq!(
        counts.get(&cgroup.id().unwrap()),
        Some(&SockCounts { tcp: 1, mptcp: 2 }),
        "all counts: {counts:?}"
    );

    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    // aya-log records from the program reach the daemon's tracing output.
    assert!(
        log.contains(&format!(
            "first stream socket in cgroup {}",
            cgroup.id().unwrap()
        )),
        "{log}"
    );
    // Clean exit: the program is detached and unloaded, the pins and their directory gone.
    assert_eq!(loaded_observers(), observers_before);
    assert!(!pins.exists(), "{} left behind", pins.display());
}

#[test]
fn observer_counts_only_below_the_cgroup_it_is_attached_to() {
    if !skip::require_root("observer_counts_only_below_the_cgroup_it_is_attached_to") {
        return;
    }
    let watched = TestCgroup::new("mptcpd-t-watched").unwrap();
    let other = TestCgroup::new("mptcpd-t-other").unwrap();
    let observers_before = loaded_observers();
    let observer = SockObserver::attach(watched.path()).unwrap();

    assert_eq!(
        mptcp::new_process_socket(&watched, None, "mptcp").unwrap(),
        262
    );
    assert_eq!(mptcp::new_process_socket(&other, None, "tcp").unwrap(), 6);
    assert_eq!(mptcp::new_process_socket(&watched, None, "tcp").unwrap(), 6);

    let counts = observer.counts().unwrap();
    assert_eq!(
        counts.get(&watched.id().unwrap()),
        Some(&SockCounts { tcp: 1, mptcp: 1 })
    );
    assert_eq!(counts.get(&other.id().unwrap()), None, "{counts:?}");
    drop(observer);
    assert_eq!(
        loaded_observers(),
        observers_before,
        "observer still loaded after drop"
    );
}

#[test]
fn daemon_without_bpf_privilege_says_so_and_runs() {
    if !skip::require_root("daemon_without_bpf_privilege_says_so_and_runs") {
        return;
    }
    let netns = NetNs::new("mptcpd-t-nobpf").unwrap();
    let mut cmd = netns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--bpf-pin-dir"])
        .arg(pin_dir("nobpf"));
    drop_capabilities_on_spawn(&mut cmd, &[CAP_BPF, CAP_SYS_ADMIN, CAP_PERFMON]);
    let daemon = Daemon::start(cmd).unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("socket observer off"))
        .collect();
    assert_eq!(lines.len(), 1, "one line says why:\n{log}");
    assert!(lines[0].contains("BPF not permitted"), "{log}");
    assert!(lines[0].contains("CAP_BPF"), "{log}");
    assert!(log.contains("ready"), "{log}");
}

// From linux/capability.h (libc does not export them).
const CAP_SYS_ADMIN: libc::c_ulong = 21;
const CAP_PERFMON: libc::c_ulong = 38;
const CAP_BPF: libc::c_ulong = 39;

/// Drops capabilities from the bounding set before exec, so that the root child lacks them.
fn drop_capabilities_on_spawn(cmd: &mut Command, caps: &'static [libc::c_ulong]) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            for &cap in caps {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
