//! Why the configuration could not be loaded. Every message is one line that names the file
//! (and line and key) or directory at fault.

use std::{io, path::PathBuf};

/// A configuration that cannot be used. Command-line syntax errors are clap's (exit 64); these
/// come from the file and the directories it names (exit 1, as the C daemon's).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be opened or read (a missing default file is not an error).
    #[error("config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// Anyone may write the file: whoever does could choose the plugins the daemon runs.
    #[error("config file {} is world-writable: refused (chmod o-w it)", path.display())]
    WorldWritable {
        /// The file.
        path: PathBuf,
    },
    /// A symbolic link: the file read must be the file checked (regular, not world-writable).
    #[error("config file {} is a symbolic link: refused (name the file it points to)", path.display())]
    SymbolicLink {
        /// The link.
        path: PathBuf,
    },
    /// A directory, device or pipe where the file should be.
    #[error("config file {} is not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
    },
    /// A line of the file is wrong.
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: LineProblem,
    },
    /// The plugin directory cannot be trusted.
    #[error("plugin directory {}: {problem}", path.display())]
    PluginDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: PluginDirProblem,
    },
}

/// What is wrong with one line of the config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineProblem {
    /// Neither a comment, a `[group]` nor `key=value`.
    #[error("expected [group], key=value or a # comment")]
    Syntax,
    /// `key=value` before the first `[group]`.
    #[error("key {0:?} outside a [group]")]
    Ungrouped(String),
    /// A key the daemon does not know (the C daemon ignores those silently).
    #[error("unknown key {key:?} in [{section}]")]
    UnknownKey {
        /// The section it is in.
        section: String,
        /// The key.
        key: String,
    },
    /// A key of another section (`health-hold` in `[core]`: `hold` in `[health]`).
    #[error("key {key:?} belongs in [{section}] as {new_key:?}")]
    Moved {
        /// The key as given.
        key: String,
        /// Where it belongs.
        section: &'static str,
        /// Its name there.
        new_key: &'static str,
    },
    /// A section whose name is wrong (`[interface PATTERN]` with a bad pattern).
    #[error("section [{section}]: {message}")]
    BadSection {
        /// The section's name.
        section: String,
        /// What is wrong with it.
        message: String,
    },
    /// A key without a value, where a value is needed.
    #[error("key {0:?}: empty value")]
    EmptyValue(String),
    /// A value the key does not take (the C daemon ignores some of those silently).
    #[error("key {key:?}: {message}")]
    BadValue {
        /// The key.
        key: String,
        /// Why the value is refused.
        message: String,
    },
}

/// What is wrong with the plugin directory.
#[derive(Debug, thiserror::Error)]
pub enum PluginDirProblem {
    /// Anyone may put a plugin there.
    #[error("world-writable: refused (chmod o-w it)")]
    WorldWritable,
    /// Something else is at that path.
    #[error("not a directory")]
    NotDirectory,
    /// It could not be examined.
    #[error(transparent)]
    Io(io::Error),
}
