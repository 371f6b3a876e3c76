//! The task that owns the request socket: it numbers requests, sends them, and hands each
//! reply to the request with the same sequence number, so that requests can be pipelined.
//!
//! Netlink runs one dump per socket at a time (a second one fails with `EBUSY`), so dumps
//! wait in a queue while one is in flight; other requests are not held back.
//!
//! The kernel answers each request inside the `send`, queueing the reply on this socket; a
//! reply that does not fit the receive buffer is dropped. So at most [`MAX_IN_FLIGHT`]
//! requests are unanswered at a time (the others wait in the channel), and replies are read
//! before more requests are sent: a storm of requests (a path manager answering thousands of
//! new connections) loses none.

use std::collections::{HashMap, VecDeque};

use netlink_packet_core::NLM_F_DUMP_INTR;
use tokio::sync::{mpsc, oneshot};

use super::{
    PmError,
    socket::{NlSocket, Received},
    wire::{FrameKind, frames},
};

/// Requests sent and not yet answered, at most: their replies (a few KiB each, as the kernel
/// sizes them) fit the default receive buffer (`net.core.rmem_default`, 208 KiB).
const MAX_IN_FLIGHT: usize = 32;

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
                // Replies first: they free room for the requests waiting.
                biased;
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
                job = self.jobs.recv(), if open && self.pending.len() < MAX_IN_FLIGHT => match job {
                    Some(job) if job.dump && self.dumping.is_some() => {
                        self.queued_dumps.push_back(job);
                    }
                    Some(job) => self.submit(job).await,
                    None => open = false,
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
                tracing::warn!(err = %mptcpd_common::Chain(&err), "malformed netlink datagram");
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use netlink_packet_core::{
        NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP_INTR, NLM_F_MULTIPART, NLMSG_DONE, NLMSG_ERROR,
    };
    use tokio::sync::oneshot;

    use super::{InFlight, Replies, dispatch, fail_all};
    use crate::PmError;

    fn nlmsg(kind: u16, flags: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(16 + payload.len()).unwrap();
        let mut out = Vec::new();
        out.extend(len.to_ne_bytes());
        out.extend(kind.to_ne_bytes());
        out.extend(flags.to_ne_bytes());
        out.extend(seq.to_ne_bytes());
        out.extend(0_u32.to_ne_bytes());
        out.extend(payload);
        out.resize(out.len().next_multiple_of(4), 0);
        out
    }

    /// A `GET_ADDR` reply whose genl header carries `tag` as its version, to tell replies apart.
    fn data(seq: u32, flags: u16, tag: u8) -> Vec<u8> {
        nlmsg(0x1c, flags, seq, &[3, tag, 0, 0])
    }

    /// `NLMSG_ERROR` with a capped echo and, for errors, an extack message.
    fn answer(seq: u32, errno: i32, message: &str) -> Vec<u8> {
        let mut payload = (-errno).to_ne_bytes().to_vec();
        payload.extend([0; 16]);
        let mut flags = NLM_F_CAPPED;
        if !message.is_empty() {
            flags |= NLM_F_ACK_TLVS;
            let len = u16::try_from(4 + message.len() + 1).unwrap();
            payload.extend(len.to_ne_bytes());
            payload.extend(1_u16.to_ne_bytes());
            payload.extend(message.as_bytes());
            payload.push(0);
        }
        nlmsg(NLMSG_ERROR, flags, seq, &payload)
    }

    fn pending(seqs: &[u32]) -> (HashMap<u32, InFlight>, Vec<oneshot::Receiver<Replies>>) {
        let mut map = HashMap::new();
        let mut answers = Vec::new();
        for &seq in seqs {
            let (reply, answer) = oneshot::channel();
            map.insert(
                seq,
                InFlight {
                    replies: Vec::new(),
                    interrupted: false,
                    reply,
                },
            );
            answers.push(answer);
        }
        (map, answers)
    }

    fn tags(replies: &[Vec<u8>]) -> Vec<u8> {
        replies.iter().map(|r| r[17]).collect()
    }

    #[test]
    fn interleaved_replies_go_to_their_own_request() {
        let (mut map, mut answers) = pending(&[1, 2, 3]);
        let mut dumping = Some(1);
        let first = [
            data(1, NLM_F_MULTIPART, 10),
            data(2, 0, 20),
            data(1, NLM_F_MULTIPART, 11),
        ]
        .concat();
        dispatch(&mut map, &mut dumping, &first);
        assert_eq!(map.len(), 3, "nothing is complete before its ack or done");
        let second = [
            answer(2, 0, ""),
            nlmsg(NLMSG_DONE, NLM_F_MULTIPART, 1, &[0; 4]),
        ]
        .concat();
        dispatch(&mut map, &mut dumping, &second);
        assert_eq!(dumping, None, "the dump is over");
        assert_eq!(map.len(), 1);
        let dump = answers[0].try_recv().unwrap().unwrap();
        assert_eq!(tags(&dump), [10, 11]);
        assert_eq!(tags(&answers[1].try_recv().unwrap().unwrap()), [20]);
        assert!(answers[2].try_recv().is_err(), "request 3 is still waiting");
    }

    #[test]
    fn errors_carry_errno_and_message() {
        let (mut map, mut answers) = pending(&[7]);
        dispatch(
            &mut map,
            &mut None,
            &answer(7, libc::EINVAL, "invalid token"),
        );
        match answers[0].try_recv().unwrap() {
            Err(err @ PmError::Kernel(_)) => {
                assert_eq!(err.errno(), Some(libc::EINVAL));
                assert_eq!(err.kernel_message(), Some("invalid token"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_interrupted_dump_is_an_error() {
        let (mut map, mut answers) = pending(&[4]);
        let datagram = [
            data(4, NLM_F_MULTIPART | NLM_F_DUMP_INTR, 1),
            nlmsg(NLMSG_DONE, NLM_F_MULTIPART, 4, &[0; 4]),
        ]
        .concat();
        dispatch(&mut map, &mut Some(4), &datagram);
        assert!(matches!(
            answers[0].try_recv().unwrap(),
            Err(PmError::DumpInterrupted)
        ));
    }

    #[test]
    fn strangers_and_garbage_are_ignored() {
        let (mut map, mut answers) = pending(&[1]);
        dispatch(
            &mut map,
            &mut None,
            &[data(9, 0, 1), answer(9, 0, "")].concat(),
        );
        dispatch(&mut map, &mut None, &[0xff; 7]);
        dispatch(&mut map, &mut None, &[]);
        assert_eq!(map.len(), 1);
        assert!(answers[0].try_recv().is_err());
        fail_all(&mut map, || PmError::Overrun);
        assert!(map.is_empty());
        assert!(matches!(
            answers[0].try_recv().unwrap(),
            Err(PmError::Overrun)
        ));
    }
}
