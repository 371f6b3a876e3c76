//! The TCP-to-MPTCP upgrade by cgroup: the `fmod_ret/update_socket_protocol` program, its map
//! of enabled (and opted-out) cgroups, and their pins. Everything is pinned under the pin directory, so that
//! what `mptcpize` enables outlives it (and the daemon) until disabled or the next reboot.

mod legacy;
mod lock;
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
    maps::{HashMap, IterableMap as _, Map, MapData, MapError},
};
use aya_fmod_ret::{FModRet, FModRetError, FModRetLink};
use mptcpd_common::upgrade::{
    CGROUPS_MAP, CGROUPS_MAX_ENTRIES, CgroupEntry, MODE_ENABLED, MODE_OPTED_OUT, PROGRAM,
};

pub use legacy::{V1_CGROUPS_PIN, V1_LINK_PIN};
use lock::InstallLock;

use super::{EbpfError, check_pin_dir};

/// The upgrade program's object, built and embedded like the daemon's main object.
pub(crate) static UPGRADE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mptcpd-upgrade"));

/// Pin of the map of cgroups, in the pin directory (the layout version is in the name:
/// [`mptcpd_common::upgrade::LAYOUT_VERSION`]).
pub(crate) const CGROUPS_PIN: &str = "mptcpize_v2_cgroups";
/// Pin of the program's link, in the pin directory: while it exists the program runs.
pub const LINK_PIN: &str = "mptcpize_v2_link";
/// Where a new link is pinned before it replaces [`LINK_PIN`] (renamed over it; bpffs refuses
/// dots in names).
const NEW_LINK_PIN: &str = "mptcpize_v2_link_new";
/// Kernel name of the map (at most 15 bytes).
const MAP_KERNEL_NAME: &str = "mptcpize_cg_v2";

/// The installed upgrade: a handle on its pinned map of cgroups.
pub struct Upgrade {
    cgroups: HashMap<MapData, u64, CgroupEntry>,
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
    /// on `dir` (units starting together install it in parallel). The map is pinned before
    /// the link, and afterwards the link's program is checked to read the pinned map. An older
    /// layout's enabled cgroups move to this one, and its pins go. Fails (and leaves nothing
    /// behind) where the kernel cannot run it: no `update_socket_protocol` (before 6.6),
    /// tracing programs not permitted, no BTF.
    pub fn install(dir: &Path) -> Result<(Self, Installed), EbpfError> {
        let lock = InstallLock::acquire(dir)?;
        let map_pin = dir.join(CGROUPS_PIN);
        let (data, made_map) = open_or_pin_map(&map_pin)?;
        match Self::install_locked(data, dir) {
            Ok(done) => Ok(done),
            Err(e) => {
                if made_map {
                    let _gone = fs::remove_file(&map_pin);
                }
                lock.abandon();
                Err(e)
            }
        }
    }

    fn install_locked(data: MapData, dir: &Path) -> Result<(Self, Installed), EbpfError> {
        let map_pin = dir.join(CGROUPS_PIN);
        let link_pin = dir.join(LINK_PIN);
        let mut upgrade = Self::from_data(data, dir)?;
        let older = legacy::v1_cgroups(dir)?;
        for id in older.iter().flatten() {
            upgrade.enable(*id)?;
        }
        let attached = link_pin.exists()
            && verify::link_uses_map(&link_pin, upgrade.map_data(), &map_pin).unwrap_or(false);
        let installed = if attached {
            Installed::Already
        } else {
            let link = load_and_attach(upgrade.map_data().fd().as_fd())?;
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
        if let Some(ids) = older {
            legacy::remove_v1(dir)?;
            tracing::info!(
                "replaced the older pinned layout in {} ({} enabled cgroups kept)",
                dir.display(),
                ids.len()
            );
        }
        if !verify::link_uses_map(&link_pin, upgrade.map_data(), &map_pin)? {
            return Err(EbpfError::Inconsistent {
                path: link_pin,
                why: "its program does not read the pinned map".to_owned(),
            });
        }
        Ok((upgrade, installed))
    }

    /// Checks that the upgrade can run here: loads and attaches it with a fresh map, then
    /// detaches it. The error says what was missing.
    pub fn probe() -> Result<(), EbpfError> {
        let data = create_map()?;
        let link = load_and_attach(data.fd().as_fd())?;
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
        let data = MapData::from_pin(dir.join(CGROUPS_PIN)).map_err(map_err)?;
        Self::from_data(data, dir).map(Some)
    }

    fn from_data(data: MapData, dir: &Path) -> Result<Self, EbpfError> {
        let cgroups = Map::from_map_data(data)
            .and_then(HashMap::try_from)
            .map_err(map_err)?;
        Ok(Self {
            cgroups,
            dir: dir.to_owned(),
        })
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
        self.cgroups.insert(&id, &entry, 0).map_err(map_err)?;
        Ok(true)
    }

    /// Forgets cgroup `id` (enabled or opted out); `false` if it had no entry.
    pub fn disable(&mut self, id: u64) -> Result<bool, EbpfError> {
        match self.cgroups.remove(&id) {
            Ok(()) => Ok(true),
            Err(MapError::KeyNotFound) => Ok(false),
            Err(e) if is_enoent(&e) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
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
            .map(|entry| entry.map_err(map_err))
            .collect()
    }

    /// Detaches the program and removes its pins: no cgroup is upgraded any more.
    pub fn uninstall(dir: &Path) -> Result<bool, EbpfError> {
        if !pin_dir_exists(dir)? {
            return Ok(false);
        }
        check_pin_dir(dir)?;
        let _lock = InstallLock::acquire(dir)?;
        let mut removed = false;
        for name in [
            LINK_PIN,
            CGROUPS_PIN,
            NEW_LINK_PIN,
            V1_LINK_PIN,
            V1_CGROUPS_PIN,
        ] {
            let path = dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(EbpfError::Bpffs { path, source }),
            }
        }
        Ok(removed)
    }

    /// Kernel ids of the maps that the pinned link's program reads, and of the pinned map:
    /// the first holds the second when the install hangs together (checked by `install`).
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

fn create_map() -> Result<MapData, EbpfError> {
    let def = aya_obj::Map::new_from_params(
        aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_HASH as u32,
        8,
        u32::try_from(size_of::<CgroupEntry>()).unwrap_or(u32::MAX),
        CGROUPS_MAX_ENTRIES,
        0,
    );
    MapData::create(def, MAP_KERNEL_NAME, None).map_err(map_err)
}

/// The pinned map at `pin`, or a new one pinned there; `true` if this call pinned it. Another
/// installer's pin (EEXIST) is reopened, never replaced.
fn open_or_pin_map(pin: &Path) -> Result<(MapData, bool), EbpfError> {
    match MapData::from_pin(pin) {
        Ok(data) => return Ok((data, false)),
        Err(e) if is_enoent(&e) => {}
        Err(e) => return Err(map_err(e)),
    }
    let data = create_map()?;
    match data.pin(pin) {
        Ok(()) => Ok((data, true)),
        Err(aya::pin::PinError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::EEXIST) =>
        {
            Ok((MapData::from_pin(pin).map_err(map_err)?, false))
        }
        Err(source) => Err(EbpfError::Pin {
            path: pin.to_owned(),
            source,
        }),
    }
}

fn load_and_attach(map: BorrowedFd<'_>) -> Result<FModRetLink, EbpfError> {
    super::raise_memlock_limit();
    let mut program = FModRet::from_elf(UPGRADE_OBJECT, PROGRAM)?;
    program.relocate_maps(|name| (name == CGROUPS_MAP).then_some(map))?;
    program.load(&Btf::from_sys_fs().map_err(EbpfError::Btf)?)?;
    Ok(program.attach()?)
}

fn is_enoent(e: &MapError) -> bool {
    matches!(e, MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::ENOENT))
}

const fn map_err(source: MapError) -> EbpfError {
    EbpfError::Map {
        name: CGROUPS_MAP,
        source,
    }
}

impl From<FModRetError> for EbpfError {
    fn from(e: FModRetError) -> Self {
        Self::FmodRet(e)
    }
}
