//! Overhead: bulk MPTCP transfers over both paths from the observed cgroup, with the program
//! attached and without, interleaved. Throughput (bytes over the wall time from the sender's
//! start to the receiver's end) within 2%, CPU per byte (the sender's and the receiving
//! thread's user + system time) within 5%.

use std::time::Instant;

use mptcpd_tests::{ebpf::cgroup::TestCgroup, sockets::mptcp};

use super::{Figure, OnOff, hosts, interleaved, median, peer::Sender, server_addr, within};

const PART: &str = "overhead";

/// One transfer: (bytes/s, CPU ns per byte).
fn transfer(
    hosts: &mptcpd_tests::net::two_hosts::TwoHosts,
    cgroup: &TestCgroup,
    port: u16,
    bytes: u64,
) -> anyhow::Result<(f64, f64)> {
    let listener = hosts.server.run(|| mptcp::listen(server_addr(port)))??;
    std::thread::scope(|scope| {
        let started = Instant::now();
        let reading = scope.spawn(|| super::peer::receive_one(&listener));
        let sender = Sender::start(&hosts.client, cgroup, server_addr(port), bytes)?;
        let sender_cpu = sender.finish()?;
        let (bytes_in, reader_cpu) = reading
            .join()
            .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
        let wall = started.elapsed().as_secs_f64();
        #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
        let bytes_in = bytes_in as f64;
        let cpu_ns = (sender_cpu + reader_cpu).as_secs_f64() * 1e9;
        Ok((bytes_in / wall, cpu_ns / bytes_in))
    })
}

pub(super) fn run(runs: usize, bytes: u64) -> anyhow::Result<Vec<Figure>> {
    let hosts = hosts("mptcpd-b-ovh")?;
    let cgroup = TestCgroup::new("mptcpd-b-ovh")?;
    let mut port = 5320;
    // A warm-up transfer, not counted.
    let _warm = transfer(&hosts, &cgroup, port, bytes / 4)?;
    let OnOff { mut on, mut off } = interleaved(runs, &cgroup, &hosts.client, |observer| {
        port += 1;
        let (rate, cpu) = transfer(&hosts, &cgroup, port, bytes)?;
        let mbit = rate * 8.0 / 1e6;
        eprintln!(
            "bench: overhead telemetry {}: {mbit:.0} Mbit/s, {cpu:.3} CPU ns/byte",
            if observer.is_some() { "on" } else { "off" },
        );
        Ok([mbit, cpu])
    })?;
    let note = format!(
        "{runs} transfers of {} MiB per mode, interleaved (the order alternating); medians",
        bytes >> 20
    );
    let mut rate = Figure::compared(
        PART,
        "throughput, telemetry on",
        "Mbit/s",
        median(&mut on[0]),
        ("telemetry off", median(&mut off[0])),
        ("within 2%", |r| within(r, 2.0)),
    );
    rate.note.clone_from(&note);
    let mut cpu = Figure::compared(
        PART,
        "CPU per byte, telemetry on",
        "ns/B",
        median(&mut on[1]),
        ("telemetry off", median(&mut off[1])),
        ("within 5%", |r| within(r, 5.0)),
    );
    cpu.note = note;
    Ok(vec![rate, cpu])
}
