//! Detection: both paths limited by `tbf` so that the scheduler uses both, then path 2
//! blackholed by an nftables drop in the receiving (server's) input hook, link left up. The
//! time from the rule landing to the RTO event of that subflow arriving from the ring buffer,
//! against the subflow's RTO (`tcpi_rto`) read when the rule lands. Target: <= 1.5.

use std::{
    io::Write as _,
    net::IpAddr,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use mptcpd_common::telemetry::EVENT_RTO;
use mptcpd_tests::{
    ebpf::cgroup::TestCgroup,
    net::{netns::NetNs, two_hosts::IpVersion},
    sockets::mptcp,
};

use super::{
    Figure, hosts, median, not_measured, observer::Observer, peer::Sender, server_addr, tc,
};

const PART: &str = "detection";
const TABLE: &str = "mptcpd_bench_blackhole";

pub(super) fn run(rounds: usize) -> anyhow::Result<Vec<Figure>> {
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        return Ok(not_measured(
            PART,
            &["RTO event after blackholing"],
            "needs nft (Debian package nftables)",
        ));
    }
    let hosts = hosts("mptcpd-b-det")?;
    for dev in ["c1", "c2"] {
        tc(
            &hosts.client,
            &[
                "qdisc", "add", "dev", dev, "root", "tbf", "rate", "50mbit", "burst", "32kbit",
                "latency", "100ms",
            ],
        )?;
    }
    let cgroup = TestCgroup::new("mptcpd-b-det")?;
    let observer = Observer::attach(&cgroup, &hosts.client, true)?;
    let path2 = IpVersion::V4.addr(2, 1);
    let mut ratios = Vec::new();
    let mut detections = Vec::new();
    let mut rtos = Vec::new();
    for round in 0..rounds {
        let port = 5310 + u16::try_from(round)?;
        let listener = hosts.server.run(|| mptcp::listen(server_addr(port)))??;
        let (detection, rto) = std::thread::scope(|scope| -> anyhow::Result<(Duration, u32)> {
            let receiver = scope.spawn(|| super::peer::receive_one(&listener));
            let mut sender = Sender::start(&hosts.client, &cgroup, server_addr(port), 1 << 40)?;
            let measured = blackhole(&hosts.server, &observer, &mut sender, path2);
            sender.kill();
            let _received = receiver.join();
            nft(&hosts.server, &format!("delete table inet {TABLE}\n"))?;
            measured
        })?;
        eprintln!(
            "bench: detection round {round}: RTO event after {detection:.1?}, tcpi_rto {rto} us"
        );
        let seconds = detection.as_secs_f64();
        ratios.push(seconds / (f64::from(rto) / 1e6));
        detections.push(seconds * 1e3);
        rtos.push(f64::from(rto) / 1e3);
    }
    let worst = ratios.iter().copied().fold(f64::NAN, f64::max);
    let mut figure = Figure::compared(
        PART,
        "RTO event after blackholing path 2, median",
        "ms",
        median(&mut detections),
        (
            "the subflow's tcpi_rto when the rule landed, median",
            median(&mut rtos),
        ),
        ("<= 1.5", |r| r <= 1.5),
    );
    figure.note = format!(
        "{rounds} rounds, ratio per round median {:.3}, worst {worst:.3}; tbf 50mbit on both paths",
        median(&mut ratios)
    );
    Ok(vec![figure])
}

/// Waits until both subflows carry data, drops path 2's input at the server, and waits for
/// the RTO event of the client's path-2 subflow: how long it took, and the RTO then.
fn blackhole(
    server: &NetNs,
    observer: &Observer,
    sender: &mut Sender,
    path2: IpAddr,
) -> anyhow::Result<(Duration, u32)> {
    sender.wait_all_carry(1 << 20)?;
    observer.discard_events();
    nft(
        server,
        &format!(
            "table inet {TABLE} {{\n chain input {{\n  type filter hook input priority 0;\n  iifname \"s2\" drop\n }}\n}}\n"
        ),
    )?;
    let landed = Instant::now();
    let rto = sender
        .info()?
        .iter()
        .find(|s| s.local.ip() == path2)
        .map(|s| s.rto_us)
        .context("no path-2 subflow")?;
    let deadline = landed + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let (at, event) = observer
            .events
            .recv_timeout(left)
            .context("no RTO event within 30 s")?;
        if event.kind == EVENT_RTO && event.record.local().ip() == path2 {
            return Ok((at.saturating_duration_since(landed), rto));
        }
    }
}

/// `nft -f -` with `script`, in `netns`.
fn nft(netns: &NetNs, script: &str) -> anyhow::Result<()> {
    let mut child = netns
        .command("nft")?
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("nft without stdin")?
        .write_all(script.as_bytes())?;
    if !child.wait()?.success() {
        bail!("nft -f - failed on {script:?}");
    }
    Ok(())
}
