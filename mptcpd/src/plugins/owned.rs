//! The endpoints this daemon added ("ours"), and the state file that names them across
//! restarts.
//!
//! The kernel keeps no owner for an endpoint, and flags or ids cannot tell ours from one an
//! administrator added with the same values, so ownership is written down (`state_file`),
//! rewritten after each change. After a restart an endpoint is ours if the file was written in
//! this network namespace during this boot (its inode, cookie and the boot id: inodes are
//! reused) and the kernel has an endpoint identical to one of its records: same id, address,
//! port, flags and interface. A record the daemon was still `adding` counts too: the kernel
//! may have added it just before a crash.
//!
//! An endpoint added through the daemon for an operator (D-Bus) is recorded with its origin:
//! never stale, never removed at shutdown, not the plugins' (neither [`Owned::all`] nor
//! [`Owned::by_addr`] name it), its id kept off for the plugins.
//!
//! A removal the kernel has made may be written later ([`Owned::forget_removed`], then
//! [`Owned::write_deferred`]): a record the kernel no longer has is dropped at the next start,
//! so the file may lag behind a removal, never behind an add. Writing between the `DEL_ADDR`s of
//! a burst lengthened the kernel's RCU wait in each of them by a fifth (docs/testing.md,
//! "Deletes, found").

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf};

use mptcpd_plugin::Endpoint;
use tracing::warn;

use super::{
    NetnsId,
    state_file::{self, Origin, Record, RecordState, StateFile},
};

#[derive(Debug, Clone, Copy)]
enum Entry {
    /// The kernel is being asked to add it.
    Adding(Endpoint, Origin),
    Added {
        endpoint: Endpoint,
        /// A plugin added it (or added it again) since start-up; an operator's always is.
        claimed: bool,
        origin: Origin,
    },
    /// Ours but out of the kernel for now (`HostPm::suspend_endpoint`: a dead path's
    /// re-probe), to be put back with the same id. Only a plugin's endpoint is suspended.
    Suspended { endpoint: Endpoint, claimed: bool },
}

impl Entry {
    const fn added(&self) -> Option<&Endpoint> {
        match self {
            Self::Adding(..) | Self::Suspended { .. } => None,
            Self::Added { endpoint, .. } => Some(endpoint),
        }
    }

    const fn suspended(&self) -> Option<&Endpoint> {
        match self {
            Self::Suspended { endpoint, .. } => Some(endpoint),
            Self::Adding(..) | Self::Added { .. } => None,
        }
    }

    /// Added, and a plugin's.
    const fn daemons(&self) -> Option<&Endpoint> {
        match self {
            Self::Added {
                endpoint,
                origin: Origin::Daemon,
                ..
            } => Some(endpoint),
            _ => None,
        }
    }
}

/// Our endpoints by id.
#[derive(Debug, Default)]
pub(super) struct Owned {
    entries: BTreeMap<u8, Entry>,
    /// The state file and the namespace it belongs to.
    file: Option<(PathBuf, NetnsId)>,
    /// A removal is not in the file yet.
    unwritten: bool,
}

impl Owned {
    /// Remembered in `file` (if any), for the calling thread's network namespace.
    pub(super) fn new(file: Option<PathBuf>) -> Self {
        let file = file.and_then(|path| match NetnsId::current() {
            Ok(netns) => Some((path, netns)),
            Err(e) => {
                warn!(
                    "{}: not used: cannot identify the network namespace: {e}",
                    path.display()
                );
                None
            }
        });
        Self {
            entries: BTreeMap::new(),
            file,
            unwritten: false,
        }
    }

    /// Remembered in `file`, for `netns`.
    #[cfg(test)]
    fn with_netns(file: PathBuf, netns: NetnsId) -> Self {
        Self {
            entries: BTreeMap::new(),
            file: Some((file, netns)),
            unwritten: false,
        }
    }

    /// Takes as ours, unclaimed, the endpoints of `kernel` identical to a record of the state
    /// file; the file is rewritten without the others. Returns how many.
    pub(super) fn adopt(&mut self, kernel: &[Endpoint]) -> usize {
        let records = self.records();
        self.entries = kernel
            .iter()
            .filter_map(|e| {
                let record = records.iter().find(|r| r.endpoint == *e)?;
                let entry = Entry::Added {
                    endpoint: *e,
                    claimed: record.origin == Origin::Operator,
                    origin: record.origin,
                };
                Some((e.id, entry))
            })
            .collect();
        // Suspended when the last run stopped: still ours, still out of the kernel; their
        // addresses are reported again so that their plugin adds them back.
        for r in records {
            if r.state == RecordState::Suspended && !self.entries.contains_key(&r.endpoint.id) {
                let taken = kernel.iter().any(|k| k.id == r.endpoint.id);
                if !taken {
                    let entry = Entry::Suspended {
                        endpoint: r.endpoint,
                        claimed: false,
                    };
                    self.entries.insert(r.endpoint.id, entry);
                }
            }
        }
        self.save();
        self.entries.len()
    }

    /// The state file's records, if it is this namespace's; else none, with one warning.
    fn records(&self) -> Vec<Record> {
        let Some((path, netns)) = &self.file else {
            return Vec::new();
        };
        let text = match state_file::read(path) {
            Ok(Some(text)) => text,
            Ok(None) => return Vec::new(),
            Err(e) => {
                warn!("reading {}: {e}; no endpoint adopted", path.display());
                return Vec::new();
            }
        };
        match StateFile::parse(&text) {
            Ok(file) if file.netns == *netns => file.records,
            Ok(file) => {
                warn!(
                    "{}: ignored: written in another network namespace or boot ({:?}, not {:?})",
                    path.display(),
                    file.netns,
                    netns
                );
                Vec::new()
            }
            Err(e) => {
                warn!("{}: ignored: {e}", path.display());
                Vec::new()
            }
        }
    }

    /// Forgets ours that `kernel` no longer has (someone removed them) and returns them;
    /// those it still has take its current values (someone may have changed their flags).
    pub(super) fn retain_in(&mut self, kernel: &[Endpoint]) -> Vec<Endpoint> {
        let mut gone = Vec::new();
        let mut changed = false;
        self.entries.retain(|_, entry| {
            let Entry::Added { endpoint, .. } = entry else {
                return true;
            };
            let now = kernel
                .iter()
                .find(|k| k.id == endpoint.id && k.addr == endpoint.addr);
            if let Some(now) = now {
                changed |= now != endpoint;
                *endpoint = *now;
                true
            } else {
                gone.push(*endpoint);
                false
            }
        });
        if changed || !gone.is_empty() {
            self.save();
        }
        gone
    }

    /// The plugins' endpoint for `addr`.
    pub(super) fn by_addr(&self, addr: IpAddr) -> Option<Endpoint> {
        self.entries
            .values()
            .filter_map(Entry::daemons)
            .find(|e| e.addr == addr)
            .copied()
    }

    pub(super) fn contains(&self, id: u8) -> bool {
        self.entries.get(&id).and_then(Entry::added).is_some()
    }

    pub(super) fn claim(&mut self, id: u8) {
        if let Some(Entry::Added { claimed, .. } | Entry::Suspended { claimed, .. }) =
            self.entries.get_mut(&id)
        {
            *claimed = true;
        }
    }

    /// Ours and suspended: the endpoint as it will be put back.
    pub(super) fn suspended(&self, id: u8) -> Option<Endpoint> {
        self.entries.get(&id).and_then(Entry::suspended).copied()
    }

    /// Our suspended endpoint of `addr`, if any.
    pub(super) fn suspended_by_addr(&self, addr: IpAddr) -> Option<Endpoint> {
        self.entries
            .values()
            .filter_map(Entry::suspended)
            .find(|e| e.addr == addr)
            .copied()
    }

    /// Every suspended endpoint (their ids stay reserved for their addresses).
    pub(super) fn all_suspended(&self) -> Vec<Endpoint> {
        self.entries
            .values()
            .filter_map(Entry::suspended)
            .copied()
            .collect()
    }

    /// Before taking ours `id` out of the kernel: written down first. Returns whether it
    /// was ours (added).
    pub(super) fn suspend(&mut self, id: u8) -> bool {
        let Some(Entry::Added {
            endpoint,
            claimed,
            origin: Origin::Daemon,
        }) = self.entries.get(&id).copied()
        else {
            return false;
        };
        self.entries
            .insert(id, Entry::Suspended { endpoint, claimed });
        self.save();
        true
    }

    /// The suspended `id` will be put back as `endpoint` (new flags): written down first,
    /// so that a crash right after the kernel's answer still finds it identical.
    pub(super) fn resuming(&mut self, endpoint: Endpoint) {
        if let Some(Entry::Suspended { endpoint: e, .. }) = self.entries.get_mut(&endpoint.id)
            && *e != endpoint
        {
            *e = endpoint;
            self.save();
        }
    }

    /// The suspended `id` is in the kernel again (or its removal from the kernel failed):
    /// added.
    pub(super) fn unsuspend(&mut self, id: u8) {
        if let Some(Entry::Suspended { endpoint, .. }) = self.entries.get(&id).copied() {
            let entry = Entry::Added {
                endpoint,
                claimed: true,
                origin: Origin::Daemon,
            };
            self.entries.insert(id, entry);
            self.save();
        }
    }

    /// Before asking the kernel to add `endpoint`: the intent is on disk first. (An id of
    /// ours already: the kernel refuses it, and our record stays.)
    pub(super) fn intend(&mut self, endpoint: Endpoint, origin: Origin) {
        if !self.contains(endpoint.id) {
            self.entries
                .insert(endpoint.id, Entry::Adding(endpoint, origin));
            self.save();
        }
    }

    /// The kernel added `endpoint`: ours, or the operator's. When the intent on disk names
    /// it already, the file is not rewritten (one write per add, not two): a restart takes
    /// an `adding` record the kernel holds as ours, so `added` waits for the next write.
    pub(super) fn insert(&mut self, endpoint: Endpoint, origin: Origin) {
        let entry = Entry::Added {
            endpoint,
            claimed: true,
            origin,
        };
        let intended = self.entries.insert(endpoint.id, entry);
        if !matches!(intended, Some(Entry::Adding(e, o)) if e == endpoint && o == origin) {
            self.save();
        }
    }

    /// The kernel refused to add `endpoint`: the intent is dropped.
    pub(super) fn abandon(&mut self, endpoint: Endpoint) {
        if matches!(self.entries.get(&endpoint.id), Some(Entry::Adding(e, _)) if *e == endpoint) {
            self.entries.remove(&endpoint.id);
            self.save();
        }
    }

    /// Our endpoint `id` now has these values (flags changed through the handle).
    pub(super) fn update(&mut self, now: Endpoint) {
        if let Some(Entry::Added { endpoint, .. }) = self.entries.get_mut(&now.id)
            && endpoint.addr == now.addr
            && *endpoint != now
        {
            *endpoint = now;
            self.save();
        }
    }

    pub(super) fn remove(&mut self, id: u8) -> Option<Endpoint> {
        let removed = self.entries.remove(&id);
        if removed.is_some() {
            self.save();
        }
        removed.as_ref().and_then(Entry::added).copied()
    }

    /// [`Self::remove`] for an endpoint the kernel no longer has, written with the next change
    /// or by [`Self::write_deferred`]. Returns whether a write is now pending.
    pub(super) fn forget_removed(&mut self, id: u8) -> bool {
        if self.entries.remove(&id).is_some() && self.file.is_some() {
            self.unwritten = true;
        }
        self.unwritten
    }

    /// Writes the removals [`Self::forget_removed`] left unwritten, if any.
    pub(super) fn write_deferred(&mut self) {
        if self.unwritten {
            self.save();
        }
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.save();
    }

    /// Adopted (added or suspended) and not added again by a plugin since start-up.
    pub(super) fn unclaimed(&self) -> Vec<Endpoint> {
        self.entries
            .values()
            .filter_map(|e| match e {
                Entry::Added {
                    endpoint,
                    claimed: false,
                    origin: Origin::Daemon,
                }
                | Entry::Suspended {
                    endpoint,
                    claimed: false,
                } => Some(*endpoint),
                _ => None,
            })
            .collect()
    }

    /// Ours in the kernel and suspended ones: what shutdown removes.
    pub(super) fn all_with_suspended(&self) -> Vec<Endpoint> {
        let mut all = self.all();
        all.extend(self.all_suspended());
        all.sort_by_key(|e| e.id);
        all
    }

    /// The plugins' endpoints (not the operators').
    pub(super) fn all(&self) -> Vec<Endpoint> {
        self.entries
            .values()
            .filter_map(Entry::daemons)
            .copied()
            .collect()
    }

    /// Every recorded endpoint in the kernel with its origin.
    pub(super) fn with_origins(&self) -> Vec<(Endpoint, Origin)> {
        self.entries
            .values()
            .filter_map(|e| match *e {
                Entry::Added {
                    endpoint, origin, ..
                } => Some((endpoint, origin)),
                // Out of the kernel: nothing to list or flush (a re-probe puts it back).
                Entry::Adding(..) | Entry::Suspended { .. } => None,
            })
            .collect()
    }

    fn save(&mut self) {
        let Some((path, netns)) = &self.file else {
            return;
        };
        // Whatever the result: a failed write is logged, and the next change tries again.
        self.unwritten = false;
        let result = if self.entries.is_empty() {
            // Nothing to remember: leave no file behind (one per network namespace).
            state_file::remove(path)
        } else {
            let records = self
                .entries
                .values()
                .map(|entry| match *entry {
                    Entry::Adding(endpoint, origin) => Record {
                        state: RecordState::Adding,
                        endpoint,
                        origin,
                    },
                    Entry::Added {
                        endpoint, origin, ..
                    } => Record {
                        state: RecordState::Added,
                        endpoint,
                        origin,
                    },
                    Entry::Suspended { endpoint, .. } => Record {
                        state: RecordState::Suspended,
                        endpoint,
                        origin: Origin::Daemon,
                    },
                })
                .collect();
            let file = StateFile {
                netns: netns.clone(),
                records,
            };
            state_file::write(path, &file.format())
        };
        if let Err(e) = result {
            warn!("writing {}: {e}", path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{net::IpAddr, path::Path};

    use mptcpd_plugin::{Endpoint, EndpointFlags};

    use super::Owned;
    use crate::plugins::NetnsId;
    use crate::plugins::state_file::Origin;

    fn ep(id: u8, addr: &str) -> Endpoint {
        Endpoint {
            id,
            addr: addr.parse().unwrap(),
            port: None,
            flags: EndpointFlags::SUBFLOW,
            if_idx: Some(3),
        }
    }

    fn netns() -> NetnsId {
        NetnsId {
            inode: 4_026_532_296,
            cookie: Some(7),
            boot_id: "boot".to_owned(),
        }
    }

    fn owned(file: &Path) -> Owned {
        Owned::with_netns(file.to_owned(), netns())
    }

    #[test]
    fn survives_a_restart_through_the_file_and_adopts_what_the_kernel_still_has() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/endpoints");
        let mut first = owned(&file);
        first.insert(ep(1, "10.0.0.1"), Origin::Daemon);
        first.insert(ep(2, "10.0.0.2"), Origin::Daemon);
        first.insert(ep(3, "10.0.0.3"), Origin::Daemon);
        first.remove(3);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.ends_with(
                "endpoint added 1 10.0.0.1 - subflow 3 daemon\nendpoint added 2 10.0.0.2 - subflow 3 daemon\n"
            ),
            "{text}"
        );

        // Restart: the kernel has 1, has id 2 with another address (someone replaced it),
        // and a hand-made 9.
        let kernel = [ep(1, "10.0.0.1"), ep(2, "10.0.0.22"), ep(9, "10.0.0.9")];
        let mut again = owned(&file);
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
        assert!(!file.exists(), "nothing to remember, no file");
    }

    #[test]
    fn an_operators_endpoint_is_kept_across_restarts_and_never_the_plugins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        let mut first = owned(&file);
        first.insert(ep(1, "10.0.0.1"), Origin::Daemon);
        first.intend(ep(2, "10.0.0.2"), Origin::Operator);
        first.insert(ep(2, "10.0.0.2"), Origin::Operator);
        assert_eq!(first.all(), [ep(1, "10.0.0.1")], "the plugins' only");
        assert!(first.by_addr("10.0.0.2".parse().unwrap()).is_none());
        assert!(first.contains(2), "its id is kept");
        // Its intent is its record (one write per add): `adding` until the next write.
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("endpoint adding 2 10.0.0.2 - subflow 3 operator\n"),
            "{text}"
        );

        // Restart: both adopted; only the daemon's can be stale.
        let mut again = owned(&file);
        assert_eq!(again.adopt(&[ep(1, "10.0.0.1"), ep(2, "10.0.0.2")]), 2);
        assert_eq!(again.unclaimed(), [ep(1, "10.0.0.1")]);
        assert_eq!(
            again.with_origins(),
            [
                (ep(1, "10.0.0.1"), Origin::Daemon),
                (ep(2, "10.0.0.2"), Origin::Operator)
            ]
        );
    }

    #[test]
    fn identity_is_every_field_not_only_id_and_address() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        let mut first = owned(&file);
        for id in 1..=4 {
            first.insert(ep(id, &format!("10.0.0.{id}")), Origin::Daemon);
        }
        // An administrator replaced 2, 3 and 4 with the same id and address while no
        // daemon ran: other flags, a port, another interface.
        let mut flags = ep(2, "10.0.0.2");
        flags.flags = EndpointFlags::SIGNAL;
        let mut port = ep(3, "10.0.0.3");
        port.port = Some(80);
        let mut ifindex = ep(4, "10.0.0.4");
        ifindex.if_idx = None;
        let kernel = [ep(1, "10.0.0.1"), flags, port, ifindex];
        let mut again = owned(&file);
        assert_eq!(again.adopt(&kernel), 1);
        assert_eq!(again.all(), [ep(1, "10.0.0.1")]);
    }

    #[test]
    fn an_intent_is_adopted_if_the_kernel_added_it_and_dropped_if_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        let mut first = owned(&file);
        first.insert(ep(1, "10.0.0.1"), Origin::Daemon);
        // Crashed while the kernel added 2 and while it was asked for 3.
        first.intend(ep(2, "10.0.0.2"), Origin::Daemon);
        first.intend(ep(3, "10.0.0.3"), Origin::Daemon);
        assert_eq!(
            first.all(),
            [ep(1, "10.0.0.1")],
            "an intent is not ours yet"
        );
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("endpoint adding 2 10.0.0.2"), "{text}");
        let mut again = owned(&file);
        assert_eq!(again.adopt(&[ep(1, "10.0.0.1"), ep(2, "10.0.0.2")]), 2);
        assert_eq!(again.all(), [ep(1, "10.0.0.1"), ep(2, "10.0.0.2")]);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("10.0.0.3") && !text.contains("adding"),
            "{text}"
        );

        // Refused by the kernel: the intent goes, what was ours stays.
        again.intend(ep(4, "10.0.0.4"), Origin::Daemon);
        again.abandon(ep(4, "10.0.0.4"));
        assert!(!std::fs::read_to_string(&file).unwrap().contains("10.0.0.4"));
        // Confirmed: ours.
        again.intend(ep(5, "10.0.0.5"), Origin::Daemon);
        again.insert(ep(5, "10.0.0.5"), Origin::Daemon);
        assert!(again.contains(5));
        // An intent for an id of ours (the kernel will refuse it) leaves our record alone.
        again.intend(ep(5, "10.0.0.55"), Origin::Daemon);
        again.abandon(ep(5, "10.0.0.55"));
        assert_eq!(
            again.by_addr("10.0.0.5".parse().unwrap()),
            Some(ep(5, "10.0.0.5"))
        );
    }

    #[test]
    fn an_add_is_written_once_and_its_intent_is_adopted_after_a_crash() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        let inode = || std::fs::metadata(&file).unwrap().ino();
        let mut first = owned(&file);
        first.intend(ep(1, "10.0.0.1"), Origin::Daemon);
        let intent = inode();
        first.insert(ep(1, "10.0.0.1"), Origin::Daemon);
        // Every write replaces the file (a new inode): the confirmation wrote nothing.
        assert_eq!(inode(), intent, "one write per add");
        assert!(first.contains(1));
        // Killed now: the next run adopts it from its intent.
        let mut again = owned(&file);
        assert_eq!(again.adopt(&[ep(1, "10.0.0.1")]), 1);
        assert_eq!(again.all(), [ep(1, "10.0.0.1")]);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("endpoint added 1 10.0.0.1"), "{text}");

        // The kernel gave another id than intended (an implicit endpoint taken over): the
        // intent goes and the endpoint is written as added.
        again.intend(ep(2, "10.0.0.2"), Origin::Daemon);
        again.abandon(ep(2, "10.0.0.2"));
        again.insert(ep(3, "10.0.0.2"), Origin::Daemon);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("endpoint added 3 10.0.0.2"), "{text}");
        assert!(!text.contains(" 2 10.0.0.2"), "{text}");
    }

    #[test]
    fn a_removal_is_written_with_the_next_change_or_when_asked_and_a_crash_before_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        let text = || std::fs::read_to_string(&file).unwrap();
        let mut first = owned(&file);
        for (id, addr) in [(1, "10.0.0.1"), (2, "10.0.0.2"), (3, "10.0.0.3")] {
            first.intend(ep(id, addr), Origin::Daemon);
            first.insert(ep(id, addr), Origin::Daemon);
        }
        assert!(first.forget_removed(1), "a write is pending");
        assert!(!first.contains(1));
        assert!(
            text().contains(" 1 10.0.0.1"),
            "not written yet: {}",
            text()
        );

        // Killed now: the kernel no longer has 1, so the next run does not take it.
        let mut crashed = owned(&file);
        assert_eq!(crashed.adopt(&[ep(2, "10.0.0.2"), ep(3, "10.0.0.3")]), 2);
        assert!(!text().contains(" 1 10.0.0.1"), "{}", text());

        // The next change writes the removal along.
        assert!(crashed.forget_removed(2));
        crashed.intend(ep(4, "10.0.0.4"), Origin::Daemon);
        assert!(!text().contains(" 2 10.0.0.2"), "{}", text());
        assert!(text().contains("endpoint adding 4 10.0.0.4"), "{}", text());
        // Or the deferred write does; then nothing is pending.
        assert!(crashed.forget_removed(3));
        crashed.write_deferred();
        assert!(!text().contains(" 3 10.0.0.3"), "{}", text());
        assert!(!crashed.forget_removed(9), "not ours: nothing to write");
    }

    #[test]
    fn a_file_of_another_namespace_or_boot_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        let kernel = [ep(1, "10.0.0.1")];
        let others = [
            NetnsId {
                cookie: Some(8),
                ..netns()
            },
            NetnsId {
                boot_id: "another boot".to_owned(),
                ..netns()
            },
            NetnsId {
                inode: 1,
                ..netns()
            },
        ];
        for other in others {
            let mut before = Owned::with_netns(file.clone(), other.clone());
            before.insert(ep(1, "10.0.0.1"), Origin::Daemon);
            let mut now = owned(&file);
            assert_eq!(now.adopt(&kernel), 0, "{other:?}");
            assert!(
                !file.exists(),
                "rewritten for this namespace: nothing to remember"
            );
        }
        let mut same = owned(&file);
        same.insert(ep(1, "10.0.0.1"), Origin::Daemon);
        assert_eq!(owned(&file).adopt(&kernel), 1);
    }

    #[test]
    fn bad_and_missing_files_adopt_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        let kernel = [ep(1, "10.0.0.1"), ep(3, "10.0.0.3")];
        std::fs::write(&file, "# the first format\n1 10.0.0.1\n3 10.0.0.3\n").unwrap();
        assert_eq!(owned(&file).adopt(&kernel), 0);
        assert_eq!(owned(&dir.path().join("missing")).adopt(&kernel), 0);
        assert_eq!(Owned::new(None).adopt(&kernel), 0);
    }

    #[test]
    fn flags_changed_through_the_handle_or_behind_our_back_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("endpoints");
        let mut first = owned(&file);
        first.insert(ep(1, "10.0.0.1"), Origin::Daemon);
        first.insert(ep(2, "10.0.0.2"), Origin::Daemon);
        let mut backup = ep(1, "10.0.0.1");
        backup.flags |= EndpointFlags::BACKUP;
        first.update(backup);
        let mut fullmesh = ep(2, "10.0.0.2");
        fullmesh.flags |= EndpointFlags::FULLMESH;
        assert_eq!(first.retain_in(&[backup, fullmesh]), []);
        assert_eq!(owned(&file).adopt(&[backup, fullmesh]), 2);
    }
}
