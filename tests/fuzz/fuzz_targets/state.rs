//! `cargo xtask fuzz state`: see `mptcpd_fuzz::state`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| mptcpd_fuzz::state::run(input));
