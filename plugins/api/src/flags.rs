//! Endpoint flags (`MPTCP_PM_ADDR_FLAG_*`), as plugins and `--addr-flags` see them.

use std::{fmt, ops, str::FromStr};

/// `MPTCP_PM_ADDR_FLAG_*`: what an endpoint or announced address is used for. Unknown bits
/// are kept.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct EndpointFlags(u32);

const NAMES: [(EndpointFlags, &str); 6] = [
    (EndpointFlags::SIGNAL, "signal"),
    (EndpointFlags::SUBFLOW, "subflow"),
    (EndpointFlags::BACKUP, "backup"),
    (EndpointFlags::FULLMESH, "fullmesh"),
    (EndpointFlags::IMPLICIT, "implicit"),
    (EndpointFlags::LAMINAR, "laminar"),
];

impl EndpointFlags {
    /// Announce the address to peers (`ADD_ADDR`).
    pub const SIGNAL: Self = Self(1);
    /// Open subflows from the address.
    pub const SUBFLOW: Self = Self(1 << 1);
    /// Subflows from the address are backup subflows.
    pub const BACKUP: Self = Self(1 << 2);
    /// A subflow to every known peer address.
    pub const FULLMESH: Self = Self(1 << 3);
    /// Set by the kernel on endpoints it made itself; cannot be requested.
    pub const IMPLICIT: Self = Self(1 << 4);
    /// Use once as source when reacting to a received `ADD_ADDR` (Linux 6.18).
    pub const LAMINAR: Self = Self(1 << 5);

    /// No flag.
    #[must_use]
    pub const fn empty() -> Self {
        Self(0)
    }

    /// The bits as on the wire.
    #[must_use]
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Every bit as given.
    #[must_use]
    pub const fn from_bits_retain(bits: u32) -> Self {
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
}

impl ops::BitOr for EndpointFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for EndpointFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl ops::Sub for EndpointFlags {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        Self(self.0 & !rhs.0)
    }
}

/// Names as `--addr-flags` spells them, comma separated; unknown bits in hex.
impl fmt::Display for EndpointFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut rest = self.0;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = ",";
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            write!(f, "{sep}{rest:#x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EndpointFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndpointFlags({:#x}: {self})", self.0)
    }
}

/// A word of an `--addr-flags` list that is not a flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown address flag {0:?} (expected a comma-separated list of subflow, signal, backup, fullmesh)"
)]
pub struct FlagsError(pub String);

/// Parses `--addr-flags` syntax: `subflow,signal,backup,fullmesh` in any order; empty = none.
impl FromStr for EndpointFlags {
    type Err = FlagsError;

    fn from_str(s: &str) -> Result<Self, FlagsError> {
        let mut flags = Self::empty();
        if s.is_empty() {
            return Ok(flags);
        }
        for word in s.split(',') {
            let flag = match word {
                "signal" => Self::SIGNAL,
                "subflow" => Self::SUBFLOW,
                "backup" => Self::BACKUP,
                "fullmesh" => Self::FULLMESH,
                other => return Err(FlagsError(other.to_owned())),
            };
            flags |= flag;
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests {
    use super::EndpointFlags;

    #[test]
    fn parse_and_print() {
        let f: EndpointFlags = "subflow,backup".parse().unwrap();
        assert_eq!(f, EndpointFlags::SUBFLOW | EndpointFlags::BACKUP);
        assert_eq!(f.to_string(), "subflow,backup");
        assert_eq!(f.bits(), 6);
        assert_eq!("".parse::<EndpointFlags>(), Ok(EndpointFlags::empty()));
        assert!("subflow,bogus".parse::<EndpointFlags>().is_err());
        assert!("subflow,".parse::<EndpointFlags>().is_err());
        assert_eq!(
            EndpointFlags::from_bits_retain(0x41).to_string(),
            "signal,0x40"
        );
        assert_eq!(f - EndpointFlags::BACKUP, EndpointFlags::SUBFLOW);
    }
}
