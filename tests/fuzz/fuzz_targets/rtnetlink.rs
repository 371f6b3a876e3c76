//! `cargo xtask fuzz rtnetlink`: see `mptcpd_fuzz::rtnetlink`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| mptcpd_fuzz::rtnetlink::run(input));
