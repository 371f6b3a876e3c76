//! `mptcpctl`: the operator's command line over the `mptcp_pm` layer (see `mptcpd::ctl`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match mptcpd_common::usage::parse::<mptcpd::ctl::CtlArgs>("mptcpctl") {
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
    match runtime.block_on(mptcpd::ctl::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mptcpctl: {e}");
            ExitCode::FAILURE
        }
    }
}
