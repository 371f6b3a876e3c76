//! The state file: which endpoints this daemon added, for its next start in the same network
//! namespace. Versioned, human-readable, one fact a line:
//!
//! ```text
//! # mptcpd: endpoints this daemon added (state id address port flags ifindex origin)
//! version 3
//! boot-id 0d5c2b0e-7a4b-4c3e-9d8e-3f1b2a4c5d6e
//! netns-inode 4026532296
//! netns-cookie 4101
//! endpoint added 1 198.51.100.1 - subflow 3 daemon
//! endpoint adding 2 2001:db8::1 8080 signal,backup - operator
//! endpoint suspended 3 203.0.113.1 - subflow 4 daemon
//! ```
//!
//! The origin says whose the endpoint is: a plugin's (`daemon`: removed at shutdown and when
//! stale) or an operator's, added through D-Bus (`operator`: never removed by the daemon, its
//! id kept). Version 2, without origins, is still read: every record is the daemon's.
//!
//! `adding` is written before the kernel is asked (`ADD_ADDR`), so that a crash before or
//! after the kernel's answer still leaves the next run a record to match; it becomes `added`
//! at the next write (a restart takes an `adding` record the kernel has as ours, so the
//! answer is not worth a write of its own: one write per add).
//! `suspended` is one of ours taken out of the kernel for a while (a dead path's re-probe,
//! `HostPm::suspend_endpoint`): written before `DEL_ADDR`, still ours after a restart.
//! Written atomically (a temporary file unique to the process, then a rename).

use std::{
    fmt::{self, Write as _},
    fs,
    io::{self, Write as _},
    net::IpAddr,
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
};

use mptcpd_plugin::{Endpoint, EndpointFlags};

use super::NetnsId;

/// The format this daemon writes and reads.
pub const VERSION: u32 = 3;

/// The format before origins, still read (every record the daemon's).
const VERSION_WITHOUT_ORIGIN: u32 = 2;

/// Whose an endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// A plugin's: removed at shutdown, and when stale after a restart.
    #[default]
    Daemon,
    /// An operator's, added through the daemon (D-Bus): never removed by the daemon.
    Operator,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Daemon => "daemon",
            Self::Operator => "operator",
        })
    }
}

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// The kernel was (or is being) asked to add it: ours if the kernel has it.
    Adding,
    /// The kernel added it.
    Added,
    /// Taken out of the kernel for a while by this daemon (a dead path, re-probed later):
    /// still ours, its id reserved; put back when its plugin adds it again.
    Suspended,
}

/// One endpoint of ours, with everything that identifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Where it stands.
    pub state: RecordState,
    /// The endpoint as the kernel reports it.
    pub endpoint: Endpoint,
    /// Whose it is.
    pub origin: Origin,
}

/// A whole state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    /// The namespace (and boot) the records belong to.
    pub netns: NetnsId,
    /// In id order.
    pub records: Vec<Record>,
}

/// Why a state file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateFileError {
    /// Another format (a daemon of another version wrote it).
    #[error("format version {0:?}, expected {VERSION}")]
    Version(String),
    /// A header line is missing.
    #[error("no {0:?} line")]
    Missing(&'static str),
    /// A line that does not parse.
    #[error("line {line}: {problem}: {text:?}")]
    Line {
        /// 1-based.
        line: usize,
        /// What is wrong with it.
        problem: &'static str,
        /// The line.
        text: String,
    },
}

impl fmt::Display for RecordState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Adding => "adding",
            Self::Added => "added",
            Self::Suspended => "suspended",
        })
    }
}

impl StateFile {
    /// The file's text.
    #[must_use]
    pub fn format(&self) -> String {
        let Self { netns, records } = self;
        let NetnsId {
            inode,
            cookie,
            boot_id,
        } = netns;
        let mut text = format!(
            "# mptcpd: endpoints this daemon added (state id address port flags ifindex origin)\n\
             version {VERSION}\nboot-id {boot_id}\nnetns-inode {inode}\nnetns-cookie {}\n",
            optional(*cookie)
        );
        for Record {
            state,
            endpoint,
            origin,
        } in records
        {
            let Endpoint {
                id,
                addr,
                port,
                flags,
                if_idx,
            } = endpoint;
            let flags = if flags.is_empty() {
                "-".to_owned()
            } else {
                flags.to_string()
            };
            // Writing to a String cannot fail.
            let _ = writeln!(
                text,
                "endpoint {state} {id} {addr} {} {flags} {} {origin}",
                optional(*port),
                optional(*if_idx)
            );
        }
        text
    }

    /// Parses a whole file; any bad line makes it unusable (it is only ever written whole).
    pub fn parse(text: &str) -> Result<Self, StateFileError> {
        let mut version = None;
        let mut boot_id = None;
        let mut inode = None;
        let mut cookie = None;
        let mut records = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |problem| StateFileError::Line {
                line: index + 1,
                problem,
                text: raw.to_owned(),
            };
            let (key, value) = line.split_once(' ').ok_or_else(|| bad("no value"))?;
            let value = value.trim();
            // The version comes first: a later format may change everything after it (and
            // the first format had no header at all).
            if version.is_none() && key != "version" {
                return Err(StateFileError::Missing("version"));
            }
            match key {
                "version" if value == VERSION.to_string() => version = Some(VERSION),
                "version" if value == VERSION_WITHOUT_ORIGIN.to_string() => {
                    version = Some(VERSION_WITHOUT_ORIGIN);
                }
                "version" => return Err(StateFileError::Version(value.to_owned())),
                "boot-id" => boot_id = Some(value.to_owned()),
                "netns-inode" => inode = Some(value.parse().map_err(|_| bad("bad inode"))?),
                "netns-cookie" => {
                    cookie = Some(parse_optional(value).map_err(|_| bad("bad cookie"))?);
                }
                "endpoint" => records.push(
                    record(value, version == Some(VERSION)).ok_or_else(|| bad("bad endpoint"))?,
                ),
                _ => return Err(bad("unknown key")),
            }
        }
        if version.is_none() {
            return Err(StateFileError::Missing("version"));
        }
        records.sort_by_key(|r| r.endpoint.id);
        Ok(Self {
            netns: NetnsId {
                inode: inode.ok_or(StateFileError::Missing("netns-inode"))?,
                cookie: cookie.ok_or(StateFileError::Missing("netns-cookie"))?,
                boot_id: boot_id.ok_or(StateFileError::Missing("boot-id"))?,
            },
            records,
        })
    }
}

fn optional<T: fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `-` (none) or a value.
fn parse_optional<T: std::str::FromStr>(word: &str) -> Result<Option<T>, T::Err> {
    if word == "-" {
        Ok(None)
    } else {
        word.parse().map(Some)
    }
}

/// `STATE ID ADDRESS PORT FLAGS IFINDEX ORIGIN` (no `ORIGIN` before version 3).
fn record(value: &str, with_origin: bool) -> Option<Record> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let (state, id, addr, port, flags, if_idx, origin) = match (words.as_slice(), with_origin) {
        ([state, id, addr, port, flags, if_idx, origin], true) => {
            (state, id, addr, port, flags, if_idx, *origin)
        }
        ([state, id, addr, port, flags, if_idx], false) => {
            (state, id, addr, port, flags, if_idx, "daemon")
        }
        _ => return None,
    };
    let origin = match origin {
        "daemon" => Origin::Daemon,
        "operator" => Origin::Operator,
        _ => return None,
    };
    let state = match *state {
        "adding" => RecordState::Adding,
        "added" => RecordState::Added,
        "suspended" => RecordState::Suspended,
        _ => return None,
    };
    let id: u8 = id.parse().ok().filter(|&id| id != 0)?;
    let endpoint = Endpoint {
        id,
        addr: addr.parse::<IpAddr>().ok()?,
        port: parse_optional(port).ok()?,
        flags: parse_flags(flags)?,
        if_idx: parse_optional(if_idx).ok()?,
    };
    Some(Record {
        state,
        endpoint,
        origin,
    })
}

/// What `EndpointFlags`' `Display` writes (names, unknown bits in hex); `-` for none.
fn parse_flags(text: &str) -> Option<EndpointFlags> {
    if text == "-" {
        return Some(EndpointFlags::empty());
    }
    EndpointFlags::from_text(text).ok()
}

/// Reads `path`: `Ok(None)` when there is none.
pub(super) fn read(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `text` atomically: a reader sees the old file or the new one.
pub(super) fn write(path: &Path, text: &str) -> io::Result<()> {
    let tmp = temporary(path);
    let create_file = || {
        // A new file, never through a link someone placed there.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
    };
    let create = || match create_file() {
        // The directory is made when it is missing (the first write, or after someone removed
        // it), not before each write: two system calls less on every endpoint added or removed.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            create_file()
        }
        other => other,
    };
    let mut file = match create() {
        // Left by a killed process with the same pid.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(&tmp)?;
            create()?
        }
        other => other?,
    };
    file.write_all(text.as_bytes())
        .and_then(|()| fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _removed = fs::remove_file(&tmp);
        })
}

/// Removes `path`; a missing one is fine.
pub(super) fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `DIR/NAME.PID.tmp`: unique to the file and the process, so that daemons of other
/// namespaces sharing the directory never write each other's temporary file.
fn temporary(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use mptcpd_plugin::{Endpoint, EndpointFlags};

    use super::{Origin, Record, RecordState, StateFile, StateFileError, temporary};
    use crate::plugins::NetnsId;

    fn netns() -> NetnsId {
        NetnsId {
            inode: 4_026_532_296,
            cookie: Some(4101),
            boot_id: "0d5c2b0e-7a4b-4c3e-9d8e-3f1b2a4c5d6e".to_owned(),
        }
    }

    fn sample() -> StateFile {
        StateFile {
            netns: netns(),
            records: vec![
                Record {
                    state: RecordState::Added,
                    endpoint: Endpoint {
                        id: 1,
                        addr: "198.51.100.1".parse().unwrap(),
                        port: None,
                        flags: EndpointFlags::SUBFLOW,
                        if_idx: Some(3),
                    },
                    origin: Origin::Daemon,
                },
                Record {
                    state: RecordState::Adding,
                    endpoint: Endpoint {
                        id: 2,
                        addr: "2001:db8::1".parse().unwrap(),
                        port: Some(8080),
                        flags: EndpointFlags::SIGNAL
                            | EndpointFlags::BACKUP
                            | EndpointFlags::from_bits_retain(0x100),
                        if_idx: None,
                    },
                    origin: Origin::Operator,
                },
                Record {
                    state: RecordState::Added,
                    endpoint: Endpoint {
                        id: 255,
                        addr: "203.0.113.9".parse().unwrap(),
                        port: None,
                        flags: EndpointFlags::empty(),
                        if_idx: Some(-1),
                    },
                    origin: Origin::Daemon,
                },
            ],
        }
    }

    #[test]
    fn the_format_reads_as_documented_and_round_trips() {
        let file = sample();
        let text = file.format();
        assert_eq!(
            text,
            "# mptcpd: endpoints this daemon added (state id address port flags ifindex origin)\n\
             version 3\n\
             boot-id 0d5c2b0e-7a4b-4c3e-9d8e-3f1b2a4c5d6e\n\
             netns-inode 4026532296\n\
             netns-cookie 4101\n\
             endpoint added 1 198.51.100.1 - subflow 3 daemon\n\
             endpoint adding 2 2001:db8::1 8080 signal,backup,0x100 - operator\n\
             endpoint added 255 203.0.113.9 - - -1 daemon\n"
        );
        assert_eq!(StateFile::parse(&text), Ok(file));
        let no_cookie = StateFile {
            netns: NetnsId {
                cookie: None,
                ..netns()
            },
            records: vec![],
        };
        assert_eq!(StateFile::parse(&no_cookie.format()), Ok(no_cookie));
    }

    #[test]
    fn version_2_is_read_with_every_record_the_daemons() {
        let text = "version 2\nboot-id b\nnetns-inode 1\nnetns-cookie -\n\
                    endpoint added 1 198.51.100.1 - subflow 3\n";
        let file = StateFile::parse(text).unwrap();
        assert_eq!(file.records.len(), 1);
        assert_eq!(file.records[0].origin, Origin::Daemon);
        let with_origin = text.replace("subflow 3", "subflow 3 operator");
        assert!(
            StateFile::parse(&with_origin).is_err(),
            "no origin in version 2"
        );
    }

    #[test]
    fn every_flag_the_kernel_may_report_round_trips() {
        for bits in 0..64 {
            let mut file = sample();
            file.records[0].endpoint.flags = EndpointFlags::from_bits_retain(bits);
            assert_eq!(StateFile::parse(&file.format()), Ok(file), "{bits:#x}");
        }
    }

    #[test]
    fn other_versions_and_bad_lines_make_the_file_unusable() {
        let good = sample().format();
        // The first daemon's format: no header.
        assert_eq!(
            StateFile::parse("# mptcpd: endpoints\n1 10.0.0.1\n"),
            Err(StateFileError::Missing("version"))
        );
        assert_eq!(
            StateFile::parse(&good.replace("netns-cookie", "netns-biscuit")),
            Err(StateFileError::Line {
                line: 5,
                problem: "unknown key",
                text: "netns-biscuit 4101".to_owned()
            })
        );
        assert_eq!(
            StateFile::parse(&good.replace("version 3", "version 4")),
            Err(StateFileError::Version("4".to_owned()))
        );
        assert_eq!(
            StateFile::parse("boot-id x\nversion 3\n"),
            Err(StateFileError::Missing("version"))
        );
        assert_eq!(
            StateFile::parse(""),
            Err(StateFileError::Missing("version"))
        );
        assert_eq!(
            StateFile::parse("version 3\nboot-id x\nnetns-cookie 1\n"),
            Err(StateFileError::Missing("netns-inode"))
        );
        for (from, to) in [
            ("added 1 ", "added 0 "),
            ("added 1 ", "added 256 "),
            ("added 1 ", "done 1 "),
            ("198.51.100.1", "198.51.100"),
            (" 8080 ", " 80800 "),
            ("signal,backup", "signal,bogus"),
            (" -1 daemon\n", " x daemon\n"),
            (" -1 daemon\n", " -1\n"),
            (" -1 daemon\n", " -1 someone\n"),
            ("cookie 4101", "cookie x"),
            ("inode 4026532296", "inode -"),
        ] {
            let text = good.replacen(from, to, 1);
            assert!(
                matches!(StateFile::parse(&text), Err(StateFileError::Line { .. })),
                "{from:?} -> {to:?}: {:?}",
                StateFile::parse(&text)
            );
        }
    }

    #[test]
    fn a_write_makes_its_directory_when_it_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run").join("mptcpd").join("endpoints.net1");
        super::write(&path, "one\n").unwrap();
        assert_eq!(super::read(&path).unwrap().as_deref(), Some("one\n"));
        std::fs::remove_dir_all(dir.path().join("run")).unwrap();
        super::write(&path, "two\n").unwrap();
        assert_eq!(super::read(&path).unwrap().as_deref(), Some("two\n"));
    }

    #[test]
    fn writes_replace_the_file_and_a_stale_temporary_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("endpoints.net1");
        std::fs::write(temporary(&path), "left by a killed daemon").unwrap();
        super::write(&path, "one\n").unwrap();
        super::write(&path, "two\n").unwrap();
        assert_eq!(super::read(&path).unwrap().as_deref(), Some("two\n"));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["endpoints.net1"]);
        super::remove(&path).unwrap();
        super::remove(&path).unwrap();
        assert_eq!(super::read(&path).unwrap(), None);
    }

    #[test]
    fn temporary_names_differ_per_file() {
        let a = temporary(Path::new("/run/mptcpd/endpoints.net4026531840"));
        let b = temporary(Path::new("/run/mptcpd/endpoints.net4026532296"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/run/mptcpd")));
        assert!(
            a.to_string_lossy()
                .starts_with("/run/mptcpd/endpoints.net4026531840."),
            "{}",
            a.display()
        );
    }
}
