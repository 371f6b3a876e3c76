//! Per-subflow telemetry, user side: loads the `sock_ops` program (its own object), attaches it
//! to a cgroup, reads the subflow records of one network namespace (refreshed from the sockets
//! by an `iter/tcp` program first, where the kernel runs one) and streams the ring buffer's
//! events asynchronously.

use std::{collections::HashMap as HashMapStd, os::fd::AsFd as _, path::Path};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map, MapData, MapError, RingBuf},
    programs::{CgroupAttachMode, SockOps},
};
use mptcpd_common::telemetry::{
    CONFIG_MAP, EVENTS_MAP, MPTCP_RETRANS_MAP, PROGRAM, STAT_CREATED, STAT_EVENTS_LOST,
    STAT_EVICTED, STAT_INSERT_FAILED, STAT_REMOVED, STATS_MAP, SUBFLOWS_MAP, SUBFLOWS_MAX_ENTRIES,
    SubflowRecord, TelemetryConfig, TelemetryEvent,
};
use tokio::io::{Interest, unix::AsyncFd};

use super::{
    EbpfError, PinDir,
    object::{open_cgroup, program_error, typed_program},
    raise_memlock_limit,
    telemetry_refresh::Refresh,
    telemetry_sources::{self, MissingSource, MptcpRetransSource},
};

/// The telemetry object (aligned, as aya requires).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/mptcpd-telemetry"));

/// File names of the maps in the pin directory.
pub const SUBFLOWS_PIN: &str = "telemetry_subflows";
/// See [`SUBFLOWS_PIN`].
pub const STATS_PIN: &str = "telemetry_stats";

/// The program's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelemetryStats {
    /// Records created.
    pub created: u64,
    /// Records gone at their subflow's close (removed then, or taken by the LRU during that
    /// last callback).
    pub removed: u64,
    /// Records the LRU evicted while their subflow lived.
    pub evicted: u64,
    /// Events dropped on a full ring buffer.
    pub events_lost: u64,
    /// Records the map refused.
    pub insert_failed: u64,
}

/// How [`Telemetry::attach_with`] sizes its maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelemetryOptions {
    /// Most subflow records kept at once; beyond it the LRU evicts the least recently used
    /// (counted as [`TelemetryStats::evicted`] when the subflow is next seen).
    pub max_subflows: u32,
}

impl Default for TelemetryOptions {
    fn default() -> Self {
        Self {
            max_subflows: SUBFLOWS_MAX_ENTRIES,
        }
    }
}

/// The program's counters, read apart from the program ([`Telemetry::stats_reader`]).
pub struct TelemetryStatsReader {
    map: Array<MapData, u64>,
}

impl std::fmt::Debug for TelemetryStatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryStatsReader")
            .finish_non_exhaustive()
    }
}

impl TelemetryStatsReader {
    /// The counters now.
    pub fn read(&self) -> Result<TelemetryStats, EbpfError> {
        read_stats(&self.map)
    }
}

fn read_stats<T: std::borrow::Borrow<MapData>>(
    map: &Array<T, u64>,
) -> Result<TelemetryStats, EbpfError> {
    let get = |slot| map.get(&slot, 0).map_err(map_err(STATS_MAP));
    Ok(TelemetryStats {
        created: get(STAT_CREATED)?,
        removed: get(STAT_REMOVED)?,
        evicted: get(STAT_EVICTED)?,
        events_lost: get(STAT_EVENTS_LOST)?,
        insert_failed: get(STAT_INSERT_FAILED)?,
    })
}

/// The program, attached to a cgroup; dropping it detaches it.
#[derive(Debug)]
pub struct Telemetry {
    ebpf: Ebpf,
    /// The on-demand refresh, if the kernel runs it.
    refresh: Option<Refresh>,
    /// The sources beyond `sock_ops` this kernel lacks.
    missing_sources: Vec<MissingSource>,
    /// Where MPTCP-level retransmissions are counted.
    mptcp_retrans: MptcpRetransSource,
}

impl Telemetry {
    /// Loads the program and attaches it to the cgroup v2 directory `cgroup` (with its
    /// descendants), alongside other programs there.
    pub fn attach(cgroup: &Path) -> Result<Self, EbpfError> {
        Self::attach_with(cgroup, TelemetryOptions::default())
    }

    /// [`Self::attach`] with maps sized by `options`.
    pub fn attach_with(cgroup: &Path, options: TelemetryOptions) -> Result<Self, EbpfError> {
        let TelemetryOptions { max_subflows } = options;
        raise_memlock_limit();
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(SUBFLOWS_MAP, max_subflows)
            .load(OBJECT)
            .map_err(EbpfError::Object)?;
        configure(&mut ebpf)?;
        let refresh = Refresh::start(&mut ebpf);
        let program: &mut SockOps = typed_program(&mut ebpf, PROGRAM)?;
        program.load().map_err(program_error(PROGRAM))?;
        // A link, which coexists with other programs on the cgroup.
        program
            .attach(open_cgroup(cgroup)?, CgroupAttachMode::Single)
            .map_err(program_error(PROGRAM))?;
        let mut missing_sources = telemetry_sources::attach(&mut ebpf);
        let mptcp_retrans =
            telemetry_sources::attach_mptcp_retrans(&mut ebpf).unwrap_or_else(|missing| {
                missing_sources.push(missing);
                MptcpRetransSource::None
            });
        Ok(Self {
            ebpf,
            refresh,
            missing_sources,
            mptcp_retrans,
        })
    }

    /// The sources beyond `sock_ops` this kernel lacks (reset tracepoints, scheduler).
    #[must_use]
    pub fn missing_sources(&self) -> &[MissingSource] {
        &self.missing_sources
    }

    /// Where this kernel's MPTCP-level retransmission counts come from.
    #[must_use]
    pub fn mptcp_retrans_source(&self) -> MptcpRetransSource {
        self.mptcp_retrans
    }

    /// MPTCP token -> MPTCP-level retransmission rounds counted by the kprobe (every
    /// namespace's: tokens are unique host-wide, a caller joins with its own connections);
    /// `None` where the kprobe is not loaded ([`Self::mptcp_retrans_source`]).
    pub fn mptcp_retransmits(&self) -> Result<Option<HashMapStd<u32, u64>>, EbpfError> {
        if self.mptcp_retrans != MptcpRetransSource::Kprobe {
            return Ok(None);
        }
        let map: HashMap<&MapData, u32, u64> =
            HashMap::try_from(self.map(MPTCP_RETRANS_MAP)?).map_err(map_err(MPTCP_RETRANS_MAP))?;
        let mut counts = HashMapStd::new();
        for entry in &map {
            match entry {
                Ok((token, count)) => {
                    counts.insert(token, count);
                }
                // Evicted between the key walk and the lookup.
                Err(MapError::KeyNotFound) => {}
                Err(source) => return Err(map_err(MPTCP_RETRANS_MAP)(source)),
            }
        }
        Ok(Some(counts))
    }

    /// The records of the subflows in network namespace `netns_cookie` (`SO_NETNS_COOKIE`):
    /// a daemon sees only its own namespace's. Their figures are the sockets' current ones
    /// where the kernel runs the refresh (an `iter/tcp` program, over the sockets of the
    /// calling thread's namespace: call it from the namespace of `netns_cookie`), else those
    /// of each subflow's last callback.
    pub fn subflows(&self, netns_cookie: u64) -> Result<Vec<SubflowRecord>, EbpfError> {
        if let Some(refresh) = &self.refresh {
            refresh.run().map_err(EbpfError::Refresh)?;
        }
        // aya's HashMap reads LRU hashes too.
        let map: HashMap<&MapData, u64, SubflowRecord> =
            HashMap::try_from(self.map(SUBFLOWS_MAP)?).map_err(map_err(SUBFLOWS_MAP))?;
        records(&map, |record| record.netns_cookie == netns_cookie)
    }

    /// The program's counters.
    pub fn stats(&self) -> Result<TelemetryStats, EbpfError> {
        let map: Array<&MapData, u64> =
            Array::try_from(self.map(STATS_MAP)?).map_err(map_err(STATS_MAP))?;
        read_stats(&map)
    }

    /// Each loaded telemetry program's run time and run count (they count only while
    /// [`crate::enable_run_time_stats`]'s fd is held).
    pub fn program_run_times(&self) -> Result<Vec<crate::ProgramRunTime>, EbpfError> {
        crate::run_stats::of(&self.ebpf)
    }

    /// A reader of the program's counters that another task can own (the metrics): its own
    /// handle on the counters' map, valid while the map lives.
    pub fn stats_reader(&self) -> Result<TelemetryStatsReader, EbpfError> {
        let Map::Array(data) = self.map(STATS_MAP)? else {
            return Err(EbpfError::MissingMap(STATS_MAP));
        };
        let fd = data
            .fd()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| map_err(STATS_MAP)(MapError::IoError(e)))?;
        let data = MapData::from_fd(fd).map_err(map_err(STATS_MAP))?;
        let map = Array::try_from(Map::Array(data)).map_err(map_err(STATS_MAP))?;
        Ok(TelemetryStatsReader { map })
    }

    /// Pins the records and counters in `dir`, beside the daemon's other pins, for readers
    /// such as `mptcpctl`. Not the ring buffer: it has one consumer, the daemon.
    pub fn pin_maps(&self, dir: &mut PinDir) -> Result<(), EbpfError> {
        for (name, pin) in [(SUBFLOWS_MAP, SUBFLOWS_PIN), (STATS_MAP, STATS_PIN)] {
            let map = self.map(name)?;
            dir.pin(
                pin,
                |path| map.pin(path),
                |path, source| EbpfError::Pin { path, source },
            )?;
        }
        Ok(())
    }

    /// Takes the ring buffer: the events of namespace `netns_cookie`, read on the current
    /// tokio runtime. Once only; the program keeps writing to it while `self` lives.
    pub fn events(&mut self, netns_cookie: u64) -> Result<TelemetryEvents, EbpfError> {
        let map = self
            .ebpf
            .take_map(EVENTS_MAP)
            .ok_or(EbpfError::MissingMap(EVENTS_MAP))?;
        let ring = RingBuf::try_from(map).map_err(map_err(EVENTS_MAP))?;
        // SAFETY: the ring buffer owns its fd, which stays open and unchanged until the
        // buffer, moved into the `AsyncFd`, is dropped with it.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| map_err(EVENTS_MAP)(MapError::IoError(e.into())))?;
        Ok(TelemetryEvents { ring, netns_cookie })
    }

    fn map(&self, name: &'static str) -> Result<&Map, EbpfError> {
        self.ebpf.map(name).ok_or(EbpfError::MissingMap(name))
    }
}

/// Hands the program the kernel's offsets of the token and the RTT variance. Without them
/// (no BTF, another layout) records carry neither: one line says so and telemetry runs on.
fn configure(ebpf: &mut Ebpf) -> Result<(), EbpfError> {
    let fields = [
        ("mptcp_sock", "token", 4),
        ("tcp_sock", "mdev_us", 4),
        ("sock", "sk_err", 4),
        ("sock_common", "skc_cookie", 8),
        ("mptcp_subflow_context", "tcp_sock", 8),
    ];
    let config = match super::upgrade::offsets::running_kernel_fields(fields) {
        Ok(
            [
                mptcp_sock_token,
                tcp_sock_mdev_us,
                sock_sk_err,
                sock_skc_cookie,
                subflow_tcp_sock,
            ],
        ) => TelemetryConfig {
            ready: 1,
            mptcp_sock_token,
            tcp_sock_mdev_us,
            sock_sk_err,
            sock_skc_cookie,
            subflow_tcp_sock,
        },
        Err(why) => {
            tracing::info!(
                "telemetry records carry no MPTCP token, RTT variance, local-abort resets nor \
                 scheduler counts: {why}"
            );
            return Ok(());
        }
    };
    let map = ebpf
        .map_mut(CONFIG_MAP)
        .ok_or(EbpfError::MissingMap(CONFIG_MAP))?;
    let mut array: Array<&mut MapData, TelemetryConfig> =
        Array::try_from(map).map_err(map_err(CONFIG_MAP))?;
    array.set(0, &config, 0).map_err(map_err(CONFIG_MAP))
}

/// The ring buffer's events of one namespace.
pub struct TelemetryEvents {
    ring: AsyncFd<RingBuf<MapData>>,
    netns_cookie: u64,
}

impl std::fmt::Debug for TelemetryEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // aya's RingBuf is not Debug.
        f.debug_struct("TelemetryEvents")
            .field("netns_cookie", &self.netns_cookie)
            .finish_non_exhaustive()
    }
}

impl TelemetryEvents {
    /// The next event of the namespace, waiting for one.
    pub async fn next(&mut self) -> Result<TelemetryEvent, EbpfError> {
        loop {
            let mut guard = self
                .ring
                .readable_mut()
                .await
                .map_err(|e| map_err(EVENTS_MAP)(MapError::IoError(e)))?;
            while let Some(item) = guard.get_inner_mut().next() {
                let Some(event) = parse(&item) else {
                    tracing::warn!("telemetry event of {} bytes ignored", item.len());
                    continue;
                };
                if event.record.netns_cookie == self.netns_cookie {
                    return Ok(event);
                }
            }
            guard.clear_ready();
        }
    }
}

/// An event from its ring-buffer bytes (which need not be aligned for it).
fn parse(bytes: &[u8]) -> Option<TelemetryEvent> {
    (bytes.len() == size_of::<TelemetryEvent>())
        // SAFETY: as many bytes as the type, which is `Pod` (any bit pattern is valid).
        .then(|| unsafe { bytes.as_ptr().cast::<TelemetryEvent>().read_unaligned() })
}

/// The records of `map` that `keep` keeps.
fn records<T: std::borrow::Borrow<MapData>>(
    map: &HashMap<T, u64, SubflowRecord>,
    keep: impl Fn(&SubflowRecord) -> bool,
) -> Result<Vec<SubflowRecord>, EbpfError> {
    let mut records = Vec::new();
    for entry in map {
        match entry {
            Ok((_, record)) => {
                if keep(&record) {
                    records.push(record);
                }
            }
            // Removed between the key walk and the lookup: a subflow that just closed.
            Err(MapError::KeyNotFound) => {}
            Err(source) => return Err(map_err(SUBFLOWS_MAP)(source)),
        }
    }
    Ok(records)
}

/// Reads the subflow records pinned by [`Telemetry::pin_maps`] at `path` (every namespace's:
/// a reader of the pin filters), as the callbacks last left them.
pub fn read_pinned_subflows(path: &Path) -> Result<Vec<SubflowRecord>, EbpfError> {
    let data = MapData::from_pin(path).map_err(map_err(SUBFLOWS_MAP))?;
    let map: HashMap<MapData, u64, SubflowRecord> = Map::from_map_data(data)
        .and_then(HashMap::try_from)
        .map_err(map_err(SUBFLOWS_MAP))?;
    records(&map, |_| true)
}

fn map_err(name: &'static str) -> impl Fn(MapError) -> EbpfError {
    move |source| EbpfError::Map { name, source }
}

#[cfg(test)]
mod tests {
    use object::{Object as _, ObjectSection as _, ObjectSymbol as _};

    use super::{EVENTS_MAP, OBJECT, PROGRAM, STATS_MAP, SUBFLOWS_MAP};
    use mptcpd_common::telemetry_refresh as refresh;

    #[test]
    fn the_telemetry_object_holds_the_sock_ops_program_and_its_maps() {
        let elf = object::File::parse(OBJECT).expect("an ELF object");
        let sections: Vec<&str> = elf.sections().filter_map(|s| s.name().ok()).collect();
        assert!(sections.contains(&"sockops"), "{sections:?}");
        assert!(sections.contains(&"iter/tcp"), "{sections:?}");
        assert!(
            sections.contains(&".maps") || sections.contains(&"maps"),
            "{sections:?}"
        );
        let symbols: Vec<&str> = elf.symbols().filter_map(|s| s.name().ok()).collect();
        for name in [
            PROGRAM,
            SUBFLOWS_MAP,
            EVENTS_MAP,
            STATS_MAP,
            refresh::PROGRAM,
            refresh::OFFSETS_MAP,
        ] {
            assert!(symbols.contains(&name), "{name} missing: {symbols:?}");
        }
    }
}
