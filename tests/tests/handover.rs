//! What a SIGTERM does to the daemon's endpoints under systemd: a restart (the unit's pending
//! job is `restart`) leaves them for the next daemon, which adopts them with the same ids and
//! no duplicate; a stop (`stop`, or no job at all) removes them. systemd is faked on a
//! private system-like bus by the three calls the daemon makes (`GetUnitByPID`, the unit's
//! `Job`, the job's `JobType`); the real one answers in the systemd VM stage.
//! Needs root and `dbus-daemon` (else `skipped: TEST: REASON`, or a failure under `CI=true`).

use std::{
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use mptcpd_tests::{
    bins,
    daemon::{
        process::Daemon,
        restart_lab::{RestartLab, foreign, ours},
    },
    dbus::SystemLikeBus,
};
use zbus::{interface, zvariant::OwnedObjectPath};

/// What lets the fake own systemd's name and the daemon call it.
const FAKE_POLICY: &str = r#"
  <policy user="root"><allow own="org.freedesktop.systemd1"/></policy>
  <policy context="default"><allow send_destination="org.freedesktop.systemd1"/></policy>
"#;
const UNIT: &str = "/org/freedesktop/systemd1/unit/mptcp_2eservice";
const JOB: &str = "/org/freedesktop/systemd1/job/42";

/// The pending job's type; `None`: no job.
type Pending = Arc<Mutex<Option<&'static str>>>;

/// The pids `GetUnitByPID` was asked about.
type Asked = Arc<Mutex<Vec<u32>>>;

struct Manager(Asked);

#[interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    #[zbus(name = "GetUnitByPID")]
    fn get_unit_by_pid(&self, pid: u32) -> OwnedObjectPath {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(pid);
        OwnedObjectPath::try_from(UNIT).unwrap()
    }
}

struct Unit(Pending);

#[interface(name = "org.freedesktop.systemd1.Unit")]
impl Unit {
    #[zbus(property)]
    fn job(&self) -> (u32, OwnedObjectPath) {
        match *self.0.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(_) => (42, OwnedObjectPath::try_from(JOB).unwrap()),
            None => (0, OwnedObjectPath::try_from("/").unwrap()),
        }
    }
}

struct Job(Pending);

#[interface(name = "org.freedesktop.systemd1.Job")]
impl Job {
    #[zbus(property)]
    fn job_type(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or("none")
            .to_owned()
    }
}

/// Serves the fake systemd on `address` from a thread of its own (the test blocks); returns
/// once the name is taken.
fn fake_systemd(address: &str, pending: &Pending, asked: &Asked) {
    let (ready, taken) = std::sync::mpsc::channel();
    let address = address.to_owned();
    let pending = pending.clone();
    let asked = asked.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let bus = zbus::connection::Builder::address(address.as_str())
                .unwrap()
                .name("org.freedesktop.systemd1")
                .unwrap()
                .serve_at("/org/freedesktop/systemd1", Manager(asked))
                .unwrap()
                .serve_at(UNIT, Unit(pending.clone()))
                .unwrap()
                .serve_at(JOB, Job(pending))
                .unwrap()
                .build()
                .await
                .unwrap();
            ready.send(()).unwrap();
            // Served until the test process ends.
            std::future::pending::<()>().await;
            drop(bus);
        });
    });
    taken.recv().expect("the fake systemd took its name");
}

/// The daemon as systemd starts it (`INVOCATION_ID`), on the private bus.
fn start(lab: &RestartLab, state: &Path, bus: &str) -> Daemon {
    let config = state.join("empty.conf");
    std::fs::write(&config, "").unwrap();
    let mut cmd = lab.ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--debug", "--config"])
        .arg(&config)
        .args(["--path-manager", "addr_adv", "--addr-flags", "subflow"])
        .args(["--notify-flags", "existing"])
        .arg("--state-dir")
        .arg(state)
        // Not on bpffs: pinning fails with a warning and leaves nothing behind.
        .arg("--bpf-pin-dir")
        .arg(state.join("pins"))
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .env("INVOCATION_ID", "0123456789abcdef0123456789abcdef");
    Daemon::start(cmd).unwrap()
}

#[test]
fn a_restart_hands_the_endpoints_over_and_a_stop_removes_them() {
    const TEST: &str = "a_restart_hands_the_endpoints_over_and_a_stop_removes_them";
    let Some(bus) = SystemLikeBus::for_test(TEST, FAKE_POLICY).unwrap() else {
        return;
    };
    let pending = Pending::default();
    let asked = Asked::default();
    fake_systemd(bus.address(), &pending, &asked);
    let lab = RestartLab::new("mptcpd-t-handover").unwrap();
    let state = tempfile::tempdir().unwrap();
    lab.add("198.51.100.1", "rl0").unwrap();
    lab.add("2001:db8::1", "rl1").unwrap();
    let held = [
        ours("198.51.100.1", "rl0"),
        ours("2001:db8::1", "rl1"),
        foreign(),
    ];

    let daemon = start(&lab, state.path(), bus.address());
    let before = lab.wait_for("the first daemon's endpoints", &held).unwrap();
    *pending.lock().unwrap() = Some("restart");
    let pid = daemon.pid();
    let (status, log) = daemon.stop().unwrap();
    assert_eq!(
        *asked.lock().unwrap(),
        [pid],
        "the daemon asks for its own unit"
    );
    assert!(status.success(), "{log}");
    assert_eq!(
        lab.endpoints().unwrap(),
        before,
        "a restart keeps the endpoints\n{log}"
    );
    assert!(log.contains("left for the next one to adopt"), "{log}");

    // The next daemon adopts them: same ids, nothing added twice.
    *pending.lock().unwrap() = None;
    let daemon = start(&lab, state.path(), bus.address());
    assert_eq!(lab.endpoints().unwrap(), before, "{}", daemon.log());
    lab.add("198.51.100.2", "rl0").unwrap();
    let mut grown = held.to_vec();
    grown.push(ours("198.51.100.2", "rl0"));
    lab.wait_for("a new address after the adoption", &grown)
        .unwrap();
    // No job (`systemctl kill`): a stop.
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    lab.wait_for("ours removed without a job", &[foreign()])
        .unwrap();

    let daemon = start(&lab, state.path(), bus.address());
    lab.wait_for("the third daemon's endpoints", &grown)
        .unwrap();
    *pending.lock().unwrap() = Some("stop");
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    lab.wait_for("ours removed on a stop job", &[foreign()])
        .unwrap();
}
