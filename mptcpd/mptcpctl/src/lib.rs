//! `mptcpctl`, the operator's command line over the `mptcp_pm` layer: endpoints, limits and
//! flags of the in-kernel path manager, the userspace path manager's per-connection commands,
//! and the event stream. Output reads like `ip mptcp`; `--json` prints one JSON value per
//! line for scripts. `connections` and `top` read the daemon over D-Bus (`docs/dbus.md`). It
//! links the `mptcp-pm` client and a D-Bus client only: no eBPF, no journald writer.
//!
//! A library so that the packaging (`cargo xtask deb`) reaches the command line's definition
//! ([`command`]) for the man page and the shell completions; the binary calls [`main`].

mod args;
mod bus;
mod connections;
mod control;
mod exec;
mod format;
mod iface;

use std::process::ExitCode;

/// The command line's definition (what `--help` shows), for man pages and completions.
#[must_use]
pub fn command() -> clap::Command {
    <args::CtlArgs as clap::CommandFactory>::command()
}

/// Parses the process's command line and runs it: a failure is one line on stderr and exit
/// code 1, bad usage exit code 2.
#[must_use]
pub fn main() -> ExitCode {
    let args = match mptcpd_common::usage::parse::<args::CtlArgs>("mptcpctl") {
        Ok(args) => args,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mptcpctl: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(exec::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mptcpctl: {}", mptcpd_common::Chain(&e));
            ExitCode::FAILURE
        }
    }
}
