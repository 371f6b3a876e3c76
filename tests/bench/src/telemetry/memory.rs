//! Memory: many short MPTCP connections (each with a second subflow) from the observed
//! cgroup, bounded in count. Afterwards the namespace's record count is back to its value
//! before the run, and this observing process's resident memory within 5% of it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use mptcpd_tests::ebpf::cgroup::TestCgroup;

use super::{
    Figure, hosts,
    observer::{Observer, rss_kib},
    peer, server_addr, within,
};
use crate::storm::{Proto, StormServer};

const PART: &str = "memory";

pub(super) fn run(connections: usize) -> anyhow::Result<Vec<Figure>> {
    let hosts = hosts("mptcpd-b-mem")?;
    let cgroup = TestCgroup::new("mptcpd-b-mem")?;
    let observer = Observer::attach(&cgroup, &hosts.client, false)?;
    let server = StormServer::with_protocol(&hosts, server_addr(5330), Proto::Mptcp)?;
    // A first small storm, so that what the first connections allocate once counts as before.
    server.serve_while(100, || {
        peer::run_connect_storm(&hosts.client, &cgroup, server_addr(5330), 100, Proto::Mptcp)
    })?;
    settle(&observer, 0)?;
    let entries_before = observer.entries()?;
    let stats_before = observer.telemetry.stats()?;
    let rss_before = rss_kib()?;
    let started = Instant::now();
    server.serve_while(connections, || {
        peer::run_connect_storm(
            &hosts.client,
            &cgroup,
            server_addr(5330),
            connections,
            Proto::Mptcp,
        )
    })?;
    let storm = started.elapsed();
    let entries_after = settle(&observer, entries_before)?;
    let rss_after = rss_kib()?;
    let stats = observer.telemetry.stats()?;
    let drained = observer.drained.load(std::sync::atomic::Ordering::Relaxed);
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let count = |n: u64| n as f64;
    let usize_count = |n: usize| count(n as u64);
    let mut entries = Figure::compared(
        PART,
        "records after the run",
        "entries",
        usize_count(entries_after),
        ("before the run", usize_count(entries_before)),
        ("equal", |r| (r - 1.0).abs() < f64::EPSILON),
    );
    // Before and after are both 0 when nothing stays open: the ratio is then undefined.
    if entries_before == 0 {
        entries.ratio = None;
        entries.met = Some(entries_after == 0);
        "0 before and 0 after means met".clone_into(&mut entries.note);
    }
    let mut rss = Figure::compared(
        PART,
        "observer VmRSS after the run",
        "KiB",
        rss_after,
        ("before the run", rss_before),
        ("within 5%", |r| within(r, 5.0)),
    );
    rss.note = format!(
        "{connections} connections in {:.1} s ({:.0}/s), 4 client threads",
        storm.as_secs_f64(),
        usize_count(connections) / storm.as_secs_f64()
    );
    let mut figures = vec![entries, rss];
    for (name, after, before) in [
        (
            "records created during the run",
            stats.created,
            stats_before.created,
        ),
        (
            "records removed at close",
            stats.removed,
            stats_before.removed,
        ),
        ("records evicted (LRU)", stats.evicted, stats_before.evicted),
        (
            "events lost (ring full)",
            stats.events_lost,
            stats_before.events_lost,
        ),
        ("events read by the observer", drained, 0),
    ] {
        figures.push(Figure::plain(
            PART,
            name,
            "",
            count(after.saturating_sub(before)),
        ));
    }
    Ok(figures)
}

/// Polls (at most 30 s: closes finish in the kernel after the processes) until the record
/// count is `target`; the count then.
fn settle(observer: &Observer, target: usize) -> anyhow::Result<usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let entries = observer.entries().context("reading the records")?;
        if entries <= target || Instant::now() > deadline {
            return Ok(entries);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
