//! Empty on purpose: this library target lets the daemon name `mptcpd-ebpf` as a build
//! dependency, so that cargo rebuilds the embedded object when these sources change.
#![no_std]
