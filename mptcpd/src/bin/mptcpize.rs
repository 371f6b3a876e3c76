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
            // One line: what is wrong, without clap's usage block.
            let text = e.render().to_string();
            let what: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.starts_with("Usage:"))
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!(
                "mptcpize: {} (mptcpize --help)",
                what.join(" ").trim_start_matches("error: ")
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
