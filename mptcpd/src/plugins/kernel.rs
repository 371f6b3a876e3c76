//! The kernel side of the handle: the plugin API's commands over [`PmClient`].

use std::net::SocketAddr;

use mptcpd_plugin::{Commands, Endpoint, EndpointFlags, Limits, PmError, PmFuture, Token};

use super::convert::{
    endpoint_from_wire, endpoint_to_wire, error_from_pm, flags_to_wire, limits_from_wire,
    limits_to_wire,
};
use mptcp_pm::{PmClient, wire};

fn answer<T>(result: Result<T, mptcp_pm::PmError>) -> Result<T, PmError> {
    result.map_err(|e| error_from_pm(&e))
}

/// The kernel's path manager over netlink, as the plugin API's [`Commands`].
#[derive(Debug, Clone)]
pub struct NetlinkPm(pub PmClient);

impl Commands for NetlinkPm {
    /// With id 0 the kernel chooses; its acknowledgement carries no id, so a dump finds the
    /// endpoint by address and port.
    fn add_endpoint(&self, endpoint: Endpoint) -> PmFuture<'_, u8> {
        Box::pin(async move {
            answer(self.0.add_addr(&endpoint_to_wire(&endpoint)).await)?;
            if endpoint.id != 0 {
                return Ok(endpoint.id);
            }
            let all = answer(self.0.dump_addrs().await)?;
            all.iter()
                .map(endpoint_from_wire)
                .find(|e| e.addr == endpoint.addr && e.port == endpoint.port)
                .map(|e| e.id)
                .ok_or_else(|| {
                    PmError::Unavailable(format!(
                        "the endpoint for {} was removed before its id could be read",
                        endpoint.addr
                    ))
                })
        })
    }

    fn remove_endpoint(&self, id: u8) -> PmFuture<'_, ()> {
        Box::pin(async move { answer(self.0.del_addr(id).await) })
    }

    fn get_endpoint(&self, id: u8) -> PmFuture<'_, Endpoint> {
        Box::pin(async move { answer(self.0.get_addr(id).await).map(|e| endpoint_from_wire(&e)) })
    }

    fn dump_endpoints(&self) -> PmFuture<'_, Vec<Endpoint>> {
        Box::pin(async move {
            answer(self.0.dump_addrs().await)
                .map(|all| all.iter().map(endpoint_from_wire).collect())
        })
    }

    fn flush_endpoints(&self) -> PmFuture<'_, ()> {
        Box::pin(async move { answer(self.0.flush_addrs().await) })
    }

    fn set_endpoint_flags(&self, id: u8, flags: EndpointFlags) -> PmFuture<'_, ()> {
        Box::pin(async move { answer(self.0.set_flags(id, flags_to_wire(flags)).await) })
    }

    fn set_limits(&self, limits: Limits) -> PmFuture<'_, ()> {
        Box::pin(async move { answer(self.0.set_limits(limits_to_wire(limits)).await) })
    }

    fn get_limits(&self) -> PmFuture<'_, Limits> {
        Box::pin(async move { answer(self.0.get_limits().await).map(limits_from_wire) })
    }

    fn announce(&self, token: Token, local: Endpoint) -> PmFuture<'_, ()> {
        Box::pin(async move {
            if local.id == 0 {
                return Err(PmError::ZeroId);
            }
            answer(self.0.announce(token, &endpoint_to_wire(&local)).await)
        })
    }

    fn remove_address(&self, token: Token, id: u8) -> PmFuture<'_, ()> {
        Box::pin(async move {
            if id == 0 {
                return Err(PmError::ZeroId);
            }
            answer(self.0.remove(token, id).await)
        })
    }

    fn subflow_create(
        &self,
        token: Token,
        local: Endpoint,
        remote: SocketAddr,
    ) -> PmFuture<'_, ()> {
        Box::pin(async move {
            if local.id == 0 {
                return Err(PmError::ZeroId);
            }
            answer(
                self.0
                    .subflow_create(token, &endpoint_to_wire(&local), remote)
                    .await,
            )
        })
    }

    fn subflow_destroy(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> PmFuture<'_, ()> {
        Box::pin(async move { answer(self.0.subflow_destroy(token, local, remote).await) })
    }

    fn set_backup(
        &self,
        token: Token,
        local: SocketAddr,
        remote: SocketAddr,
        backup: bool,
    ) -> PmFuture<'_, ()> {
        let flags = if backup {
            wire::EndpointFlags::BACKUP
        } else {
            wire::EndpointFlags::empty()
        };
        Box::pin(async move { answer(self.0.set_flags_for(token, local, remote, flags).await) })
    }
}
