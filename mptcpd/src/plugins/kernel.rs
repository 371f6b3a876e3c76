//! The kernel side of the handle: the plugin API's commands over [`PmClient`].

use mptcp_pm::{
    Endpoint, EndpointFlags, Limits, NewSubflow, PmClient, PmError, SubflowPath, Token,
};
use mptcpd_plugin::{Commands, PmFuture};

/// The kernel's path manager over netlink, as the plugin API's [`Commands`].
#[derive(Debug, Clone)]
pub struct NetlinkPm(pub PmClient);

impl Commands for NetlinkPm {
    /// With id 0 the kernel chooses; its acknowledgement carries no id, so a dump finds the
    /// endpoint by address and port.
    fn add_endpoint(&self, endpoint: Endpoint) -> PmFuture<'_, u8> {
        Box::pin(async move {
            self.0.add_addr(&endpoint).await?;
            if endpoint.id != 0 {
                return Ok(endpoint.id);
            }
            let all = self.0.dump_addrs().await?;
            all.iter()
                .find(|e| e.addr == endpoint.addr && e.port == endpoint.port)
                .map(|e| e.id)
                .ok_or(PmError::Vanished(endpoint.addr))
        })
    }

    fn remove_endpoint(&self, id: u8) -> PmFuture<'_, ()> {
        Box::pin(self.0.del_addr(id))
    }

    fn get_endpoint(&self, id: u8) -> PmFuture<'_, Endpoint> {
        Box::pin(self.0.get_addr(id))
    }

    fn dump_endpoints(&self) -> PmFuture<'_, Vec<Endpoint>> {
        Box::pin(self.0.dump_addrs())
    }

    fn flush_endpoints(&self) -> PmFuture<'_, ()> {
        Box::pin(self.0.flush_addrs())
    }

    fn set_endpoint_flags(&self, id: u8, flags: EndpointFlags) -> PmFuture<'_, ()> {
        Box::pin(self.0.set_flags(id, flags))
    }

    fn set_limits(&self, limits: Limits) -> PmFuture<'_, ()> {
        Box::pin(self.0.set_limits(limits))
    }

    fn get_limits(&self) -> PmFuture<'_, Limits> {
        Box::pin(self.0.get_limits())
    }

    fn announce(&self, token: Token, local: Endpoint) -> PmFuture<'_, ()> {
        Box::pin(async move {
            if local.id == 0 {
                return Err(PmError::ZeroId);
            }
            self.0.announce(token, &local).await
        })
    }

    fn remove_address(&self, token: Token, id: u8) -> PmFuture<'_, ()> {
        Box::pin(async move {
            if id == 0 {
                return Err(PmError::ZeroId);
            }
            self.0.remove(token, id).await
        })
    }

    fn subflow_create(&self, subflow: NewSubflow) -> PmFuture<'_, ()> {
        Box::pin(async move {
            if subflow.local.id == 0 {
                return Err(PmError::ZeroId);
            }
            self.0.subflow_create(&subflow).await
        })
    }

    fn subflow_destroy(&self, subflow: SubflowPath) -> PmFuture<'_, ()> {
        Box::pin(self.0.subflow_destroy(subflow))
    }

    fn set_backup(&self, subflow: SubflowPath, backup: bool) -> PmFuture<'_, ()> {
        let flags = if backup {
            EndpointFlags::BACKUP
        } else {
            EndpointFlags::empty()
        };
        Box::pin(self.0.set_flags_for(subflow, flags))
    }
}
