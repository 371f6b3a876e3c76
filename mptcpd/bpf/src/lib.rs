//! mptcpd's eBPF side, user half: the embedded objects (built from `mptcpd-ebpf` by this
//! crate's build script), their programs and maps, pins, feature probes, the TCP-to-MPTCP
//! upgrade (loaded through `aya-fmod-ret`), the socket observer, the bridge from aya-log to
//! `tracing`, and the cgroup v2 helpers they need. Used by the daemon and by `mptcpize`.

mod atomic_counters;
mod bpffs;
pub mod cgroup;
mod error;
mod features;
mod log_drain;
mod netns;
mod object;
mod run_stats;
mod sock_observer;
mod telemetry;
mod telemetry_refresh;
mod telemetry_sources;
mod upgrade;

pub use aya_fmod_ret::FModRetError;
use bpffs::check_pin_dir;
pub use bpffs::{DEFAULT_PIN_DIR, PinDir};
pub use error::EbpfError;
pub use features::{Hits, KernelFeatures, Probes, Support};
use log_drain::LogDrain;
pub use mptcpd_common::{
    SockCounts,
    telemetry::{SubflowRecord, TelemetryEvent},
};
pub use netns::{Netns, cookie as netns_cookie};
use object::{load_object, raise_memlock_limit};
pub use run_stats::{ProgramRunTime, enable_run_time_stats};
pub use sock_observer::{SOCK_COUNTS_PIN, SockObserver, read_pinned_counts};
pub use telemetry::{
    STATS_PIN as TELEMETRY_STATS_PIN, SUBFLOWS_PIN as TELEMETRY_SUBFLOWS_PIN, Telemetry,
    TelemetryEvents, TelemetryOptions, TelemetryStats, TelemetryStatsReader, read_pinned_subflows,
};
pub use telemetry_sources::{MissingSource, MptcpRetransSource};
pub use upgrade::{
    Installed, LINK_PIN, NETNS_CONFIG_PIN, NETNS_PIN, Upgrade, V1_CGROUPS_PIN, V1_LINK_PIN,
    V2_CGROUPS_PIN, V2_LINK_PIN,
};
