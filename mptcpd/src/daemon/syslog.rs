//! `--log=syslog`: one datagram per event to the local syslog socket, in the format glibc's
//! `syslog(3)` uses locally (RFC 3164 without host name; the receiver adds the time):
//! `<PRI>mptcpd[PID]: MESSAGE`, facility `daemon`.

use std::{
    io,
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    sync::{Mutex, PoisonError},
};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The local syslog socket.
pub(super) const DEV_LOG: &str = "/dev/log";
/// `LOG_DAEMON`.
const FACILITY_DAEMON: u8 = 3 << 3;
/// Longest message sent; longer ones are cut (datagram sockets have a size limit).
const MAX_MESSAGE: usize = 8 * 1024;

/// A connection to the syslog socket, shared by all events.
#[derive(Debug)]
pub(super) struct Syslog {
    path: PathBuf,
    socket: Mutex<UnixDatagram>,
    pid: u32,
}

impl Syslog {
    /// Connects to the socket at `path`.
    pub(super) fn connect(path: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Self {
            path: path.to_owned(),
            socket: Mutex::new(socket),
            pid: std::process::id(),
        })
    }

    const fn message(&self, level: Level) -> Message<'_> {
        Message {
            syslog: self,
            severity: severity(level),
            text: Vec::new(),
        }
    }

    /// Sends one message; reconnects once if the syslog daemon was restarted.
    fn send(&self, severity: u8, message: &[u8]) {
        let mut line =
            format!("<{}>mptcpd[{}]: ", FACILITY_DAEMON | severity, self.pid).into_bytes();
        let message = message.strip_suffix(b"\n").unwrap_or(message);
        line.extend_from_slice(&message[..message.len().min(MAX_MESSAGE)]);
        let mut socket = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if socket.send(&line).is_err() {
            // Nowhere to report a failure to log: the message is dropped if this fails too.
            if let Ok(fresh) =
                UnixDatagram::unbound().and_then(|s| s.connect(&self.path).map(|()| s))
            {
                *socket = fresh;
                let _dropped = socket.send(&line);
            }
        }
    }
}

/// syslog severity of a `tracing` level.
const fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// One formatted event, sent when the formatter drops it.
#[derive(Debug)]
pub(super) struct Message<'a> {
    syslog: &'a Syslog,
    severity: u8,
    text: Vec<u8>,
}

impl io::Write for Message<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Message<'_> {
    fn drop(&mut self) {
        if !self.text.is_empty() {
            self.syslog.send(self.severity, &self.text);
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = Message<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        self.message(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.message(*meta.level())
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write as _, os::unix::net::UnixDatagram};

    use tracing::Level;
    use tracing_subscriber::fmt::MakeWriter as _;

    use super::{Syslog, severity};

    #[test]
    fn each_event_is_one_datagram_with_priority_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let syslog = Syslog::connect(&path).unwrap();
        let mut message = syslog.make_writer();
        message.write_all(b"ready ").unwrap();
        message.write_all(b"(notify flags: )\n").unwrap();
        drop(message);
        let mut buf = [0_u8; 256];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&buf[..n]),
            format!("<30>mptcpd[{}]: ready (notify flags: )", std::process::id())
        );
        // A writer nothing was written to sends nothing.
        drop(syslog.make_writer());
        server.set_nonblocking(true).unwrap();
        assert!(server.recv(&mut buf).is_err());
    }

    #[test]
    fn levels_map_onto_syslog_severities() {
        assert_eq!(severity(Level::ERROR), 3);
        assert_eq!(severity(Level::WARN), 4);
        assert_eq!(severity(Level::INFO), 6);
        assert_eq!(severity(Level::DEBUG), 7);
        assert_eq!(severity(Level::TRACE), 7);
    }

    #[test]
    fn connecting_to_nothing_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Syslog::connect(&dir.path().join("none")).is_err());
    }
}
