//! The three bpf(2) commands an `fmod_ret` program needs that aya does not offer for it.

use std::{
    ffi::CString,
    io,
    os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd},
    path::Path,
};

use aya_obj::generated::{
    bpf_attach_type::BPF_MODIFY_RETURN, bpf_attr, bpf_cmd, bpf_prog_type::BPF_PROG_TYPE_TRACING,
};

/// Size of the verifier log kept when a load fails.
const LOG_SIZE: usize = 64 * 1024;

/// `BPF_PROG_LOAD` of a `BPF_PROG_TYPE_TRACING` / `BPF_MODIFY_RETURN` program attached to the
/// kernel BTF function `attach_btf_id`. On failure, also returns the verifier's log.
pub(crate) fn prog_load(
    name: &str,
    insns: &[u8],
    license: &str,
    attach_btf_id: u32,
) -> Result<OwnedFd, (io::Error, String)> {
    let license = CString::new(license).map_err(|e| (e.into(), String::new()))?;
    let insn_cnt = u32::try_from(insns.len() / super::elf::INSN_SIZE)
        .map_err(|e| (io::Error::other(e), String::new()))?;
    let mut log = vec![0_u8; LOG_SIZE];
    let load = |log: Option<&mut Vec<u8>>| {
        // SAFETY: bpf_attr is plain data; all-zero is its documented "unset" value.
        let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
        // SAFETY: writing the union member of this command.
        let a = unsafe { &mut attr.__bindgen_anon_3 };
        a.prog_type = BPF_PROG_TYPE_TRACING as u32;
        a.expected_attach_type = BPF_MODIFY_RETURN as u32;
        a.attach_btf_id = attach_btf_id;
        a.insn_cnt = insn_cnt;
        a.insns = insns.as_ptr() as u64;
        a.license = license.as_ptr() as u64;
        // The kernel keeps 15 bytes and a NUL.
        for (dst, src) in a.prog_name.iter_mut().zip(name.bytes().take(15)) {
            *dst = src.cast_signed();
        }
        if let Some(log) = log {
            a.log_level = 1;
            a.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
            a.log_buf = log.as_mut_ptr() as u64;
        }
        bpf(bpf_cmd::BPF_PROG_LOAD, &mut attr)
    };
    // Like libbpf: no log on the first try (cheaper); with a log on failure, to say why.
    load(None).or_else(|_| {
        load(Some(&mut log)).map_err(|e| {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            (e, String::from_utf8_lossy(&log[..end]).trim().to_owned())
        })
    })
}

/// Attaches a loaded tracing program: `BPF_LINK_CREATE` (5.19+ for tracing programs), else
/// `BPF_RAW_TRACEPOINT_OPEN` with no name, which older kernels use for trampolines.
pub(crate) fn attach(prog: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    let prog_fd = u32::try_from(prog.as_raw_fd()).map_err(io::Error::other)?;
    // SAFETY: plain data, zero is "unset".
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    // SAFETY: writing the union member of this command.
    let link = unsafe { &mut attr.link_create };
    link.__bindgen_anon_1.prog_fd = prog_fd;
    link.attach_type = BPF_MODIFY_RETURN as u32;
    match bpf(bpf_cmd::BPF_LINK_CREATE, &mut attr) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            // SAFETY: as above.
            let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
            attr.raw_tracepoint.prog_fd = prog_fd;
            bpf(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut attr)
        }
        other => other,
    }
}

/// `BPF_OBJ_PIN`: pins a program, map or link fd at `path` on bpffs.
pub(crate) fn obj_pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let path = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: plain data, zero is "unset".
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    // SAFETY: writing the union member of this command.
    let pin = unsafe { &mut attr.__bindgen_anon_4 };
    pin.pathname = path.as_ptr() as u64;
    pin.bpf_fd = u32::try_from(fd.as_raw_fd()).map_err(io::Error::other)?;
    bpf_raw(bpf_cmd::BPF_OBJ_PIN, &mut attr).map(drop)
}

/// A command that returns a new fd.
pub(crate) fn bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    let fd = i32::try_from(bpf_raw(cmd, attr)?).map_err(io::Error::other)?;
    // SAFETY: these commands return a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bpf_raw(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid bpf_attr for `cmd`, and every pointer in it outlives the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            std::ptr::from_mut(attr),
            size_of::<bpf_attr>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
