//! The `mptcpize` binary: parses its command line and runs the `mptcpize` library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match mptcpd_common::usage::parse::<mptcpize::Args>("mptcpize") {
        Ok(args) => args,
        Err(code) => return code,
    };
    match mptcpize::execute(&args) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("mptcpize: {}", mptcpd_common::Chain(&e));
            ExitCode::FAILURE
        }
    }
}
