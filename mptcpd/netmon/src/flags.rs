//! The notify flags (`--notify-flags`, `notify-flags=`): which addresses the monitor reports.

use std::{fmt, str::FromStr};

bitflags::bitflags! {
    /// Address notification filters, with the C daemon's bit values
    /// (`MPTCPD_NOTIFY_FLAG_*`) and its comma-separated syntax:
    /// `existing,skip_link_local,skip_loopback,check_route`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct NotifyFlags: u32 {
        /// Report the addresses present at start-up too, not only later ones.
        const EXISTING = 1 << 0;
        /// Ignore link-local addresses (scope link, `fe80::/10`, `169.254.0.0/16`).
        const SKIP_LINK_LOCAL = 1 << 1;
        /// Ignore host-scope and loopback addresses, and the loopback interface.
        const SKIP_LOOPBACK = 1 << 2;
        /// Report an address only while a default route leaves through its interface.
        const CHECK_ROUTE = 1 << 3;
    }
}

/// The words of the C syntax, in the C daemon's order.
const WORDS: [(&str, NotifyFlags); 4] = [
    ("existing", NotifyFlags::EXISTING),
    ("skip_link_local", NotifyFlags::SKIP_LINK_LOCAL),
    ("skip_loopback", NotifyFlags::SKIP_LOOPBACK),
    ("check_route", NotifyFlags::CHECK_ROUTE),
];

/// A notify-flags list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyFlagsError {
    /// A word that is not a flag (the C daemon silently kept the flags before it).
    #[error(
        "unknown notify flag {word:?} (expected a comma-separated list of existing, \
         skip_link_local, skip_loopback, check_route)"
    )]
    Unknown {
        /// The offending word.
        word: String,
    },
    /// Two commas in a row, or a comma at either end.
    #[error("empty notify flag in {list:?}")]
    Empty {
        /// The whole list.
        list: String,
    },
}

impl FromStr for NotifyFlags {
    type Err = NotifyFlagsError;

    /// Parses `word[,word...]`; an empty (or all-blank) list means no flags. Blanks around a
    /// word are tolerated, unlike in the C daemon, because configuration files get them.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        if list.trim().is_empty() {
            return Ok(Self::empty());
        }
        list.split(',').try_fold(Self::empty(), |flags, word| {
            let word = word.trim();
            if word.is_empty() {
                return Err(NotifyFlagsError::Empty {
                    list: list.to_owned(),
                });
            }
            WORDS
                .iter()
                .find(|(name, _)| *name == word)
                .map(|&(_, flag)| flags | flag)
                .ok_or_else(|| NotifyFlagsError::Unknown {
                    word: word.to_owned(),
                })
        })
    }
}

impl fmt::Display for NotifyFlags {
    /// The C syntax, so that printing and parsing round-trip.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, flag) in WORDS {
            if self.contains(flag) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{NotifyFlags, NotifyFlagsError};

    #[test]
    fn parses_each_word_and_the_full_list() {
        assert_eq!("existing".parse(), Ok(NotifyFlags::EXISTING));
        assert_eq!("skip_link_local".parse(), Ok(NotifyFlags::SKIP_LINK_LOCAL));
        assert_eq!("skip_loopback".parse(), Ok(NotifyFlags::SKIP_LOOPBACK));
        assert_eq!("check_route".parse(), Ok(NotifyFlags::CHECK_ROUTE));
        assert_eq!(
            "existing,skip_link_local,skip_loopback,check_route".parse(),
            Ok(NotifyFlags::all())
        );
    }

    #[test]
    fn bits_match_the_c_daemon() {
        assert_eq!(NotifyFlags::EXISTING.bits(), 0x1);
        assert_eq!(NotifyFlags::SKIP_LINK_LOCAL.bits(), 0x2);
        assert_eq!(NotifyFlags::SKIP_LOOPBACK.bits(), 0x4);
        assert_eq!(NotifyFlags::CHECK_ROUTE.bits(), 0x8);
    }

    #[test]
    fn order_repeats_and_blanks_do_not_matter() {
        assert_eq!(
            "check_route, existing ,check_route".parse(),
            Ok(NotifyFlags::CHECK_ROUTE | NotifyFlags::EXISTING)
        );
        assert_eq!("".parse(), Ok(NotifyFlags::empty()));
        assert_eq!("  ".parse(), Ok(NotifyFlags::empty()));
    }

    #[test]
    fn unknown_words_are_errors_that_name_the_word() {
        let err = "existing,skip_loopbak".parse::<NotifyFlags>().unwrap_err();
        assert_eq!(
            err,
            NotifyFlagsError::Unknown {
                word: "skip_loopbak".to_owned()
            }
        );
        let message = err.to_string();
        assert!(message.contains("\"skip_loopbak\""), "{message}");
        assert!(message.contains("check_route"), "{message}");
        // Words are case-sensitive, as in the C daemon.
        assert!("EXISTING".parse::<NotifyFlags>().is_err());
    }

    #[test]
    fn empty_words_are_errors() {
        for list in ["existing,", ",existing", "existing,,check_route"] {
            assert_eq!(
                list.parse::<NotifyFlags>(),
                Err(NotifyFlagsError::Empty {
                    list: list.to_owned()
                }),
                "{list}"
            );
        }
    }

    #[test]
    fn display_round_trips() {
        for bits in 0..16 {
            let flags = NotifyFlags::from_bits_truncate(bits);
            assert_eq!(flags.to_string().parse(), Ok(flags), "{flags}");
        }
        assert_eq!(
            NotifyFlags::all().to_string(),
            "existing,skip_link_local,skip_loopback,check_route"
        );
        assert_eq!(NotifyFlags::empty().to_string(), "");
    }
}
