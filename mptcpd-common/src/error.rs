//! How an error is shown to a user or in a log: the whole chain on one line.
//!
//! The convention (docs/architecture.md, "Errors and logs"): mptcpd's own error types expose
//! their cause with `#[source]`/`#[from]` and never print it in their own message; [`Chain`]
//! prints `outer: inner: innermost` wherever a user or a log sees an error.

use core::{error::Error, fmt};

/// Displays an error and its sources on one line: `outer: inner: innermost`.
///
/// One rule for foreign errors: some of aya's errors both print their source in their message
/// and expose it (`MapError` as "map error: {0}", `ProgramError` as "program error: {0}"),
/// so a source whose text its own error's message already contains is not printed again (its
/// own sources still are). Our error types never print a source they expose (a test in
/// xtask checks), so the rule changes nothing for them.
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said = self.0.to_string();
        f.write_str(&said)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            let text = err.to_string();
            if !said.contains(&text) {
                write!(f, ": {text}")?;
            }
            said = text;
            source = err.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;
    use std::{error::Error, fmt, io};

    /// An error of ours: exposes its cause, does not print it.
    #[derive(Debug)]
    struct Ours(io::Error);
    impl fmt::Display for Ours {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("opening the socket")
        }
    }
    impl Error for Ours {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    /// A foreign error that prints and exposes its cause (as some of aya's do).
    #[derive(Debug)]
    struct Both(Ours);
    impl fmt::Display for Both {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "map error: {}", self.0)
        }
    }
    impl Error for Both {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn prints_every_source_once() {
        let denied = || io::Error::from(io::ErrorKind::PermissionDenied);
        let denied_text = denied().to_string();
        assert_eq!(
            Chain(&Ours(denied())).to_string(),
            format!("opening the socket: {denied_text}")
        );
        assert_eq!(
            Chain(&Both(Ours(denied()))).to_string(),
            format!("map error: opening the socket: {denied_text}")
        );
        assert_eq!(Chain(&denied()).to_string(), denied_text);
    }
}
