//! The `mptcpctl` binary: runs the `mptcpctl` library (see its documentation).

use std::process::ExitCode;

fn main() -> ExitCode {
    mptcpctl::main()
}
