//! The TCP-to-MPTCP upgrade by cgroup: the `fmod_ret/update_socket_protocol` program, its map
//! of enabled cgroups, and their pins. Everything is pinned under the pin directory, so that
//! what `mptcpize` enables outlives it (and the daemon) until disabled or the next reboot.

use std::{
    collections::BTreeMap,
    fs, io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd},
    path::{Path, PathBuf},
};

use aya::maps::{IterableMap as _, Map, MapData, MapError, PerCpuHashMap, PerCpuValues};
use mptcpd_common::upgrade::{CGROUPS_MAP, CGROUPS_MAX_ENTRIES, PROGRAM};

use super::{
    EbpfError, PinDir, check_pin_dir,
    fmod_ret::{FmodRetError, FmodRetProgram, LoadedFmodRet},
};

/// The upgrade program's object, built and embedded like the daemon's main object.
pub static UPGRADE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mptcpd-upgrade"));

/// Pin of the map of enabled cgroups, in the pin directory.
pub const CGROUPS_PIN: &str = "mptcpize_cgroups";
/// Pin of the program's link, in the pin directory: while it exists the program runs.
pub const LINK_PIN: &str = "mptcpize_link";
/// Kernel name of the map (at most 15 bytes).
const MAP_KERNEL_NAME: &str = "mptcpize_cgrps";

/// The installed upgrade: a handle on its pinned map of enabled cgroups.
pub struct Upgrade {
    cgroups: PerCpuHashMap<MapData, u64, u64>,
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
    /// Opens the pinned upgrade in `dir`, or loads, attaches and pins it there. Fails (and
    /// leaves nothing behind) where the kernel cannot run it: no `update_socket_protocol`
    /// (before 6.6), tracing programs not permitted, no BTF.
    pub fn install(dir: &Path) -> Result<(Self, Installed), EbpfError> {
        if let Some(upgrade) = Self::open(dir)? {
            return Ok((upgrade, Installed::Already));
        }
        // PinDir mounts bpffs if needed; the pins made here are meant to outlive it.
        let pins = PinDir::open(dir)?;
        let map_pin = dir.join(CGROUPS_PIN);
        let data = match MapData::from_pin(&map_pin) {
            Ok(data) => data,
            Err(_) => create_map()?,
        };
        let link = load_and_attach(data.fd().as_fd())?;
        if !map_pin.exists() {
            data.pin(&map_pin).map_err(|source| EbpfError::Pin {
                path: map_pin.clone(),
                source,
            })?;
        }
        let link_pin = dir.join(LINK_PIN);
        link.pin(&link_pin).map_err(|source| EbpfError::Bpffs {
            path: link_pin,
            source,
        })?;
        drop(pins);
        Ok((Self::from_data(data, dir)?, Installed::Now))
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
    /// another user could have made or could change is refused ([`check_pin_dir`]).
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
            .and_then(PerCpuHashMap::try_from)
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

    /// Upgrades the sockets of cgroup `id` and its descendants; `false` if it already was.
    pub fn enable(&mut self, id: u64) -> Result<bool, EbpfError> {
        if self.cgroups.get(&id, 0).is_ok() {
            return Ok(false);
        }
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| map_err(MapError::IoError(e)))?;
        let cpus = usize::try_from(cpus.get()).unwrap_or(usize::MAX);
        let zeros =
            PerCpuValues::try_from(vec![0_u64; cpus]).map_err(|e| map_err(MapError::IoError(e)))?;
        self.cgroups.insert(&id, zeros, 0).map_err(map_err)?;
        Ok(true)
    }

    /// Stops upgrading for cgroup `id`; `false` if it was not enabled.
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
        self.cgroups
            .iter()
            .map(|entry| {
                let (id, per_cpu) = entry.map_err(map_err)?;
                Ok((id, per_cpu.iter().copied().fold(0, u64::saturating_add)))
            })
            .collect()
    }

    /// Detaches the program and removes its pins: no cgroup is upgraded any more.
    pub fn uninstall(dir: &Path) -> Result<bool, EbpfError> {
        if !pin_dir_exists(dir)? {
            return Ok(false);
        }
        check_pin_dir(dir)?;
        let mut removed = false;
        for name in [LINK_PIN, CGROUPS_PIN] {
            let path = dir.join(name);
            match fs::remove_file(&path) {
                Ok(()) => removed = true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(EbpfError::Bpffs { path, source }),
            }
        }
        Ok(removed)
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
        aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH as u32,
        8,
        8,
        CGROUPS_MAX_ENTRIES,
        0,
    );
    MapData::create(def, MAP_KERNEL_NAME, None).map_err(map_err)
}

fn load_and_attach(map: BorrowedFd<'_>) -> Result<super::fmod_ret::FmodRetLink, EbpfError> {
    super::raise_memlock_limit();
    let mut program = FmodRetProgram::parse(UPGRADE_OBJECT, PROGRAM)?;
    program.resolve_maps(|name| (name == CGROUPS_MAP).then(|| map.as_raw_fd()))?;
    let loaded = LoadedFmodRet::load_for_running_kernel(&program)?;
    Ok(loaded.attach()?)
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

impl From<FmodRetError> for EbpfError {
    fn from(e: FmodRetError) -> Self {
        Self::FmodRet(e)
    }
}
