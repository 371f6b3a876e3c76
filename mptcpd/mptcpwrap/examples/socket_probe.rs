//! Test helper: calls `socket(AF_INET, SOCK_STREAM, 0)` (the preloaded wrapper's, if any) with
//! the malloc trap armed when it is preloaded, and prints `protocol N` (`SO_PROTOCOL`) or
//! `error ERRNO`. `SOCKET_PROBE_PROTOCOL` sets the protocol asked for.

use std::ffi::c_int;

fn main() {
    let asked: c_int = std::env::var("SOCKET_PROBE_PROTOCOL")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: looks a symbol up; the trap's signature is `extern "C" fn(bool)`.
    let arm = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"malloc_trap_arm".as_ptr()) };
    let arm: Option<extern "C" fn(bool)> =
        // SAFETY: a non-null address of that function.
        (!arm.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, extern "C" fn(bool)>(arm) });
    if let Some(arm) = arm {
        arm(true);
        if std::env::var_os("MALLOC_TRAP_SELF_TEST").is_some() {
            // Allocates while armed: the trap must end the process here.
            drop(std::hint::black_box(vec![0_u8; 64]));
        }
    }
    // SAFETY: no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, asked) };
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    if let Some(arm) = arm {
        arm(false);
    }
    if fd < 0 {
        println!("error {errno}");
        std::process::exit(1);
    }
    let mut protocol: c_int = 0;
    let mut len = libc::socklen_t::try_from(size_of::<c_int>()).unwrap_or(4);
    // SAFETY: valid out-pointers of the given length.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PROTOCOL,
            (&raw mut protocol).cast(),
            &raw mut len,
        )
    };
    assert_eq!(rc, 0, "getsockopt");
    println!("protocol {protocol}");
}
