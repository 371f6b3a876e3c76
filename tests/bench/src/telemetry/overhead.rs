//! Overhead: bulk MPTCP transfers over both paths from the observed cgroup, with the program
//! attached and without, interleaved. Throughput (bytes over the wall time from the sender's
//! start to the receiver's end) within 2%, CPU per byte (the sender's and the receiving
//! thread's user + system time) within 5%.
//!
//! On a shared machine single transfers spread far wider than 2%, so the kernel's run-time
//! statistics are on for the part (`BPF_ENABLE_STATS`): the programs' own time per transfer
//! bounds what they cost, and judges a target whose direct ratio is lost in its spread.

use std::{collections::BTreeMap, fmt::Write as _, time::Instant};

use mptcpd_tests::{ebpf::cgroup::TestCgroup, sockets::mptcp};

use super::{
    Figure, OnOff,
    bound::{self, ProgramCost, Worse},
    hosts, interleaved, median,
    observer::Observer,
    peer::Sender,
    server_addr, within,
};

const PART: &str = "overhead";

/// One transfer's measurements.
struct Transfer {
    bytes: f64,
    wall_ns: f64,
    cpu_ns: f64,
}

impl Transfer {
    fn mbit_per_s(&self) -> f64 {
        self.bytes * 8.0 / self.wall_ns * 1e3
    }

    fn cpu_per_byte(&self) -> f64 {
        self.cpu_ns / self.bytes
    }
}

fn transfer(
    hosts: &mptcpd_tests::net::two_hosts::TwoHosts,
    cgroup: &TestCgroup,
    port: u16,
    bytes: u64,
) -> anyhow::Result<Transfer> {
    let listener = hosts.server.run(|| mptcp::listen(server_addr(port)))??;
    std::thread::scope(|scope| {
        let started = Instant::now();
        let reading = scope.spawn(|| super::peer::receive_one(&listener));
        let sender = Sender::start(&hosts.client, cgroup, server_addr(port), bytes)?;
        let sender_cpu = sender.finish()?;
        let (bytes_in, reader_cpu) = reading
            .join()
            .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
        #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
        let bytes = bytes_in as f64;
        Ok(Transfer {
            bytes,
            wall_ns: started.elapsed().as_secs_f64() * 1e9,
            cpu_ns: (sender_cpu + reader_cpu).as_secs_f64() * 1e9,
        })
    })
}

/// Each program's time and runs, summed over the transfers.
type PerProgram = BTreeMap<String, (f64, f64)>;

pub(super) fn run(runs: usize, bytes: u64) -> anyhow::Result<Vec<Figure>> {
    let hosts = hosts("mptcpd-b-ovh")?;
    let cgroup = TestCgroup::new("mptcpd-b-ovh")?;
    // Counted while held; both modes run under it, so both pay its clock reads alike.
    let _stats = mptcpd_bpf::enable_run_time_stats()?;
    let mut port = 5320;
    // A warm-up transfer, not counted.
    let _warm = transfer(&hosts, &cgroup, port, bytes / 4)?;
    let mut costs = Vec::new();
    let mut per_program = PerProgram::new();
    let OnOff { mut on, mut off } = interleaved(runs, &cgroup, &hosts.client, |observer| {
        port += 1;
        let t = transfer(&hosts, &cgroup, port, bytes)?;
        let (mbit, cpu) = (t.mbit_per_s(), t.cpu_per_byte());
        let mut line = format!("{mbit:.0} Mbit/s, {cpu:.3} CPU ns/byte");
        if let Some(observer) = observer {
            let cost = program_cost(observer, &t, &mut per_program)?;
            let _infallible = write!(
                line,
                "; programs {:.4} ns/byte, {:.0} runs/MiB, {:.2}% of its CPU",
                cost.ns_per_byte(),
                cost.calls_per_mib(),
                cost.cpu_share_pct()
            );
            costs.push(cost);
        }
        eprintln!(
            "bench: overhead telemetry {}: {line}",
            if observer.is_some() { "on" } else { "off" },
        );
        Ok([mbit, cpu])
    })?;
    let note = format!(
        "{runs} transfers of {} MiB per mode, interleaved (the order alternating); medians",
        bytes >> 20
    );
    let spreads = [
        bound::ratio_spread(&on[0], &off[0]),
        bound::ratio_spread(&on[1], &off[1]),
    ];
    let of_costs =
        |f: fn(&ProgramCost) -> f64| median(&mut costs.iter().map(f).collect::<Vec<_>>());
    let (wall_share, cpu_share, cpu_increase) = (
        of_costs(ProgramCost::wall_share_pct),
        of_costs(ProgramCost::cpu_share_pct),
        of_costs(ProgramCost::cpu_increase_pct),
    );
    let rate = judged(
        Figure::compared(
            PART,
            "throughput, telemetry on",
            "Mbit/s",
            median(&mut on[0]),
            ("telemetry off", median(&mut off[0])),
            ("within 2%", |r| within(r, 2.0)),
        ),
        (Worse::Lower, spreads[0]),
        (2.0, wall_share),
        &format!(
            "the programs' time, {wall_share:.2}% of the wall time ({cpu_share:.2}% of the \
             transfer's CPU)"
        ),
        &note,
    );
    let cpu = judged(
        Figure::compared(
            PART,
            "CPU per byte, telemetry on",
            "ns/B",
            median(&mut on[1]),
            ("telemetry off", median(&mut off[1])),
            ("within 5%", |r| within(r, 5.0)),
        ),
        (Worse::Higher, spreads[1]),
        (5.0, cpu_increase),
        &format!("the programs' own CPU, {cpu_increase:.2}% more per byte"),
        &note,
    );
    let mut figures = vec![rate, cpu];
    figures.extend(cost_figures(&costs, &per_program));
    Ok(figures)
}

/// The programs' cost in one transfer (`t`), from their run-time statistics; each program's
/// totals added to `per_program`.
fn program_cost(
    observer: &Observer,
    t: &Transfer,
    per_program: &mut PerProgram,
) -> anyhow::Result<ProgramCost> {
    // A fresh load per run: the totals are this transfer's.
    let (mut program_ns, mut calls) = (0.0, 0.0);
    for p in observer.telemetry.program_run_times()? {
        #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let (ns, count) = (p.run_time.as_secs_f64() * 1e9, p.run_count as f64);
        program_ns += ns;
        calls += count;
        let sum = per_program.entry(p.name).or_default();
        *sum = (sum.0 + ns, sum.1 + count);
    }
    Ok(ProgramCost {
        program_ns,
        calls,
        bytes: t.bytes,
        cpu_ns: t.cpu_ns,
        wall_ns: t.wall_ns,
    })
}

/// The programs' own figures: medians over the transfers with telemetry on.
fn cost_figures(costs: &[ProgramCost], per_program: &PerProgram) -> Vec<Figure> {
    let of_costs =
        |f: fn(&ProgramCost) -> f64| median(&mut costs.iter().map(f).collect::<Vec<_>>());
    let mib_on = costs.iter().map(|c| c.bytes).sum::<f64>() / f64::from(1_u32 << 20);
    let stats_note = "BPF run-time statistics (BPF_ENABLE_STATS) over the transfers with \
                      telemetry on; medians per transfer";
    [
        (
            "programs' CPU per byte",
            "ns/B",
            of_costs(ProgramCost::ns_per_byte),
            stats_note.to_owned(),
        ),
        (
            "program runs per MiB",
            "",
            of_costs(ProgramCost::calls_per_mib),
            per_program_note(per_program, mib_on),
        ),
        (
            "programs' share of transfer CPU",
            "%",
            of_costs(ProgramCost::cpu_share_pct),
            "of the sender's and receiver's user + system time".to_owned(),
        ),
        (
            "programs' share of wall time",
            "%",
            of_costs(ProgramCost::wall_share_pct),
            "the most they can add to the transfer's critical path: bounds the throughput \
             loss"
                .to_owned(),
        ),
    ]
    .into_iter()
    .map(|(name, unit, value, note)| Figure {
        note,
        ..Figure::plain(PART, name, unit, value)
    })
    .collect()
}

/// `figure` judged by [`bound::judge`]: its target (`target_pct`) against its ratio (`worse`
/// saying which way is a cost), or against `bound_pct` where the ratio's `spread` hides it.
fn judged(
    mut figure: Figure,
    (worse, spread): (Worse, f64),
    (target_pct, bound_pct): (f64, f64),
    bound_text: &str,
    note: &str,
) -> Figure {
    if let Some(ratio) = figure.ratio {
        let judgement = bound::judge((ratio, worse), spread, target_pct, bound_pct, bound_text);
        figure.met = Some(judgement.met);
        figure.note = format!("{note}; {}", judgement.note);
    } else {
        note.clone_into(&mut figure.note);
    }
    figure
}

/// Each program's runs per MiB and time per run, over all transfers with telemetry on (`mib`).
fn per_program_note(per_program: &PerProgram, mib: f64) -> String {
    let parts: Vec<String> = per_program
        .iter()
        .filter(|(_, (_, calls))| *calls > 0.0)
        .map(|(name, (ns, calls))| {
            format!(
                "{name} {:.1} runs/MiB at {:.0} ns/run",
                calls / mib,
                ns / calls
            )
        })
        .collect();
    if parts.is_empty() {
        "no program ran".to_owned()
    } else {
        format!("over all transfers: {}", parts.join("; "))
    }
}
