//! Flag sets: endpoint flags (`MPTCP_PM_ADDR_FLAG_*`) and event flags (`MPTCP_PM_EV_FLAG_*`).
//!
//! Unknown bits are kept (`from_bits_retain`), so that a value read from a newer kernel is
//! written back unchanged. Both print as their lower-case names, comma separated, unknown bits
//! in hex; endpoint flags parse from the same syntax (`--addr-flags`, `mptcpctl`).

use std::{fmt, str::FromStr};

use bitflags::Flags;

bitflags::bitflags! {
    /// `MPTCP_PM_ADDR_FLAG_*`: what an endpoint (or a userspace-PM local address) is used for.
    ///
    /// Text form: `subflow,signal,backup,fullmesh,laminar` in any order, empty for none.
    #[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct EndpointFlags: u32 {
        /// Announce the address to peers (`ADD_ADDR`).
        const SIGNAL = 1 << 0;
        /// Open subflows from the address to the peer's initial address.
        const SUBFLOW = 1 << 1;
        /// Subflows from the address are backup subflows.
        const BACKUP = 1 << 2;
        /// Open a subflow to every known peer address (needs `SUBFLOW`, not `SIGNAL`).
        const FULLMESH = 1 << 3;
        /// Set by the kernel on endpoints it created itself; cannot be requested.
        const IMPLICIT = 1 << 4;
        /// Use once as source when reacting to a received `ADD_ADDR` (Linux 6.18).
        const LAMINAR = 1 << 5;
    }
}

bitflags::bitflags! {
    /// `MPTCP_PM_EV_FLAG_*`, carried by connection events in `MPTCP_ATTR_FLAGS`.
    #[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
    pub struct EventFlags: u16 {
        /// The peer forbids joins to its initial address and port.
        const DENY_JOIN_ID0 = 1 << 0;
        /// This side accepted the connection.
        const SERVER_SIDE = 1 << 1;
    }
}

/// Writes the names of the set flags in lower case, comma separated, then unknown bits in hex.
fn write_names<F>(flags: &F, f: &mut fmt::Formatter<'_>) -> fmt::Result
where
    F: Flags,
    F::Bits: Into<u32>,
{
    let mut sep = "";
    for (name, _) in flags.iter_names() {
        write!(f, "{sep}{}", name.to_ascii_lowercase())?;
        sep = ",";
    }
    let unknown = flags.bits().into() & !F::all().bits().into();
    if unknown != 0 {
        write!(f, "{sep}{unknown:#x}")?;
    }
    Ok(())
}

/// `{:?}`: the bits and the names.
fn debug_names<F>(flags: &F, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result
where
    F: Flags + fmt::Display,
    F::Bits: Into<u32>,
{
    write!(f, "{name}({:#x}: {flags})", flags.bits().into())
}

impl fmt::Display for EndpointFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_names(self, f)
    }
}

impl fmt::Debug for EndpointFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_names(self, "EndpointFlags", f)
    }
}

impl fmt::Display for EventFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_names(self, f)
    }
}

impl fmt::Debug for EventFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_names(self, "EventFlags", f)
    }
}

/// The words [`EndpointFlags::from_str`] takes.
const VALID_WORDS: &str = "signal, subflow, backup, fullmesh, laminar";

/// An endpoint-flags list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagsError {
    /// A word that is not a flag (the C daemon silently kept the flags before it).
    #[error("unknown address flag {word:?} (expected a comma-separated list of {VALID_WORDS})")]
    Unknown {
        /// The offending word.
        word: String,
    },
    /// Two commas in a row, or a comma at either end.
    #[error("empty address flag in {list:?} (expected a comma-separated list of {VALID_WORDS})")]
    Empty {
        /// The whole list.
        list: String,
    },
    /// `implicit` is the kernel's mark on endpoints it made itself.
    #[error("address flag \"implicit\" is set by the kernel only (expected {VALID_WORDS})")]
    Implicit,
    /// The kernel refuses every endpoint with both (the C daemon only says so in a comment).
    #[error("address flags signal and fullmesh cannot be combined (the kernel refuses them)")]
    SignalWithFullmesh,
}

impl EndpointFlags {
    /// Reads back whatever `Display` wrote, `implicit` and unknown bits (`0x100`) included,
    /// without judging the combination (a record of what the kernel holds, not a request).
    pub fn from_text(list: &str) -> Result<Self, FlagsError> {
        parse_words(list, true)
    }
}

/// `word[,word...]`, blanks around a word tolerated; `hex`: unknown bits as `0x...` words.
fn parse_words(list: &str, hex: bool) -> Result<EndpointFlags, FlagsError> {
    if list.trim().is_empty() {
        return Ok(EndpointFlags::empty());
    }
    list.split(',')
        .try_fold(EndpointFlags::empty(), |flags, word| {
            let word = word.trim();
            if word.is_empty() {
                return Err(FlagsError::Empty {
                    list: list.to_owned(),
                });
            }
            let named = EndpointFlags::FLAGS
                .iter()
                .find(|flag| flag.name().to_ascii_lowercase() == word)
                .map(|flag| *flag.value());
            let bits = || {
                let digits = word.strip_prefix("0x").filter(|_| hex)?;
                u32::from_str_radix(digits, 16)
                    .ok()
                    .map(EndpointFlags::from_bits_retain)
            };
            let flag = named.or_else(bits).ok_or_else(|| FlagsError::Unknown {
                word: word.to_owned(),
            })?;
            Ok(flags | flag)
        })
}

/// Parses `word[,word...]` (`--addr-flags`, `addr-flags=`, `mptcpctl`): an empty list means no
/// flags; blanks around a word are tolerated; case matters, as in the C daemon. Only what can
/// be asked for: no `implicit`, no unknown bits, not `signal` with `fullmesh`.
impl FromStr for EndpointFlags {
    type Err = FlagsError;

    fn from_str(list: &str) -> Result<Self, FlagsError> {
        let flags = parse_words(list, false)?;
        if flags.contains(Self::IMPLICIT) {
            return Err(FlagsError::Implicit);
        }
        if flags.contains(Self::SIGNAL | Self::FULLMESH) {
            return Err(FlagsError::SignalWithFullmesh);
        }
        Ok(flags)
    }
}

#[cfg(test)]
mod tests;
