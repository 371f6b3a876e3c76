//! The address flags (`--addr-flags`, `addr-flags=`): what plugins that drive the in-kernel path
//! manager ask for when they add an endpoint.

use std::{fmt, str::FromStr};

use mptcp_pm::wire::EndpointFlags;

bitflags::bitflags! {
    /// Endpoint flags a user may configure, with the kernel's bit values
    /// (`MPTCP_PM_ADDR_FLAG_*`, as the C daemon's `MPTCPD_ADDR_FLAG_*`) and the C syntax:
    /// `subflow,signal,backup,fullmesh`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AddrFlags: u32 {
        /// Announce the address to peers (`ADD_ADDR`).
        const SIGNAL = EndpointFlags::SIGNAL.bits();
        /// Open subflows from the address.
        const SUBFLOW = EndpointFlags::SUBFLOW.bits();
        /// Subflows from the address are backups.
        const BACKUP = EndpointFlags::BACKUP.bits();
        /// A subflow to every known peer address (with `subflow`, never with `signal`).
        const FULLMESH = EndpointFlags::FULLMESH.bits();
    }
}

/// The words of the C syntax, in bit order.
const WORDS: [(&str, AddrFlags); 4] = [
    ("signal", AddrFlags::SIGNAL),
    ("subflow", AddrFlags::SUBFLOW),
    ("backup", AddrFlags::BACKUP),
    ("fullmesh", AddrFlags::FULLMESH),
];

impl From<AddrFlags> for EndpointFlags {
    fn from(flags: AddrFlags) -> Self {
        Self::from_bits_retain(flags.bits())
    }
}

/// An address-flags list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrFlagsError {
    /// A word that is not a flag (the C daemon silently kept the flags before it).
    #[error(
        "unknown address flag {word:?} (expected a comma-separated list of subflow, signal, \
         backup, fullmesh)"
    )]
    Unknown {
        /// The offending word.
        word: String,
    },
    /// Two commas in a row, or a comma at either end.
    #[error("empty address flag in {list:?}")]
    Empty {
        /// The whole list.
        list: String,
    },
    /// The kernel refuses every endpoint with both (the C daemon only says so in a comment).
    #[error("address flags signal and fullmesh cannot be combined (the kernel refuses them)")]
    SignalWithFullmesh,
}

impl FromStr for AddrFlags {
    type Err = AddrFlagsError;

    /// Parses `word[,word...]`; an empty list means no flags. Blanks around a word are
    /// tolerated, as for the notify flags.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        if list.trim().is_empty() {
            return Ok(Self::empty());
        }
        let flags = list.split(',').try_fold(Self::empty(), |flags, word| {
            let word = word.trim();
            if word.is_empty() {
                return Err(AddrFlagsError::Empty {
                    list: list.to_owned(),
                });
            }
            WORDS
                .iter()
                .find(|(name, _)| *name == word)
                .map(|&(_, flag)| flags | flag)
                .ok_or_else(|| AddrFlagsError::Unknown {
                    word: word.to_owned(),
                })
        })?;
        if flags.contains(Self::SIGNAL | Self::FULLMESH) {
            return Err(AddrFlagsError::SignalWithFullmesh);
        }
        Ok(flags)
    }
}

impl fmt::Display for AddrFlags {
    /// The C syntax, so that printing and parsing round-trip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (name, flag) in WORDS {
            if self.contains(flag) {
                write!(f, "{sep}{name}")?;
                sep = ",";
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{AddrFlags, AddrFlagsError};
    use mptcp_pm::wire::EndpointFlags;

    #[test]
    fn bits_are_the_kernel_endpoint_flags() {
        let pairs = [
            (AddrFlags::SIGNAL, EndpointFlags::SIGNAL, 0x1),
            (AddrFlags::SUBFLOW, EndpointFlags::SUBFLOW, 0x2),
            (AddrFlags::BACKUP, EndpointFlags::BACKUP, 0x4),
            (AddrFlags::FULLMESH, EndpointFlags::FULLMESH, 0x8),
        ];
        for (addr, endpoint, bits) in pairs {
            assert_eq!(addr.bits(), bits);
            assert_eq!(EndpointFlags::from(addr), endpoint);
        }
        assert_eq!(
            EndpointFlags::from(AddrFlags::SUBFLOW | AddrFlags::BACKUP),
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP
        );
    }

    #[test]
    fn parses_words_in_any_order() {
        assert_eq!("subflow".parse(), Ok(AddrFlags::SUBFLOW));
        assert_eq!(
            "fullmesh, backup,subflow".parse(),
            Ok(AddrFlags::FULLMESH | AddrFlags::BACKUP | AddrFlags::SUBFLOW)
        );
        assert_eq!(
            "signal,backup".parse(),
            Ok(AddrFlags::SIGNAL | AddrFlags::BACKUP)
        );
        assert_eq!("".parse(), Ok(AddrFlags::empty()));
    }

    #[test]
    fn errors_name_the_problem() {
        assert_eq!(
            "subflow,bakup".parse::<AddrFlags>(),
            Err(AddrFlagsError::Unknown {
                word: "bakup".to_owned()
            })
        );
        assert_eq!(
            "subflow,".parse::<AddrFlags>(),
            Err(AddrFlagsError::Empty {
                list: "subflow,".to_owned()
            })
        );
        assert_eq!(
            "signal,fullmesh".parse::<AddrFlags>(),
            Err(AddrFlagsError::SignalWithFullmesh)
        );
        // Case matters, as in the C daemon.
        assert!("SUBFLOW".parse::<AddrFlags>().is_err());
    }

    #[test]
    fn display_round_trips() {
        for bits in 0..16 {
            let flags = AddrFlags::from_bits_truncate(bits);
            if flags.contains(AddrFlags::SIGNAL | AddrFlags::FULLMESH) {
                continue;
            }
            assert_eq!(flags.to_string().parse(), Ok(flags), "{flags}");
        }
        assert_eq!(
            (AddrFlags::SUBFLOW | AddrFlags::FULLMESH).to_string(),
            "subflow,fullmesh"
        );
    }
}
