//! The `mptcpize` binary: parses its command line and runs `mptcpd::mptcpize`.

use std::process::ExitCode;

use clap::{Parser as _, error::ErrorKind};

fn main() -> ExitCode {
    let args = match mptcpd::mptcpize::Args::try_parse() {
        Ok(args) => args,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            eprintln!(
                "mptcpize: {} (mptcpize --help)",
                mptcpd::usage::one_line(&e)
            );
            return ExitCode::from(2);
        }
    };
    match mptcpd::mptcpize::execute(&args) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("mptcpize: {}", mptcpd::ebpf::chain(&e));
            ExitCode::FAILURE
        }
    }
}
