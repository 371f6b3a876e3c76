//! The named errors of `org.mptcpd.Control1` (`org.mptcpd.Error.*`), each carrying a message
//! (the kernel's own when the kernel refused), and how the kernel's refusals map onto them.

use mptcp_pm::PmError;
use mptcpd_common::Chain;

/// A refused or failed control call.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.mptcpd.Error")]
pub(crate) enum ControlError {
    /// The bus itself failed (zbus's own errors).
    #[zbus(error)]
    ZBus(zbus::Error),
    /// The caller is neither root nor in the `dbus-group`.
    AccessDenied(String),
    /// The endpoint (address, or id) exists already.
    Exists(String),
    /// No room: the kernel's endpoint limit, or every address id taken.
    NoRoom(String),
    /// No such endpoint.
    NotFound(String),
    /// A bad argument: the daemon's check or the kernel's (`EINVAL`).
    InvalidArgument(String),
    /// Any other refusal or failure of the kernel.
    Kernel(String),
    /// An external path manager asked under a path manager that does not take one (the
    /// in-kernel one).
    WrongPathManager(String),
    /// A registered external path manager named a connection it does not handle.
    NotHeld(String),
}

impl From<PmError> for ControlError {
    fn from(e: PmError) -> Self {
        let text = Chain(&e).to_string();
        if e.is_exists() || e.is_id_taken() {
            Self::Exists(text)
        } else if e.is_no_room() || matches!(e, PmError::IdsExhausted) {
            Self::NoRoom(text)
        } else if e.is_not_found() {
            Self::NotFound(text)
        } else if e.is_invalid() || matches!(e, PmError::ZeroId) {
            Self::InvalidArgument(text)
        } else {
            Self::Kernel(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use mptcp_pm::errno;
    use zbus::DBusError as _;

    use super::*;

    #[test]
    fn the_kernels_refusals_become_named_errors_with_its_message() {
        let cases = [
            (PmError::kernel(errno::EEXIST, None), "Exists"),
            (PmError::kernel(errno::EBUSY, Some("busy")), "Exists"),
            (PmError::kernel(errno::ERANGE, None), "NoRoom"),
            (PmError::IdsExhausted, "NoRoom"),
            (
                PmError::kernel(errno::EINVAL, Some("address not found")),
                "NotFound",
            ),
            (
                PmError::kernel(errno::EINVAL, Some("invalid token")),
                "InvalidArgument",
            ),
            (PmError::ZeroId, "InvalidArgument"),
            (PmError::kernel(1, Some("not permitted")), "Kernel"),
            (PmError::Closed, "Kernel"),
        ];
        for (error, name) in cases {
            let message = Chain(&error).to_string();
            let mapped = ControlError::from(error);
            assert_eq!(
                mapped.name().as_str(),
                format!("org.mptcpd.Error.{name}"),
                "{message}"
            );
            assert_eq!(mapped.description(), Some(message.as_str()));
        }
    }
}
