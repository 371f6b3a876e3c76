//! The cgroup v2 hierarchy: where it is mounted and the ids BPF programs see.

use std::{
    fs, io,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// Where the cgroup v2 hierarchy is mounted, read from `/proc/self/mounts`.
///
/// Never hard-coded: systemd hosts mount it at `/sys/fs/cgroup`, hybrid hosts at
/// `/sys/fs/cgroup/unified`.
pub fn cgroup2_root() -> io::Result<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts")?;
    find_cgroup2_mount(&mounts).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no cgroup2 mount in /proc/self/mounts (mount -t cgroup2 none /sys/fs/cgroup)",
        )
    })
}

/// The mount point of the first `cgroup2` entry of a mounts table (`/proc/*/mounts` format).
#[must_use]
fn find_cgroup2_mount(mounts: &str) -> Option<PathBuf> {
    mounts.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (_source, target, fstype) = (fields.next()?, fields.next()?, fields.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(unescape_mount_field(target)))
    })
}

/// Undoes the octal escapes (`\040` for a space) that the kernel writes in mount tables.
fn unescape_mount_field(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|_| bytes[i] == b'\\')
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        if let Some(byte) = octal {
            out.push(byte);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The id BPF programs see for a cgroup v2 directory (`bpf_get_current_cgroup_id`): the
/// directory's inode number.
pub fn cgroup_id(dir: &Path) -> io::Result<u64> {
    Ok(fs::metadata(dir)?.ino())
}

/// The cgroup v2 directory of the calling process (`0::/PATH` in `/proc/self/cgroup`).
pub fn current_cgroup() -> io::Result<PathBuf> {
    let root = cgroup2_root()?;
    let own = fs::read_to_string("/proc/self/cgroup")?;
    let relative = parse_proc_cgroup(&own).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no cgroup v2 entry in /proc/self/cgroup",
        )
    })?;
    Ok(root.join(relative.trim_start_matches('/')))
}

/// The cgroup v2 path (`/a/b`) of a `/proc/PID/cgroup` table.
#[must_use]
fn parse_proc_cgroup(table: &str) -> Option<&str> {
    table.lines().find_map(|line| line.strip_prefix("0::"))
}

/// A cgroup given as a directory, or as a path relative to the cgroup v2 root (`/system.slice`,
/// as systemd names them): the directory, which must exist.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let root = cgroup2_root()?;
    let dir = if path.starts_with(&root) {
        path.to_owned()
    } else {
        root.join(path.strip_prefix("/").unwrap_or(path))
    };
    if dir.join("cgroup.procs").is_file() {
        Ok(dir)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a cgroup v2 directory", dir.display()),
        ))
    }
}

/// Every cgroup below `root` (and `root` itself) by id, as paths relative to `root` (`/` for
/// the root). Directories that vanish meanwhile are skipped.
#[must_use]
pub fn paths_by_id(root: &Path) -> std::collections::BTreeMap<u64, String> {
    let mut found = std::collections::BTreeMap::new();
    let mut pending = vec![(root.to_owned(), 0_u32)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(id) = cgroup_id(&dir) else { continue };
        let relative = dir.strip_prefix(root).unwrap_or(&dir);
        found.insert(id, format!("/{}", relative.display()));
        // Deeper than any BPF program looks (and than systemd nests).
        if depth >= 64 {
            continue;
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{find_cgroup2_mount, parse_proc_cgroup, unescape_mount_field};

    #[test]
    fn finds_the_v2_entry_of_proc_cgroup() {
        let table = "12:cpu,cpuacct:/\n0::/system.slice/foo.service\n";
        assert_eq!(parse_proc_cgroup(table), Some("/system.slice/foo.service"));
        assert_eq!(parse_proc_cgroup("1:name=systemd:/\n"), None);
    }

    #[test]
    fn finds_the_hybrid_hierarchy_mount() {
        let mounts = "\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,cpu 0 0
";
        assert_eq!(
            find_cgroup2_mount(mounts).as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn ignores_a_cgroup2_source_name_on_another_fstype() {
        let mounts = "cgroup2 /mnt/x tmpfs rw 0 0\nnone /sys/fs/cgroup cgroup2 rw 0 0\n";
        assert_eq!(
            find_cgroup2_mount(mounts).as_deref(),
            Some(Path::new("/sys/fs/cgroup"))
        );
    }

    #[test]
    fn no_cgroup2_mount() {
        assert_eq!(find_cgroup2_mount("proc /proc proc rw 0 0\n"), None);
        assert_eq!(find_cgroup2_mount(""), None);
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(
            unescape_mount_field(r"/mnt/my\040cgroups"),
            "/mnt/my cgroups"
        );
        assert_eq!(unescape_mount_field(r"/a\134b"), r"/a\b");
        // A backslash that starts no valid escape stays as it is.
        assert_eq!(unescape_mount_field(r"/a\9x"), r"/a\9x");
        assert_eq!(unescape_mount_field("/trailing\\"), "/trailing\\");
    }
}
