//! The on-demand refresh of the subflow records (see `mptcpd_common::telemetry_refresh`):
//! loads the `iter/tcp` program of the telemetry object, links it once, and runs it by reading
//! a new iterator fd of that link to its end.
//!
//! aya 0.16 turns an iterator link into one iterator fd only (`IterLink::into_file` consumes
//! the link), so the link and the iterator fds are made here with `bpf(2)`.

use std::{
    io::{self, Read as _},
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
};

use aya::{
    Btf, Ebpf,
    maps::{Array, MapData},
    programs::{Iter, ProgramError},
};
use aya_obj::generated::{bpf_attach_type::BPF_TRACE_ITER, bpf_attr, bpf_cmd};
use mptcpd_common::telemetry_refresh::{OFFSETS_MAP, PROGRAM, TcpSockOffsets};

use crate::upgrade::offsets::running_kernel_fields;

/// The linked iterator.
#[derive(Debug)]
pub(crate) struct Refresh {
    link: OwnedFd,
}

impl Refresh {
    /// Loads and links the iterator. Where the kernel cannot run it (no BTF, no `iter/tcp`),
    /// one line names what is missing and the records keep the callbacks' figures.
    pub(crate) fn start(ebpf: &mut Ebpf) -> Option<Self> {
        match Self::try_start(ebpf) {
            Ok(refresh) => Some(refresh),
            Err(why) => {
                tracing::warn!(
                    "subflow telemetry figures are refreshed at the subflows' callbacks only \
                     (not when read): {why}"
                );
                None
            }
        }
    }

    fn try_start(ebpf: &mut Ebpf) -> Result<Self, String> {
        let btf = Btf::from_sys_fs().map_err(|e| format!("no kernel BTF ({e})"))?;
        let offsets = tcp_sock_offsets()?;
        let map = ebpf
            .map_mut(OFFSETS_MAP)
            .ok_or_else(|| format!("map {OFFSETS_MAP} is not in the eBPF object"))?;
        Array::<&mut MapData, TcpSockOffsets>::try_from(map)
            .and_then(|mut array| array.set(0, &offsets, 0))
            .map_err(|e| format!("map {OFFSETS_MAP}: {e}"))?;
        let program: &mut Iter = ebpf
            .program_mut(PROGRAM)
            .ok_or_else(|| format!("program {PROGRAM} is not in the eBPF object"))?
            .try_into()
            .map_err(|e| format!("program {PROGRAM}: {e}"))?;
        program.load("tcp", &btf).map_err(|e| match e {
            // The verifier's log is many lines: debug level, the cause on the one line.
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => {
                tracing::debug!("{PROGRAM} verifier log: {verifier_log}");
                format!("the kernel refused the iter/tcp program {PROGRAM}: {io_error}")
            }
            other => format!("iter/tcp program {PROGRAM}: {other}"),
        })?;
        let prog = program
            .fd()
            .map_err(|e| format!("program {PROGRAM}: {e}"))?;
        let link = link_create(prog.as_fd())
            .map_err(|e| format!("linking the iter/tcp program {PROGRAM}: {e}"))?;
        Ok(Self { link })
    }

    /// Runs the iterator over the TCP sockets of the calling thread's network namespace: each
    /// one with a record gets its current figures. Returns once all are done.
    pub(crate) fn run(&self) -> io::Result<()> {
        let mut iterator = std::fs::File::from(iter_create(self.link.as_fd())?);
        // The program writes nothing: the read only drives it to the end.
        let mut sink = [0_u8; 64];
        while iterator.read(&mut sink)? != 0 {}
        Ok(())
    }
}

/// The offsets the iterator reads, from the running kernel's BTF.
fn tcp_sock_offsets() -> Result<TcpSockOffsets, String> {
    let [
        state,
        srtt_us,
        mdev_us,
        rtt_min,
        minmax_samples,
        sample_value,
        snd_cwnd,
        bytes_acked,
        bytes_received,
        segs_in,
        segs_out,
        total_retrans,
    ] = running_kernel_fields([
        ("sock_common", "skc_state", 1),
        ("tcp_sock", "srtt_us", 4),
        ("tcp_sock", "mdev_us", 4),
        ("tcp_sock", "rtt_min", 24),
        ("minmax", "s", 24),
        ("minmax_sample", "v", 4),
        ("tcp_sock", "snd_cwnd", 4),
        ("tcp_sock", "bytes_acked", 8),
        ("tcp_sock", "bytes_received", 8),
        ("tcp_sock", "segs_in", 4),
        ("tcp_sock", "segs_out", 4),
        ("tcp_sock", "total_retrans", 4),
    ])
    .map_err(|why| format!("the kernel's BTF does not locate the tcp_sock figures: {why}"))?;
    Ok(TcpSockOffsets {
        ready: 1,
        state,
        srtt_us,
        mdev_us,
        // `minmax_get`: the value of the first sample.
        rtt_min_us: rtt_min + minmax_samples + sample_value,
        snd_cwnd,
        bytes_acked,
        bytes_received,
        segs_in,
        segs_out,
        total_retrans,
    })
}

/// `BPF_LINK_CREATE` of an iterator program (no parameters: all sockets of the namespace).
fn link_create(prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: plain data, zero is "unset".
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    // SAFETY: writing the union member of this command.
    let link = unsafe { &mut attr.link_create };
    link.__bindgen_anon_1.prog_fd = u32::try_from(prog.as_raw_fd()).map_err(io::Error::other)?;
    link.attach_type = BPF_TRACE_ITER as u32;
    // SAFETY: no pointers in this command's attributes.
    unsafe { aya_fmod_ret::bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut attr) }
}

/// `BPF_ITER_CREATE`: a new iterator of `link`, read like a file.
fn iter_create(link: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: plain data, zero is "unset".
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.iter_create.link_fd = u32::try_from(link.as_raw_fd()).map_err(io::Error::other)?;
    // SAFETY: as above.
    unsafe { aya_fmod_ret::bpf_fd(bpf_cmd::BPF_ITER_CREATE, &mut attr) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_running_kernel_locates_the_tcp_sock_figures() {
        const TEST: &str = "the_running_kernel_locates_the_tcp_sock_figures";
        if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
            mptcpd_test_skip::skip(TEST, "no kernel BTF");
            return;
        }
        let offsets = super::tcp_sock_offsets().unwrap();
        assert_eq!(offsets.ready, 1);
        // The window's first sample: 4 bytes into `rtt_min` (`{ u32 t; u32 v; } s[3]`).
        assert!(
            offsets.rtt_min_us > 0 && offsets.bytes_acked > 0,
            "{offsets:?}"
        );
        assert!(offsets.state > 0, "{offsets:?}");
    }
}
