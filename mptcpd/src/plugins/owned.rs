//! The endpoints this daemon added, and the state file that names them across restarts.
//!
//! The kernel keeps no owner for an endpoint, and flags or ids cannot tell ours from one an
//! administrator added with the same values, so ownership is written down: one line
//! `ID ADDRESS` per endpoint, rewritten (atomically, by rename) after each change. After a
//! restart an endpoint is ours if the kernel still has that id with that address.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    fs, io,
    net::IpAddr,
    path::{Path, PathBuf},
};

use mptcpd_plugin::Endpoint;
use tracing::warn;

#[derive(Debug, Clone, Copy)]
struct Entry {
    endpoint: Endpoint,
    /// A plugin added it (or added it again) since start-up.
    claimed: bool,
}

/// Our endpoints by id.
#[derive(Debug, Default)]
pub(super) struct Owned {
    endpoints: BTreeMap<u8, Entry>,
    file: Option<PathBuf>,
}

impl Owned {
    pub(super) const fn new(file: Option<PathBuf>) -> Self {
        Self {
            endpoints: BTreeMap::new(),
            file,
        }
    }

    /// Takes as ours, unclaimed, the endpoints of `kernel` that the state file names (same
    /// id and address); the file is rewritten without the others. Returns how many.
    pub(super) fn adopt(&mut self, kernel: &[Endpoint]) -> usize {
        let listed = self.file.as_deref().map(read).unwrap_or_default();
        self.endpoints = kernel
            .iter()
            .filter(|e| listed.get(&e.id) == Some(&e.addr))
            .map(|e| {
                let entry = Entry {
                    endpoint: *e,
                    claimed: false,
                };
                (e.id, entry)
            })
            .collect();
        self.save();
        self.endpoints.len()
    }

    /// Forgets ours that `kernel` no longer has (someone removed them); returns them.
    pub(super) fn retain_in(&mut self, kernel: &[Endpoint]) -> Vec<Endpoint> {
        let gone: Vec<Endpoint> = self
            .endpoints
            .values()
            .map(|e| e.endpoint)
            .filter(|e| !kernel.iter().any(|k| k.id == e.id && k.addr == e.addr))
            .collect();
        for e in &gone {
            self.endpoints.remove(&e.id);
        }
        if !gone.is_empty() {
            self.save();
        }
        gone
    }

    pub(super) fn by_addr(&self, addr: IpAddr) -> Option<Endpoint> {
        self.endpoints
            .values()
            .find(|e| e.endpoint.addr == addr)
            .map(|e| e.endpoint)
    }

    pub(super) fn contains(&self, id: u8) -> bool {
        self.endpoints.contains_key(&id)
    }

    pub(super) fn claim(&mut self, id: u8) {
        if let Some(e) = self.endpoints.get_mut(&id) {
            e.claimed = true;
        }
    }

    pub(super) fn insert(&mut self, endpoint: Endpoint) {
        let entry = Entry {
            endpoint,
            claimed: true,
        };
        self.endpoints.insert(endpoint.id, entry);
        self.save();
    }

    pub(super) fn remove(&mut self, id: u8) -> Option<Endpoint> {
        let removed = self.endpoints.remove(&id).map(|e| e.endpoint);
        if removed.is_some() {
            self.save();
        }
        removed
    }

    pub(super) fn clear(&mut self) {
        self.endpoints.clear();
        self.save();
    }

    pub(super) fn unclaimed(&self) -> Vec<Endpoint> {
        self.endpoints
            .values()
            .filter(|e| !e.claimed)
            .map(|e| e.endpoint)
            .collect()
    }

    pub(super) fn all(&self) -> Vec<Endpoint> {
        self.endpoints.values().map(|e| e.endpoint).collect()
    }

    fn save(&self) {
        let Some(path) = &self.file else {
            return;
        };
        if self.endpoints.is_empty() {
            // Nothing to remember: leave no file behind (one per network namespace).
            if let Err(e) = fs::remove_file(path)
                && e.kind() != io::ErrorKind::NotFound
            {
                warn!("removing {}: {e}", path.display());
            }
            return;
        }
        let mut text = String::from("# mptcpd: endpoints this daemon added (id address)\n");
        for e in self.endpoints.values() {
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{} {}", e.endpoint.id, e.endpoint.addr);
        }
        if let Err(e) = write_atomically(path, &text) {
            warn!("writing {}: {e}", path.display());
        }
    }
}

fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

/// The state file's entries; a missing file is empty, bad lines are skipped with a warning.
fn read(path: &Path) -> BTreeMap<u8, IpAddr> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => {
            warn!("reading {}: {e}", path.display());
            return BTreeMap::new();
        }
    };
    parse(&text, path)
}

fn parse(text: &str, path: &Path) -> BTreeMap<u8, IpAddr> {
    let mut entries = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = line
            .split_once(' ')
            .and_then(|(id, addr)| Some((id.parse().ok()?, addr.trim().parse().ok()?)));
        match parsed {
            Some((id, addr)) if id != 0 => {
                entries.insert(id, addr);
            }
            _ => warn!("{}: skipping bad line {line:?}", path.display()),
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mptcpd_plugin::{Endpoint, EndpointFlags};

    use super::Owned;

    fn ep(id: u8, addr: &str) -> Endpoint {
        Endpoint {
            id,
            addr: addr.parse().unwrap(),
            port: None,
            flags: EndpointFlags::SUBFLOW,
            if_idx: None,
        }
    }

    #[test]
    fn survives_a_restart_through_the_file_and_adopts_what_the_kernel_still_has() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/endpoints");
        let mut owned = Owned::new(Some(file.clone()));
        owned.insert(ep(1, "10.0.0.1"));
        owned.insert(ep(2, "10.0.0.2"));
        owned.insert(ep(3, "10.0.0.3"));
        owned.remove(3);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with("1 10.0.0.1\n2 10.0.0.2\n"), "{text}");

        // Restart: the kernel has 1, has id 2 with another address (someone replaced it),
        // and a hand-made 9.
        let kernel = [ep(1, "10.0.0.1"), ep(2, "10.0.0.22"), ep(9, "10.0.0.9")];
        let mut again = Owned::new(Some(file.clone()));
        assert_eq!(again.adopt(&kernel), 1);
        assert_eq!(again.all(), [ep(1, "10.0.0.1")]);
        assert_eq!(again.unclaimed(), [ep(1, "10.0.0.1")]);
        again.claim(1);
        assert_eq!(again.unclaimed(), []);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains("10.0.0.2"), "{text}");

        // Someone deletes ours: forgotten.
        assert_eq!(again.retain_in(&kernel[1..]), [ep(1, "10.0.0.1")]);
        assert_eq!(again.all(), []);
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(again.by_addr(addr).is_none());
    }

    #[test]
    fn bad_lines_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        std::fs::write(&file, "# c\n1 10.0.0.1\nx y\n0 10.0.0.3\n2\n\n3 10.0.0.3\n").unwrap();
        let mut owned = Owned::new(Some(file));
        let kernel = [ep(1, "10.0.0.1"), ep(3, "10.0.0.3")];
        assert_eq!(owned.adopt(&kernel), 2);
        let mut none = Owned::new(Some(dir.path().join("missing")));
        assert_eq!(none.adopt(&kernel), 0);
        let mut memory = Owned::new(None);
        assert_eq!(memory.adopt(&kernel), 0);
    }
}
