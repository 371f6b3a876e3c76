//! The daemon's state-changing D-Bus methods (`org.mptcpd.Control1`) on a private
//! system-like bus: endpoints added for an operator survive the daemon's shutdown and restart,
//! the kernel's refusals come back as named errors with its message, only root and the
//! `dbus-group` may call (the policy refuses others, and the daemon refuses them itself under
//! a looser policy), and `mptcpctl` goes through the daemon when it is on the bus.

use std::{path::Path, process::Output};

use mptcpd_common::dbus::{BUS_NAME, CONTROL_INTERFACE, MANAGER_PATH};
use mptcpd_tests::{
    daemon::process::Daemon,
    dbus::{self, SystemLikeBus},
    net::netns::NetNs,
};

fn namespace(prefix: &str) -> NetNs {
    let ns = NetNs::new(prefix).unwrap();
    ns.ip(&["link", "set", "lo", "up"]).unwrap();
    ns
}

/// Our daemon in `ns` on the bus at `address`, its state in `state`.
fn daemon(ns: &NetNs, address: &str, state: &Path, extra: &[&str]) -> Daemon {
    let mut cmd = dbus::daemon_command(ns, address).unwrap();
    cmd.args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-dbusctl"])
        .arg("--state-dir")
        .arg(state)
        .args(extra);
    let mut daemon = Daemon::start(cmd).unwrap();
    daemon.wait_for_log("D-Bus: serving").unwrap();
    daemon
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Calls a `Control1` method as root; `Err` is the D-Bus error's name and message.
fn call<B, R>(address: &str, method: &str, body: &B) -> Result<R, (String, String)>
where
    B: zbus::export::serde::Serialize + zbus::zvariant::DynamicType,
    R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
{
    runtime().block_on(async {
        let bus = zbus::connection::Builder::address(address)
            .unwrap()
            .build()
            .await
            .unwrap();
        let proxy = zbus::Proxy::new(&bus, BUS_NAME, MANAGER_PATH, CONTROL_INTERFACE)
            .await
            .unwrap();
        proxy.call(method, body).await.map_err(|e| match e {
            zbus::Error::MethodError(name, text, _) => (name.to_string(), text.unwrap_or_default()),
            other => (String::new(), other.to_string()),
        })
    })
}

/// `ip mptcp endpoint show` in `ns`.
fn endpoints(ns: &NetNs) -> String {
    ns.ip(&["mptcp", "endpoint", "show"]).unwrap()
}

/// `dbus-send` of `AddEndpoint` for `addr` as user nobody, with these supplementary groups.
fn add_as_nobody(address: &str, groups: &str, addr: &str) -> Output {
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534"])
        .arg(if groups.is_empty() {
            "--clear-groups".to_owned()
        } else {
            format!("--groups={groups}")
        })
        .arg("dbus-send")
        .arg(format!("--bus={address}"))
        .args(["--print-reply", &format!("--dest={BUS_NAME}"), MANAGER_PATH])
        .arg(format!("{CONTROL_INTERFACE}.AddEndpoint"))
        .arg(format!("string:{addr}"))
        .args(["uint16:0", "uint32:0", "array:string:signal", "byte:0"])
        .output()
        .unwrap()
}

#[test]
fn operator_endpoints_survive_the_daemon_and_refusals_are_named() {
    const TEST: &str = "operator_endpoints_survive_the_daemon_and_refusals_are_named";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let ns = namespace("mptcpd-t-dbusctl1");
    let state = tempfile::tempdir().unwrap();
    let address = bus.address();
    let mut first = daemon(&ns, address, state.path(), &[]);

    let id: u8 = call(
        address,
        "AddEndpoint",
        &("198.51.100.1", 0_u16, 0_u32, vec!["signal"], 0_u8),
    )
    .unwrap();
    assert!(id > 0);
    let shown = endpoints(&ns);
    assert!(
        shown.contains(&format!("198.51.100.1 id {id} signal")),
        "{shown}"
    );
    first
        .wait_for_log("endpoint added for an operator")
        .unwrap();

    // The kernel's refusals, named, with its message.
    let (name, text) = call::<_, u8>(
        address,
        "AddEndpoint",
        &("198.51.100.1", 0_u16, 0_u32, vec!["signal"], 0_u8),
    )
    .unwrap_err();
    assert_eq!(name, "org.mptcpd.Error.Exists", "{text}");
    assert!(text.starts_with("kernel: "), "{text}");
    let (name, text) = call::<_, ()>(address, "RemoveEndpoint", &(200_u8,)).unwrap_err();
    assert_eq!(name, "org.mptcpd.Error.NotFound", "{text}");
    ids_out_of_range_are_refused(address);
    for (method, bad) in [
        (
            "AddEndpoint",
            ("198.51.100", 0_u16, 0_u32, vec!["signal"], 0_u8),
        ),
        (
            "AddEndpoint",
            ("198.51.100.2", 0, 0, vec!["signal", "fullmesh"], 0),
        ),
        ("AddEndpoint", ("198.51.100.2", 0, 0, vec!["bogus"], 0)),
    ] {
        let (name, text) = call::<_, u8>(address, method, &bad).unwrap_err();
        assert_eq!(name, "org.mptcpd.Error.InvalidArgument", "{bad:?}: {text}");
    }
    let (name, text) = call::<_, ()>(
        address,
        "SetLimits",
        &(std::collections::HashMap::from([("subflow", 2_u32)]),),
    )
    .unwrap_err();
    assert_eq!(name, "org.mptcpd.Error.InvalidArgument", "{text}");
    assert_eq!(endpoints(&ns).lines().count(), 1, "nothing half-applied");

    // Limits and flags.
    call::<_, ()>(
        address,
        "SetLimits",
        &(std::collections::HashMap::from([(
            "add_addr_accepted",
            3_u32,
        )]),),
    )
    .unwrap();
    let limits: std::collections::HashMap<String, u32> = call(address, "GetLimits", &()).unwrap();
    assert_eq!(limits["add_addr_accepted"], 3);
    call::<_, ()>(address, "SetEndpointFlags", &(id, vec!["signal", "backup"])).unwrap();
    assert!(
        endpoints(&ns).contains("signal backup"),
        "{}",
        endpoints(&ns)
    );
    // The userspace PM's commands reach the kernel (which knows no such token here).
    let (name, text) =
        call::<_, ()>(address, "Announce", &(1_u32, "198.51.100.1", 5_u8, 0_u16)).unwrap_err();
    assert!(name.starts_with("org.mptcpd.Error."), "{name}: {text}");
    assert!(text.starts_with("kernel: "), "{text}");

    // The operator's endpoint survives the daemon's shutdown and its restart's settling.
    let (status, log) = first.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(endpoints(&ns).contains("198.51.100.1"), "{log}");
    let files: Vec<String> = std::fs::read_dir(state.path())
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .collect();
    assert!(
        files
            .iter()
            .any(|t| t.contains("198.51.100.1 - signal,backup - operator")),
        "{files:?}"
    );
    let second = daemon(&ns, address, state.path(), &[]);
    let (status, log) = second.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(endpoints(&ns).contains("198.51.100.1"), "{log}");

    // Flushed on request: the daemon's records (the operator's included).
    let third = daemon(&ns, address, state.path(), &[]);
    let removed: u32 = call(address, "FlushEndpoints", &(false,)).unwrap();
    assert_eq!(removed, 1);
    assert_eq!(endpoints(&ns), "");
    let (status, log) = third.stop().unwrap();
    assert!(status.success(), "{log}");
}

#[test]
fn only_root_and_the_dbus_group_may_change_state() {
    const TEST: &str = "only_root_and_the_dbus_group_may_change_state";
    // Everyone allowed by the bus: what the daemon checks itself.
    let loose = r#"<policy context="default">
        <allow send_destination="org.mptcpd.Mptcpd" send_interface="org.mptcpd.Control1"/>
      </policy>"#;
    let Some(strict) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let loose = SystemLikeBus::start_with(loose).unwrap().unwrap();
    let strict_ns = namespace("mptcpd-t-dbusacl1");
    let loose_ns = namespace("mptcpd-t-dbusacl2");
    let strict_state = tempfile::tempdir().unwrap();
    let loose_state = tempfile::tempdir().unwrap();
    let strict_daemon = daemon(&strict_ns, strict.address(), strict_state.path(), &[]);
    // Group `users` (100) stands for the dbus-group here.
    let loose_daemon = daemon(
        &loose_ns,
        loose.address(),
        loose_state.path(),
        &["--dbus-group", "users"],
    );

    // The shipped policy: the bus refuses user nobody.
    let out = add_as_nobody(strict.address(), "", "198.51.100.7");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("org.freedesktop.DBus.Error.AccessDenied"),
        "{stderr}"
    );
    assert_eq!(endpoints(&strict_ns), "", "nothing changed");

    // A looser policy: the daemon refuses nobody itself, by name, and changes nothing.
    let out = add_as_nobody(loose.address(), "", "198.51.100.7");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("org.mptcpd.Error.AccessDenied: uid 65534 may not change"),
        "{stderr}"
    );
    assert!(stderr.contains("group \"users\""), "{stderr}");
    assert_eq!(endpoints(&loose_ns), "", "nothing changed");

    // A member of the dbus-group may.
    let out = add_as_nobody(loose.address(), "100", "198.51.100.8");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(endpoints(&loose_ns).contains("198.51.100.8"));

    for daemon in [strict_daemon, loose_daemon] {
        let (status, log) = daemon.stop().unwrap();
        assert!(status.success(), "{log}");
    }
}

#[test]
fn mptcpctl_goes_through_the_daemon_when_it_is_on_the_bus() {
    const TEST: &str = "mptcpctl_goes_through_the_daemon_when_it_is_on_the_bus";
    let Some(bus) = SystemLikeBus::for_test(TEST, "").unwrap() else {
        return;
    };
    let ns = namespace("mptcpd-t-dbusctl3");
    let state = tempfile::tempdir().unwrap();
    let address = bus.address();
    let add = |addr: &str| {
        let out = dbus::mptcpctl(
            &ns,
            address,
            &["--verbose", "endpoint", "add", addr, "signal"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // No daemon: straight to the kernel.
    let said = add("198.51.100.21");
    assert!(said.contains("directly"), "{said}");
    assert!(endpoints(&ns).contains("198.51.100.21"));

    // With the daemon: through it, recorded as the operator's, kept at its shutdown.
    let mut daemon = daemon(&ns, address, state.path(), &[]);
    let said = add("198.51.100.22");
    assert!(said.contains("through mptcpd"), "{said}");
    daemon
        .wait_for_log("endpoint added for an operator")
        .unwrap();
    // Its refusals as one line with the kernel's message.
    let out = dbus::mptcpctl(&ns, address, &["endpoint", "del", "200"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("NotFound"), "{stderr}");
    let out = dbus::mptcpctl(
        &ns,
        address,
        &["--verbose", "limits", "set", "--subflows", "3"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("through mptcpd"));
    assert!(
        ns.ip(&["mptcp", "limits", "show"])
            .unwrap()
            .contains("subflows 3")
    );
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let shown = endpoints(&ns);
    assert!(
        shown.contains("198.51.100.21") && shown.contains("198.51.100.22"),
        "{shown}"
    );
}

/// Ids out of range: 0 names no endpoint; above 255 is not a byte (the bus's own error).
fn ids_out_of_range_are_refused(address: &str) {
    let (name, text) = call::<_, ()>(address, "RemoveEndpoint", &(0_u8,)).unwrap_err();
    assert_eq!(name, "org.mptcpd.Error.InvalidArgument", "{text}");
    assert!(text.contains("address id 0 refused"), "{text}");
    let (name, text) =
        call::<_, ()>(address, "SetEndpointFlags", &(0_u8, vec!["backup"])).unwrap_err();
    assert_eq!(name, "org.mptcpd.Error.InvalidArgument", "{text}");
    let (name, text) = call::<_, ()>(address, "RemoveEndpoint", &(300_u32,)).unwrap_err();
    assert!(!name.starts_with("org.mptcpd."), "{name}: {text}");
}
