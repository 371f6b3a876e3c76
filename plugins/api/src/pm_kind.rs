//! Which path manager handles the connections of a network namespace.

use std::fmt;

/// The kernel's path manager for new connections of the daemon's network namespace
/// ([`crate::PathManager::pm_kind`]). The kernel latches it per connection when the
/// connection is created, so a plugin reads it when it first hears of a connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum PmKind {
    /// The in-kernel path manager: endpoints (`ADD_ADDR`, `SET_FLAGS` by id).
    #[default]
    Kernel,
    /// The userspace path manager: per-connection commands (`SUBFLOW_CREATE`, `SET_FLAGS`
    /// with a token, ...).
    Userspace,
    /// Another one registered with the kernel (`net.mptcp.path_manager`, 6.15+: e.g. a BPF
    /// path manager): neither kind of command applies.
    Other,
}

impl PmKind {
    /// From the namespace's sysctls, as read (`None`: the file is absent): the string
    /// `net.mptcp.path_manager` (6.15+) wins; else `net.mptcp.pm_type` (5.19+: 0 kernel, 1
    /// userspace); neither: the in-kernel one, the only one before 5.19.
    #[must_use]
    pub fn from_sysctls(path_manager: Option<&str>, pm_type: Option<&str>) -> Self {
        // `pm_type` in the newer sysctl's words; absent: the only path manager there was.
        let name = match (path_manager, pm_type.map(str::trim)) {
            (Some(name), _) => name.trim(),
            (None, Some("0") | None) => "kernel",
            (None, Some("1")) => "userspace",
            (None, Some(_)) => "",
        };
        match name {
            "kernel" => Self::Kernel,
            "userspace" => Self::Userspace,
            _ => Self::Other,
        }
    }

    /// The lower-case name (`kernel`, `userspace`, `other`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Kernel => "kernel",
            Self::Userspace => "userspace",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for PmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::PmKind;

    #[test]
    fn the_newer_sysctl_wins_and_absence_means_the_in_kernel_one() {
        let cases = [
            (Some("userspace\n"), Some("0"), PmKind::Userspace),
            (Some("kernel\n"), Some("1"), PmKind::Kernel),
            (Some("bpf_pm\n"), Some("0"), PmKind::Other),
            (None, Some("1\n"), PmKind::Userspace),
            (None, Some("0\n"), PmKind::Kernel),
            (None, Some("7"), PmKind::Other),
            (None, None, PmKind::Kernel),
        ];
        for (path_manager, pm_type, kind) in cases {
            assert_eq!(
                PmKind::from_sysctls(path_manager, pm_type),
                kind,
                "{path_manager:?} {pm_type:?}"
            );
        }
    }
}
