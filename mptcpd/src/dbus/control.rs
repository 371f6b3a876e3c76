//! `org.mptcpd.Control1` at `/org/mptcpd/Mptcpd`: the state-changing methods (endpoints,
//! limits, the userspace path manager's commands), apart from the read-only `Manager1` so that
//! the bus policy can allow the one to everyone and the other to root and the `dbus-group`.
//! Each call checks its caller first (`caller`), goes through the plugins' handle, so that an
//! endpoint added here is recorded as the operator's, and answers the kernel's refusal as a
//! named error (`errors`).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use mptcp_pm::{Endpoint, EndpointFlags, Limits, NewSubflow, SubflowPath};
use mptcpd_plugin::{Commands as _, PathManager as _, PmKind};
use zbus::{
    fdo::DBusProxy,
    interface,
    message::Header,
    names::{BusName, UniqueName},
    object_server::SignalEmitter,
    zvariant::{OwnedValue, Value},
};

use super::{caller::Allowed, errors::ControlError, external::External};
use crate::{
    connections::Connections,
    plugins::{HostPm, NetlinkPm, NetnsId},
};

/// The control object.
pub(super) struct Control {
    pub(super) pm: Arc<HostPm<NetlinkPm>>,
    pub(super) allowed: Allowed,
    pub(super) external: External,
    pub(super) connections: Connections,
}

/// A claimed connection as `ClaimedConnections` gives it: token, local and remote address
/// of the initial subflow, established, and every subflow's (local, remote).
type Claimed = (u32, String, String, bool, Vec<(String, String)>);

/// The caller's unique name (the credentials check made sure there is one).
fn sender<'h>(header: &'h Header<'_>) -> Result<&'h UniqueName<'h>, ControlError> {
    header
        .sender()
        .ok_or_else(|| ControlError::AccessDenied("the call has no sender".to_owned()))
}

fn invalid(what: String) -> ControlError {
    ControlError::InvalidArgument(what)
}

fn address(text: &str) -> Result<IpAddr, ControlError> {
    text.parse()
        .map_err(|_| invalid(format!("{text:?} is not an IP address")))
}

fn socket_address(text: &str) -> Result<SocketAddr, ControlError> {
    text.parse().map_err(|_| {
        invalid(format!(
            "{text:?} is not an address and port (192.0.2.1:80, [2001:db8::1]:80)"
        ))
    })
}

/// Address ids 1..=255 name local addresses; 0 is the initial subflow's.
fn nonzero(id: u8) -> Result<u8, ControlError> {
    if id == 0 {
        Err(invalid(
            "address id 0 refused: ids 1..=255 name endpoints".to_owned(),
        ))
    } else {
        Ok(id)
    }
}

fn flags(words: &[String]) -> Result<EndpointFlags, ControlError> {
    words
        .join(",")
        .parse()
        .map_err(|e: mptcp_pm::FlagsError| invalid(e.to_string()))
}

#[interface(name = "org.mptcpd.Control1")]
impl Control {
    /// The daemon's network namespace (the inode of `/proc/self/ns/net`), so that a client
    /// in another namespace (`mptcpctl`) does not send it commands meant for its own kernel.
    #[zbus(property(emits_changed_signal = "const"))]
    #[expect(
        clippy::unused_self,
        reason = "a D-Bus property is a method of its object"
    )]
    fn network_namespace(&self) -> u64 {
        NetnsId::current().map_or(0, |n| n.inode)
    }

    /// Adds an in-kernel endpoint, recorded as the operator's (never removed by the daemon).
    /// `port` 0: none; `ifindex` 0: no interface; `id` 0: the daemon picks. Returns the id.
    #[expect(
        clippy::too_many_arguments,
        reason = "a D-Bus method's arguments, plus the header and bus zbus passes"
    )]
    async fn add_endpoint(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        address: String,
        port: u16,
        ifindex: u32,
        flags: Vec<String>,
        id: u8,
    ) -> Result<u8, ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        let addr = self::address(&address)?;
        let mut endpoint = Endpoint::new(addr, self::flags(&flags)?)
            .with_id(id)
            .with_port(port);
        if ifindex != 0 {
            let index = i32::try_from(ifindex)
                .map_err(|_| invalid(format!("interface index {ifindex} out of range")))?;
            endpoint = endpoint.with_if_idx(index);
        }
        let name = sender(&header)?;
        let id = self.pm.add_operator_endpoint(endpoint).await?;
        // A path manager's endpoints go with it.
        self.external.claims.lock().note_endpoint(name, id);
        tracing::info!("D-Bus: uid {uid} added endpoint {id} ({addr})");
        Ok(id)
    }

    /// Removes an endpoint by id (anyone's).
    async fn remove_endpoint(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        id: u8,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        self.pm.remove_endpoint(nonzero(id)?).await?;
        tracing::info!("D-Bus: uid {uid} removed endpoint {id}");
        Ok(())
    }

    /// Sets an endpoint's flags to exactly these (the kernel changes `backup` and
    /// `fullmesh`).
    async fn set_endpoint_flags(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        id: u8,
        flags: Vec<String>,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        let flags = self::flags(&flags)?;
        self.pm.set_endpoint_flags(nonzero(id)?, flags).await?;
        tracing::info!("D-Bus: uid {uid} set endpoint {id}'s flags to {flags}");
        Ok(())
    }

    /// Removes the endpoints the daemon recorded (its plugins' and the operators'), or with
    /// `all` every endpoint of the kernel. Returns how many were removed.
    async fn flush_endpoints(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        all: bool,
    ) -> Result<u32, ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        let removed = if all {
            let before = self.pm.dump_endpoints().await?.len();
            self.pm.flush_endpoints().await?;
            before
        } else {
            self.pm.remove_recorded().await
        };
        tracing::info!("D-Bus: uid {uid} flushed {removed} endpoints (all: {all})");
        Ok(u32::try_from(removed).unwrap_or(u32::MAX))
    }

    /// Sets the in-kernel path manager's limits: `subflows`, `add_addr_accepted`; a key
    /// left out keeps its value.
    async fn set_limits(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        limits: HashMap<String, u32>,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        if let Some(key) = limits
            .keys()
            .find(|k| !matches!(k.as_str(), "subflows" | "add_addr_accepted"))
        {
            return Err(invalid(format!(
                "unknown limit {key:?} (expected subflows, add_addr_accepted)"
            )));
        }
        let current = self.pm.get_limits().await?;
        let new = Limits {
            subflows: limits.get("subflows").copied().unwrap_or(current.subflows),
            add_addr_accepted: limits
                .get("add_addr_accepted")
                .copied()
                .unwrap_or(current.add_addr_accepted),
        };
        self.pm.set_limits(new).await?;
        tracing::info!(
            "D-Bus: uid {uid} set the limits: subflows {}, add_addr_accepted {}",
            new.subflows,
            new.add_addr_accepted
        );
        Ok(())
    }

    /// The in-kernel path manager's limits (as the manager's `Limits` property).
    async fn get_limits(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> Result<HashMap<String, u32>, ControlError> {
        self.allowed.check(bus, &header).await?;
        let limits = self.pm.get_limits().await?;
        Ok(HashMap::from([
            ("subflows".to_owned(), limits.subflows),
            ("add_addr_accepted".to_owned(), limits.add_addr_accepted),
        ]))
    }

    /// Userspace PM: announces a local address on a connection (`ADD_ADDR`); `port` 0: none.
    async fn announce(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        token: u32,
        address: String,
        id: u8,
        port: u16,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        let name = sender(&header)?;
        self.external.check_token(name, token)?;
        let addr = self::address(&address)?;
        let local = Endpoint::new(addr, EndpointFlags::SIGNAL)
            .with_id(nonzero(id)?)
            .with_port(port);
        let listener = SocketAddr::new(addr, port);
        self.external.listen_for(name, listener, &self.pm)?;
        if let Err(e) = self.pm.announce(token, local).await {
            self.external.unlisten(name, listener, &self.pm);
            return Err(e.into());
        }
        tracing::debug!("D-Bus: uid {uid} announced {address} (id {id}) on token {token}");
        Ok(())
    }

    /// Userspace PM: withdraws an announced address id (`RM_ADDR`) and closes its subflows.
    async fn remove_address(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        token: u32,
        id: u8,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        self.external.check_token(sender(&header)?, token)?;
        self.pm.remove_address(token, nonzero(id)?).await?;
        tracing::debug!("D-Bus: uid {uid} removed address id {id} on token {token}");
        Ok(())
    }

    /// Userspace PM: opens a subflow from `local` (with its address id) to `remote`
    /// (address and port).
    async fn create_subflow(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        token: u32,
        local: String,
        local_id: u8,
        remote: String,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        self.external.check_token(sender(&header)?, token)?;
        let subflow = NewSubflow {
            token,
            local: Endpoint::new(address(&local)?, EndpointFlags::empty())
                .with_id(nonzero(local_id)?),
            remote: socket_address(&remote)?,
        };
        self.pm.subflow_create(subflow).await?;
        tracing::debug!("D-Bus: uid {uid} created a subflow {local} -> {remote} on token {token}");
        Ok(())
    }

    /// Userspace PM: closes the subflow between these addresses and ports.
    async fn destroy_subflow(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        token: u32,
        local: String,
        remote: String,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        self.external.check_token(sender(&header)?, token)?;
        let subflow = SubflowPath {
            token,
            local: socket_address(&local)?,
            remote: socket_address(&remote)?,
        };
        self.pm.subflow_destroy(subflow).await?;
        tracing::debug!("D-Bus: uid {uid} destroyed subflow {local} -> {remote} on token {token}");
        Ok(())
    }

    /// Userspace PM: sets or clears a subflow's backup flag (local port 0: any).
    async fn set_backup(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        token: u32,
        local: String,
        remote: String,
        backup: bool,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        self.external.check_token(sender(&header)?, token)?;
        let subflow = SubflowPath {
            token,
            local: socket_address(&local)?,
            remote: socket_address(&remote)?,
        };
        self.pm.set_backup(subflow, backup).await?;
        tracing::debug!(
            "D-Bus: uid {uid} set backup {backup} on {local} -> {remote}, token {token}"
        );
        Ok(())
    }

    /// The bus names of the registered external path managers, in registration order.
    #[zbus(property(emits_changed_signal = "false"))]
    fn path_managers(&self) -> Vec<String> {
        self.external.claims.lock().names()
    }

    /// Asks to handle new connections (under the userspace path manager): those `rule`
    /// matches (`local_port`, `remote_port` q; `local_address`, `remote_address` s; every
    /// one given must match; none, or `all` true: every new connection). Their events come
    /// as `ClaimedEvent` signals to the caller only, and the default plugin leaves them
    /// alone until the caller unregisters or leaves the bus. Registering again changes the
    /// rule.
    async fn register_path_manager(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
        rule: HashMap<String, OwnedValue>,
    ) -> Result<(), ControlError> {
        let uid = self.allowed.check(bus, &header).await?;
        let name = sender(&header)?;
        let kind = self.pm.pm_kind();
        if kind != PmKind::Userspace {
            let under = match kind {
                PmKind::Kernel => "the in-kernel path manager",
                _ => "another path manager the kernel chose (net.mptcp.path_manager)",
            };
            return Err(ControlError::WrongPathManager(format!(
                "this namespace's connections are under {under}, which takes no external path \
                 manager: set net.mptcp.pm_type=1 (userspace) first"
            )));
        }
        let rule = super::external::rule(&rule)?;
        self.external.claims.lock().register(name, rule.clone());
        // A client that left before this ran: its NameOwnerChanged may have come already.
        let present = DBusProxy::new(bus)
            .await?
            .name_has_owner(BusName::Unique(name.clone()))
            .await;
        if !matches!(present, Ok(true)) {
            self.external.release(name, &self.pm, "left the bus").await;
            return Ok(());
        }
        tracing::info!("D-Bus: uid {uid}'s {name} handles new connections matching {rule:?}");
        Ok(())
    }

    /// Gives the caller's connections back to the default plugin, removes the endpoints it
    /// added and closes the listeners opened for it. Returns how many connections it held.
    async fn unregister_path_manager(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> Result<u32, ControlError> {
        self.allowed.check(bus, &header).await?;
        let name = sender(&header)?;
        let count = self
            .external
            .release(name, &self.pm, "unregistered")
            .await
            .ok_or_else(|| {
                ControlError::NotHeld(format!(
                    "{name} is not a registered path manager (RegisterPathManager first)"
                ))
            })?;
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The connections the caller handles, as they are now: after `SignalsDropped`, what
    /// the lost `ClaimedEvent`s would have told.
    async fn claimed_connections(
        &self,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] bus: &zbus::Connection,
    ) -> Result<Vec<Claimed>, ControlError> {
        self.allowed.check(bus, &header).await?;
        let tokens = self.external.claims.lock().held_by(sender(&header)?);
        Ok(tokens
            .into_iter()
            .filter_map(|token| self.connections.get(token))
            .map(|view| {
                let subflows = view
                    .subflows
                    .iter()
                    .map(|s| (s.local.to_string(), s.remote.to_string()))
                    .collect();
                let (local, remote) = (view.local.to_string(), view.remote.to_string());
                (view.token, local, remote, view.established, subflows)
            })
            .collect())
    }

    /// An event of a connection the receiver handles (sent to it alone): `kind`
    /// (`created`, `established`, `closed`, `announced`, `removed`, `subflow_established`,
    /// `subflow_closed`, `subflow_priority`), the token, and the event's fields by name.
    #[zbus(signal)]
    pub(super) async fn claimed_event(
        emitter: &SignalEmitter<'_>,
        kind: &str,
        token: u32,
        details: HashMap<&str, Value<'_>>,
    ) -> zbus::Result<()>;
}
