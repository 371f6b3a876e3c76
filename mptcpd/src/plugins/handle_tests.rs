//! Address ids against a fake kernel that takes ids as the real one does: other tools' and
//! implicit endpoints the daemon was never told about.

use std::net::IpAddr;

use mptcpd_plugin::{
    Commands as _, Endpoint, EndpointFlags, PathManager as _,
    testing::{RecordingPm, block_on},
};

use super::HostPm;
use crate::plugins::listeners::ListenerManager;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn endpoint(id: u8, addr: &str, flags: EndpointFlags) -> Endpoint {
    Endpoint {
        id,
        addr: ip(addr),
        port: None,
        flags,
        if_idx: None,
    }
}

fn started(kernel: RecordingPm) -> HostPm<RecordingPm> {
    let pm = HostPm::with_listeners(kernel, None, ListenerManager::with_protocol(6));
    block_on(pm.adopt()).unwrap();
    pm
}

/// What a plugin does: the address's id, then the endpoint.
fn add(pm: &HostPm<RecordingPm>, addr: &str) -> Result<u8, mptcpd_plugin::PmError> {
    let id = pm.address_id(ip(addr))?;
    block_on(pm.add_endpoint(endpoint(id, addr, EndpointFlags::SUBFLOW)))
}

#[test]
fn an_id_another_tool_took_is_asked_for_again_with_a_fresh_one() {
    let pm = started(RecordingPm::new());
    assert_eq!(add(&pm, "192.0.2.1").ok(), Some(1));
    // `ip mptcp endpoint add 198.51.100.9 signal`: the kernel picks 2, the id we would give
    // next, and tells nobody.
    let admin = endpoint(0, "198.51.100.9", EndpointFlags::SIGNAL);
    let taken = block_on(pm.kernel().add_endpoint(admin)).unwrap();
    assert_eq!(taken, 2);
    // Every new address still gets its endpoint.
    assert_eq!(add(&pm, "192.0.2.2").ok(), Some(3));
    assert_eq!(add(&pm, "192.0.2.3").ok(), Some(4));
    assert_eq!(
        pm.kernel().endpoints(),
        [
            endpoint(1, "192.0.2.1", EndpointFlags::SUBFLOW),
            endpoint(2, "198.51.100.9", EndpointFlags::SIGNAL),
            endpoint(3, "192.0.2.2", EndpointFlags::SUBFLOW),
            endpoint(4, "192.0.2.3", EndpointFlags::SUBFLOW),
        ],
        "the administrator's endpoint is untouched"
    );
    assert_eq!(
        pm.address_id(ip("192.0.2.2")).ok(),
        Some(3),
        "the id it got"
    );
    assert_eq!(block_on(pm.remove_owned()), 3);
    assert_eq!(
        pm.kernel().endpoints(),
        [endpoint(2, "198.51.100.9", EndpointFlags::SIGNAL)]
    );
}

#[test]
fn implicit_endpoints_never_block_an_address() {
    let pm = started(RecordingPm::new());
    // The kernel made implicit endpoints after our last dump: one takes the id we give
    // next, one is for an address we add later.
    let implicit = EndpointFlags::IMPLICIT;
    pm.kernel()
        .insert_endpoint(endpoint(1, "192.0.2.50", implicit));
    pm.kernel()
        .insert_endpoint(endpoint(7, "192.0.2.7", implicit));
    assert_eq!(
        add(&pm, "192.0.2.1").ok(),
        Some(2),
        "its id taken: a fresh one"
    );
    // Its own implicit endpoint: asked with an explicit id the kernel says EINVAL; without
    // one it hands its id over.
    assert_eq!(
        add(&pm, "192.0.2.7").ok(),
        Some(7),
        "the implicit endpoint's id"
    );
    let kernel = pm.kernel().endpoints();
    assert!(
        kernel.contains(&endpoint(7, "192.0.2.7", EndpointFlags::SUBFLOW)),
        "{kernel:?}"
    );
    // The same through the id the dump mapped: EBUSY, then taken over too.
    assert_eq!(
        block_on(pm.add_endpoint(endpoint(1, "192.0.2.50", EndpointFlags::SUBFLOW))).ok(),
        Some(1)
    );
    assert_eq!(
        pm.owned_endpoints().len(),
        3,
        "all three are ours: {:?}",
        pm.owned_endpoints()
    );
}

#[test]
fn ids_no_endpoint_holds_any_more_are_free_again() {
    let kernel = RecordingPm::new();
    kernel.insert_endpoint(endpoint(1, "198.51.100.9", EndpointFlags::SIGNAL));
    let pm = started(kernel);
    assert_eq!(add(&pm, "192.0.2.1").ok(), Some(2), "1 is another tool's");
    block_on(pm.kernel().remove_endpoint(1)).unwrap();
    block_on(pm.dump_endpoints()).unwrap();
    assert_eq!(
        add(&pm, "192.0.2.2").ok(),
        Some(1),
        "1 was freed by its owner"
    );
}

#[test]
fn other_refusals_are_not_retried() {
    let kernel = RecordingPm::new();
    kernel.insert_endpoint(endpoint(9, "192.0.2.1", EndpointFlags::SIGNAL));
    let pm = started(kernel);
    pm.kernel().take_calls();
    let refused = add(&pm, "192.0.2.1").unwrap_err();
    assert!(refused.is_exists(), "{refused}");
    assert_eq!(pm.kernel().take_calls().len(), 1, "asked once");
    // A taken id every time: bounded.
    for _ in 0..10 {
        pm.kernel()
            .fail_next("add_endpoint", mptcpd_plugin::errno::EBUSY);
    }
    pm.kernel().take_calls();
    let refused = add(&pm, "192.0.2.2").unwrap_err();
    assert!(refused.is_id_taken(), "{refused}");
    let calls = pm.kernel().take_calls();
    assert!(calls.len() < 10, "{calls:?}");
}

/// A handle keeping its endpoints in `file` (not adopted yet).
fn with_file(kernel: RecordingPm, file: &std::path::Path) -> HostPm<RecordingPm> {
    HostPm::with_listeners(
        kernel,
        Some(file.to_owned()),
        ListenerManager::with_protocol(6),
    )
}

#[test]
fn a_suspended_endpoint_stays_ours_out_of_the_kernel_and_comes_back_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoints");
    let pm = with_file(RecordingPm::new(), &file);
    block_on(pm.adopt()).unwrap();
    assert_eq!(add(&pm, "192.0.2.1").ok(), Some(1));
    assert_eq!(add(&pm, "192.0.2.2").ok(), Some(2));
    block_on(pm.suspend_endpoint(2)).unwrap();
    assert_eq!(
        pm.kernel().endpoints(),
        [endpoint(1, "192.0.2.1", EndpointFlags::SUBFLOW)]
    );
    assert_eq!(
        pm.owned_endpoints(),
        [endpoint(1, "192.0.2.1", EndpointFlags::SUBFLOW)]
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("endpoint suspended 2 192.0.2.2"), "{text}");
    // Its id stays its address's, even after a dump.
    block_on(pm.dump_endpoints()).unwrap();
    assert_eq!(add(&pm, "192.0.2.3").ok(), Some(3));
    assert_eq!(pm.address_id(ip("192.0.2.2")).ok(), Some(2));
    // Not ours: refused.
    let refused = block_on(pm.suspend_endpoint(9)).unwrap_err();
    assert!(refused.is_not_found(), "{refused}");
    // Back, with the flags asked for.
    let back = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
    assert_eq!(block_on(pm.resume_endpoint(2, back)).ok(), Some(true));
    assert!(
        pm.kernel()
            .endpoints()
            .contains(&endpoint(2, "192.0.2.2", back))
    );
    assert!(
        pm.owned_endpoints()
            .contains(&endpoint(2, "192.0.2.2", back))
    );
    assert_eq!(block_on(pm.resume_endpoint(2, back)).ok(), Some(false));
}

#[test]
fn removing_a_suspended_endpoint_forgets_it_without_asking_the_kernel() {
    let pm = started(RecordingPm::new());
    assert_eq!(add(&pm, "192.0.2.1").ok(), Some(1));
    assert_eq!(add(&pm, "192.0.2.2").ok(), Some(2));
    block_on(pm.suspend_endpoint(2)).unwrap();
    // Another tool takes id 2 in the kernel meanwhile.
    let admin = endpoint(2, "198.51.100.9", EndpointFlags::SIGNAL);
    block_on(pm.kernel().add_endpoint(admin)).unwrap();
    // The address goes away: its plugin removes the endpoint, quietly.
    block_on(pm.remove_endpoint(2)).unwrap();
    assert!(pm.kernel().endpoints().contains(&admin), "not the admin's");
    assert_eq!(
        block_on(pm.resume_endpoint(2, EndpointFlags::SUBFLOW)).ok(),
        Some(false)
    );
    assert!(pm.kernel().endpoints().contains(&admin));
    // Shutdown: a suspended one is forgotten, not removed from the kernel.
    assert_eq!(add(&pm, "192.0.2.3").ok(), Some(3));
    block_on(pm.suspend_endpoint(3)).unwrap();
    let admin3 = endpoint(3, "198.51.100.10", EndpointFlags::SIGNAL);
    block_on(pm.kernel().add_endpoint(admin3)).unwrap();
    assert_eq!(block_on(pm.remove_owned()), 2);
    assert_eq!(pm.kernel().endpoints(), [admin, admin3]);
}

#[test]
fn a_restart_keeps_a_suspended_endpoint_and_its_plugin_adds_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("endpoints");
    let first = with_file(RecordingPm::new(), &file);
    block_on(first.adopt()).unwrap();
    assert_eq!(add(&first, "192.0.2.1").ok(), Some(1));
    block_on(first.suspend_endpoint(1)).unwrap();
    // Killed: the next run finds the record and no endpoint.
    let again = with_file(RecordingPm::new(), &file);
    assert_eq!(block_on(again.adopt()).ok(), Some(1));
    assert_eq!(again.adopted_addresses(), [(None, ip("192.0.2.1"))]);
    assert_eq!(again.address_id(ip("192.0.2.1")).ok(), Some(1));
    assert_eq!(add(&again, "192.0.2.1").ok(), Some(1));
    assert_eq!(
        again.kernel().endpoints(),
        [endpoint(1, "192.0.2.1", EndpointFlags::SUBFLOW)]
    );
    assert_eq!(block_on(again.remove_unclaimed()), 0);
    // A record like any other add's again: its intent (one write per add), no longer
    // suspended.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("endpoint adding 1 192.0.2.1"), "{text}");
    assert!(!text.contains("suspended"), "{text}");
}

#[test]
fn an_operators_endpoint_is_neither_removed_nor_given_to_a_plugin() {
    let pm = started(RecordingPm::new());
    assert_eq!(add(&pm, "192.0.2.1").ok(), Some(1));
    // Added over D-Bus with id 0: the daemon picks the next free id.
    let operator = endpoint(0, "198.51.100.1", EndpointFlags::SIGNAL);
    assert_eq!(block_on(pm.add_operator_endpoint(operator)).ok(), Some(2));
    // A plugin asking for that address gets its id, and releasing it keeps it.
    assert_eq!(pm.address_id(ip("198.51.100.1")).ok(), Some(2));
    pm.release_address_id(ip("198.51.100.1"));
    assert_eq!(
        pm.address_id(ip("192.0.2.9")).ok(),
        Some(3),
        "2 stays taken"
    );
    assert_eq!(
        pm.owned_endpoints(),
        [endpoint(1, "192.0.2.1", EndpointFlags::SUBFLOW)],
        "the plugins' only"
    );
    // An explicit id is used as given; a taken one is refused, not replaced.
    let taken = endpoint(1, "198.51.100.2", EndpointFlags::SIGNAL);
    assert!(block_on(pm.add_operator_endpoint(taken)).is_err());
    assert_eq!(block_on(pm.remove_unclaimed()), 0);
    assert_eq!(block_on(pm.remove_owned()), 1);
    assert_eq!(
        pm.kernel().endpoints(),
        [endpoint(2, "198.51.100.1", EndpointFlags::SIGNAL)],
        "the operator's stays"
    );
    assert_eq!(block_on(pm.remove_recorded()), 1);
    assert_eq!(pm.kernel().endpoints(), []);
}
