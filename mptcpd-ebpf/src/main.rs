//! mptcpd's eBPF programs. One object, embedded in the daemon; each program in its own module.
//! The panic handler and the license come from the crate's library.
#![no_std]
#![no_main]

use mptcpd_ebpf as _;

mod sock_create;
