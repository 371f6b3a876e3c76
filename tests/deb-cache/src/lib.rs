//! Debian packages that the tests and the VM runner use unpacked, never installed (the VM
//! kernels, the C mptcpd peer, Prometheus): downloaded with `apt-get download`, unpacked with
//! `dpkg-deb -x` into a cache outside the clone (so that a fresh clone, as in CI, reuses them),
//! one entry per set of archives, keyed by their file names (`name_version_arch.deb`, the
//! archive's identity: a new version is a new entry). Entries are built aside and renamed into
//! place, so that concurrent runs never see half of one.

mod apt;
mod dir;
mod entry;

use std::{io, path::PathBuf};

pub use dir::{CACHE_DIR_ENV, cache_dir};
pub use entry::{Debs, Unpacked};

/// What went wrong getting a cache entry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No environment variable names a cache directory.
    #[error("no cache directory: set MPTCPD_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    /// A cache directory named by the environment that cannot be used.
    #[error("{name}={value:?}: {why}")]
    BadCacheDir {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A command (apt-get, dpkg-deb) failed.
    #[error("{command}: {message}")]
    Command {
        /// The command line.
        command: String,
        /// Its error output or exit status.
        message: String,
    },
    /// The unpacked packages lack the file that shows they are complete.
    #[error("{} has no {marker} after unpacking {debs}", root.display())]
    NoMarker {
        /// The unpacked tree.
        root: PathBuf,
        /// The file looked for.
        marker: String,
        /// The archives unpacked.
        debs: String,
    },
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path it was on.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// `Error::Io` on `path`, for `map_err`.
fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { path, source }
}
