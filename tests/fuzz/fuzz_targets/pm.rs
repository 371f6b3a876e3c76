//! `cargo xtask fuzz pm`: see `mptcpd_fuzz::pm`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| mptcpd_fuzz::pm::run(input));
