//! The `mptcpd` binary: parses its command line and runs the daemon library.

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = mptcpd::cli::Args::parse();
    match mptcpd::daemon::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logging may not be up: this one line goes to stderr whatever --log says.
            eprintln!("mptcpd: {e}");
            ExitCode::FAILURE
        }
    }
}
