//! `cargo xtask bench storm`: builds our daemon and `mptcpd-bench` (release) and runs its
//! `storm` benchmark (the in-kernel PM, our daemon's `mesh` and the C mptcpd's `sspi`, each
//! under N connections held until their second subflow), which prints the table and writes
//! `target/bench/storm.json`.

#[derive(Debug, clap::Args)]
pub(crate) struct StormArgs {
    /// Connections per run.
    #[arg(long, default_value_t = 2000)]
    connections: u64,
    /// Runs per subject (interleaved).
    #[arg(long, default_value_t = 3)]
    runs: u64,
}

pub(crate) fn run(args: &StormArgs) -> anyhow::Result<()> {
    // The daemon under test runs from beside `mptcpd-bench`.
    super::mptcpd_bench(
        "storm",
        &["-p", "mptcpd", "--bin", "mptcpd"],
        &[
            "--connections",
            &args.connections.to_string(),
            "--runs",
            &args.runs.to_string(),
        ],
    )
}
