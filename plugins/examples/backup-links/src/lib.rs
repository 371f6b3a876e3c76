//! `backup_links`, an example plugin of a crate of its own: every usable local address gets
//! an in-kernel `subflow` endpoint, marked `backup` when its interface is a cellular one
//! (its name starts with one of the given prefixes, e.g. `wwan`): the in-kernel path manager
//! then opens subflows over those links but sends over them only when the others fail.
//!
//! Interface and address events reach plugins one at a time (the host's network lane), so
//! the map of endpoints sits behind a plain mutex, taken between the kernel's answers.
//! An address on several interfaces keeps the endpoint of the first one reported.

use std::{
    collections::BTreeMap,
    net::IpAddr,
    sync::{Mutex, MutexGuard, PoisonError},
};

use mptcpd_plugin::{
    BoxFuture, Chain, Endpoint, EndpointFlags, Event, Interface, PathManager, Plugin,
};
use tracing::{info, warn};

/// The plugin's name, for `--load-plugins` and `--path-manager`.
pub const NAME: &str = "backup_links";

/// The `backup_links` plugin.
#[derive(Debug)]
pub struct BackupLinks {
    /// Interface-name prefixes of the backup links.
    prefixes: Vec<String>,
    /// The endpoint id of each address this plugin added.
    held: Mutex<BTreeMap<IpAddr, u8>>,
}

impl BackupLinks {
    /// Addresses on interfaces whose names start with one of `prefixes` are backups.
    #[must_use]
    pub fn new(prefixes: &[&str]) -> Self {
        Self {
            prefixes: prefixes.iter().map(|&p| p.to_owned()).collect(),
            held: Mutex::default(),
        }
    }

    fn held(&self) -> MutexGuard<'_, BTreeMap<IpAddr, u8>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The decision: `subflow`, plus `backup` on a backup link.
    #[must_use]
    pub fn flags_for(&self, iface: &Interface) -> EndpointFlags {
        if self
            .prefixes
            .iter()
            .any(|p| iface.name.starts_with(p.as_str()))
        {
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP
        } else {
            EndpointFlags::SUBFLOW
        }
    }

    async fn added(&self, iface: &Interface, addr: IpAddr, pm: &dyn PathManager) {
        if self.held().contains_key(&addr) {
            return;
        }
        let id = match pm.address_id(addr) {
            Ok(id) => id,
            Err(e) => {
                warn!("no endpoint for {addr}: {}", Chain(&e));
                return;
            }
        };
        let endpoint = Endpoint {
            id,
            addr,
            port: None,
            flags: self.flags_for(iface),
            if_idx: i32::try_from(iface.index).ok(),
        };
        match pm.add_endpoint(endpoint).await {
            Ok(id) => {
                info!(id, %addr, iface = iface.name, flags = %endpoint.flags, "endpoint added");
                self.held().insert(addr, id);
            }
            Err(e) => {
                warn!("adding an endpoint for {addr}: {}", Chain(&e));
                pm.release_address_id(addr);
            }
        }
    }

    async fn deleted(&self, addr: IpAddr, pm: &dyn PathManager) {
        let Some(id) = self.held().remove(&addr) else {
            return;
        };
        if let Err(e) = pm.remove_endpoint(id).await {
            warn!("removing endpoint {id} ({addr}): {}", Chain(&e));
        }
        pm.release_address_id(addr);
    }
}

impl Plugin for BackupLinks {
    fn name(&self) -> &'static str {
        NAME
    }

    fn description(&self) -> &'static str {
        "an endpoint per address, backup on cellular links"
    }

    fn on_event<'a>(&'a self, event: &'a Event, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match event {
                Event::NewLocalAddress { iface, addr } => self.added(iface, *addr, pm).await,
                Event::DeleteLocalAddress { addr, .. } => self.deleted(*addr, pm).await,
                _ => {}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use mptcpd_plugin::{
        Endpoint, EndpointFlags, Event, Plugin as _,
        testing::{Call, RecordingPm, address_down, block_on},
    };

    use crate::BackupLinks;

    fn up(name: &str, index: u32, addr: &str) -> Event {
        let mut iface = mptcpd_plugin::testing::interface(index);
        iface.name = name.to_owned();
        Event::NewLocalAddress {
            iface,
            addr: addr.parse().unwrap(),
        }
    }

    fn endpoint(id: u8, addr: &str, flags: EndpointFlags, ifindex: i32) -> Endpoint {
        Endpoint {
            id,
            addr: addr.parse().unwrap(),
            port: None,
            flags,
            if_idx: Some(ifindex),
        }
    }

    #[test]
    fn cellular_links_get_backup_endpoints_the_others_plain_ones() {
        let pm = RecordingPm::new();
        let plugin = BackupLinks::new(&["wwan", "ppp"]);
        block_on(plugin.on_event(&up("eth0", 2, "192.0.2.1"), &pm));
        block_on(plugin.on_event(&up("wwan0", 3, "198.51.100.1"), &pm));
        block_on(plugin.on_event(&up("ppp0", 4, "2001:db8::1"), &pm));
        // Reported again: nothing new.
        block_on(plugin.on_event(&up("wwan0", 3, "198.51.100.1"), &pm));
        let backup = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
        assert_eq!(
            pm.take_calls(),
            [
                Call::AddEndpoint(endpoint(1, "192.0.2.1", EndpointFlags::SUBFLOW, 2)),
                Call::AddEndpoint(endpoint(2, "198.51.100.1", backup, 3)),
                Call::AddEndpoint(endpoint(3, "2001:db8::1", backup, 4)),
            ]
        );
        let gone: IpAddr = "198.51.100.1".parse().unwrap();
        block_on(plugin.on_event(&address_down(3, gone), &pm));
        assert_eq!(pm.take_calls(), [Call::RemoveEndpoint(2)]);
        assert_eq!(pm.endpoints().len(), 2);
    }
}
