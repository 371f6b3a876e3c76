//! Reading the daemon's connections over D-Bus (`docs/dbus.md`): the connection objects under
//! `org.mptcpd.Mptcpd`'s `ObjectManager`, with their subflows and figures.

use std::collections::HashMap;

use mptcpd_common::dbus::{
    BUS_NAME, CONNECTION_INTERFACE, CONNECTION_PATH_PREFIX, Judgement, MANAGER_PATH, Subflow,
};
use zbus::{
    fdo::{DBusProxy, ObjectManagerProxy},
    names::BusName,
    zvariant::OwnedValue,
};

/// Why the daemon's connections could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BusError {
    /// No system bus (or not the one `DBUS_SYSTEM_BUS_ADDRESS` names).
    #[error(
        "connecting to the system bus (is dbus running? DBUS_SYSTEM_BUS_ADDRESS names another)"
    )]
    Connect(#[source] zbus::Error),
    /// The bus is there, the daemon is not.
    #[error("mptcpd is not on the system bus ({BUS_NAME} has no owner): start mptcpd")]
    NoDaemon,
    /// The daemon answered with something else than its documented objects.
    #[error("reading mptcpd's connections over D-Bus")]
    Read(#[source] zbus::Error),
}

/// One connection as the daemon shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The object's number (`.../connection/N`), opaque but stable for the connection's life.
    pub(crate) number: u64,
    pub(crate) local: String,
    pub(crate) remote: String,
    pub(crate) server_side: bool,
    pub(crate) established: bool,
    pub(crate) subflows: Vec<Subflow>,
    /// The judged health of its subflows' local addresses, by address (empty from a daemon
    /// without `PathHealth`).
    pub(crate) path_health: HashMap<String, Judgement>,
}

/// A connection to the system bus.
pub(crate) async fn connect() -> Result<zbus::Connection, BusError> {
    zbus::Connection::system().await.map_err(BusError::Connect)
}

/// Every connection of the daemon, by object number.
pub(crate) async fn connections(bus: &zbus::Connection) -> Result<Vec<Listed>, BusError> {
    let name = BusName::from_static_str(BUS_NAME).map_err(|e| BusError::Read(e.into()))?;
    let owned = DBusProxy::new(bus)
        .await
        .map_err(BusError::Read)?
        .name_has_owner(name)
        .await
        .map_err(|e| BusError::Read(e.into()))?;
    if !owned {
        return Err(BusError::NoDaemon);
    }
    let objects = ObjectManagerProxy::new(bus, BUS_NAME, MANAGER_PATH)
        .await
        .map_err(BusError::Read)?
        .get_managed_objects()
        .await
        .map_err(|e| BusError::Read(e.into()))?;
    let mut listed: Vec<Listed> = objects
        .into_iter()
        .filter_map(|(path, mut interfaces)| {
            let number = path
                .as_str()
                .strip_prefix(CONNECTION_PATH_PREFIX)?
                .parse()
                .ok()?;
            let props = interfaces.remove(CONNECTION_INTERFACE)?;
            listed_from(number, &props)
        })
        .collect();
    listed.sort_by_key(|c| c.number);
    Ok(listed)
}

/// A connection from its properties; `None` if one is missing or of another type.
fn listed_from(number: u64, props: &HashMap<String, OwnedValue>) -> Option<Listed> {
    let get = |key: &str| props.get(key)?.try_clone().ok();
    Some(Listed {
        number,
        local: String::try_from(get("LocalAddress")?).ok()?,
        remote: String::try_from(get("RemoteAddress")?).ok()?,
        server_side: bool::try_from(get("ServerSide")?).ok()?,
        established: bool::try_from(get("Established")?).ok()?,
        subflows: Vec::<Subflow>::try_from(get("Subflows")?).ok()?,
        path_health: get("PathHealth")
            .and_then(|v| HashMap::<String, Judgement>::try_from(v).ok())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use mptcpd_common::dbus::Judgement;
    use zbus::zvariant::{OwnedValue, Value};

    use super::*;

    #[test]
    fn path_health_reads_back() {
        let map = HashMap::from([(
            "192.0.2.1".to_owned(),
            Judgement {
                state: "dead".into(),
                reason: "r; a".into(),
            },
        )]);
        let value = OwnedValue::try_from(Value::from(map.clone())).unwrap();
        let props = HashMap::from([
            (
                "LocalAddress".to_owned(),
                OwnedValue::from(zbus::zvariant::Str::from("a")),
            ),
            (
                "RemoteAddress".to_owned(),
                OwnedValue::from(zbus::zvariant::Str::from("b")),
            ),
            ("ServerSide".to_owned(), OwnedValue::from(false)),
            ("Established".to_owned(), OwnedValue::from(true)),
            (
                "Subflows".to_owned(),
                OwnedValue::try_from(Value::from(Vec::<Subflow>::new())).unwrap(),
            ),
            ("PathHealth".to_owned(), value),
        ]);
        assert_eq!(listed_from(1, &props).unwrap().path_health, map);
    }
}
