//! `cargo xtask bench dbus`: builds `mptcpd-bench` and the daemon (release) and runs the `dbus`
//! benchmark, which prints the table and writes `target/bench/dbus.json`.

#[derive(Debug, clap::Args)]
pub(crate) struct DbusArgs {
    /// Short MPTCP connections per storm.
    #[arg(long, default_value_t = 500)]
    connections: usize,
    /// Storms per subscriber count (0, 1, 10; medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub(crate) fn run(args: &DbusArgs) -> anyhow::Result<()> {
    super::mptcpd_bench(
        "dbus",
        &["-p", "mptcpd", "--bin", "mptcpd"],
        &[
            "--connections",
            &args.connections.to_string(),
            "--rounds",
            &args.rounds.to_string(),
        ],
    )
}
