//! mptcpd's eBPF side, user half: the embedded object, its programs and maps, pins, and the
//! bridge from aya-log to `tracing`.

mod bpffs;
mod error;
mod features;
mod log_drain;
mod object;
mod sock_observer;

pub use bpffs::{DEFAULT_PIN_DIR, PinDir};
pub use error::{EbpfError, chain};
pub use features::{Hits, KernelFeatures, PROBES_OBJECT, Probes, Support};
pub use log_drain::LogDrain;
pub use mptcpd_common::SockCounts;
pub use object::{OBJECT, load_object};
pub use sock_observer::{SOCK_COUNTS_PIN, SockObserver, read_pinned_counts};
