//! Between the plugin API's plain types and the daemon's netlink and network-monitor types.
//!
//! Addresses reach plugins in canonical form: a dual-stack (`AF_INET6`) socket carrying IPv4
//! reports its subflows as IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`), which plugins
//! would take for IPv6 (wrong family announced, no interface found for the subflow).

use std::net::SocketAddr;

use mptcpd_plugin as api;

use mptcp_pm::{
    PmError,
    wire::{self, EventFlags},
};

use crate::{diag::MptcpSocket, netmon};

pub(super) fn flags_to_wire(flags: api::EndpointFlags) -> wire::EndpointFlags {
    wire::EndpointFlags::from_bits_retain(flags.bits())
}

pub(super) fn flags_from_wire(flags: wire::EndpointFlags) -> api::EndpointFlags {
    api::EndpointFlags::from_bits_retain(flags.bits())
}

pub(super) fn endpoint_to_wire(endpoint: &api::Endpoint) -> wire::Endpoint {
    let api::Endpoint {
        id,
        addr,
        port,
        flags,
        if_idx,
    } = *endpoint;
    wire::Endpoint {
        id,
        addr,
        port,
        flags: flags_to_wire(flags),
        if_idx,
    }
}

pub(super) fn endpoint_from_wire(endpoint: &wire::Endpoint) -> api::Endpoint {
    let wire::Endpoint {
        id,
        addr,
        port,
        flags,
        if_idx,
    } = *endpoint;
    api::Endpoint {
        id,
        addr,
        port,
        flags: flags_from_wire(flags),
        if_idx,
    }
}

pub(super) const fn limits_to_wire(limits: api::Limits) -> wire::Limits {
    let api::Limits {
        add_addr_accepted,
        subflows,
    } = limits;
    wire::Limits {
        add_addr_accepted,
        subflows,
    }
}

pub(super) const fn limits_from_wire(limits: wire::Limits) -> api::Limits {
    let wire::Limits {
        add_addr_accepted,
        subflows,
    } = limits;
    api::Limits {
        add_addr_accepted,
        subflows,
    }
}

pub(super) fn error_from_pm(err: &PmError) -> api::PmError {
    match err {
        PmError::Kernel(e) => api::PmError::Kernel {
            errno: e.errno,
            message: e.message.clone(),
        },
        other => api::PmError::Unavailable(other.to_string()),
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; every other address unchanged.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

pub(super) fn connection(c: &wire::Connection) -> api::Connection {
    let wire::Connection {
        token,
        local,
        remote,
        local_id,
        remote_id,
        flags,
        server_side,
    } = *c;
    api::Connection {
        token,
        local: canonical(local),
        remote: canonical(remote),
        local_id,
        remote_id,
        server_side,
        deny_join_id0: flags.contains(EventFlags::DENY_JOIN_ID0),
    }
}

/// A connection listed by `sock_diag`, as CREATED/ESTABLISHED would have given it.
///
/// What the dump cannot give: the address ids (`None`: the kernel did not say; the initial
/// subflow's are 0), which side accepted (`server_side: false`), whether the peer forbids
/// joins to its initial address (`deny_join_id0: false`), and the initial subflow's interface.
pub(super) fn live_connection(s: &MptcpSocket) -> api::Connection {
    let MptcpSocket {
        state: _,
        local,
        remote,
        token,
        flags: _,
        orphan: _,
    } = *s;
    api::Connection {
        token,
        local: canonical(local),
        remote: canonical(remote),
        local_id: None,
        remote_id: None,
        server_side: false,
        deny_join_id0: false,
    }
}

pub(super) fn subflow(s: &wire::Subflow) -> api::Subflow {
    // The reset fields are not passed to plugins, as in the C daemon.
    let wire::Subflow {
        token,
        local,
        remote,
        local_id,
        remote_id,
        backup,
        if_idx,
        error,
        reset_reason: _,
        reset_flags: _,
    } = *s;
    api::Subflow {
        token,
        local: canonical(local),
        remote: canonical(remote),
        local_id,
        remote_id,
        backup,
        if_idx,
        error,
    }
}

pub(super) fn remote_address(a: &wire::Announcement) -> api::RemoteAddress {
    let wire::Announcement {
        token,
        remote_id,
        addr,
        port,
    } = *a;
    api::RemoteAddress {
        token,
        id: remote_id,
        addr: addr.to_canonical(),
        port,
    }
}

pub(super) fn interface(i: &netmon::Interface) -> api::Interface {
    let netmon::Interface {
        index,
        name,
        flags,
        oper_state: _,
        link_type: _,
    } = i;
    api::Interface {
        index: *index,
        name: name.clone(),
        flags: *flags,
    }
}
