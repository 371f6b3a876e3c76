//! The TCP-to-MPTCP upgrade by cgroup: the `fmod_ret/update_socket_protocol` program, its map
//! of enabled (and opted-out) cgroups, its allow-list of network namespaces, and their pins.
//! Everything is pinned under the pin directory, so that what `mptcpize` enables outlives it
//! (and the daemon) until disabled or the next reboot.

mod legacy;
mod lock;
pub(crate) mod offsets;
#[cfg(test)]
mod tests;
mod verify;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs, io,
    os::fd::{AsFd as _, BorrowedFd},
    path::{Path, PathBuf},
};

use aya::{
    Btf,
    maps::{Array, HashMap, IterableMap as _, Map, MapData, MapError},
};
use aya_fmod_ret::{FModRet, FModRetError, FModRetLink};
use aya_obj::generated::bpf_map_type::{BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH};
use mptcpd_common::upgrade::{
    CGROUPS_MAP, CGROUPS_MAX_ENTRIES, CgroupEntry, MODE_ENABLED, MODE_OPTED_OUT, NETNS_CONFIG_MAP,
    NETNS_MAP, NETNS_MAX_ENTRIES, NetnsConfig, PROGRAM,
};

pub use legacy::{V1_CGROUPS_PIN, V1_LINK_PIN, V2_CGROUPS_PIN, V2_LINK_PIN};
use lock::InstallLock;

use super::{EbpfError, check_pin_dir};

/// The upgrade program's object, built and embedded like the daemon's main object.
pub(crate) static UPGRADE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mptcpd-upgrade"));

/// Pin of the map of cgroups, in the pin directory (the layout version is in the name:
/// [`mptcpd_common::upgrade::LAYOUT_VERSION`]).
pub(crate) const CGROUPS_PIN: &str = "mptcpize_v3_cgroups";
/// Pin of the allow-list of network namespaces.
pub const NETNS_PIN: &str = "mptcpize_v3_netns";
/// Pin of the program's kernel offsets (and its count of sockets of namespaces not allowed).
pub const NETNS_CONFIG_PIN: &str = "mptcpize_v3_netns_cfg";
/// Pin of the program's link, in the pin directory: while it exists the program runs.
pub const LINK_PIN: &str = "mptcpize_v3_link";
/// Where a new link is pinned before it replaces [`LINK_PIN`] (renamed over it; bpffs refuses
/// dots in names).
const NEW_LINK_PIN: &str = "mptcpize_v3_link_new";

/// One map of the upgrade: created by user space, pinned, handed to the program by name.
struct MapSpec {
    /// The program's name for it.
    name: &'static str,
    pin: &'static str,
    /// Kernel name (at most 15 bytes).
    kernel_name: &'static str,
    map_type: u32,
    key: usize,
    value: usize,
    max_entries: u32,
}

/// The maps, in the order [`Maps`] holds them.
const MAPS: [MapSpec; 3] = [
    MapSpec {
        name: CGROUPS_MAP,
        pin: CGROUPS_PIN,
        kernel_name: "mptcpize_cg_v3",
        map_type: BPF_MAP_TYPE_HASH as u32,
        key: size_of::<u64>(),
        value: size_of::<CgroupEntry>(),
        max_entries: CGROUPS_MAX_ENTRIES,
    },
    MapSpec {
        name: NETNS_MAP,
        pin: NETNS_PIN,
        kernel_name: "mptcpize_ns_v3",
        map_type: BPF_MAP_TYPE_HASH as u32,
        key: size_of::<u64>(),
        value: size_of::<u64>(),
        max_entries: NETNS_MAX_ENTRIES,
    },
    MapSpec {
        name: NETNS_CONFIG_MAP,
        pin: NETNS_CONFIG_PIN,
        kernel_name: "mptcpize_nc_v3",
        map_type: BPF_MAP_TYPE_ARRAY as u32,
        key: size_of::<u32>(),
        value: size_of::<NetnsConfig>(),
        max_entries: 1,
    },
];

/// The maps' data, in the order of [`MAPS`].
type Maps = [MapData; 3];

/// The installed upgrade: handles on its pinned maps.
pub struct Upgrade {
    cgroups: HashMap<MapData, u64, CgroupEntry>,
    netns: HashMap<MapData, u64, u64>,
    config: Array<MapData, NetnsConfig>,
    dir: PathBuf,
}

impl std::fmt::Debug for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgrade")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// How [`Upgrade::install`] found things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The program was already attached (pinned by an earlier run).
    Already,
    /// This call loaded and attached it.
    Now,
}

impl Upgrade {
    /// Opens the pinned upgrade in `dir`, or loads, attaches and pins it there, under a lock
    /// on `dir` (units starting together install it in parallel). The maps are pinned before
    /// the link, and afterwards the link's program is checked to read the pinned maps. An older
    /// layout's cgroups move to this one, and its pins go; its allow-list starts empty. Fails
    /// (and leaves nothing behind) where the kernel cannot run it: no `update_socket_protocol`
    /// (before 6.6), tracing programs not permitted, no BTF or no namespace fields in it.
    pub fn install(dir: &Path) -> Result<(Self, Installed), EbpfError> {
        let lock = InstallLock::acquire(dir)?;
        let mut made = Vec::new();
        let result = (|| {
            let mut maps = Vec::new();
            for spec in &MAPS {
                let (data, new) = open_or_pin_map(&dir.join(spec.pin), spec)?;
                if new {
                    made.push(spec.pin);
                }
                maps.push(data);
            }
            let maps: Maps = maps
                .try_into()
                .map_err(|_| EbpfError::MissingMap(CGROUPS_MAP))?;
            Self::install_locked(maps, dir)
        })();
        if result.is_err() {
            let _gone = remove_pins(dir, &made);
            lock.abandon();
        }
        result
    }

    fn install_locked(maps: Maps, dir: &Path) -> Result<(Self, Installed), EbpfError> {
        let link_pin = dir.join(LINK_PIN);
        let mut upgrade = Self::from_data(maps, dir)?;
        let older = legacy::older_cgroups(dir)?;
        for (id, entry) in older.iter().flatten() {
            upgrade.set(*id, entry.mode)?;
        }
        let attached = link_pin.exists() && upgrade.link_uses_maps(&link_pin).unwrap_or(false);
        let installed = if attached {
            Installed::Already
        } else {
            let mut config = offsets::for_running_kernel()?;
            // A reopened map keeps its count.
            config.not_allowed = upgrade.not_allowed().unwrap_or(0);
            upgrade
                .config
                .set(0, &config, 0)
                .map_err(map_err(NETNS_CONFIG_MAP))?;
            let link = load_and_attach(&upgrade.map_fds())?;
            let new_pin = dir.join(NEW_LINK_PIN);
            let bpffs_err = |path: &Path| {
                let path = path.to_owned();
                move |source| EbpfError::Bpffs { path, source }
            };
            match fs::remove_file(&new_pin) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(bpffs_err(&new_pin)(e)),
            }
            link.pin(&new_pin).map_err(bpffs_err(&new_pin))?;
            // Atomic: a link left by a broken install is replaced, never missing.
            fs::rename(&new_pin, &link_pin).map_err(bpffs_err(&link_pin))?;
            Installed::Now
        };
        if let Some(entries) = older {
            legacy::remove_older(dir)?;
            tracing::info!(
                "replaced the older pinned layout in {} ({} cgroup entries kept)",
                dir.display(),
                entries.len()
            );
        }
        if !upgrade.link_uses_maps(&link_pin)? {
            return Err(EbpfError::Inconsistent {
                path: link_pin,
                why: "its program does not read the pinned maps".to_owned(),
            });
        }
        Ok((upgrade, installed))
    }

    /// Whether the program behind the link pinned at `link_pin` reads each of our maps.
    fn link_uses_maps(&self, link_pin: &Path) -> Result<bool, EbpfError> {
        let used = verify::link_map_ids(link_pin)?;
        for (spec, data) in MAPS.iter().zip(self.maps()) {
            if !used.contains(&verify::map_id(data, &self.dir.join(spec.pin))?) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Checks that the upgrade can run here: loads and attaches it with fresh maps, then
    /// detaches it. The error says what was missing.
    pub fn probe() -> Result<(), EbpfError> {
        let config = offsets::for_running_kernel()?;
        let maps = MAPS.each_ref().map(create_map);
        let [cgroups, netns, cfg] = maps;
        let mut upgrade = Self::from_data([cgroups?, netns?, cfg?], Path::new(""))?;
        upgrade
            .config
            .set(0, &config, 0)
            .map_err(map_err(NETNS_CONFIG_MAP))?;
        let link = load_and_attach(&upgrade.map_fds())?;
        drop(link);
        Ok(())
    }

    /// The pinned upgrade in `dir`, if its program is attached there. A directory that
    /// another user could have made or could change is refused (`check_pin_dir`).
    pub fn open(dir: &Path) -> Result<Option<Self>, EbpfError> {
        if !pin_dir_exists(dir)? {
            return Ok(None);
        }
        check_pin_dir(dir)?;
        if !dir.join(LINK_PIN).exists() {
            return Ok(None);
        }
        let open =
            |spec: &MapSpec| MapData::from_pin(dir.join(spec.pin)).map_err(map_err(spec.name));
        let [cgroups, netns, config] = MAPS.each_ref().map(open);
        Self::from_data([cgroups?, netns?, config?], dir).map(Some)
    }

    fn from_data(maps: Maps, dir: &Path) -> Result<Self, EbpfError> {
        let [cgroups, netns, config] = maps;
        Ok(Self {
            cgroups: Map::from_map_data(cgroups)
                .and_then(HashMap::try_from)
                .map_err(map_err(CGROUPS_MAP))?,
            netns: Map::from_map_data(netns)
                .and_then(HashMap::try_from)
                .map_err(map_err(NETNS_MAP))?,
            config: Map::from_map_data(config)
                .and_then(Array::try_from)
                .map_err(map_err(NETNS_CONFIG_MAP))?,
            dir: dir.to_owned(),
        })
    }

    fn maps(&self) -> [&MapData; 3] {
        [self.cgroups.map(), self.netns.map(), self.config.map()]
    }

    fn map_fds(&self) -> [(&'static str, BorrowedFd<'_>); 3] {
        let [cgroups, netns, config] = self.maps();
        [
            (CGROUPS_MAP, cgroups.fd().as_fd()),
            (NETNS_MAP, netns.fd().as_fd()),
            (NETNS_CONFIG_MAP, config.fd().as_fd()),
        ]
    }

    /// Lets the tasks of network namespace `cookie` get MPTCP; `false` if they already could.
    /// Only for a namespace where `net.mptcp.enabled` is 1: elsewhere their `socket()` fails.
    pub fn allow_netns(&mut self, cookie: u64) -> Result<bool, EbpfError> {
        if self.netns.get(&cookie, 0).is_ok() {
            return Ok(false);
        }
        self.netns
            .insert(&cookie, &0, 0)
            .map_err(map_err(NETNS_MAP))?;
        Ok(true)
    }

    /// Takes network namespace `cookie` off the allow-list (its sockets stay TCP); `false` if
    /// it was not on it.
    pub fn deny_netns(&mut self, cookie: u64) -> Result<bool, EbpfError> {
        removed(self.netns.remove(&cookie), NETNS_MAP)
    }

    /// The allowed namespaces' cookies, each with the sockets upgraded in it so far.
    pub fn allowed_netns(&self) -> Result<BTreeMap<u64, u64>, EbpfError> {
        self.netns
            .iter()
            .map(|entry| entry.map_err(map_err(NETNS_MAP)))
            .collect()
    }

    /// Sockets of enabled cgroups left TCP because their namespace was not allowed.
    pub fn not_allowed(&self) -> Result<u64, EbpfError> {
        self.config
            .get(&0, 0)
            .map(|c| c.not_allowed)
            .map_err(map_err(NETNS_CONFIG_MAP))
    }

    /// Where it is pinned.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Upgrades the sockets of cgroup `id` and its descendants (except below an opted-out
    /// one); `false` if it already was.
    pub fn enable(&mut self, id: u64) -> Result<bool, EbpfError> {
        self.set(id, MODE_ENABLED)
    }

    /// Keeps the sockets of cgroup `id` and its descendants TCP even under an enabled
    /// ancestor; `false` if it already was opted out.
    pub fn opt_out(&mut self, id: u64) -> Result<bool, EbpfError> {
        self.set(id, MODE_OPTED_OUT)
    }

    fn set(&mut self, id: u64, mode: u64) -> Result<bool, EbpfError> {
        if self.cgroups.get(&id, 0).is_ok_and(|e| e.mode == mode) {
            return Ok(false);
        }
        let entry = CgroupEntry { mode, upgraded: 0 };
        self.cgroups
            .insert(&id, &entry, 0)
            .map_err(map_err(CGROUPS_MAP))?;
        Ok(true)
    }

    /// Forgets cgroup `id` (enabled or opted out); `false` if it had no entry.
    pub fn disable(&mut self, id: u64) -> Result<bool, EbpfError> {
        removed(self.cgroups.remove(&id), CGROUPS_MAP)
    }

    /// Enabled cgroup ids, each with the sockets upgraded for it so far.
    pub fn cgroups(&self) -> Result<BTreeMap<u64, u64>, EbpfError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, e)| e.mode == MODE_ENABLED)
            .map(|(id, e)| (id, e.upgraded))
            .collect())
    }

    /// Opted-out cgroup ids.
    pub fn opted_out(&self) -> Result<BTreeSet<u64>, EbpfError> {
        Ok(self
            .entries()?
            .into_iter()
            .filter(|(_, e)| e.mode == MODE_OPTED_OUT)
            .map(|(id, _)| id)
            .collect())
    }

    /// Every cgroup with an entry, enabled or opted out.
    pub fn entries(&self) -> Result<BTreeMap<u64, CgroupEntry>, EbpfError> {
        self.cgroups
            .iter()
            .map(|entry| entry.map_err(map_err(CGROUPS_MAP)))
            .collect()
    }

    /// Detaches the program and removes its pins: no cgroup is upgraded any more.
    pub fn uninstall(dir: &Path) -> Result<bool, EbpfError> {
        if !pin_dir_exists(dir)? {
            return Ok(false);
        }
        check_pin_dir(dir)?;
        let _lock = InstallLock::acquire(dir)?;
        let ours = [LINK_PIN, NEW_LINK_PIN]
            .into_iter()
            .chain(MAPS.iter().map(|m| m.pin));
        let older = remove_pins(dir, &legacy::PINS)?;
        Ok(remove_pins(dir, &ours.collect::<Vec<_>>())? || older)
    }

    /// Kernel ids of the maps that the pinned link's program reads, and of the pinned map of
    /// cgroups: the first holds the second when the install hangs together (checked, for
    /// every map, by `install`).
    pub fn map_ids(&self) -> Result<(Vec<u32>, u32), EbpfError> {
        let map_pin = self.dir.join(CGROUPS_PIN);
        Ok((
            verify::link_map_ids(&self.dir.join(LINK_PIN))?,
            verify::map_id(self.map_data(), &map_pin)?,
        ))
    }

    /// Sockets the program did not see because the kernel skipped a run of it: on a
    /// preemptible kernel (`preempt=full`), a task that opens a socket while another one,
    /// preempted on the same CPU, is inside the program gets TCP (the trampoline's recursion
    /// guard).
    pub fn skipped_runs(&self) -> Result<u64, EbpfError> {
        verify::skipped_runs(&self.dir.join(LINK_PIN))
    }

    /// The map's handle, to check it (tests).
    #[must_use]
    pub fn map_data(&self) -> &MapData {
        self.cgroups.map()
    }
}

/// Whether something is at `dir` (a symbolic link counts: it is then refused, not followed).
fn pin_dir_exists(dir: &Path) -> Result<bool, EbpfError> {
    match fs::symlink_metadata(dir) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(EbpfError::Bpffs {
            path: dir.to_owned(),
            source,
        }),
    }
}

/// Removes the pins `names` in `dir` that exist; `true` if one did.
fn remove_pins(dir: &Path, names: &[&str]) -> Result<bool, EbpfError> {
    let mut removed = false;
    for name in names {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(EbpfError::Bpffs { path, source }),
        }
    }
    Ok(removed)
}

fn create_map(spec: &MapSpec) -> Result<MapData, EbpfError> {
    let size = |bytes: usize| u32::try_from(bytes).unwrap_or(u32::MAX);
    let def = aya_obj::Map::new_from_params(
        spec.map_type,
        size(spec.key),
        size(spec.value),
        spec.max_entries,
        0,
    );
    MapData::create(def, spec.kernel_name, None).map_err(map_err(spec.name))
}

/// The pinned map at `pin`, or a new one pinned there; `true` if this call pinned it. Another
/// installer's pin (EEXIST) is reopened, never replaced.
fn open_or_pin_map(pin: &Path, spec: &MapSpec) -> Result<(MapData, bool), EbpfError> {
    match MapData::from_pin(pin) {
        Ok(data) => return Ok((data, false)),
        Err(e) if is_enoent(&e) => {}
        Err(e) => return Err(map_err(spec.name)(e)),
    }
    let data = create_map(spec)?;
    match data.pin(pin) {
        Ok(()) => Ok((data, true)),
        Err(aya::pin::PinError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::EEXIST) =>
        {
            Ok((MapData::from_pin(pin).map_err(map_err(spec.name))?, false))
        }
        Err(source) => Err(EbpfError::Pin {
            path: pin.to_owned(),
            source,
        }),
    }
}

fn load_and_attach(maps: &[(&str, BorrowedFd<'_>)]) -> Result<FModRetLink, EbpfError> {
    super::raise_memlock_limit();
    let mut program = FModRet::from_elf(UPGRADE_OBJECT, PROGRAM)?;
    program.relocate_maps(|name| maps.iter().find(|(map, _)| *map == name).map(|(_, fd)| *fd))?;
    program.load(&Btf::from_sys_fs().map_err(EbpfError::Btf)?)?;
    Ok(program.attach()?)
}

fn is_enoent(e: &MapError) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::ENOENT))
}

/// The answer of a removal from map `name`: `true` if the key was there, `false` if not.
fn removed(result: Result<(), MapError>, name: &'static str) -> Result<bool, EbpfError> {
    match result {
        Ok(()) => Ok(true),
        Err(MapError::KeyNotFound) => Ok(false),
        Err(e) if is_enoent(&e) => Ok(false),
        Err(e) => Err(map_err(name)(e)),
    }
}

fn map_err(name: &'static str) -> impl Fn(MapError) -> EbpfError {
    move |source| EbpfError::Map { name, source }
}

impl From<FModRetError> for EbpfError {
    fn from(e: FModRetError) -> Self {
        Self::FmodRet(e)
    }
}
