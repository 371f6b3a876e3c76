//! `mptcpctl`, the operator's command line over the `mptcp_pm` layer: endpoints, limits and
//! flags of the in-kernel path manager, the userspace path manager's per-connection commands,
//! and the event stream. Output reads like `ip mptcp`; `--json` prints one JSON value per
//! line for scripts.

mod args;
mod exec;
mod format;
mod iface;

pub use args::{Command, CtlArgs, EndpointCommand, LimitsCommand, SubflowCommand};
pub use exec::{CtlError, run};
pub use format::{endpoint_json, endpoint_text, event_json, event_text, limits_json, limits_text};
