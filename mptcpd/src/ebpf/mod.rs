//! mptcpd's eBPF side, user half: the embedded object, its programs and maps, pins, and the
//! bridge from aya-log to `tracing`.

mod atomic_counters;
mod bpffs;
mod error;
mod features;
pub mod fmod_ret;
mod log_drain;
mod netns;
mod object;
mod sock_observer;
mod upgrade;

pub use bpffs::{DEFAULT_PIN_DIR, PinDir, check_pin_dir};
pub use error::{EbpfError, chain};
pub use features::{Hits, KernelFeatures, PROBES_OBJECT, Probes, Support};
pub use fmod_ret::FmodRetError;
pub use log_drain::LogDrain;
pub use mptcpd_common::SockCounts;
pub use netns::{Netns, cookie as netns_cookie};
use object::raise_memlock_limit;
pub use object::{OBJECT, load_object};
pub use sock_observer::{SOCK_COUNTS_PIN, SockObserver, read_pinned_counts};
pub use upgrade::{
    CGROUPS_PIN, Installed, LINK_PIN, NETNS_CONFIG_PIN, NETNS_PIN, UPGRADE_OBJECT, Upgrade,
    V1_CGROUPS_PIN, V1_LINK_PIN, V2_CGROUPS_PIN, V2_LINK_PIN,
};
