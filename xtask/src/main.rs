//! `cargo xtask`: the project's developer tasks. Each installs what it needs first (`setup`),
//! so a fresh machine needs nothing but `cargo`.

mod bench;
mod build_ebpf;
mod cmd;
mod deb;
#[cfg(test)]
mod error_convention;
mod fuzz;
mod install;
mod lab;
mod setup;
mod soak;
mod test;
mod vm;
mod workspace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "mptcpd developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what this machine lacks: Debian packages, pinned toolchains, bpf-linker.
    Setup,
    /// Build the eBPF object (the one the daemon embeds) and list its programs.
    BuildEbpf,
    /// Two-path MPTCP lab in network namespaces, with mptcpd running (root).
    Lab(lab::LabArgs),
    /// Formatting, clippy, unit and integration tests, then the VM tests; ends with
    /// `N passed, N failed`.
    Test(test::TestArgs),
    /// The tests that need kernel features the host blocks, on Debian kernels under qemu.
    VmTest(vm::VmArgs),
    /// Release build installed with the default config and a hardened systemd unit
    /// (`--destdir` for staging).
    Install(install::InstallArgs),
    /// The Debian package `mptcpd-rs` (`target/debian/*.deb`, with `cargo deb`), checked by
    /// lintian; install it with `apt install ./target/debian/mptcpd-rs_*.deb`.
    Deb(deb::DebArgs),
    /// Benchmarks against the real kernel (root); each prints a table and writes
    /// `target/bench/NAME.json`.
    Bench(bench::BenchArgs),
    /// The fault-injection tests in their long form (kill -9 under churn, event overruns,
    /// link flaps); `--seed N` replays a run.
    Soak(soak::SoakArgs),
    /// Fuzz one decoder with `cargo fuzz` (nightly) from its corpus, then minimise the corpus;
    /// `--list` lists the targets.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> ExitCode {
    let Cli { task } = Cli::parse();
    let result = match task {
        Task::Setup => setup::run(true),
        Task::BuildEbpf => setup::run(false).and_then(|()| build_ebpf::run()),
        Task::Lab(args) => setup::run(false).and_then(|()| lab::run(&args)),
        Task::Test(args) => setup::run(false).and_then(|()| test::run(&args)),
        Task::VmTest(args) => setup::run(false).and_then(|()| vm::run(&args)),
        Task::Install(args) => install::run(&args),
        Task::Deb(args) => setup::run(false).and_then(|()| deb::run(&args)),
        Task::Bench(args) => setup::run(false).and_then(|()| bench::run(&args)),
        Task::Soak(args) => setup::run(false).and_then(|()| soak::run(&args)),
        Task::Fuzz(args) => setup::run(false).and_then(|()| fuzz::run(&args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
