//! `cargo xtask fuzz config`: see `mptcpd_fuzz::config`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| mptcpd_fuzz::config::run(input));
