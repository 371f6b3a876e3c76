//! `cargo xtask fuzz diag`: see `mptcpd_fuzz::diag`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| mptcpd_fuzz::diag::run(input));
