//! `cargo xtask bench upgrade`: what `socket()` + `close()` costs with each way of getting MPTCP.
//! The host (whose kernel refuses the eBPF upgrade) measures native TCP, native MPTCP and the
//! `LD_PRELOAD` wrapper; the 6.12 VM measures native TCP and MPTCP, then the same with the
//! upgrade attached, outside and inside an enabled cgroup. Ratios are taken within one
//! machine's run only (the VM runs under TCG and is far slower than the host).

use std::{collections::BTreeMap, fmt::Write as _, fs, process::Command};

use anyhow::{Context as _, bail};
use serde::Serialize;

use crate::{cmd, vm, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct UpgradeArgs {
    /// Calls per measurement (5 rounds; the median round counts).
    #[arg(long, default_value_t = 100_000)]
    iterations: u32,
    /// Measurements per mode, interleaved; the median counts.
    #[arg(long, default_value_t = 3)]
    repeat: u32,
}

/// One line of `upgrade.json`.
#[derive(Debug, Serialize)]
struct Row<'a> {
    /// `host` or `vm`.
    #[serde(rename = "where")]
    place: &'static str,
    mode: &'a str,
    ns_per_op: f64,
    /// Against native MPTCP on the same machine.
    vs_mptcp: f64,
}

/// One machine's medians, ns per `socket()+close()`, by mode.
type Run = BTreeMap<String, f64>;

pub(crate) fn run(args: &UpgradeArgs) -> anyhow::Result<()> {
    let UpgradeArgs { iterations, repeat } = *args;
    cmd::run(&mut cmd::build_test_binaries())?;
    let host = host_run(iterations, repeat)?;
    let guest = vm_run(iterations, repeat)?;

    let mut table = String::from("where  mode                      ns/op   vs native MPTCP\n");
    let mut rows = Vec::new();
    for (place, run) in [("host", &host), ("vm", &guest)] {
        let mptcp = run
            .get("mptcp")
            .copied()
            .context("no native MPTCP figure")?;
        for (mode, &ns) in run {
            let ratio = ns / mptcp;
            let _written = writeln!(table, "{place:<6} {mode:<22} {ns:>9.1}   {ratio:>6.3}");
            rows.push(Row {
                place,
                mode,
                ns_per_op: ns,
                vs_mptcp: ratio,
            });
        }
    }
    print!("{table}");
    let dir = workspace::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let path = dir.join("upgrade.json");
    fs::write(&path, serde_json::to_string_pretty(&rows)? + "\n")?;
    println!("bench: wrote {}", path.display());
    if let (Some(ebpf), Some(mptcp)) = (guest.get("ebpf-upgrade"), guest.get("mptcp")) {
        println!(
            "bench: eBPF upgrade vs native MPTCP (VM): {:+.1}% (target: within 3%)",
            (ebpf / mptcp - 1.0) * 100.0
        );
    }
    Ok(())
}

fn host_run(iterations: u32, repeat: u32) -> anyhow::Result<Run> {
    let bin = workspace::target_dir().join("debug");
    let bench = bin.join("socket-bench");
    let wrapper = bin.join("libmptcpwrap.so");
    let n = iterations.to_string();
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..repeat {
        for (label, proto, preload) in [
            ("tcp", "tcp", false),
            ("mptcp", "mptcp", false),
            ("ld-preload", "tcp", true),
        ] {
            let mut cmd = Command::new(&bench);
            cmd.args([label, proto, &n]);
            if preload {
                cmd.env("LD_PRELOAD", &wrapper);
            }
            parse_into(&cmd::stdout(&mut cmd)?, &mut samples);
        }
    }
    Ok(medians(samples))
}

fn vm_run(iterations: u32, repeat: u32) -> anyhow::Result<Run> {
    // The guest is ~10x slower under TCG: fewer calls keep the run short.
    let n = (iterations / 10).max(1000);
    let mut script = String::from("B=/tests/bin/socket-bench\nmkdir /sys/fs/cgroup/bench\n");
    for _ in 0..repeat {
        let _written = writeln!(script, "$B tcp tcp {n}\n$B mptcp mptcp {n}");
    }
    script.push_str(
        "/tests/bin/mptcpize --bpf-pin-dir /sys/fs/bpf/bench enable --cgroup /sys/fs/cgroup/bench\n",
    );
    for _ in 0..repeat {
        let _written = writeln!(
            script,
            "$B tcp-upgrade-attached tcp {n}\n$B mptcp-upgrade-attached mptcp {n}\n\
             sh -c 'echo $$ > /sys/fs/cgroup/bench/cgroup.procs; exec $0 ebpf-upgrade tcp {n}' $B"
        );
    }
    let mut lines = Vec::new();
    let runs = vm::run_kernels("6.12", vm::Guest::Script(&script), &mut |line| {
        println!("{line}");
        lines.push(line.to_owned());
    })?;
    if !runs.iter().all(|r| r.passed) {
        bail!("the VM benchmark failed");
    }
    let mut samples = BTreeMap::new();
    parse_into(&lines.join("\n"), &mut samples);
    Ok(medians(samples))
}

/// Collects `bench: LABEL NS` lines.
fn parse_into(text: &str, samples: &mut BTreeMap<String, Vec<f64>>) {
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("bench: ") else {
            continue;
        };
        if let Some((label, ns)) = rest.split_once(' ')
            && let Ok(ns) = ns.trim().parse::<f64>()
        {
            samples.entry(label.to_owned()).or_default().push(ns);
        }
    }
}

fn medians(samples: BTreeMap<String, Vec<f64>>) -> Run {
    samples
        .into_iter()
        .map(|(label, mut v)| {
            v.sort_by(f64::total_cmp);
            let median = v[v.len() / 2];
            (label, median)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::Row;

    #[test]
    fn rows_are_json_named_as_before() {
        let row = Row {
            place: "host",
            mode: "ld-preload",
            ns_per_op: 5243.5,
            vs_mptcp: 1.0 / 3.0,
        };
        assert_eq!(
            serde_json::to_value(&row).unwrap(),
            serde_json::json!({"where": "host", "mode": "ld-preload", "ns_per_op": 5243.5,
                               "vs_mptcp": 1.0 / 3.0})
        );
    }
}
