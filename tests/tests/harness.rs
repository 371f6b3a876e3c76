//! The harness's guards remove what they create, also when a test panics.

use std::{net::SocketAddr, panic::AssertUnwindSafe, process::Command};

use mptcpd_tests::{
    ebpf::cgroup::TestCgroup,
    net::{
        ip,
        netns::{self, NetNs},
        sysctl::{self, Sysctl},
        veth::{Address, VethPair},
    },
    skip,
    sockets::mptcp,
};

#[test]
fn netns_is_removed_on_drop_and_on_panic() {
    if !skip::require_root("netns_is_removed_on_drop_and_on_panic") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-guard").unwrap();
    let name = ns.name().to_owned();
    assert!(netns::exists(&name).unwrap());
    drop(ns);
    assert!(!netns::exists(&name).unwrap());

    let mut name = String::new();
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let ns = NetNs::new("mptcpd-t-guard").unwrap();
        name = ns.name().to_owned();
        panic!("a failing test");
    }));
    assert!(panicked.is_err());
    assert!(name.starts_with("mptcpd-t-guard"), "{name}");
    assert!(!netns::exists(&name).unwrap(), "{name} survived a panic");
}

#[test]
fn veth_and_addresses_are_removed_on_drop() {
    if !skip::require_root("veth_and_addresses_are_removed_on_drop") {
        return;
    }
    let a = NetNs::new("mptcpd-t-veth").unwrap();
    let b = NetNs::new("mptcpd-t-veth").unwrap();
    let pair = VethPair::new("t-a", &a, "t-b", &b).unwrap();
    let v4 = Address::add(&a, "t-a", "192.0.2.10/24").unwrap();
    let v6 = Address::add(&a, "t-a", "2001:db8::10/64").unwrap();
    let shown = a.ip(&["addr", "show", "dev", "t-a"]).unwrap();
    assert!(
        shown.contains("192.0.2.10/24") && shown.contains("2001:db8::10/64"),
        "{shown}"
    );
    drop((v4, v6));
    let shown = a.ip(&["addr", "show", "dev", "t-a"]).unwrap();
    assert!(
        !shown.contains("192.0.2.10") && !shown.contains("2001:db8::10"),
        "{shown}"
    );
    drop(pair);
    assert!(a.ip(&["link", "show", "t-a"]).is_err());
    assert!(b.ip(&["link", "show", "t-b"]).is_err());
}

#[test]
fn sysctls_change_inside_the_namespace_only_and_are_restored() {
    if !skip::require_root("sysctls_change_inside_the_namespace_only_and_are_restored") {
        return;
    }
    let host_value = std::fs::read_to_string("/proc/sys/net/mptcp/pm_type").unwrap();
    let ns = NetNs::new("mptcpd-t-sysctl").unwrap();
    let before = sysctl::read_in(&ns, "net.mptcp.pm_type").unwrap();
    assert_eq!(before, "0");
    let userspace = Sysctl::set(&ns, "net.mptcp.pm_type", "1").unwrap();
    assert_eq!(sysctl::read_in(&ns, "net.mptcp.pm_type").unwrap(), "1");
    // Seen the same way by a process in the namespace.
    let out = ip::run(
        "ip",
        &[
            "netns",
            "exec",
            ns.name(),
            "cat",
            "/proc/sys/net/mptcp/pm_type",
        ],
    )
    .unwrap();
    assert_eq!(out.trim(), "1");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/mptcp/pm_type").unwrap(),
        host_value,
        "the host's value changed"
    );
    drop(userspace);
    assert_eq!(sysctl::read_in(&ns, "net.mptcp.pm_type").unwrap(), before);
}

#[test]
fn cgroup_is_removed_even_with_a_process_left_in_it() {
    if !skip::require_root("cgroup_is_removed_even_with_a_process_left_in_it") {
        return;
    }
    let cgroup = TestCgroup::new("mptcpd-t-cg").unwrap();
    let path = cgroup.path().to_owned();
    let mut cmd = Command::new("sleep");
    cmd.arg("600");
    cgroup.join_on_spawn(&mut cmd).unwrap();
    let mut child = cmd.spawn().unwrap();
    let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), child.id().to_string());
    drop(cgroup);
    assert!(!path.exists());
    assert!(
        !child.wait().unwrap().success(),
        "the leftover process was killed"
    );
}

#[test]
fn mptcp_connection_state_is_readable_in_a_namespace() {
    if !skip::require_root("mptcp_connection_state_is_readable_in_a_namespace") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-sock").unwrap();
    let (listener_info, client_info) = ns
        .run(|| {
            let listener = mptcp::listen(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
            let addr = listener.local_addr().unwrap();
            let client = mptcp::connect(addr).unwrap();
            let (server, _) = listener.accept().unwrap();
            std::io::Write::write_all(&mut &client, &[1_u8; 1000]).unwrap();
            let mut buf = [0_u8; 1000];
            std::io::Read::read_exact(&mut &server, &mut buf).unwrap();
            (
                mptcp::socket_protocol(&listener).unwrap(),
                mptcp::full_info(&client).unwrap(),
            )
        })
        .unwrap();
    assert_eq!(listener_info, mptcp::IPPROTO_MPTCP);
    assert!(!client_info.info.fell_back());
    assert_eq!(client_info.subflows.len(), 1);
    let sf = client_info.subflows[0];
    assert_eq!(
        sf.remote.map(|a| a.ip().to_string()),
        Some("127.0.0.1".to_owned())
    );
    assert_eq!(sf.tcp.state, 1, "established");
    // Per-subflow counters exist on every MPTCP kernel; the connection-level ones since 6.5.
    assert!(sf.tcp.bytes_sent >= 1000, "{client_info:?}");
}

#[test]
fn mptcp_between_two_namespaces_over_veth() {
    if !skip::require_root("mptcp_between_two_namespaces_over_veth") {
        return;
    }
    let client = NetNs::new("mptcpd-t-cli").unwrap();
    let server = NetNs::new("mptcpd-t-srv").unwrap();
    let _link = VethPair::new("t-c", &client, "t-s", &server).unwrap();
    let _c = Address::add(&client, "t-c", "192.0.2.1/24").unwrap();
    let _s = Address::add(&server, "t-s", "192.0.2.2/24").unwrap();
    let listener = server
        .run(|| mptcp::listen(SocketAddr::from(([192, 0, 2, 2], 0))).unwrap())
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let payload = vec![7_u8; 256 * 1024];
    let (received, accepted_protocol) = std::thread::scope(|scope| {
        let accepting = scope.spawn(|| {
            let (conn, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            std::io::Read::read_to_end(&mut &conn, &mut got).unwrap();
            (got.len(), mptcp::socket_protocol(&conn).unwrap())
        });
        let info = client
            .run(|| {
                let stream = mptcp::connect(addr).unwrap();
                std::io::Write::write_all(&mut &stream, &payload).unwrap();
                let info = mptcp::mptcp_info(&stream).unwrap();
                stream.shutdown(std::net::Shutdown::Write).unwrap();
                info
            })
            .unwrap();
        assert!(!info.fell_back(), "{info:?}");
        assert_ne!(info.token, 0);
        accepting.join().unwrap()
    });
    assert_eq!(received, payload.len());
    assert_eq!(accepted_protocol, mptcp::IPPROTO_MPTCP);
}
