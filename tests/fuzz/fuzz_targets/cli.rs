//! `cargo xtask fuzz cli`: see `mptcpd_fuzz::cli`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| mptcpd_fuzz::cli::run(input));
