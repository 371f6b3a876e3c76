//! The lab (`cargo xtask lab`) end to end: subflows over both paths, bytes on each, and
//! nothing left behind, also when interrupted.

use std::{
    io::{BufRead as _, BufReader},
    process::{Command, Stdio},
};

use mptcpd_tests::{bins, net::ip, skip};

fn lab_namespaces() -> Vec<String> {
    ip::ip(&["netns", "list"])
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("mptcpd-lab-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn lab_carries_data_over_both_paths_and_cleans_up() {
    if !skip::require_root("lab_carries_data_over_both_paths_and_cleans_up") {
        return;
    }
    let out = Command::new(bins::path("mptcpd-lab").unwrap())
        .args(["--bytes", "4000000"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let subflows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("lab: client: subflow "))
        .collect();
    assert_eq!(subflows.len(), 2, "{stdout}");
    assert!(
        subflows.iter().any(|l| l.contains(": 192.0.2.1:")),
        "{stdout}"
    );
    assert!(
        subflows.iter().any(|l| l.contains(": 198.51.100.1:")),
        "{stdout}"
    );
    assert!(stdout.contains("received 4000000 bytes"), "{stdout}");
    // mptcpd's subflow telemetry showed both paths while the transfer ran (the lab fails
    // otherwise); path A's record is the initial subflow's.
    for (path, local) in [("A", "192.0.2.1:"), ("B", "198.51.100.1:")] {
        let prefix = format!("lab: telemetry, path {path}, last seen: {local}");
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no telemetry of path {path}: {stdout}"));
        assert!(!line.contains(" acked 0 B"), "{line}");
    }
    assert!(
        stdout.contains("0 TCP and 2 MPTCP stream sockets"),
        "{stdout}"
    );
    assert!(stdout.contains("removed everything it made"), "{stdout}");
    assert!(lab_namespaces().is_empty(), "{:?}", lab_namespaces());
    // mptcpctl monitor --json saw the join over path B and the close.
    let events: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("lab: mptcpctl monitor --json: "))
        .collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains(r#""event":"SF_ESTABLISHED""#)
                && e.contains(r#""local":"198.51.100.1:"#)),
        "{stdout}"
    );
    assert!(
        events.iter().any(|e| e.contains(r#""event":"CLOSED""#)),
        "{stdout}"
    );
}

#[test]
fn interrupted_lab_removes_everything() {
    if !skip::require_root("interrupted_lab_removes_everything") {
        return;
    }
    // A slow transfer, interrupted once it is under way.
    let mut lab = Command::new(bins::path("mptcpd-lab").unwrap())
        .args(["--bytes", "100000000", "--rate", "10mbit"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(lab.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let started = line.contains("extra subflow(s) after");
        seen.push(line);
        if started {
            break;
        }
    }
    assert!(
        !lab_namespaces().is_empty(),
        "the lab was running: {seen:?}"
    );
    let pid = i32::try_from(lab.id()).unwrap();
    // SAFETY: kill(2) on our own child, which has not been reaped.
    let sent = unsafe { libc::kill(pid, libc::SIGINT) };
    assert_eq!(sent, 0);
    seen.extend(lines.map(Result::unwrap));
    let rest = lab.wait_with_output().unwrap();
    let stdout = seen.join("\n");
    let stderr = String::from_utf8_lossy(&rest.stderr);
    assert!(!rest.status.success(), "an interrupted lab fails");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stdout.contains("removed everything it made"),
        "{stdout}\n{stderr}"
    );
    assert!(lab_namespaces().is_empty(), "{:?}", lab_namespaces());
}

#[test]
fn lab_with_the_external_path_manager_example_carries_data_over_both_paths() {
    const TEST: &str = "lab_with_the_external_path_manager_example_carries_data_over_both_paths";
    if !skip::require_root(TEST) {
        return;
    }
    let found = Command::new("/usr/bin/python3")
        .args(["-c", "import dbus_next"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found || !std::path::Path::new(mptcpd_tests::dbus::DBUS_DAEMON).exists() {
        skip::skip(
            TEST,
            "no python3-dbus-next or dbus-daemon (cargo xtask setup installs them)",
        );
        return;
    }
    let out = Command::new(bins::path("mptcpd-lab").unwrap())
        .args(["--bytes", "4000000", "--external-pm"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "lab: external_pm.py: subflow from 198.51.100.1 (c-b) to 192.0.2.2:5201: requested"
        ),
        "{stdout}"
    );
    let subflows = stdout
        .lines()
        .filter(|l| l.starts_with("lab: client: subflow "))
        .count();
    assert_eq!(subflows, 2, "{stdout}");
    assert!(
        stdout.contains("lab: path B (198.51.100.1) carried"),
        "{stdout}"
    );
    assert!(stdout.contains("removed everything it made"), "{stdout}");
    assert!(lab_namespaces().is_empty(), "{:?}", lab_namespaces());
}
