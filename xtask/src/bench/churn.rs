//! `cargo xtask bench churn`: builds our daemon and `mptcpd-bench` (release) and runs its
//! `churn` benchmark (ours, the C mptcpd fetched by the harness, and the `ip` floor), which
//! prints the table and writes `target/bench/churn.json`.

#[derive(Debug, clap::Args)]
pub(crate) struct ChurnArgs {
    /// Add-then-delete cycles of 8 addresses per subject (each ~0.1 s: deletes are slow in the
    /// kernel).
    #[arg(long, default_value_t = 200)]
    cycles: usize,
}

pub(crate) fn run(args: &ChurnArgs) -> anyhow::Result<()> {
    // The daemon under test runs from beside `mptcpd-bench`.
    super::mptcpd_bench(
        "churn",
        &["-p", "mptcpd", "--bin", "mptcpd"],
        &["--cycles", &args.cycles.to_string()],
    )
}
