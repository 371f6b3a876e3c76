//! The `mptcpize` binary: parses its command line and runs `mptcpd::mptcpize`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match mptcpd::usage::parse::<mptcpd::mptcpize::Args>("mptcpize") {
        Ok(args) => args,
        Err(code) => return code,
    };
    match mptcpd::mptcpize::execute(&args) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("mptcpize: {}", mptcpd::ebpf::chain(&e));
            ExitCode::FAILURE
        }
    }
}
