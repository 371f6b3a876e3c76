//! The handle plugins command the path managers through.

use std::net::{IpAddr, SocketAddr};

use crate::{
    BoxFuture, ConnectionView, Endpoint, EndpointFlags, Limits, NewSubflow, PathDecision,
    PathHealth, PathProbe, PmError, PmKind, ProbeOutcome, SubflowPath, Token,
};

/// A command's answer, to await.
pub type PmFuture<'a, T> = BoxFuture<'a, Result<T, PmError>>;

/// The kernel's path-manager commands, both path managers. Each future resolves to the
/// kernel's answer (an acknowledgement, a reply, or its errno and message).
pub trait Commands: Send + Sync {
    /// In-kernel PM `ADD_ADDR`: adds an endpoint and resolves to its id. Refusals:
    /// [`PmError::is_exists`] for a duplicate address, [`PmError::is_no_room`] past the
    /// kernel's 8 endpoints, [`PmError::is_id_taken`] for an id another endpoint holds.
    ///
    /// Id 0 asks the kernel to choose (taking over an implicit endpoint of the address, with
    /// its id); the kernel's acknowledgement does not say which, so it is read back. Through
    /// the daemon's handle the id is never 0, and may differ from the one asked for when
    /// another tool took that one meanwhile: the answer is the id to remove it by.
    fn add_endpoint(&self, endpoint: Endpoint) -> PmFuture<'_, u8>;
    /// In-kernel PM `DEL_ADDR`: removes the endpoint with this id.
    fn remove_endpoint(&self, id: u8) -> PmFuture<'_, ()>;
    /// In-kernel PM `GET_ADDR`.
    fn get_endpoint(&self, id: u8) -> PmFuture<'_, Endpoint>;
    /// In-kernel PM `GET_ADDR` dump: every endpoint, implicit ones and other tools' too.
    fn dump_endpoints(&self) -> PmFuture<'_, Vec<Endpoint>>;
    /// In-kernel PM `FLUSH_ADDRS`: removes every endpoint, other tools' too.
    fn flush_endpoints(&self) -> PmFuture<'_, ()>;
    /// In-kernel PM `SET_FLAGS` on an endpoint (`backup`, `fullmesh`).
    fn set_endpoint_flags(&self, id: u8, flags: EndpointFlags) -> PmFuture<'_, ()>;
    /// In-kernel PM `SET_LIMITS` (each at most 8).
    fn set_limits(&self, limits: Limits) -> PmFuture<'_, ()>;
    /// In-kernel PM `GET_LIMITS`.
    fn get_limits(&self) -> PmFuture<'_, Limits>;
    /// Userspace PM ANNOUNCE: advertises `local` (id 1..=255; 0 is refused here, as the
    /// kernel silently accepts it) to the peer of connection `token`.
    fn announce(&self, token: Token, local: Endpoint) -> PmFuture<'_, ()>;
    /// Userspace PM REMOVE: withdraws local address `id` from the connection.
    fn remove_address(&self, token: Token, id: u8) -> PmFuture<'_, ()>;
    /// Userspace PM `SUBFLOW_CREATE` (its local id 1..=255).
    fn subflow_create(&self, subflow: NewSubflow) -> PmFuture<'_, ()>;
    /// Userspace PM `SUBFLOW_DESTROY`.
    fn subflow_destroy(&self, subflow: SubflowPath) -> PmFuture<'_, ()>;
    /// Userspace PM `SET_FLAGS` with a token: marks the subflow backup or not (`MP_PRIO`).
    fn set_backup(&self, subflow: SubflowPath, backup: bool) -> PmFuture<'_, ()>;
}

/// What a plugin gets with each event: the kernel's commands plus the daemon's shared
/// services (address ids, listening sockets, the endpoints this daemon owns).
///
/// The daemon's implementation records the endpoints added through it: those are "ours",
/// removed at shutdown and adopted after a restart. Adding an endpoint identical to one it
/// already owns succeeds without asking the kernel (adoption, no duplicate).
pub trait PathManager: Commands {
    /// The id of a local address: the one it already has (its endpoint of ours, or an
    /// earlier call), else the lowest one that no address and no endpoint holds, as far as the
    /// last dump of the kernel's endpoints tells.
    fn address_id(&self, addr: IpAddr) -> Result<u8, PmError>;
    /// Frees the id of an address that no longer needs it (kept while an endpoint of ours
    /// uses it).
    fn release_address_id(&self, addr: IpAddr);
    /// A reference to an MPTCP listening socket on `addr` (port 0: an ephemeral port, shared
    /// by every caller asking for that address with port 0), for joins to announced
    /// addresses. Returns the address and port listened on.
    fn listen(&self, addr: SocketAddr) -> Result<SocketAddr, PmError>;
    /// Drops a reference taken by [`Self::listen`] (with the address it returned); the
    /// socket closes with the last one.
    fn close_listener(&self, addr: SocketAddr) -> Result<(), PmError>;
    /// The in-kernel endpoints this daemon added (or adopted) and has not removed (nor
    /// suspended).
    fn owned_endpoints(&self) -> Vec<Endpoint>;
    /// Takes one of this daemon's endpoints out of the kernel (`DEL_ADDR`: the kernel closes
    /// its subflows in every connection) while keeping it the daemon's: its id stays
    /// reserved for its address, the state file keeps it, shutdown removes nothing more for
    /// it. [`Self::resume_endpoint`] puts it back; a removal in the meantime
    /// ([`Commands::remove_endpoint`], e.g. its address went away) just forgets it. Refused
    /// ([`PmError::is_not_found`]) for an id that is not one of ours in the kernel.
    fn suspend_endpoint(&self, id: u8) -> PmFuture<'_, ()>;
    /// Puts a suspended endpoint back, identical but for `flags` (same id, address, port,
    /// interface). `Ok(false)`: it is no longer ours (removed while suspended), nothing
    /// added. A refusal (e.g. another tool took the id meanwhile) leaves it suspended.
    fn resume_endpoint(&self, id: u8, flags: EndpointFlags) -> PmFuture<'_, bool>;
    /// The path manager the kernel gives new connections of the daemon's network namespace,
    /// read from its sysctls at each call (see [`PmKind::from_sysctls`]): whether a
    /// connection takes endpoint commands or per-connection ones.
    fn pm_kind(&self) -> PmKind;
    /// How the connection's subflows are doing: the path manager's view joined with the
    /// subflow telemetry's current figures. `None` for a connection the daemon does not
    /// track; subflows carry no figures when telemetry is off.
    fn connection_view(&self, token: Token) -> Option<ConnectionView> {
        let _ = token;
        None
    }
    /// Every connection's view in one read of the sources (what a plugin looking at all its
    /// connections calls, rather than [`Self::connection_view`] once per connection: each read
    /// walks the telemetry's records and the kernel's connection list).
    fn connection_views(&self) -> Vec<ConnectionView> {
        Vec::new()
    }
    /// A plugin's path-health judgement, for operators: the daemon counts it in the metrics
    /// and keeps the latest one per address for D-Bus and `mptcpctl connections`. The plugin
    /// logs it itself.
    fn report_decision(&self, decision: PathDecision) {
        drop(decision);
    }
    /// A local address's health as a plugin last judged it ([`Self::report_decision`]):
    /// what a plugin that opens subflows consults so as not to re-create one on a path
    /// judged dead (healthy when never judged).
    fn path_health(&self, addr: IpAddr) -> PathHealth {
        let _ = addr;
        PathHealth::Healthy
    }
    /// Starts testing a path outside the connections ([`PathProbe`]: a TCP connection
    /// attempt, reset at once if answered; no subflow, no endpoint). The attempt runs on its
    /// own: the future only hands over its outcome, so a caller may poll it now and then
    /// (e.g. once a tick) rather than wait. `None`: this path manager cannot test paths.
    fn probe_path(&self, probe: PathProbe) -> Option<BoxFuture<'static, ProbeOutcome>> {
        let _ = probe;
        None
    }
}
