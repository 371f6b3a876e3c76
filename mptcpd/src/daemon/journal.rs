//! `--log=journal`: journald's native protocol, one datagram of `NAME=value` fields per event
//! (`MESSAGE`, `PRIORITY`, `SYSLOG_IDENTIFIER`, and tracing's `TARGET`, `CODE_FILE`,
//! `CODE_LINE`, as `tracing-journald` names them), on the same non-blocking socket as syslog.

use tracing::{Level, Metadata};

use super::log_socket::{Format, severity};

/// journald's socket for native messages.
pub(super) const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// The native journal format.
#[derive(Debug)]
pub(super) struct Journal;

impl Format for Journal {
    fn head(&self, level: Level, meta: Option<&Metadata<'_>>) -> Vec<u8> {
        let mut datagram = Vec::new();
        field(&mut datagram, "PRIORITY", &[b'0' + severity(level)]);
        field(&mut datagram, "SYSLOG_IDENTIFIER", b"mptcpd");
        if let Some(meta) = meta {
            field(&mut datagram, "TARGET", meta.target().as_bytes());
            if let Some(file) = meta.file() {
                field(&mut datagram, "CODE_FILE", file.as_bytes());
            }
            if let Some(line) = meta.line() {
                field(&mut datagram, "CODE_LINE", line.to_string().as_bytes());
            }
        }
        datagram
    }

    fn body(&self, datagram: &mut Vec<u8>, text: &[u8]) {
        field(datagram, "MESSAGE", text);
    }
}

/// `NAME=value\n`, or for a value with a newline `NAME\n`, its length (64-bit little-endian),
/// the value and `\n`.
fn field(datagram: &mut Vec<u8>, name: &str, value: &[u8]) {
    datagram.extend_from_slice(name.as_bytes());
    if value.contains(&b'\n') {
        datagram.push(b'\n');
        datagram.extend_from_slice(&u64::try_from(value.len()).unwrap_or(u64::MAX).to_le_bytes());
    } else {
        datagram.push(b'=');
    }
    datagram.extend_from_slice(value);
    datagram.push(b'\n');
}

#[cfg(test)]
mod tests {
    use std::{io::Write as _, os::unix::net::UnixDatagram};

    use tracing::Level;
    use tracing_subscriber::fmt::MakeWriter as _;

    use super::{Journal, field};
    use crate::daemon::log_socket::{Format as _, LogSocket};

    #[test]
    fn an_event_is_one_datagram_of_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        let journal = LogSocket::connect(&path, Journal).unwrap();
        let mut message = journal.make_writer();
        message.write_all(b"ready\n").unwrap();
        drop(message);
        let mut buf = [0_u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            "PRIORITY=6\nSYSLOG_IDENTIFIER=mptcpd\nMESSAGE=ready\n"
        );
    }

    #[test]
    fn a_value_with_a_newline_is_length_prefixed() {
        let mut datagram = Journal.head(Level::ERROR, None);
        Journal.body(&mut datagram, b"two\nlines");
        let mut expected = b"PRIORITY=3\nSYSLOG_IDENTIFIER=mptcpd\nMESSAGE\n".to_vec();
        expected.extend_from_slice(&9_u64.to_le_bytes());
        expected.extend_from_slice(b"two\nlines\n");
        assert_eq!(datagram, expected);
        let mut one = Vec::new();
        field(&mut one, "CODE_LINE", b"42");
        assert_eq!(one, b"CODE_LINE=42\n");
    }
}
