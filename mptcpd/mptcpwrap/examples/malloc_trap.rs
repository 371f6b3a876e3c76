//! Test helper, preloaded before `libmptcpwrap.so`: libc's allocation functions, which abort the
//! process when called while armed (`malloc_trap_arm(true)`), so a test proves that a code path
//! allocates nothing.

use std::{
    ffi::{c_int, c_void},
    sync::atomic::{AtomicBool, Ordering},
};

static ARMED: AtomicBool = AtomicBool::new(false);

unsafe extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
}

/// Arms (or disarms) the trap.
#[unsafe(no_mangle)]
pub extern "C" fn malloc_trap_arm(on: bool) {
    ARMED.store(on, Ordering::SeqCst);
}

fn check() {
    if ARMED.load(Ordering::SeqCst) {
        let msg = b"malloc_trap: allocation while armed\n";
        // SAFETY: a valid buffer; then the process ends.
        unsafe {
            libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len());
            libc::abort();
        }
    }
}

/// # Safety
/// As libc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    check();
    // SAFETY: forwarded as is.
    unsafe { __libc_malloc(size) }
}

/// # Safety
/// As libc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    check();
    // SAFETY: forwarded as is.
    unsafe { __libc_calloc(n, size) }
}

/// # Safety
/// As libc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    check();
    // SAFETY: forwarded as is.
    unsafe { __libc_realloc(ptr, size) }
}

/// # Safety
/// As libc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    check();
    // SAFETY: forwarded as is.
    unsafe { __libc_memalign(align, size) }
}

/// # Safety
/// As libc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    check();
    // SAFETY: forwarded as is.
    unsafe { __libc_memalign(align, size) }
}

/// # Safety
/// As libc's.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    check();
    // SAFETY: forwarded; `out` is the caller's.
    let ptr = unsafe { __libc_memalign(align, size) };
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller passes a valid out-pointer.
    unsafe { *out = ptr };
    0
}
