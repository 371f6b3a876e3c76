//! Routing sanity against the real kernel: an address whose traffic has no default route out
//! through its own interface is warned about once, with the `ip rule from ADDR table N` recipe;
//! an address routed by source (that recipe) or by the main table is not.

use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    skip,
};

#[test]
fn an_address_without_a_route_out_through_its_interface_is_warned_about_once() {
    let test = "an_address_without_a_route_out_through_its_interface_is_warned_about_once";
    if !skip::require_root(test) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-rsan").unwrap();
    let peer = NetNs::new("mptcpd-t-rsan").unwrap();
    let _main = VethPair::new("rs-main", &ns, "rp-main", &peer).unwrap();
    let _side = VethPair::new("rs-side", &ns, "rp-side", &peer).unwrap();
    let _routed = Address::add(&ns, "rs-main", "198.51.100.7/24").unwrap();
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "198.51.100.1",
        "dev",
        "rs-main",
    ])
    .unwrap();
    let unrouted = Address::add(&ns, "rs-side", "203.0.113.7/24").unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--addr-flags", "subflow"])
        .args(["--notify-flags", "existing,skip_loopback"])
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-rsan"]);
    let mut daemon = Daemon::start(cmd).unwrap();
    daemon
        .wait_for_log("203.0.113.7 on rs-side: no default route through rs-side")
        .unwrap();

    // Routed by source, as the recipe says: no warning.
    ns.ip(&["rule", "add", "from", "192.0.2.7", "table", "100"])
        .unwrap();
    ns.ip(&[
        "route",
        "add",
        "default",
        "via",
        "192.0.2.1",
        "dev",
        "rs-side",
        "onlink",
        "table",
        "100",
    ])
    .unwrap();
    let _by_source = Address::add(&ns, "rs-side", "192.0.2.7/24").unwrap();
    // Gone and back: warned about once only.
    drop(unrouted);
    let _again = Address::add(&ns, "rs-side", "203.0.113.7/24").unwrap();
    // The monitor checks in order: once this one is warned about, the others were checked.
    let _marker = Address::add(&ns, "rs-side", "203.0.113.8/24").unwrap();
    daemon.wait_for_log("203.0.113.8 on rs-side").unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let warnings = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(warnings("203.0.113.7 on rs-side"), 1, "once:\n{log}");
    let line = log
        .lines()
        .find(|l| l.contains("203.0.113.7 on rs-side"))
        .unwrap_or_default();
    assert!(line.contains(" WARN "), "{line}");
    assert!(
        line.contains("`ip rule add from 203.0.113.7 table 100`"),
        "the recipe:\n{line}"
    );
    assert_eq!(warnings("198.51.100.7 on"), 0, "main table:\n{log}");
    assert_eq!(warnings("192.0.2.7 on"), 0, "routed by source:\n{log}");
}
