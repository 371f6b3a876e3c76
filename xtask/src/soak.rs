//! `cargo xtask soak`: the fault-injection tests (`tests/tests/faults_*.rs`) in their long
//! form. `cargo xtask test` runs the same tests bounded; both print each test's seed.

use crate::cmd;

#[derive(Debug, clap::Args)]
pub(crate) struct SoakArgs {
    /// Replay a run: the seed a test printed (`seed: TEST: N`).
    #[arg(long)]
    seed: Option<u64>,
    /// Run only the fault-injection tests whose names contain this.
    filter: Option<String>,
}

pub(crate) fn run(args: &SoakArgs) -> anyhow::Result<()> {
    let SoakArgs { seed, filter } = args;
    let mut soak = cmd::cargo();
    soak.args(["test", "-p", "mptcpd-tests", "--test", "faults_*", "--"])
        .args(["--test-threads=1", "--nocapture"])
        .args(filter)
        .env("MPTCPD_SOAK", "1");
    if let Some(seed) = seed {
        soak.env("MPTCPD_SEED", seed.to_string());
    }
    cmd::run(&mut soak)
}
