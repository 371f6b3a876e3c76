//! Who may change state over D-Bus: root and the members of the `dbus-group`. The bus policy
//! says so too; the daemon asks the bus for the caller's credentials
//! (`GetConnectionCredentials`) before acting all the same, so that a looser policy file
//! (or none) does not open the path manager to every local user.

use zbus::{fdo::DBusProxy, message::Header, names::BusName};

use super::errors::ControlError;

/// The group allowed besides root, as configured (`dbus-group`) and resolved at start.
#[derive(Debug, Clone)]
pub(crate) struct Allowed {
    /// The group's name, for the refusal's message.
    pub(crate) name: String,
    /// Its id; `None` when no such group exists (then only root may).
    pub(crate) gid: Option<u32>,
}

impl Allowed {
    /// `name`, resolved through the system's group database.
    pub(crate) fn group(name: &str) -> Self {
        let gid = match nix::unistd::Group::from_name(name) {
            Ok(Some(group)) => Some(group.gid.as_raw()),
            Ok(None) => {
                tracing::warn!(
                    "D-Bus: no group {name:?} (dbus-group): only root may call the control \
                     methods"
                );
                None
            }
            Err(e) => {
                tracing::warn!(
                    "D-Bus: looking up group {name:?} (dbus-group): {e}; only root may call \
                     the control methods"
                );
                None
            }
        };
        Self {
            name: name.to_owned(),
            gid,
        }
    }

    /// Whether a caller with these credentials may change state.
    pub(crate) fn permits(&self, uid: Option<u32>, gids: Option<&[u32]>) -> bool {
        uid == Some(0)
            || self
                .gid
                .is_some_and(|gid| gids.is_some_and(|gids| gids.contains(&gid)))
    }

    /// Refuses (`org.mptcpd.Error.AccessDenied`) a caller that [`Self::permits`] does not
    /// allow, or whose credentials the bus does not give; returns its uid.
    pub(crate) async fn check(
        &self,
        bus: &zbus::Connection,
        header: &Header<'_>,
    ) -> Result<u32, ControlError> {
        let denied = |why: String| ControlError::AccessDenied(why);
        let sender = header
            .sender()
            .ok_or_else(|| denied("the call has no sender to check".to_owned()))?;
        let credentials = DBusProxy::new(bus)
            .await?
            .get_connection_credentials(BusName::Unique(sender.clone()))
            .await
            .map_err(|e| denied(format!("the bus gave no credentials for {sender}: {e}")))?;
        let uid = credentials.unix_user_id();
        let gids = credentials.unix_group_ids().map(Vec::as_slice);
        if self.permits(uid, gids) {
            return Ok(uid.unwrap_or(0));
        }
        let who = uid.map_or_else(|| "unknown uid".to_owned(), |u| format!("uid {u}"));
        Err(denied(format!(
            "{who} may not change mptcpd's state: only root and members of group {:?} \
             (dbus-group) may",
            self.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::Allowed;

    #[test]
    fn root_and_members_of_the_group_only() {
        let group = Allowed {
            name: "mptcpd".to_owned(),
            gid: Some(990),
        };
        assert!(group.permits(Some(0), None));
        assert!(group.permits(Some(1000), Some(&[100, 990])));
        assert!(!group.permits(Some(1000), Some(&[100])));
        assert!(!group.permits(Some(1000), None), "no groups given: no");
        let none = Allowed {
            name: "mptcpd".to_owned(),
            gid: None,
        };
        assert!(none.permits(Some(0), None));
        assert!(
            !none.permits(Some(1000), Some(&[0, 990])),
            "gid 0 is not uid 0"
        );
        assert!(!none.permits(None, None));
    }
}
