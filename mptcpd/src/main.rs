//! The `mptcpd` binary: the daemon with its built-in plugins.

use std::process::ExitCode;

fn main() -> ExitCode {
    mptcpd::Daemon::builder().run()
}
