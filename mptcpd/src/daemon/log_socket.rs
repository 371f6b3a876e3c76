//! The datagram socket under `--log=syslog` and `--log=journal`: never blocks the daemon.
//!
//! The daemon runs on one thread; a blocking send to a log daemon that stopped reading would
//! stop the event loop, and the kernel would then drop path-manager events. So the socket is
//! non-blocking: a message that does not fit is dropped and counted, and the count is logged
//! (as a warning of its own) before the next message that does fit; at shutdown a count still
//! unsaid goes to stderr.

use std::{
    io,
    os::unix::net::UnixDatagram,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// Longest message text sent; longer ones are cut (a datagram has a size limit).
pub(super) const MAX_MESSAGE: usize = 8 * 1024;

/// How a log daemon wants its datagrams.
pub(super) trait Format: Send + Sync + 'static {
    /// What precedes the text of an event at `level` (`meta`: where tracing gives it).
    fn head(&self, level: Level, meta: Option<&Metadata<'_>>) -> Vec<u8>;
    /// Appends `text` (one event, at most [`MAX_MESSAGE`] bytes, no final newline).
    fn body(&self, datagram: &mut Vec<u8>, text: &[u8]);
}

/// Messages dropped and not reported yet; shared with the daemon for its shutdown.
#[derive(Debug, Clone, Default)]
pub(super) struct Dropped(Arc<AtomicU64>);

impl Dropped {
    /// How many messages were dropped since the last report.
    pub(super) fn unreported(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A non-blocking connection to a log daemon's datagram socket, shared by all events.
#[derive(Debug)]
pub(super) struct LogSocket<F> {
    path: PathBuf,
    socket: Mutex<UnixDatagram>,
    format: F,
    dropped: Dropped,
}

impl<F: Format> LogSocket<F> {
    /// Connects to the socket at `path` (fails when nothing listens there).
    pub(super) fn connect(path: &Path, format: F) -> io::Result<Self> {
        Ok(Self {
            path: path.to_owned(),
            socket: Mutex::new(connect(path)?),
            format,
            dropped: Dropped::default(),
        })
    }

    /// The count of dropped messages, for a report at shutdown.
    pub(super) fn dropped(&self) -> Dropped {
        self.dropped.clone()
    }

    /// Sends one datagram: first the count of messages dropped before it, if any, then it.
    fn emit(&self, datagram: &[u8]) {
        let mut socket = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        let counter = &self.dropped.0;
        let unreported = counter.load(Ordering::Relaxed);
        if unreported > 0 {
            let text = format!(
                "{unreported} log messages were dropped: {} did not take them in time",
                self.path.display()
            );
            let mut notice = self.format.head(Level::WARN, None);
            self.format.body(&mut notice, text.as_bytes());
            if self.send(&mut socket, &notice).is_err() {
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
            counter.fetch_sub(unreported, Ordering::Relaxed);
        }
        if self.send(&mut socket, datagram).is_err() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One send; reconnects once if the log daemon was restarted. Never waits.
    fn send(&self, socket: &mut UnixDatagram, datagram: &[u8]) -> io::Result<()> {
        match socket.send(datagram) {
            Ok(_) => Ok(()),
            // Full: the log daemon is behind; a fresh socket would not help.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(e),
            Err(_) => {
                *socket = connect(&self.path)?;
                socket.send(datagram).map(drop)
            }
        }
    }

    const fn message(&self, head: Vec<u8>) -> Message<'_, F> {
        Message {
            socket: self,
            datagram: head,
            text: Vec::new(),
        }
    }
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// One formatted event, sent when the formatter drops it.
#[derive(Debug)]
pub(super) struct Message<'a, F: Format> {
    socket: &'a LogSocket<F>,
    datagram: Vec<u8>,
    text: Vec<u8>,
}

impl<F: Format> io::Write for Message<'_, F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<F: Format> Drop for Message<'_, F> {
    fn drop(&mut self) {
        let text = self.text.strip_suffix(b"\n").unwrap_or(&self.text);
        if text.is_empty() {
            return;
        }
        let text = &text[..text.len().min(MAX_MESSAGE)];
        self.socket.format.body(&mut self.datagram, text);
        self.socket.emit(&self.datagram);
    }
}

impl<'a, F: Format> MakeWriter<'a> for LogSocket<F> {
    type Writer = Message<'a, F>;

    fn make_writer(&'a self) -> Self::Writer {
        self.message(self.format.head(Level::INFO, None))
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        self.message(self.format.head(*meta.level(), Some(meta)))
    }
}

/// syslog severity of a `tracing` level (the journal's `PRIORITY` too).
pub(super) const fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write as _, os::unix::net::UnixDatagram};

    use tracing::{Level, Metadata};
    use tracing_subscriber::fmt::MakeWriter as _;

    use super::{Format, LogSocket, MAX_MESSAGE, severity};

    /// `LEVEL|text`.
    struct Plain;

    impl Format for Plain {
        fn head(&self, level: Level, _meta: Option<&Metadata<'_>>) -> Vec<u8> {
            format!("{level}|").into_bytes()
        }

        fn body(&self, datagram: &mut Vec<u8>, text: &[u8]) {
            datagram.extend_from_slice(text);
        }
    }

    fn log(socket: &LogSocket<Plain>, text: &str) {
        let mut message = socket.make_writer();
        message.write_all(text.as_bytes()).unwrap();
    }

    fn received(server: &UnixDatagram) -> Vec<String> {
        server.set_nonblocking(true).unwrap();
        let mut all = Vec::new();
        let mut buf = vec![0_u8; 2 * MAX_MESSAGE];
        while let Ok(n) = server.recv(&mut buf) {
            all.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        all
    }

    #[test]
    fn a_full_socket_drops_and_counts_then_says_how_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let socket = LogSocket::connect(&path, Plain).unwrap();
        // Nobody reads: the queue fills (net.unix.max_dgram_qlen, or the send buffer), and
        // every later message is dropped at once instead of waiting.
        for i in 0..1000 {
            log(&socket, &format!("message {i}\n"));
        }
        let unreported = socket.dropped().unreported();
        assert!(unreported > 0, "nothing dropped");
        let first = received(&server);
        assert_eq!(u64::try_from(first.len()).unwrap() + unreported, 1000);
        assert_eq!(first[0], "INFO|message 0");

        // Room again: the count comes first, then the message.
        log(&socket, "after\n");
        let next = received(&server);
        assert_eq!(
            next,
            [
                format!(
                    "WARN|{unreported} log messages were dropped: {} did not take them in time",
                    path.display()
                ),
                "INFO|after".to_owned()
            ]
        );
        assert_eq!(socket.dropped().unreported(), 0);
    }

    #[test]
    fn a_restarted_log_daemon_is_reconnected_and_long_texts_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let first = UnixDatagram::bind(&path).unwrap();
        let socket = LogSocket::connect(&path, Plain).unwrap();
        log(&socket, "one\n");
        assert_eq!(received(&first), ["INFO|one"]);
        drop(first);
        std::fs::remove_file(&path).unwrap();
        let second = UnixDatagram::bind(&path).unwrap();
        log(&socket, &"x".repeat(MAX_MESSAGE + 10));
        let got = received(&second);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].len(), "INFO|".len() + MAX_MESSAGE);
        // A writer nothing was written to sends nothing.
        drop(socket.make_writer());
        assert_eq!(received(&second), Vec::<String>::new());
        assert_eq!(socket.dropped().unreported(), 0);
    }

    #[test]
    fn connecting_to_nothing_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LogSocket::connect(&dir.path().join("none"), Plain).is_err());
    }

    #[test]
    fn levels_map_onto_syslog_severities() {
        assert_eq!(severity(Level::ERROR), 3);
        assert_eq!(severity(Level::WARN), 4);
        assert_eq!(severity(Level::INFO), 6);
        assert_eq!(severity(Level::DEBUG), 7);
        assert_eq!(severity(Level::TRACE), 7);
    }
}
