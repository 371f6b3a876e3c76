//! The `mptcpd` binary: parses its command line and runs the daemon library.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _, error::ErrorKind};

/// `EX_USAGE` from sysexits.h, as the C mptcpd exits on bad usage.
const EX_USAGE: u8 = 64;

fn main() -> ExitCode {
    let args = match mptcpd::cli::Args::try_parse() {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _printed = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: what was wrong; `--help` says the rest.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!(
                "mptcpd: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(EX_USAGE);
        }
    };
    if args.usage {
        print!("{}", mptcpd::cli::Args::command().render_usage());
        println!();
        return ExitCode::SUCCESS;
    }
    match mptcpd::daemon::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logging may not be up: this one line goes to stderr whatever --log says.
            eprintln!("mptcpd: {e}");
            ExitCode::FAILURE
        }
    }
}
