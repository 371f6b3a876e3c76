//! The `LD_PRELOAD` fallback: where `libmptcpwrap.so` is, the environment that preloads it,
//! and which programs it cannot reach.

use std::{
    ffi::{OsStr, OsString},
    fs,
    os::unix::{ffi::OsStrExt as _, fs::PermissionsExt as _},
    path::{Path, PathBuf},
};

use object::Object as _;

use super::MptcpizeError;

/// The wrapper's file name.
pub(crate) const LIBRARY: &str = "libmptcpwrap.so";
/// Overrides where the wrapper is.
pub(crate) const LIBRARY_ENV: &str = "MPTCPIZE_LIB";
/// What Go programs read to use MPTCP (Go 1.21+); `LD_PRELOAD` does not reach Go's raw syscalls.
pub(super) const GODEBUG_MPTCP: &str = "multipathtcp=1";

/// The wrapper for `run`: `$MPTCPIZE_LIB`, else beside the `mptcpize` binary, else the usual
/// library directories.
pub(super) fn find_library() -> Result<PathBuf, MptcpizeError> {
    let exe_dir = exe_dir();
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os(LIBRARY_ENV) {
        candidates.push(PathBuf::from(path));
    }
    if let Some(dir) = &exe_dir {
        candidates.push(dir.join(LIBRARY));
        candidates.push(dir.join("../lib/mptcpize").join(LIBRARY));
    }
    candidates.extend(INSTALLED.iter().map(|dir| Path::new(dir).join(LIBRARY)));
    first_existing(&candidates)
}

/// The wrapper a drop-in names (root's services load it at every start): where the install
/// puts it beside this `mptcpize` (`PREFIX/lib/mptcpize`), else the usual installed places, and
/// a build tree's copy beside the binary last. `$MPTCPIZE_LIB` is the caller's, not the
/// services', and is ignored.
pub(super) fn drop_in_library() -> Result<PathBuf, MptcpizeError> {
    let exe_dir = exe_dir();
    let mut candidates = Vec::new();
    if let Some(dir) = &exe_dir {
        candidates.push(dir.join("../lib/mptcpize").join(LIBRARY));
    }
    candidates.extend(INSTALLED.iter().map(|dir| Path::new(dir).join(LIBRARY)));
    if let Some(dir) = &exe_dir {
        candidates.push(dir.join(LIBRARY));
    }
    first_existing(&candidates)
}

/// Where `cargo xtask install` and packages put the wrapper.
const INSTALLED: [&str; 2] = ["/usr/lib/mptcpize", "/usr/local/lib/mptcpize"];

/// The directory of the running binary, links resolved.
fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .and_then(fs::canonicalize)
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned))
}

fn first_existing(candidates: &[PathBuf]) -> Result<PathBuf, MptcpizeError> {
    candidates
        .iter()
        .find(|p| p.is_file())
        .map(|p| fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .ok_or_else(|| {
            let looked: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
            MptcpizeError::NoWrapper(looked.join(", "))
        })
}

/// `LD_PRELOAD` with the wrapper appended to what was there (once).
#[must_use]
pub(crate) fn ld_preload(existing: Option<&OsStr>, library: &Path) -> OsString {
    let library = library.as_os_str();
    match existing.filter(|e| !e.is_empty()) {
        None => library.to_owned(),
        Some(e)
            if e.as_bytes()
                .split(|b| *b == b':' || *b == b' ')
                .any(|p| p == library.as_bytes()) =>
        {
            e.to_owned()
        }
        Some(e) => {
            let mut value = e.to_owned();
            value.push(":");
            value.push(library);
            value
        }
    }
}

/// `GODEBUG` with `multipathtcp=1` appended to what was there (once).
#[must_use]
pub(crate) fn godebug(existing: Option<&OsStr>) -> OsString {
    match existing.filter(|e| !e.is_empty()) {
        None => GODEBUG_MPTCP.into(),
        Some(e)
            if e.as_bytes()
                .split(|b| *b == b',')
                .any(|p| p == GODEBUG_MPTCP.as_bytes()) =>
        {
            e.to_owned()
        }
        Some(e) => {
            let mut value = e.to_owned();
            value.push(",");
            value.push(GODEBUG_MPTCP);
            value
        }
    }
}

/// Why `LD_PRELOAD` cannot reach `program` (a path or a name looked up in `PATH`), if it cannot.
#[must_use]
pub(super) fn unreachable_by_preload(program: &OsStr) -> Option<&'static str> {
    let path = resolve_program(program)?;
    let meta = fs::metadata(&path).ok()?;
    if meta.permissions().mode() & 0o6000 != 0 {
        return Some("it is setuid or setgid, so the dynamic loader ignores LD_PRELOAD");
    }
    let data = fs::read(&path).ok()?;
    let elf = object::File::parse(&*data).ok()?;
    elf.section_by_name(".interp")
        .is_none()
        .then_some("it is statically linked, so no LD_PRELOAD library is loaded into it")
}

fn resolve_program(program: &OsStr) -> Option<PathBuf> {
    let program = Path::new(program);
    if program.components().count() > 1 {
        return Some(program.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use std::{ffi::OsStr, path::Path};

    use super::{godebug, ld_preload};

    #[test]
    fn ld_preload_appends_once() {
        let lib = Path::new("/l/libmptcpwrap.so");
        assert_eq!(ld_preload(None, lib), "/l/libmptcpwrap.so");
        assert_eq!(ld_preload(Some(OsStr::new("")), lib), "/l/libmptcpwrap.so");
        assert_eq!(
            ld_preload(Some(OsStr::new("/x/a.so")), lib),
            "/x/a.so:/l/libmptcpwrap.so"
        );
        assert_eq!(
            ld_preload(Some(OsStr::new("/x/a.so /l/libmptcpwrap.so")), lib),
            "/x/a.so /l/libmptcpwrap.so"
        );
    }

    #[test]
    fn godebug_appends_once() {
        assert_eq!(godebug(None), "multipathtcp=1");
        assert_eq!(
            godebug(Some(OsStr::new("http2client=0"))),
            "http2client=0,multipathtcp=1"
        );
        assert_eq!(
            godebug(Some(OsStr::new("multipathtcp=1"))),
            "multipathtcp=1"
        );
    }
}
