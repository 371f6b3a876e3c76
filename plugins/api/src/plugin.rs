//! The plugin trait: a descriptor (name, description, priority) and the 15 callbacks of the
//! C API, plus `init` and `exit`.

use std::{
    future::{self, Future},
    net::{IpAddr, SocketAddr},
    pin::Pin,
};

use crate::{Connection, EndpointFlags, Interface, PathManager, RemoteAddress, Subflow, Token};

/// What every callback returns: a future the host awaits before the next event.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most favourable priority (C `MPTCPD_PLUGIN_PRIORITY_HIGH`); lower numbers win.
pub const PRIORITY_HIGH: i32 = -20;
/// The priority of both built-in plugins.
pub const PRIORITY_DEFAULT: i32 = 0;
/// Least favourable priority.
pub const PRIORITY_LOW: i32 = 19;

/// A callback that does nothing.
pub fn done<'a>() -> BoxFuture<'a, ()> {
    Box::pin(future::ready(()))
}

/// What plugins are built with: the settings of the daemon that concern them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginConfig {
    /// `--addr-flags`: flags of the endpoints plugins add for the in-kernel path manager.
    pub addr_flags: EndpointFlags,
}

/// A path-manager plugin.
///
/// Connection callbacks (`new_connection` to `subflow_priority`) reach only the plugin that
/// handles the connection: the default plugin, chosen by `--path-manager` or else by
/// priority. `listener_*` go to the default plugin. Interface and address callbacks go to
/// every loaded plugin. Each callback gets the handle to the path manager; every command
/// returns the kernel's answer.
pub trait Plugin: Send {
    /// The name `--path-manager` and `--load-plugins` use.
    fn name(&self) -> &'static str;

    /// One line about the plugin.
    fn description(&self) -> &'static str;

    /// Lower numbers are more favourable (nice-like): with no `--path-manager`, the loaded
    /// plugin with the lowest priority is the default one (ties: registration order).
    fn priority(&self) -> i32 {
        PRIORITY_DEFAULT
    }

    /// Called once after loading, in priority order, before any event.
    fn init<'a>(&'a mut self, _pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        done()
    }

    /// Called once at shutdown, in reverse priority order, before the daemon removes the
    /// endpoints it added.
    fn exit<'a>(&'a mut self, _pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_CREATED`: a connection was created (the initial subflow exists).
    fn new_connection<'a>(
        &'a mut self,
        _conn: &'a Connection,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_ESTABLISHED`: the connection is fully established.
    fn connection_established<'a>(
        &'a mut self,
        _conn: &'a Connection,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_CLOSED`: drop what is kept about the connection.
    fn connection_closed<'a>(
        &'a mut self,
        _token: Token,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_ANNOUNCED`: the peer announced an address.
    fn new_address<'a>(
        &'a mut self,
        _addr: &'a RemoteAddress,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_REMOVED`: the peer withdrew the address it numbered `remote_id`.
    fn address_removed<'a>(
        &'a mut self,
        _token: Token,
        _remote_id: u8,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_SUB_ESTABLISHED`: a subflow joined.
    fn new_subflow<'a>(
        &'a mut self,
        _subflow: &'a Subflow,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_SUB_CLOSED`.
    fn subflow_closed<'a>(
        &'a mut self,
        _subflow: &'a Subflow,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_SUB_PRIORITY`: the peer changed a subflow's backup flag.
    fn subflow_priority<'a>(
        &'a mut self,
        _subflow: &'a Subflow,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_LISTENER_CREATED`: an MPTCP socket listens on `local`.
    fn listener_created<'a>(
        &'a mut self,
        _local: SocketAddr,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// `MPTCP_EVENT_LISTENER_CLOSED`.
    fn listener_closed<'a>(
        &'a mut self,
        _local: SocketAddr,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// A link became ready (up and running), including links found at start-up.
    fn new_interface<'a>(
        &'a mut self,
        _iface: &'a Interface,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// A ready link changed.
    fn update_interface<'a>(
        &'a mut self,
        _iface: &'a Interface,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// A link went away or stopped being ready (its addresses were withdrawn before).
    fn delete_interface<'a>(
        &'a mut self,
        _iface: &'a Interface,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// A local address became usable.
    fn new_local_address<'a>(
        &'a mut self,
        _iface: &'a Interface,
        _addr: IpAddr,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }

    /// A local address went away or stopped being usable.
    fn delete_local_address<'a>(
        &'a mut self,
        _iface: &'a Interface,
        _addr: IpAddr,
        _pm: &'a dyn PathManager,
    ) -> BoxFuture<'a, ()> {
        done()
    }
}
