//! The host-wide cost when attached at the root cgroup (the default on a real host): there the
//! program runs for every TCP connection, and for plain TCP it only looks at each connection
//! once established (no further callbacks). Measured on a test cgroup holding the connecting
//! process, which costs each of its connections the same: rounds of plain TCP connections
//! with the program attached and without, interleaved; wall time and the connecting
//! process's CPU time per connection.

use std::time::Instant;

use mptcpd_tests::ebpf::cgroup::TestCgroup;

use super::{Figure, OnOff, hosts, interleaved, median, peer, server_addr};
use crate::storm::{Proto, StormServer};

const PART: &str = "connect-cost";

pub(super) fn run(rounds: usize, connects: usize) -> anyhow::Result<Vec<Figure>> {
    let hosts = hosts("mptcpd-b-cc")?;
    let cgroup = TestCgroup::new("mptcpd-b-cc")?;
    let server = StormServer::with_protocol(&hosts, server_addr(5340), Proto::Tcp)?;
    let round = |n: usize| -> anyhow::Result<(f64, f64)> {
        let started = Instant::now();
        let cpu = server.serve_while(n, || {
            peer::run_connect_storm(&hosts.client, &cgroup, server_addr(5340), n, Proto::Tcp)
        })?;
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let n = n as f64;
        Ok((
            started.elapsed().as_secs_f64() * 1e6 / n,
            cpu.as_secs_f64() * 1e6 / n,
        ))
    };
    // Warm-up, not counted.
    let _warm = round(connects / 4)?;
    let OnOff { mut on, mut off } = interleaved(rounds, &cgroup, &hosts.client, |observer| {
        let (wall, cpu) = round(connects)?;
        if let Some(observer) = observer {
            // Plain TCP never gets a record.
            anyhow::ensure!(
                observer.telemetry.stats()?.created == 0,
                "records for plain TCP"
            );
        }
        Ok([wall, cpu])
    })?;
    let note = format!(
        "{rounds} rounds of {connects} plain TCP connections per mode (connect, 1 byte each way, close), interleaved; medians; \
         the program attached at the root adds this to every TCP connection of the host"
    );
    let (on_cpu, off_cpu) = (median(&mut on[1]), median(&mut off[1]));
    let mut wall = Figure::compared(
        PART,
        "wall time per TCP connection, program attached",
        "us",
        median(&mut on[0]),
        ("not attached", median(&mut off[0])),
        ("", |_| true),
    )
    .untargeted();
    wall.note.clone_from(&note);
    let mut cpu = Figure::compared(
        PART,
        "client CPU per TCP connection, program attached",
        "us",
        on_cpu,
        ("not attached", off_cpu),
        ("", |_| true),
    )
    .untargeted();
    cpu.note = note;
    Ok(vec![
        wall,
        cpu,
        Figure::plain(
            PART,
            "client CPU added per TCP connection",
            "us",
            on_cpu - off_cpu,
        ),
    ])
}
