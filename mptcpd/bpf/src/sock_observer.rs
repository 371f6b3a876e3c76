//! The `cgroup/sock_create` observer: per cgroup, how many stream sockets were created as TCP
//! and how many as MPTCP. `mptcpize status` reads the same map through its pin.

use std::{borrow::Borrow, collections::BTreeMap, path::Path, path::PathBuf};

use aya::{
    Ebpf,
    maps::{Map, MapData, PerCpuHashMap},
    programs::{CgroupAttachMode, CgroupSock},
};
use mptcpd_common::{SOCK_COUNTS_MAP, SOCK_CREATE_PROGRAM, SockCounts};

use super::{
    EbpfError, LogDrain, PinDir, load_object,
    object::{open_cgroup, program_error, typed_program},
};

/// File name of the counts map in the pin directory.
pub const SOCK_COUNTS_PIN: &str = "sock_counts";

/// The observer, attached to a cgroup; dropping it detaches it.
#[derive(Debug)]
pub struct SockObserver {
    ebpf: Ebpf,
    /// Kept for as long as the programs run: they write to its ring buffer.
    _log: Option<LogDrain>,
}

impl SockObserver {
    /// Loads the observer and attaches it to the cgroup v2 directory `cgroup`, alongside any
    /// other program attached there. eBPF log records reach `tracing` when called on a tokio
    /// runtime.
    pub fn attach(cgroup: &Path) -> Result<Self, EbpfError> {
        let mut ebpf = load_object()?;
        let log = tokio::runtime::Handle::try_current()
            .is_ok()
            .then(|| LogDrain::start(&mut ebpf))
            .transpose()?;
        let program: &mut CgroupSock = typed_program(&mut ebpf, SOCK_CREATE_PROGRAM)?;
        program.load().map_err(program_error(SOCK_CREATE_PROGRAM))?;
        // aya attaches through a BPF link, which always coexists with other programs on the
        // cgroup; the kernel rejects attach flags on links (EINVAL), so pass none.
        program
            .attach(open_cgroup(cgroup)?, CgroupAttachMode::Single)
            .map_err(program_error(SOCK_CREATE_PROGRAM))?;
        Ok(Self { ebpf, _log: log })
    }

    /// Stream sockets created so far, per cgroup id, summed over CPUs.
    pub fn counts(&self) -> Result<BTreeMap<u64, SockCounts>, EbpfError> {
        let map: PerCpuHashMap<&MapData, u64, SockCounts> =
            PerCpuHashMap::try_from(self.counts_map()?).map_err(map_err)?;
        sum_per_cpu(&map)
    }

    /// Pins the counts map in `dir` so that other processes can read it while this one runs.
    pub fn pin_counts(&self, dir: &mut PinDir) -> Result<PathBuf, EbpfError> {
        let map = self.counts_map()?;
        dir.pin(
            SOCK_COUNTS_PIN,
            |path| map.pin(path),
            |path, source| EbpfError::Pin { path, source },
        )
    }

    fn counts_map(&self) -> Result<&Map, EbpfError> {
        self.ebpf
            .map(SOCK_COUNTS_MAP)
            .ok_or(EbpfError::MissingMap(SOCK_COUNTS_MAP))
    }
}

/// Reads a counts map pinned by [`SockObserver::pin_counts`].
pub fn read_pinned_counts(path: &Path) -> Result<BTreeMap<u64, SockCounts>, EbpfError> {
    let data = MapData::from_pin(path).map_err(map_err)?;
    let map: PerCpuHashMap<MapData, u64, SockCounts> = Map::from_map_data(data)
        .and_then(PerCpuHashMap::try_from)
        .map_err(map_err)?;
    sum_per_cpu(&map)
}

fn sum_per_cpu<T: Borrow<MapData>>(
    map: &PerCpuHashMap<T, u64, SockCounts>,
) -> Result<BTreeMap<u64, SockCounts>, EbpfError> {
    map.iter()
        .map(|entry| {
            let (cgroup, per_cpu) = entry.map_err(map_err)?;
            let total = per_cpu
                .iter()
                .fold(SockCounts::default(), |sum, cpu| sum.saturating_add(*cpu));
            Ok((cgroup, total))
        })
        .collect()
}

const fn map_err(source: aya::maps::MapError) -> EbpfError {
    EbpfError::Map {
        name: SOCK_COUNTS_MAP,
        source,
    }
}
