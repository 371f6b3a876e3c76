//! Forwards the records eBPF programs write with aya-log into `tracing`.
//!
//! aya-log emits `log` records; the daemon's subscriber turns them into `tracing` events
//! (`tracing-log`). The ring buffer must be drained, which a tokio task does here.

use aya::Ebpf;
use aya_log::EbpfLogger;
use tokio::{
    io::{Interest, unix::AsyncFd},
    task::JoinHandle,
};

use super::EbpfError;

/// The drain task; dropping it stops the forwarding.
#[derive(Debug)]
pub(crate) struct LogDrain {
    task: JoinHandle<()>,
}

impl LogDrain {
    /// Sets up aya-log for `ebpf` and starts draining it on the current tokio runtime.
    ///
    /// Call it after the object is loaded and before its programs are: the programs refer to
    /// the log ring buffer, which must stay open.
    pub(crate) fn start(ebpf: &mut Ebpf) -> Result<Self, EbpfError> {
        let logger = EbpfLogger::init(ebpf).map_err(EbpfError::Log)?;
        // SAFETY: `EbpfLogger` owns its ring buffer's fd, which stays open and unchanged until
        // the logger, moved into the `AsyncFd`, is dropped with it.
        let mut fd = unsafe { AsyncFd::register_with_interest(logger, Interest::READABLE) }
            .map_err(|e| EbpfError::LogRing(e.into()))?;
        let task = tokio::spawn(async move {
            loop {
                let Ok(mut guard) = fd.readable_mut().await else {
                    tracing::warn!("eBPF log ring buffer closed; eBPF logs stop here");
                    return;
                };
                guard.get_inner_mut().flush();
                guard.clear_ready();
            }
        });
        Ok(Self { task })
    }
}

impl Drop for LogDrain {
    fn drop(&mut self) {
        self.task.abort();
    }
}
