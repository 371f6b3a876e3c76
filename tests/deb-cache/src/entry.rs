//! One set of unpacked packages: `DIR/root/` (the tree) and `DIR/debs` (the archives' file
//! names, one a line). In the cache, DIR is `LABEL-KEY`, KEY a hash of the sorted file names,
//! and `debs` is written before the entry is renamed into place: an entry is used only if its
//! `debs` lists exactly the archives apt would fetch now and its marker file is there.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use tempfile::TempDir;

use crate::{Error, apt, dir::cache_dir, io_at};

/// The manifest: the archives' file names, one a line.
const MANIFEST: &str = "debs";

/// The entries this process has found, by cache and packages: apt takes a second or two to
/// read its package lists, and a test binary asks once per test.
static FOUND: Mutex<Vec<(PathBuf, Vec<String>, Unpacked)>> = Mutex::new(Vec::new());

/// Packages unpacked side by side under one root.
#[derive(Debug, Clone, Copy)]
pub struct Debs<'a> {
    /// Names the entries (`c-mptcpd`, `kernel`), for people looking into the cache.
    pub label: &'a str,
    /// The packages, as `apt-get download` takes them.
    pub packages: &'a [&'a str],
    /// A path below the root that is there once everything is unpacked (`usr/bin/prometheus`).
    pub marker: &'a str,
}

/// An unpacked set of packages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Where they are unpacked.
    pub root: PathBuf,
    /// The archives' file names, sorted (empty for a directory unpacked by an older harness).
    pub debs: Vec<String>,
}

impl Unpacked {
    /// `package`'s Debian version, from its archive's name (`apt-get download` escapes an
    /// epoch's colon as `%3a`).
    #[must_use]
    pub fn version(&self, package: &str) -> Option<String> {
        let prefix = format!("{package}_");
        self.debs.iter().find_map(|name| {
            let version = name.strip_prefix(&prefix)?.split('_').next()?;
            Some(version.replace("%3a", ":"))
        })
    }
}

impl Debs<'_> {
    /// The packages from the cache ([`cache_dir`]): the entry of the archives apt would
    /// download now, downloaded and unpacked first if it is missing or incomplete.
    pub fn get(&self) -> Result<Unpacked, Error> {
        self.get_in_cache(&cache_dir()?)
    }

    /// [`Self::get`] with the cache in `cache`.
    pub fn get_in_cache(&self, cache: &Path) -> Result<Unpacked, Error> {
        let packages: Vec<String> = self.packages.iter().map(|&p| p.to_owned()).collect();
        let mut found = FOUND.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, unpacked)) = found.iter().find(|(c, p, unpacked)| {
            c == cache && *p == packages && unpacked.root.join(self.marker).exists()
        }) {
            return Ok(unpacked.clone());
        }
        let names = apt::archive_names(self.packages)?;
        let unpacked = match self.read(&cache.join(key(self.label, &names)), Some(&names)) {
            Some(hit) => hit,
            None => self.build(cache, |debs| cache.join(key(self.label, debs)), true)?,
        };
        found.push((cache.to_owned(), packages, unpacked.clone()));
        Ok(unpacked)
    }

    /// The packages in `dir`, whatever their versions (a directory a user names instead of
    /// the cache); downloaded and unpacked there first if its marker is missing.
    pub fn get_in(&self, dir: &Path) -> Result<Unpacked, Error> {
        if let Some(found) = self.read(dir, None) {
            return Ok(found);
        }
        let parent = dir.parent().unwrap_or(Path::new("/"));
        self.build(parent, |_| dir.to_owned(), false)
    }

    /// The entry at `dir` if it is complete (and lists exactly `expected`, when given).
    fn read(&self, dir: &Path, expected: Option<&[String]>) -> Option<Unpacked> {
        let root = dir.join("root");
        if !root.join(self.marker).exists() {
            return None;
        }
        let manifest = fs::read_to_string(dir.join(MANIFEST));
        let debs: Vec<String> = manifest
            .as_deref()
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        match expected {
            Some(names) if manifest.is_err() || debs != names => None,
            _ => Some(Unpacked { root, debs }),
        }
    }

    /// Downloads and unpacks the packages beside `parent`'s entries, then renames them to
    /// `dest_for(archive names)`; `replace`: an incomplete entry there is ours to replace.
    fn build(
        &self,
        parent: &Path,
        dest_for: impl Fn(&[String]) -> PathBuf,
        replace: bool,
    ) -> Result<Unpacked, Error> {
        fs::create_dir_all(parent).map_err(io_at(parent))?;
        let staging = tempfile::Builder::new()
            .prefix(&format!(".{}-fetch-", self.label))
            .tempdir_in(parent)
            .map_err(io_at(parent))?;
        eprintln!(
            "deb-cache: downloading {} into {}",
            self.packages.join(" "),
            parent.display()
        );
        apt::download(staging.path(), self.packages)?;
        let mut debs = Vec::new();
        for entry in fs::read_dir(staging.path()).map_err(io_at(staging.path()))? {
            let path = entry.map_err(io_at(staging.path()))?.path();
            if path.extension().is_some_and(|e| e == "deb")
                && let Some(name) = path.file_name().and_then(|n| n.to_str())
            {
                debs.push(name.to_owned());
            }
        }
        debs.sort();
        let root = staging.path().join("root");
        for name in &debs {
            let deb = staging.path().join(name);
            apt::unpack(&deb, &root)?;
            // Kept only unpacked: the archives are large (a kernel: 80 MB).
            fs::remove_file(&deb).map_err(io_at(&deb))?;
        }
        if !root.join(self.marker).exists() {
            return Err(Error::NoMarker {
                root,
                marker: self.marker.to_owned(),
                debs: debs.join(" "),
            });
        }
        let manifest = staging.path().join(MANIFEST);
        fs::write(&manifest, debs.join("\n") + "\n").map_err(io_at(&manifest))?;
        let dest = dest_for(&debs);
        place(
            staging,
            &dest,
            |d| self.read(d, replace.then_some(&debs)).is_some(),
            replace,
        )?;
        eprintln!("deb-cache: unpacked into {}", dest.display());
        Ok(Unpacked {
            root: dest.join("root"),
            debs,
        })
    }
}

/// The entry's directory name: the label, and a hash of the sorted archive names that stays
/// the same across toolchains (FNV-1a; std's hasher may change, and a collision only costs a
/// rebuild, as [`Debs::read`] compares the manifest).
fn key(label: &str, names: &[String]) -> String {
    let hash = names
        .join("\n")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{label}-{hash:016x}")
}

/// Renames `staging` to `dest`. If `dest` is there already: complete (another run put it
/// there meanwhile) it is used and `staging` dropped; incomplete, it is moved aside and
/// removed first if `replace`, else an error.
fn place(
    staging: TempDir,
    dest: &Path,
    complete: impl Fn(&Path) -> bool,
    replace: bool,
) -> Result<(), Error> {
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let mut attempts = 0;
    loop {
        let Err(err) = fs::rename(staging.path(), dest) else {
            let _moved = staging.keep();
            return Ok(());
        };
        attempts += 1;
        if complete(dest) {
            return Ok(());
        }
        if !replace || attempts > 2 {
            return Err(io_at(dest)(err));
        }
        // Renamed onto an empty directory of our own (atomic), then removed with it on drop.
        let trash = tempfile::Builder::new()
            .prefix(".stale-")
            .tempdir_in(parent)
            .map_err(io_at(parent))?;
        fs::rename(dest, trash.path()).map_err(io_at(dest))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROMETHEUS: Debs<'static> = Debs {
        label: "prometheus",
        packages: &["prometheus"],
        marker: "usr/bin/prometheus",
    };

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|&n| n.to_owned()).collect()
    }

    /// A complete entry at `dir` listing `debs`.
    fn entry(dir: &Path, debs: &[String]) {
        fs::create_dir_all(dir.join("root/usr/bin")).unwrap();
        fs::write(dir.join("root/usr/bin/prometheus"), "").unwrap();
        fs::write(dir.join(MANIFEST), debs.join("\n") + "\n").unwrap();
    }

    #[test]
    fn the_key_changes_with_any_archive_and_is_stable() {
        let old = names(&["libell0_0.56-3_amd64.deb", "mptcpd_0.12-1_amd64.deb"]);
        let new = names(&["libell0_0.56-4_amd64.deb", "mptcpd_0.12-1_amd64.deb"]);
        assert_ne!(key("c-mptcpd", &old), key("c-mptcpd", &new));
        assert_ne!(key("c-mptcpd", &old), key("c-mptcpd", &old[..1]));
        // Fixed: entries made by one build are found by the next.
        assert_eq!(key("c-mptcpd", &old), "c-mptcpd-2d8b10a617b6655b");
    }

    #[test]
    fn an_entry_is_used_only_complete_and_for_the_same_archives() {
        let cache = tempfile::tempdir().unwrap();
        let debs = names(&["prometheus_2.42.0+ds-5+deb12u1_amd64.deb"]);
        let dir = cache.path().join(key("prometheus", &debs));
        assert_eq!(PROMETHEUS.read(&dir, Some(&debs)), None);
        entry(&dir, &debs);
        let hit = PROMETHEUS.read(&dir, Some(&debs)).unwrap();
        assert_eq!(hit.root, dir.join("root"));
        assert_eq!(hit.version("prometheus").unwrap(), "2.42.0+ds-5+deb12u1");
        let newer = names(&["prometheus_2.42.0+ds-5+deb12u2_amd64.deb"]);
        assert_eq!(PROMETHEUS.read(&dir, Some(&newer)), None);
        fs::remove_file(dir.join(MANIFEST)).unwrap();
        assert_eq!(PROMETHEUS.read(&dir, Some(&debs)), None);
        // A directory the user names: its marker is enough (an older harness wrote no list).
        assert_eq!(
            PROMETHEUS.read(&dir, None).unwrap().debs,
            Vec::<String>::new()
        );
        fs::remove_file(dir.join("root/usr/bin/prometheus")).unwrap();
        assert_eq!(PROMETHEUS.read(&dir, None), None);
    }

    #[test]
    fn placing_keeps_a_complete_entry_and_replaces_an_incomplete_one() {
        let cache = tempfile::tempdir().unwrap();
        let debs = names(&["prometheus_1_amd64.deb"]);
        let dest = cache.path().join("prometheus-1");
        let complete = |d: &Path| PROMETHEUS.read(d, Some(&debs)).is_some();
        let staged = |content: &str| {
            let staging = tempfile::tempdir_in(cache.path()).unwrap();
            entry(staging.path(), &debs);
            fs::write(staging.path().join("which"), content).unwrap();
            staging
        };
        // Absent: moved into place.
        place(staged("first"), &dest, complete, true).unwrap();
        assert_eq!(fs::read_to_string(dest.join("which")).unwrap(), "first");
        // Complete (a concurrent run's): kept, ours dropped.
        place(staged("second"), &dest, complete, true).unwrap();
        assert_eq!(fs::read_to_string(dest.join("which")).unwrap(), "first");
        // Incomplete: replaced; not ours to replace: an error, left as it was.
        fs::remove_file(dest.join(MANIFEST)).unwrap();
        assert!(place(staged("third"), &dest, complete, false).is_err());
        assert_eq!(fs::read_to_string(dest.join("which")).unwrap(), "first");
        place(staged("fourth"), &dest, complete, true).unwrap();
        assert_eq!(fs::read_to_string(dest.join("which")).unwrap(), "fourth");
        // Nothing left beside the entry (staging and stale directories removed).
        assert_eq!(fs::read_dir(cache.path()).unwrap().count(), 1);
    }

    #[test]
    fn versions_come_from_the_archive_names() {
        let unpacked = Unpacked {
            root: PathBuf::new(),
            debs: names(&["mptcpd-plugins_0.12-1_amd64.deb", "vim_2%3a9.0-2_amd64.deb"]),
        };
        assert_eq!(unpacked.version("vim").unwrap(), "2:9.0-2");
        assert_eq!(unpacked.version("mptcpd"), None);
        assert_eq!(unpacked.version("mptcpd-plugins").unwrap(), "0.12-1");
    }
}
