//! State-changing commands through the daemon (`org.mptcpd.Control1`, `docs/dbus.md`) when it
//! is on the bus and serves this network namespace, so that it knows them (an endpoint added
//! so is the operator's: the daemon never removes it); otherwise the caller goes to the kernel
//! directly.

use std::{collections::HashMap, os::unix::fs::MetadataExt as _};

use mptcpd_common::dbus::{BUS_NAME, CONTROL_INTERFACE, ERROR_PREFIX, MANAGER_PATH};
use zbus::{fdo::DBusProxy, names::BusName};

/// A bound on finding the daemon: a bus that does not answer is no daemon.
const FIND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The daemon's control interface.
pub(crate) struct Daemon {
    proxy: zbus::Proxy<'static>,
}

/// The daemon's answer to a command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    /// It refused (`org.mptcpd.Error.NAME`, the kernel's message), or the bus did.
    #[error("mptcpd refused ({name}): {message}")]
    Refused {
        /// The error's name, without the daemon's prefix.
        name: String,
        message: String,
    },
    /// The call itself failed.
    #[error("calling mptcpd over D-Bus")]
    Call(#[source] zbus::Error),
}

impl From<zbus::Error> for DaemonError {
    fn from(e: zbus::Error) -> Self {
        match e {
            zbus::Error::MethodError(name, message, _) => {
                let name = name.as_str();
                Self::Refused {
                    name: name
                        .strip_prefix(ERROR_PREFIX)
                        .and_then(|n| n.strip_prefix('.'))
                        .unwrap_or(name)
                        .to_owned(),
                    message: message.unwrap_or_default(),
                }
            }
            other => Self::Call(other),
        }
    }
}

/// This process's network namespace, as the daemon's `NetworkNamespace` names it.
fn own_namespace() -> Option<u64> {
    std::fs::metadata("/proc/self/ns/net").ok().map(|m| m.ino())
}

impl Daemon {
    /// The daemon, if it is on the bus and manages this network namespace; `None` (go to
    /// the kernel) when there is no bus, no daemon, or one of another namespace.
    pub(crate) async fn find() -> Option<Self> {
        tokio::time::timeout(FIND_TIMEOUT, Self::ask()).await.ok()?
    }

    async fn ask() -> Option<Self> {
        let bus = zbus::Connection::system().await.ok()?;
        let name = BusName::from_static_str(BUS_NAME).ok()?;
        let owned = DBusProxy::new(&bus)
            .await
            .ok()?
            .name_has_owner(name)
            .await
            .ok()?;
        if !owned {
            return None;
        }
        let proxy = zbus::Proxy::new(&bus, BUS_NAME, MANAGER_PATH, CONTROL_INTERFACE)
            .await
            .ok()?;
        let theirs: u64 = proxy.get_property("NetworkNamespace").await.ok()?;
        (Some(theirs) == own_namespace()).then_some(Self { proxy })
    }

    pub(crate) async fn add_endpoint(
        &self,
        endpoint: &mptcp_pm::Endpoint,
    ) -> Result<u8, DaemonError> {
        let flags = words(endpoint.flags);
        let ifindex = endpoint
            .if_idx
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(0);
        let body = (
            endpoint.addr.to_string(),
            endpoint.port.unwrap_or(0),
            ifindex,
            flags,
            endpoint.id,
        );
        Ok(self.proxy.call("AddEndpoint", &body).await?)
    }

    pub(crate) async fn remove_endpoint(&self, id: u8) -> Result<(), DaemonError> {
        Ok(self.proxy.call("RemoveEndpoint", &(id,)).await?)
    }

    /// Every endpoint of the kernel, as `ip mptcp endpoint flush`.
    pub(crate) async fn flush_endpoints(&self) -> Result<(), DaemonError> {
        let _removed: u32 = self.proxy.call("FlushEndpoints", &(true,)).await?;
        Ok(())
    }

    pub(crate) async fn set_endpoint_flags(
        &self,
        id: u8,
        flags: mptcp_pm::EndpointFlags,
    ) -> Result<(), DaemonError> {
        Ok(self
            .proxy
            .call("SetEndpointFlags", &(id, words(flags)))
            .await?)
    }

    /// The limits given; the others keep their values.
    pub(crate) async fn set_limits(
        &self,
        subflows: Option<u32>,
        add_addr_accepted: Option<u32>,
    ) -> Result<(), DaemonError> {
        let limits: HashMap<&str, u32> = [
            ("subflows", subflows),
            ("add_addr_accepted", add_addr_accepted),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();
        Ok(self.proxy.call("SetLimits", &(limits,)).await?)
    }

    pub(crate) async fn announce(
        &self,
        token: u32,
        endpoint: &mptcp_pm::Endpoint,
    ) -> Result<(), DaemonError> {
        let body = (
            token,
            endpoint.addr.to_string(),
            endpoint.id,
            endpoint.port.unwrap_or(0),
        );
        Ok(self.proxy.call("Announce", &body).await?)
    }

    pub(crate) async fn remove_address(&self, token: u32, id: u8) -> Result<(), DaemonError> {
        Ok(self.proxy.call("RemoveAddress", &(token, id)).await?)
    }

    pub(crate) async fn create_subflow(
        &self,
        subflow: &mptcp_pm::NewSubflow,
    ) -> Result<(), DaemonError> {
        let body = (
            subflow.token,
            subflow.local.addr.to_string(),
            subflow.local.id,
            subflow.remote.to_string(),
        );
        Ok(self.proxy.call("CreateSubflow", &body).await?)
    }

    pub(crate) async fn destroy_subflow(
        &self,
        subflow: mptcp_pm::SubflowPath,
    ) -> Result<(), DaemonError> {
        let body = (
            subflow.token,
            subflow.local.to_string(),
            subflow.remote.to_string(),
        );
        Ok(self.proxy.call("DestroySubflow", &body).await?)
    }

    pub(crate) async fn set_backup(
        &self,
        subflow: mptcp_pm::SubflowPath,
        backup: bool,
    ) -> Result<(), DaemonError> {
        let body = (
            subflow.token,
            subflow.local.to_string(),
            subflow.remote.to_string(),
            backup,
        );
        Ok(self.proxy.call("SetBackup", &body).await?)
    }
}

/// The flags as the daemon takes them: one word each.
fn words(flags: mptcp_pm::EndpointFlags) -> Vec<String> {
    flags
        .to_string()
        .split(',')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemons_error_names_are_shortened_and_keep_the_message() {
        let message = zbus::message::Message::method_call("/", "M")
            .unwrap()
            .build(&())
            .unwrap();
        let refused = DaemonError::from(zbus::Error::MethodError(
            "org.mptcpd.Error.NotFound".try_into().unwrap(),
            Some("kernel: address not found".to_owned()),
            message,
        ));
        assert_eq!(
            refused.to_string(),
            "mptcpd refused (NotFound): kernel: address not found"
        );
        assert_eq!(
            words(mptcp_pm::EndpointFlags::SIGNAL | mptcp_pm::EndpointFlags::BACKUP),
            ["signal", "backup"]
        );
    }
}
