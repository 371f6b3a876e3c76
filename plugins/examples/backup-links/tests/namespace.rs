//! The example binary in a network namespace of its own: its plugin's decision (a `backup`
//! endpoint for the cellular link's address, a plain one for the other) reaches the kernel,
//! and its endpoints go when it stops.
//!
//! Needs root (else it prints `skipped: TEST: REASON`, or panics under `CI=true`).

use mptcpd_tests::{
    daemon::process::Daemon,
    kernel_pm::endpoints::{self, Entry},
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    skip,
};

const NAME: &str = "the_example_adds_a_backup_endpoint_for_the_cellular_link";

#[test]
fn the_example_adds_a_backup_endpoint_for_the_cellular_link() {
    if !skip::require_root(NAME) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-exbl").unwrap();
    let _cellular = VethPair::new("wwan-bl0", &ns, "peer-bl0", &ns).unwrap();
    let _wired = VethPair::new("eth-bl0", &ns, "peer-bl1", &ns).unwrap();
    let _a = Address::add(&ns, "wwan-bl0", "198.51.100.7/24").unwrap();
    let _b = Address::add(&ns, "eth-bl0", "203.0.113.7/24").unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut cmd = ns
        .command(env!("CARGO_BIN_EXE_mptcpd-backup-links"))
        .unwrap();
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .arg("--state-dir")
        .arg(state.path())
        .args(["--load-plugins", "backup_links"])
        .args(["--notify-flags", "existing,skip_loopback"])
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-exbl"]);
    let daemon = Daemon::start(cmd).unwrap();
    // The cellular link's address is a backup path, the wired one's is not.
    let expected = [
        Entry::new("198.51.100.7", "subflow backup", Some("wwan-bl0")),
        Entry::new("203.0.113.7", "subflow", Some("eth-bl0")),
    ];
    let reached = endpoints::wait_until(&ns, "the plugin's two endpoints", |table| {
        table.iter().eq(expected.iter())
    });
    if let Err(e) = reached {
        panic!("{e:#}\n{}", daemon.log());
    }

    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let left = endpoints::show(&ns).unwrap();
    assert!(
        left.is_empty(),
        "its endpoints removed:\n{}",
        endpoints::display(&left)
    );
}
