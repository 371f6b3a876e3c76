//! `--log=syslog`: one datagram per event to the local syslog socket, in the format glibc's
//! `syslog(3)` uses locally (RFC 3164 without host name; the receiver adds the time):
//! `<PRI>mptcpd[PID]: MESSAGE`, facility `daemon`.

use tracing::{Level, Metadata};

use super::log_socket::{Format, severity};

/// The local syslog socket.
pub(super) const DEV_LOG: &str = "/dev/log";
/// `LOG_DAEMON`.
const FACILITY_DAEMON: u8 = 3 << 3;

/// The syslog line format.
#[derive(Debug)]
pub(super) struct Syslog {
    pid: u32,
}

impl Syslog {
    pub(super) fn new() -> Self {
        Self {
            pid: std::process::id(),
        }
    }
}

impl Format for Syslog {
    fn head(&self, level: Level, _meta: Option<&Metadata<'_>>) -> Vec<u8> {
        format!(
            "<{}>mptcpd[{}]: ",
            FACILITY_DAEMON | severity(level),
            self.pid
        )
        .into_bytes()
    }

    fn body(&self, datagram: &mut Vec<u8>, text: &[u8]) {
        datagram.extend_from_slice(text);
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write as _, os::unix::net::UnixDatagram};

    use tracing_subscriber::fmt::MakeWriter as _;

    use super::Syslog;
    use crate::daemon::log_socket::LogSocket;

    #[test]
    fn each_event_is_one_datagram_with_priority_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let syslog = LogSocket::connect(&path, Syslog::new()).unwrap();
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
    }
}
