//! The task that owns the request socket: it numbers requests, sends them, and hands each
//! reply to the request with the same sequence number, so that requests can be pipelined.
//!
//! Netlink runs one dump per socket at a time (a second one fails with `EBUSY`), so dumps
//! wait in a queue while one is in flight; other requests are not held back.

use std::collections::{HashMap, VecDeque};

use netlink_packet_core::NLM_F_DUMP_INTR;
use tokio::sync::{mpsc, oneshot};

use super::{
    PmError,
    socket::{NlSocket, Received},
    wire::{FrameKind, frames},
};

/// The data messages answering one request (whole netlink messages), or why it failed.
pub(crate) type Replies = Result<Vec<Vec<u8>>, PmError>;

/// One request: an encoded netlink message whose sequence number the driver fills in.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) message: Vec<u8>,
    /// `NLM_F_DUMP` is set.
    pub(crate) dump: bool,
    pub(crate) reply: oneshot::Sender<Replies>,
}

#[derive(Debug)]
struct InFlight {
    replies: Vec<Vec<u8>>,
    interrupted: bool,
    reply: oneshot::Sender<Replies>,
}

#[derive(Debug)]
pub(crate) struct Driver {
    socket: NlSocket,
    jobs: mpsc::UnboundedReceiver<Job>,
    pending: HashMap<u32, InFlight>,
    /// The sequence number of the dump in flight.
    dumping: Option<u32>,
    queued_dumps: VecDeque<Job>,
    next_seq: u32,
}

impl Driver {
    pub(crate) fn new(socket: NlSocket, jobs: mpsc::UnboundedReceiver<Job>) -> Self {
        Self {
            socket,
            jobs,
            pending: HashMap::new(),
            dumping: None,
            queued_dumps: VecDeque::new(),
            next_seq: 1,
        }
    }

    /// Runs until every client handle is gone and every request has its answer.
    pub(crate) async fn run(mut self) {
        let mut open = true;
        while open || !self.pending.is_empty() || !self.queued_dumps.is_empty() {
            tokio::select! {
                job = self.jobs.recv(), if open => match job {
                    Some(job) if job.dump && self.dumping.is_some() => {
                        self.queued_dumps.push_back(job);
                    }
                    Some(job) => self.submit(job).await,
                    None => open = false,
                },
                received = self.socket.recv() => match received {
                    Ok(Received::Datagram(datagram)) => {
                        dispatch(&mut self.pending, &mut self.dumping, datagram);
                    }
                    Ok(Received::Lost) => {
                        tracing::warn!(pending = self.pending.len(), "netlink replies lost");
                        fail_all(&mut self.pending, || PmError::Overrun);
                        self.dumping = None;
                    }
                    Err(err) => {
                        tracing::error!(%err, "netlink request socket failed");
                        let kind = err.kind();
                        fail_all(&mut self.pending, || PmError::Io(kind.into()));
                        return;
                    }
                },
            }
            if self.dumping.is_none()
                && let Some(job) = self.queued_dumps.pop_front()
            {
                self.submit(job).await;
            }
        }
    }

    async fn submit(&mut self, job: Job) {
        let Job {
            mut message,
            dump,
            reply,
        } = job;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        if let Some(field) = message.get_mut(8..12) {
            field.copy_from_slice(&seq.to_ne_bytes());
        }
        match self.socket.send(&message).await {
            Ok(()) => {
                let in_flight = InFlight {
                    replies: Vec::new(),
                    interrupted: false,
                    reply,
                };
                self.pending.insert(seq, in_flight);
                if dump {
                    self.dumping = Some(seq);
                }
            }
            Err(err) => {
                // The caller may have given up waiting; nothing to do then.
                let _ignored = reply.send(Err(PmError::Io(err)));
            }
        }
    }
}

/// Hands every message of a datagram to the request it answers.
fn dispatch(pending: &mut HashMap<u32, InFlight>, dumping: &mut Option<u32>, datagram: &[u8]) {
    for frame in frames(datagram) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                // The sequence number is unreadable: whoever it was for waits for the next
                // reply or its own timeout.
                tracing::warn!(%err, "malformed netlink datagram");
                return;
            }
        };
        let seq = frame.header.sequence_number;
        let outcome = match frame.kind() {
            FrameKind::Data => {
                if let Some(in_flight) = pending.get_mut(&seq) {
                    in_flight.interrupted |= frame.header.flags & NLM_F_DUMP_INTR != 0;
                    in_flight.replies.push(frame.bytes.to_vec());
                } else {
                    tracing::debug!(seq, "reply to no pending request");
                }
                continue;
            }
            FrameKind::Ignored => continue,
            FrameKind::Ack | FrameKind::Done => None,
            FrameKind::Error(err) => Some(PmError::Kernel(err)),
            FrameKind::Malformed(err) => Some(PmError::Wire(err)),
        };
        let Some(in_flight) = pending.remove(&seq) else {
            tracing::debug!(seq, "answer to no pending request");
            continue;
        };
        if *dumping == Some(seq) {
            *dumping = None;
        }
        let InFlight {
            replies,
            interrupted,
            reply,
        } = in_flight;
        let result = match outcome {
            Some(err) => Err(err),
            None if interrupted => Err(PmError::DumpInterrupted),
            None => Ok(replies),
        };
        let _ignored = reply.send(result);
    }
}

fn fail_all(pending: &mut HashMap<u32, InFlight>, error: impl Fn() -> PmError) {
    for (_, in_flight) in pending.drain() {
        let _ignored = in_flight.reply.send(Err(error()));
    }
}
