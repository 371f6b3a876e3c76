//! Who may change state over D-Bus: root and the members of the `dbus-group`. The bus policy
//! says so too; the daemon asks the bus for the caller's credentials
//! (`GetConnectionCredentials`) before acting all the same, so that a looser policy file
//! (or none) does not open the path manager to every local user.

use zbus::{fdo::DBusProxy, message::Header, names::BusName};

use super::errors::ControlError;

/// The group allowed besides root, as configured (`dbus-group`); looked up at each call
/// from a caller other than root, so that a group created later counts.
#[derive(Debug, Clone)]
pub(crate) struct Allowed {
    /// The group's name.
    pub(crate) name: String,
}

/// The id of group `name`, if the system's group database has it.
fn gid_of(name: &str) -> Option<u32> {
    match nix::unistd::Group::from_name(name) {
        Ok(group) => group.map(|g| g.gid.as_raw()),
        Err(e) => {
            tracing::warn!("D-Bus: looking up group {name:?} (dbus-group): {e}");
            None
        }
    }
}

/// Whether a caller with these credentials may change state, `gid` being the allowed group's.
pub(crate) fn permits(uid: Option<u32>, gids: Option<&[u32]>, gid: Option<u32>) -> bool {
    uid == Some(0) || gid.is_some_and(|gid| gids.is_some_and(|gids| gids.contains(&gid)))
}

impl Allowed {
    /// Refuses (`org.mptcpd.Error.AccessDenied`) a caller that [`permits`] does not
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
        let gid = if uid == Some(0) {
            None
        } else {
            gid_of(&self.name)
        };
        if permits(uid, gids, gid) {
            return Ok(uid.unwrap_or(0));
        }
        let who = uid.map_or_else(|| "unknown uid".to_owned(), |u| format!("uid {u}"));
        let missing = if gid.is_none() {
            ", which does not exist"
        } else {
            ""
        };
        Err(denied(format!(
            "{who} may not change mptcpd's state: only root and members of group {:?} \
             (dbus-group{missing}) may",
            self.name
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::permits;

    #[test]
    fn root_and_members_of_the_group_only() {
        let group = Some(990);
        assert!(permits(Some(0), None, group));
        assert!(permits(Some(1000), Some(&[100, 990]), group));
        assert!(!permits(Some(1000), Some(&[100]), group));
        assert!(!permits(Some(1000), None, group), "no groups given: no");
        assert!(permits(Some(0), None, None));
        assert!(
            !permits(Some(1000), Some(&[0, 990]), None),
            "gid 0 is not uid 0"
        );
        assert!(!permits(None, None, None));
    }
}
