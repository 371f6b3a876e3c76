//! `cargo xtask bench failover`: builds our daemon and `mptcpd-bench` (release) and runs its
//! `failover` benchmark (the kernel alone, the kernel with `health`, path A alone; path B
//! blackholed, lossy, slow or healthy), which prints the table and writes
//! `target/bench/failover.json`. Host only: the VM's netem checks are functional tests.

#[derive(Debug, clap::Args)]
pub(crate) struct FailoverArgs {
    /// Repetitions per subject and scenario (at least 5).
    #[arg(long, default_value_t = 5)]
    runs: u64,
    /// blackhole, loss, rtt, healthy (comma-separated) or all.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Measured seconds per run (after the outage for the blackhole).
    #[arg(long, default_value_t = 10)]
    secs: u64,
}

pub(crate) fn run(args: &FailoverArgs) -> anyhow::Result<()> {
    // The daemon under test runs from beside `mptcpd-bench`.
    super::mptcpd_bench(
        "failover",
        &["-p", "mptcpd", "--bin", "mptcpd"],
        &[
            "--runs",
            &args.runs.to_string(),
            "--scenario",
            &args.scenario,
            "--secs",
            &args.secs.to_string(),
        ],
    )
}
