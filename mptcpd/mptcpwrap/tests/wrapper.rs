//! The preloaded wrapper in a real process (`examples/socket_probe`): its `socket()` allocates
//! nothing (an allocation trap preloaded before it aborts the process otherwise), and a
//! seccomp filter that refuses protocol 262 gets the program TCP, not an error.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

/// `target/PROFILE`, where cargo put the wrapper and, under `examples/`, the helpers.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/PROFILE/deps/wrapper-HASH
    exe.parent().and_then(|d| d.parent()).unwrap().to_owned()
}

/// The probe with `preload` (names below the target directory) preloaded.
fn probe(preload: &[&str]) -> Command {
    let dir = target_dir();
    let preload: Vec<String> = preload
        .iter()
        .map(|name| {
            let path = dir.join(name);
            assert!(
                path.is_file(),
                "{} missing: cargo test builds it",
                path.display()
            );
            path.display().to_string()
        })
        .collect();
    let mut cmd = Command::new(dir.join("examples/socket_probe"));
    cmd.env("LD_PRELOAD", preload.join(":"))
        .env_remove("MPTCPWRAP_DEBUG");
    cmd
}

/// The shared object built with this test (cargo refreshes `deps/`, not always the copy above).
const WRAPPER: &str = "deps/libmptcpwrap.so";
const TRAP: &str = "examples/libmalloc_trap.so";

fn protocol(out: &Output) -> Option<i32> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("protocol ")?.trim().parse().ok())
}

/// MPTCP usable in this network namespace (the upgrade then succeeds).
fn mptcp_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/net/mptcp/enabled").is_ok_and(|v| v.trim() == "1")
}

#[test]
fn the_trap_catches_an_allocation() {
    // The control: the trap does abort on an allocation while armed (the probe's own would not
    // happen, so arm it through a program that allocates: the wrapper is not involved).
    let out = probe(&[TRAP])
        .env("MALLOC_TRAP_SELF_TEST", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("malloc_trap: allocation while armed"),
        "{out:?}"
    );
}

#[test]
fn socket_allocates_nothing_with_debug_on() {
    if !mptcp_enabled() {
        eprintln!("skipped: socket_allocates_nothing_with_debug_on: MPTCP is off here");
        return;
    }
    let out = probe(&[TRAP, WRAPPER])
        .env("MPTCPWRAP_DEBUG", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(protocol(&out), Some(262), "{out:?}");
    assert!(
        stderr.contains("mptcpwrap: socket(family 2, type 0x80001, protocol 0) -> MPTCP, fd "),
        "{stderr}"
    );
}

#[cfg(target_arch = "x86_64")]
mod seccomp {
    use std::os::unix::process::CommandExt as _;

    use super::{TRAP, WRAPPER, probe, protocol};

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;

    const fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }

    /// `socket(_, _, 262)` fails with `errno`; everything else is allowed.
    fn refuse_mptcp(errno: u32) -> [libc::sock_filter; 8] {
        let socket = u32::try_from(libc::SYS_socket).unwrap();
        [
            op(LD_W_ABS, 0, 0, 4), // seccomp_data.arch
            op(JEQ_K, 0, 5, AUDIT_ARCH_X86_64),
            op(LD_W_ABS, 0, 0, 0), // .nr
            op(JEQ_K, 0, 3, socket),
            op(LD_W_ABS, 0, 0, 32), // .args[2], low half
            op(JEQ_K, 0, 1, 262),
            op(RET_K, 0, 0, SECCOMP_RET_ERRNO | errno),
            op(RET_K, 0, 0, SECCOMP_RET_ALLOW),
        ]
    }

    fn run_refused(errno: i32, preload: &[&str], asked: &str) -> std::process::Output {
        let filter = refuse_mptcp(u32::try_from(errno).unwrap());
        let mut cmd = probe(preload);
        cmd.env("SOCKET_PROBE_PROTOCOL", asked);
        // SAFETY: only prctl(2) between fork and exec; the filter lives in this (copied) closure.
        unsafe {
            cmd.pre_exec(move || {
                let prog = libc::sock_fprog {
                    len: u16::try_from(filter.len()).unwrap_or(0),
                    filter: filter.as_ptr().cast_mut(),
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(libc::PR_SET_SECCOMP, 2, &raw const prog) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
        cmd.output().unwrap()
    }

    #[test]
    fn the_filter_refuses_mptcp_and_only_mptcp() {
        // The control, without the wrapper: MPTCP asked for is refused, TCP passes.
        let out = run_refused(libc::EPERM, &[], "262");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("error {}", libc::EPERM)
        );
        let out = run_refused(libc::EPERM, &[], "0");
        assert_eq!(protocol(&out), Some(6), "{out:?}");
    }

    #[test]
    fn a_seccomp_or_lsm_refusal_of_mptcp_gives_tcp() {
        for errno in [libc::EPERM, libc::EACCES] {
            let out = run_refused(errno, &[TRAP, WRAPPER], "0");
            assert!(out.status.success(), "errno {errno}: {out:?}");
            assert_eq!(protocol(&out), Some(6), "errno {errno}: {out:?}");
        }
    }
}
