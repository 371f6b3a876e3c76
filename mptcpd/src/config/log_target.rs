//! Where the daemon logs (`-l/--log`, `log=`).

use std::{fmt, os::fd::AsFd as _, os::unix::fs::MetadataExt as _, str::FromStr};

use clap::ValueEnum;

/// Log destinations, with the C daemon's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum LogTarget {
    /// Standard error.
    Stderr,
    /// The system logger, through `/dev/log`.
    Syslog,
    /// The systemd journal, natively.
    Journal,
    /// Nowhere.
    Null,
}

impl LogTarget {
    /// The C daemon's words, for messages and parsing.
    const WORDS: [(&str, Self); 4] = [
        ("stderr", Self::Stderr),
        ("syslog", Self::Syslog),
        ("journal", Self::Journal),
        ("null", Self::Null),
    ];

    /// Without `--log` or `log=`: the journal when systemd connected stderr to it, else stderr.
    #[must_use]
    pub(crate) fn platform_default() -> Self {
        if stderr_is_journal() {
            Self::Journal
        } else {
            Self::Stderr
        }
    }
}

/// A `log=` value that is not a log target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log target {0:?} (expected stderr, syslog, journal or null)")]
pub struct LogTargetError(pub String);

impl FromStr for LogTarget {
    type Err = LogTargetError;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        Self::WORDS
            .iter()
            .find(|(name, _)| *name == word)
            .map(|&(_, target)| target)
            .ok_or_else(|| LogTargetError(word.to_owned()))
    }
}

impl fmt::Display for LogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = Self::WORDS
            .iter()
            .find(|(_, target)| target == self)
            .map_or("?", |(name, _)| name);
        f.write_str(word)
    }
}

/// systemd connects stderr to the journal and says so in `JOURNAL_STREAM` (`DEV:INODE`).
fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stderr) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(stderr).metadata() else {
        return false;
    };
    stream.to_str() == Some(&format!("{}:{}", meta.dev(), meta.ino()))
}

#[cfg(test)]
mod tests {
    use super::{LogTarget, LogTargetError};

    #[test]
    fn words_round_trip_and_unknown_ones_are_named() {
        for (word, target) in LogTarget::WORDS {
            assert_eq!(word.parse(), Ok(target));
            assert_eq!(target.to_string(), word);
        }
        assert_eq!(
            "Journal".parse::<LogTarget>(),
            Err(LogTargetError("Journal".to_owned()))
        );
        let message = "x".parse::<LogTarget>().unwrap_err().to_string();
        assert!(
            message.contains("\"x\"") && message.contains("syslog"),
            "{message}"
        );
    }
}
