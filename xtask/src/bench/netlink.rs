//! `cargo xtask bench netlink`: builds `mptcpd-bench` (release) and runs its `netlink`
//! benchmark, which prints the table and writes `target/bench/netlink.json`.

#[derive(Debug, clap::Args)]
pub(crate) struct NetlinkArgs {
    /// Short MPTCP connections per storm.
    #[arg(long, default_value_t = 500)]
    connections: usize,
    /// Repetitions of each measurement (medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

pub(crate) fn run(args: &NetlinkArgs) -> anyhow::Result<()> {
    super::mptcpd_bench(
        "netlink",
        &[],
        &[
            "--connections",
            &args.connections.to_string(),
            "--rounds",
            &args.rounds.to_string(),
        ],
    )
}
