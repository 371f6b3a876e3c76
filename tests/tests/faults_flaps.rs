//! Fault injection: the link of the address the daemon manages flaps at 50 Hz while an
//! administrator adds and removes endpoints of their own. Afterwards the endpoint table
//! converges: the daemon's endpoint is there exactly when the link ended up, once; the
//! administrator's endpoints are exactly what the administrator left, ids and flags included.
//!
//! Bounded (`cargo xtask test`): one round of 2 s of flapping. Soak (`cargo xtask soak`): five
//! rounds of 10 s. Every random choice comes from the printed seed.

use std::{
    collections::BTreeMap,
    io::Write as _,
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    faults::Faults,
    kernel_pm::endpoints,
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    skip,
};

const TEST: &str = "link_flaps_while_an_administrator_edits_endpoints_converge";
/// Flaps (down and up) per second.
const FLAP_HZ: u32 = 50;
/// The link and the address the daemon manages.
const LINK: &str = "fl-a";
const MANAGED: &str = "192.0.2.1";
/// The administrator's addresses are 198.51.100.N for N in this range; half of their
/// endpoints get an explicit id (200 and up), the others none (the kernel picks one, which can
/// be the id the daemon's ID manager would have handed out next: the daemon must cope).
const ADMIN_SLOTS: std::ops::RangeInclusive<u8> = 1..=55;
/// At most this many at once: with the daemon's one, under the kernel's 8 endpoints.
const ADMIN_MAX: usize = 5;
const ADMIN_FLAGS: [&str; 4] = ["signal", "subflow", "subflow backup", "signal backup"];

/// One endpoint as `ip mptcp endpoint show` prints it, id included.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    id: u8,
    addr: String,
    flags: String,
    dev: Option<String>,
}

fn show(ns: &NetNs) -> Vec<Shown> {
    let text = ns.ip(&["mptcp", "endpoint", "show"]).unwrap();
    let mut all = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(addr) = words.next() else {
            continue;
        };
        let (mut id, mut flags, mut dev) = (0, Vec::new(), None);
        while let Some(word) = words.next() {
            match word {
                "id" => id = words.next().and_then(|w| w.parse().ok()).unwrap_or(0),
                "dev" => dev = words.next().map(str::to_owned),
                flag => flags.push(flag),
            }
        }
        flags.sort_unstable();
        all.push(Shown {
            id,
            addr: addr.to_owned(),
            flags: flags.join(" "),
            dev,
        });
    }
    all.sort();
    all
}

/// `ip -force -batch -` in a namespace: link commands as fast as the kernel takes them,
/// without a process per command.
struct Batch {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Batch {
    fn start(ns: &NetNs) -> Self {
        let mut child = ns
            .command("ip")
            .unwrap()
            .args(["-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        Self { child, stdin }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("open");
        writeln!(stdin, "{line}").unwrap();
    }

    /// Waits until every command ran; each must have succeeded.
    fn finish(mut self) {
        drop(self.stdin.take());
        let out = self.child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ip -batch: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// What the administrator added and has not removed: id to (address, flags).
type Admin = BTreeMap<u8, (String, String)>;

/// One random step of the administrator: add an endpoint or remove one of theirs. Each must
/// succeed: a failed removal would mean someone else (the daemon) removed it.
fn administer(ns: &NetNs, rng: &mut fastrand::Rng, admin: &mut Admin) {
    let add = admin.is_empty() || (admin.len() < ADMIN_MAX && rng.bool());
    if add {
        let used: Vec<&str> = admin.values().map(|(addr, _)| addr.as_str()).collect();
        let free: Vec<String> = ADMIN_SLOTS
            .map(|n| format!("198.51.100.{n}"))
            .filter(|addr| !used.contains(&addr.as_str()))
            .collect();
        let addr = free[rng.usize(..free.len())].clone();
        let flags = ADMIN_FLAGS[rng.usize(..ADMIN_FLAGS.len())];
        // An explicit id from a range the daemon's lowest-free choice never reaches here,
        // free in the table (the kernel's own picks for id-less adds may have taken some).
        let taken: Vec<u8> = show(ns).iter().map(|e| e.id).collect();
        let explicit = rng
            .bool()
            .then(|| {
                let free: Vec<u8> = (200..=254).filter(|id| !taken.contains(id)).collect();
                (!free.is_empty()).then(|| free[rng.usize(..free.len())].to_string())
            })
            .flatten();
        let mut args = vec!["mptcp", "endpoint", "add", addr.as_str()];
        if let Some(id) = &explicit {
            args.extend(["id", id.as_str()]);
        }
        args.extend(flags.split(' '));
        ns.ip(&args).unwrap();
        let id = show(ns)
            .iter()
            .find(|e| e.addr == addr)
            .map(|e| e.id)
            .expect("the administrator's new endpoint");
        let mut sorted: Vec<&str> = flags.split(' ').collect();
        sorted.sort_unstable();
        admin.insert(id, (addr, sorted.join(" ")));
    } else {
        let ids: Vec<u8> = admin.keys().copied().collect();
        let id = ids[rng.usize(..ids.len())];
        ns.ip(&["mptcp", "endpoint", "delete", "id", &id.to_string()])
            .unwrap_or_else(|e| panic!("the administrator's endpoint {id} is gone: {e:#}"));
        admin.remove(&id);
    }
}

/// Flaps the link for `duration`, the administrator acting every fifth transition; leaves
/// the link up or down at random and returns whether it is up.
fn flap(ns: &NetNs, rng: &mut fastrand::Rng, admin: &mut Admin, duration: Duration) -> bool {
    let mut batch = Batch::start(ns);
    let period = Duration::from_secs(1) / (2 * FLAP_HZ);
    let started = Instant::now();
    let mut up = true;
    let mut tick = 0_u32;
    while started.elapsed() < duration {
        up = !up;
        batch.send(&format!(
            "link set {LINK} {}",
            if up { "up" } else { "down" }
        ));
        if tick.is_multiple_of(5) {
            administer(ns, rng, admin);
        }
        tick += 1;
        // Pacing of the fault only; nothing is asserted on time.
        let next = started + period * tick;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let end_up = rng.bool();
    batch.send(&format!(
        "link set {LINK} {}",
        if end_up { "up" } else { "down" }
    ));
    batch.finish();
    end_up
}

/// A link and address the test adds after the faults, so that the daemon's endpoint for it
/// marks the point by which it has handled every earlier network event (they reach the
/// plugins in order, on one lane); its removal is waited for too.
const MARK_LINK: &str = "fl-mark";
const MARK: &str = "203.0.113.1";

/// Waits until the daemon has handled every network event before this call.
fn barrier(ns: &NetNs, peer: &NetNs) {
    let link = VethPair::new(MARK_LINK, ns, "fl-markp", peer).unwrap();
    let mark = Address::add(ns, MARK_LINK, &format!("{MARK}/32")).unwrap();
    endpoints::wait_until(ns, "the marker's endpoint", |table| {
        table.iter().any(|e| e.addr == MARK)
    })
    .unwrap();
    drop(mark);
    drop(link);
    endpoints::wait_until(ns, "the marker's endpoint gone", |table| {
        !table.iter().any(|e| e.addr == MARK)
    })
    .unwrap();
}

/// The table must become the administrator's endpoints plus, with the link up, the daemon's
/// one for [`MANAGED`] (bounded by the harness's hang limit), once the daemon has handled
/// every event of the faults (else a table seen between a late "down" and its "up" fails).
fn converge(ns: &NetNs, peer: &NetNs, admin: &Admin, link_up: bool) {
    barrier(ns, peer);
    let converged = endpoints::wait_until(ns, "convergence after the flaps", |table| {
        let managed = table.iter().filter(|e| e.addr == MANAGED).count();
        managed == usize::from(link_up) && table.len() == admin.len() + managed
    });
    converged.unwrap();
    let shown = show(ns);
    let theirs: Admin = shown
        .iter()
        .filter(|e| e.addr != MANAGED)
        .map(|e| (e.id, (e.addr.clone(), e.flags.clone())))
        .collect();
    assert_eq!(&theirs, admin, "the administrator's endpoints changed");
    let ours: Vec<&Shown> = shown.iter().filter(|e| e.addr == MANAGED).collect();
    if link_up {
        assert_eq!(ours.len(), 1, "{shown:?}");
        assert_eq!(ours[0].flags, "subflow", "{shown:?}");
        assert_eq!(ours[0].dev.as_deref(), Some(LINK), "{shown:?}");
    }
}

#[test]
fn link_flaps_while_an_administrator_edits_endpoints_converge() {
    if !skip::require_root(TEST) {
        return;
    }
    let faults = Faults::new(TEST);
    let mut rng = faults.rng();
    let flapping = Duration::from_secs(if faults.soak() { 10 } else { 2 });
    let ns = NetNs::new("mptcpd-t-flap").unwrap();
    let peer = NetNs::new("mptcpd-t-flap").unwrap();
    let _link = VethPair::new(LINK, &ns, "fl-b", &peer).unwrap();
    // An empty configuration of its own: /etc/mptcpd/mptcpd.conf must not count.
    let config = tempfile::Builder::new()
        .prefix("mptcpd-flaps-")
        .tempfile()
        .unwrap();
    let mut cmd: Command = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .args(["--path-manager", "addr_adv", "--addr-flags", "subflow"])
        .args(["--notify-flags", "skip_link_local,skip_loopback"])
        .arg(format!("--bpf-pin-dir=/sys/fs/bpf/{}", ns.name()));
    let mut daemon = Daemon::start(cmd).unwrap();
    let _managed = Address::add(&ns, LINK, &format!("{MANAGED}/24")).unwrap();
    let mut admin = Admin::new();
    converge(&ns, &peer, &admin, true);

    for _round in 0..faults.rounds(1, 5) {
        let link_up = flap(&ns, &mut rng, &mut admin, flapping);
        converge(&ns, &peer, &admin, link_up);
        daemon.check_running().unwrap();
    }
    // The link comes back: so does the daemon's endpoint, once.
    ns.ip(&["link", "set", LINK, "up"]).unwrap();
    converge(&ns, &peer, &admin, true);

    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    // Only the daemon's own endpoint went with it.
    let left: Admin = show(&ns)
        .into_iter()
        .map(|e| (e.id, (e.addr, e.flags)))
        .collect();
    assert_eq!(left, admin);
}
