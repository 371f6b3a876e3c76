//! `cargo xtask bench telemetry`: the subflow telemetry's figures beside their targets. The RTT
//! part needs netem, which the host kernel lacks: it runs in the 6.12 VM (`mptcpd-bench` built
//! static and copied in, like the VM tests); the other parts run on the host, whose run merges
//! the VM's figures into one table and `target/bench/telemetry.json`.

use std::{fs, path::PathBuf, time::Instant};

use crate::{vm, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct TelemetryArgs {
    /// Short MPTCP connections of the memory part.
    #[arg(long, default_value_t = 100_000)]
    connections: usize,
    /// Bulk transfers per mode (overhead) and rounds per mode (connect cost); at least 5.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// MiB per bulk transfer.
    #[arg(long, default_value_t = 512)]
    mib: u64,
    /// Skip the VM (the RTT part then reports why it was not measured).
    #[arg(long)]
    no_vm: bool,
    /// Only these parts (comma-separated: rtt, detection, overhead, memory, connect-cost);
    /// the VM runs only if rtt is among them.
    #[arg(long, value_delimiter = ',')]
    parts: Vec<String>,
}

/// Every part; the host runs them all but RTT when the VM ran it.
const ALL_PARTS: [&str; 5] = ["rtt", "detection", "overhead", "memory", "connect-cost"];

pub(crate) fn run(args: &TelemetryArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut parts: Vec<&str> = if args.parts.is_empty() {
        ALL_PARTS.to_vec()
    } else {
        args.parts.iter().map(String::as_str).collect()
    };
    let vm_json = if args.no_vm || !parts.contains(&"rtt") {
        None
    } else {
        vm_rtt()?
    };
    if vm_json.is_some() {
        parts.retain(|p| *p != "rtt");
    }
    if let (true, Some(vm_json)) = (parts.is_empty(), &vm_json) {
        println!("bench: the VM's figures are in {}", vm_json.display());
        return Ok(());
    }
    let parts = parts.join(",");
    let (connections, runs, mib) = (
        args.connections.to_string(),
        args.runs.to_string(),
        args.mib.to_string(),
    );
    let mut bench_args = vec![
        "--parts",
        &parts,
        "--connections",
        &connections,
        "--runs",
        &runs,
        "--mib",
        &mib,
    ];
    let merge = vm_json.map(|p| p.display().to_string());
    if let Some(merge) = &merge {
        bench_args.extend(["--merge", merge]);
    }
    super::mptcpd_bench("telemetry", &[], &bench_args)?;
    println!(
        "bench: telemetry took {:.1} s in all (builds included)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs the RTT part in the 6.12 VM; the path of its JSON, or `None` (said why) if the VM
/// could not give it.
fn vm_rtt() -> anyhow::Result<Option<PathBuf>> {
    const MARK: &str = "bench-json: ";
    let script = "/tests/bin/mptcpd-bench telemetry --parts rtt --json /tmp/rtt.json\n\
                  echo \"bench-json: $(tr -d '\\n' < /tmp/rtt.json)\"\n";
    let mut json = None;
    let runs = vm::run_kernels_with(
        "6.12",
        vm::Guest::Script(script),
        &["mptcpd-bench"],
        &mut |line| {
            if let Some(rest) = line.strip_prefix(MARK) {
                json = Some(rest.to_owned());
            } else {
                println!("{line}");
            }
        },
    )?;
    let (true, Some(json)) = (runs.iter().all(|r| r.passed), json) else {
        println!("bench: the VM gave no RTT figures: the host reports RTT as not measured");
        return Ok(None);
    };
    let dir = workspace::target_dir().join("bench");
    fs::create_dir_all(&dir)?;
    let path = dir.join("telemetry-vm.json");
    fs::write(&path, json + "\n")?;
    Ok(Some(path))
}
