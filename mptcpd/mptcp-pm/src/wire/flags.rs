//! Flag sets: endpoint flags (`MPTCP_PM_ADDR_FLAG_*`) and event flags (`MPTCP_PM_EV_FLAG_*`).
//!
//! Unknown bits are kept, so that a value read from a newer kernel is written back unchanged.

use std::{fmt, ops};

/// Defines a flag-set newtype over an unsigned integer with named bits.
macro_rules! flag_set {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $($(#[$fmeta:meta])* $flag:ident = $bit:expr, $text:literal;)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
        pub struct $name($repr);

        impl $name {
            $($(#[$fmeta])* pub const $flag: Self = Self($bit);)+
            /// Every bit this crate has a name for.
            pub const KNOWN: Self = Self(0 $(| $bit)+);
            const NAMES: &[(Self, &str)] = &[$((Self::$flag, $text)),+];

            /// No flag set.
            #[must_use]
            pub const fn empty() -> Self {
                Self(0)
            }

            /// The value as sent on the wire, unknown bits included.
            #[must_use]
            pub const fn bits(self) -> $repr {
                self.0
            }

            /// Takes every bit as is, unknown ones included.
            #[must_use]
            pub const fn from_bits_retain(bits: $repr) -> Self {
                Self(bits)
            }

            /// Whether every bit of `other` is set.
            #[must_use]
            pub const fn contains(self, other: Self) -> bool {
                self.0 & other.0 == other.0
            }

            /// Whether no bit is set.
            #[must_use]
            pub const fn is_empty(self) -> bool {
                self.0 == 0
            }

            /// Bits this crate has no name for.
            #[must_use]
            pub const fn unknown(self) -> $repr {
                self.0 & !Self::KNOWN.0
            }
        }

        impl ops::BitOr for $name {
            type Output = Self;
            fn bitor(self, rhs: Self) -> Self {
                Self(self.0 | rhs.0)
            }
        }

        impl ops::BitOrAssign for $name {
            fn bitor_assign(&mut self, rhs: Self) {
                self.0 |= rhs.0;
            }
        }

        impl ops::BitAnd for $name {
            type Output = Self;
            fn bitand(self, rhs: Self) -> Self {
                Self(self.0 & rhs.0)
            }
        }

        impl ops::Sub for $name {
            type Output = Self;
            fn sub(self, rhs: Self) -> Self {
                Self(self.0 & !rhs.0)
            }
        }

        /// Names as `ip mptcp` prints them, space separated; unknown bits in hex.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut sep = "";
                for (flag, text) in Self::NAMES {
                    if self.contains(*flag) {
                        write!(f, "{sep}{text}")?;
                        sep = " ";
                    }
                }
                if self.unknown() != 0 {
                    write!(f, "{sep}{:#x}", self.unknown())?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:#x}: {self})", stringify!($name), self.0)
            }
        }
    };
}

flag_set! {
    /// `MPTCP_PM_ADDR_FLAG_*`: what an endpoint (or a userspace-PM local address) is used for.
    EndpointFlags(u32) {
        /// Announce the address to peers (`ADD_ADDR`).
        SIGNAL = 1 << 0, "signal";
        /// Open subflows from the address to the peer's initial address.
        SUBFLOW = 1 << 1, "subflow";
        /// Subflows from the address are backup subflows.
        BACKUP = 1 << 2, "backup";
        /// Open a subflow to every known peer address (needs `SUBFLOW`, not `SIGNAL`).
        FULLMESH = 1 << 3, "fullmesh";
        /// Set by the kernel on endpoints it created itself; cannot be requested.
        IMPLICIT = 1 << 4, "implicit";
        /// Use once as source when reacting to a received `ADD_ADDR` (Linux 6.18).
        LAMINAR = 1 << 5, "laminar";
    }
}

flag_set! {
    /// `MPTCP_PM_EV_FLAG_*`, carried by connection events in `MPTCP_ATTR_FLAGS`.
    EventFlags(u16) {
        /// The peer forbids joins to its initial address and port.
        DENY_JOIN_ID0 = 1 << 0, "deny_join_id0";
        /// This side accepted the connection.
        SERVER_SIDE = 1 << 1, "server_side";
    }
}

#[cfg(test)]
mod tests {
    use super::{EndpointFlags, EventFlags};

    #[test]
    fn endpoint_flags_match_the_uapi_values() {
        let all = [
            (EndpointFlags::SIGNAL, 0x01),
            (EndpointFlags::SUBFLOW, 0x02),
            (EndpointFlags::BACKUP, 0x04),
            (EndpointFlags::FULLMESH, 0x08),
            (EndpointFlags::IMPLICIT, 0x10),
            (EndpointFlags::LAMINAR, 0x20),
        ];
        for (flag, bits) in all {
            assert_eq!(flag.bits(), bits);
        }
        assert_eq!(EndpointFlags::KNOWN.bits(), 0x3f);
        assert_eq!(EventFlags::DENY_JOIN_ID0.bits(), 1);
        assert_eq!(EventFlags::SERVER_SIDE.bits(), 2);
    }

    #[test]
    fn set_operations_and_unknown_bits() {
        let f = EndpointFlags::SUBFLOW | EndpointFlags::BACKUP;
        assert!(f.contains(EndpointFlags::BACKUP));
        assert!(!f.contains(EndpointFlags::SIGNAL | EndpointFlags::BACKUP));
        assert_eq!(f - EndpointFlags::BACKUP, EndpointFlags::SUBFLOW);
        assert_eq!(f & EndpointFlags::BACKUP, EndpointFlags::BACKUP);
        let odd = EndpointFlags::from_bits_retain(0x102);
        assert_eq!(odd.unknown(), 0x100);
        assert_eq!(odd.bits(), 0x102);
        assert_eq!(odd.to_string(), "subflow 0x100");
        assert_eq!(format!("{f}"), "subflow backup");
        assert_eq!(
            format!("{:?}", EventFlags::SERVER_SIDE),
            "EventFlags(0x2: server_side)"
        );
        assert!(EndpointFlags::empty().is_empty());
    }
}
