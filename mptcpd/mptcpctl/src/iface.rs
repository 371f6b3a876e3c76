//! Interface names and indexes, for `dev` in endpoint commands and output.

use std::ffi::{CStr, CString};

/// The index of interface `name`, if it exists in this namespace.
pub(super) fn index(name: &str) -> Option<i32> {
    let name = CString::new(name).ok()?;
    // SAFETY: a valid C string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    i32::try_from(index).ok().filter(|&i| i > 0)
}

/// The name of interface `index`, if it exists in this namespace.
pub(super) fn name(index: i32) -> Option<String> {
    let index = u32::try_from(index).ok()?;
    let mut buf: [libc::c_char; libc::IF_NAMESIZE] = [0; libc::IF_NAMESIZE];
    // SAFETY: the buffer holds IF_NAMESIZE bytes, as the call requires.
    let name = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}
