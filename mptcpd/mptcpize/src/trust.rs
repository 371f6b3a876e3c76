//! Whether a file may be named in a drop-in that systemd runs as root at every start: only if no
//! user but root can replace it, that is if it and every directory above it are owned by root
//! and writable by nobody else.

use std::{
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// The sticky bit: in such a directory only an entry's owner may rename or remove it (`/tmp`).
const S_ISVTX: u32 = 0o1000;

/// Why a user other than root could replace `path`, if one could. `path` is made absolute and
/// its symbolic links resolved first.
#[must_use]
pub(super) fn untrusted(path: &Path) -> Option<String> {
    let path = match fs::canonicalize(path) {
        Ok(path) => path,
        Err(e) => return Some(format!("{}: {e}", path.display())),
    };
    let mut entry: Option<PathBuf> = Some(path.clone());
    while let Some(current) = entry {
        let meta = match fs::symlink_metadata(&current) {
            Ok(meta) => meta,
            Err(e) => return Some(format!("{}: {e}", current.display())),
        };
        if meta.uid() != 0 {
            return Some(format!(
                "{} is owned by uid {}, not root",
                current.display(),
                meta.uid()
            ));
        }
        let writable = meta.mode() & 0o022;
        // A sticky directory writable by all (/tmp) cannot lose root's entries (the entry below
        // it was checked first) to a user.
        let sticky = meta.is_dir() && meta.mode() & S_ISVTX != 0 && current != path;
        if writable != 0 && !sticky {
            return Some(format!(
                "{} is writable by {} (mode {:o})",
                current.display(),
                if writable & 0o002 == 0 {
                    "its group"
                } else {
                    "all users"
                },
                meta.mode() & 0o7777
            ));
        }
        entry = current.parent().map(Path::to_owned);
    }
    None
}

#[cfg(test)]
mod tests {
    use std::{
        fs,
        os::unix::fs::{PermissionsExt as _, chown},
        path::Path,
    };

    use super::untrusted;

    fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    /// `base/d/f`, every mode given, all owned by the caller.
    fn tree(base: &Path, dir_mode: u32, file_mode: u32) -> std::path::PathBuf {
        let dir = base.join("d");
        fs::create_dir(&dir).unwrap();
        let file = dir.join("f");
        fs::write(&file, "").unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(dir_mode)).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(file_mode)).unwrap();
        file
    }

    #[test]
    fn a_root_owned_tree_passes_and_writable_or_foreign_parts_do_not() {
        if !is_root() {
            eprintln!("skipped: a_root_owned_tree_passes...: needs root to own files as root");
            return;
        }
        // tempdir: 0700 below /tmp (1777, root's): the sticky bit guards it.
        let base = tempfile::tempdir().unwrap();
        let file = tree(base.path(), 0o755, 0o755);
        assert_eq!(untrusted(&file), None);

        let base = tempfile::tempdir().unwrap();
        let file = tree(base.path(), 0o777, 0o755);
        let why = untrusted(&file).unwrap();
        assert!(
            why.ends_with("/d is writable by all users (mode 777)"),
            "{why}"
        );

        let base = tempfile::tempdir().unwrap();
        let file = tree(base.path(), 0o775, 0o755);
        assert!(untrusted(&file).unwrap().contains("writable by its group"));

        let base = tempfile::tempdir().unwrap();
        let file = tree(base.path(), 0o755, 0o666);
        assert!(
            untrusted(&file)
                .unwrap()
                .contains("/d/f is writable by all users")
        );

        let base = tempfile::tempdir().unwrap();
        let file = tree(base.path(), 0o755, 0o755);
        chown(file.parent().unwrap(), Some(65534), None).unwrap();
        let why = untrusted(&file).unwrap();
        assert!(why.ends_with("/d is owned by uid 65534, not root"), "{why}");

        // A sticky directory writable by all guards root's entries, not a user's.
        let base = tempfile::tempdir().unwrap();
        let file = tree(base.path(), 0o1777, 0o755);
        assert_eq!(untrusted(&file), None);
        chown(&file, Some(65534), None).unwrap();
        assert!(untrusted(&file).unwrap().contains("owned by uid 65534"));

        assert!(untrusted(Path::new("/no/such/file")).is_some());
    }
}
