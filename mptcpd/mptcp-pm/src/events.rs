//! The event stream: typed `mptcp_pm_events` multicast messages.

use std::{
    collections::VecDeque,
    future,
    task::{Context, Poll, ready},
};

use netlink_packet_generic::GenlMessage;

use super::{
    Event, PmError,
    socket::{NlSocket, Received},
    wire::{EVENTS_GROUP, Family, FrameKind, PmEvent, WireError, decode_genl, frames},
};

/// Generous: a burst of thousands of events fits before the kernel starts dropping them.
const RECEIVE_BUFFER: usize = 4 * 1024 * 1024;
/// Bounds the drain after an overrun when events keep pouring in.
const MAX_DRAIN: usize = 10_000;

/// What the stream yields.
#[derive(Debug)]
pub enum EventItem {
    /// An event.
    Event(Event),
    /// Events were lost (the receive buffer overflowed): state derived from events is stale;
    /// re-read it (dump endpoints, `ss -M`) before trusting it again.
    Overrun,
    /// A message that could not be decoded; the stream goes on.
    Malformed(WireError),
}

/// A subscription to `mptcp_pm_events` in the caller's network namespace.
#[derive(Debug)]
pub struct EventStream {
    socket: NlSocket,
    family_id: u16,
    queue: VecDeque<EventItem>,
}

impl EventStream {
    /// Joins the events group of `family` on a new socket (needs `CAP_NET_ADMIN`) with a
    /// 4 MiB receive buffer. Needs a tokio runtime.
    pub fn subscribe(family: &Family) -> Result<Self, PmError> {
        let group = family
            .group(EVENTS_GROUP)
            .ok_or(PmError::GroupNotFound(EVENTS_GROUP))?;
        // open() binds first: a socket with port id 0 receives no broadcast.
        let socket = NlSocket::open()?;
        if let Err(err) = socket.set_receive_buffer(RECEIVE_BUFFER) {
            tracing::warn!(%err, "could not enlarge the event socket's receive buffer");
        }
        socket.socket().add_membership(group)?;
        Ok(Self {
            socket,
            family_id: family.id,
            queue: VecDeque::new(),
        })
    }

    /// Changes the receive buffer size (`SO_RCVBUFFORCE`, else `SO_RCVBUF`).
    pub fn set_receive_buffer(&self, bytes: usize) -> Result<(), PmError> {
        Ok(self.socket.set_receive_buffer(bytes)?)
    }

    /// The next item. An error means the socket itself failed; the stream is then done.
    pub async fn recv(&mut self) -> Result<EventItem, PmError> {
        future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next item (for adapting the stream to other interfaces).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<EventItem, PmError>> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                return Poll::Ready(Ok(item));
            }
            let Self {
                socket,
                family_id,
                queue,
            } = self;
            match ready!(socket.poll_recv(cx))? {
                Received::Datagram(datagram) => decode_datagram(*family_id, datagram, queue),
                Received::Lost => {
                    tracing::warn!("mptcp_pm events lost: receive buffer overflow");
                    drain(socket, *family_id, queue)?;
                    queue.push_back(EventItem::Overrun);
                }
            }
        }
    }
}

/// After an overrun, takes every queued datagram at once.
///
/// The kernel reports the overrun before the events still queued, which are older than the
/// lost ones, and drops further events silently until the queue is empty. Draining now
/// empties it, and yielding the queued events before [`EventItem::Overrun`] means a caller
/// that resyncs on `Overrun` never applies an event older than its resync.
fn drain(
    socket: &mut NlSocket,
    family_id: u16,
    queue: &mut VecDeque<EventItem>,
) -> Result<(), PmError> {
    for _ in 0..MAX_DRAIN {
        match socket.try_recv()? {
            Some(Received::Datagram(datagram)) => decode_datagram(family_id, datagram, queue),
            Some(Received::Lost) => tracing::warn!("more mptcp_pm events lost"),
            None => return Ok(()),
        }
    }
    Ok(())
}

fn decode_datagram(family_id: u16, datagram: &[u8], queue: &mut VecDeque<EventItem>) {
    for frame in frames(datagram) {
        let frame = match frame {
            Ok(frame) => frame,
            Err(err) => {
                queue.push_back(malformed(err));
                return;
            }
        };
        if !matches!(frame.kind(), FrameKind::Data) || frame.header.message_type != family_id {
            tracing::debug!(
                kind = frame.header.message_type,
                "skipping non-event message"
            );
            continue;
        }
        let item = decode_genl::<PmEvent>(&frame)
            .and_then(|genl: GenlMessage<PmEvent>| Event::try_from(&genl.payload))
            .map_or_else(malformed, EventItem::Event);
        queue.push_back(item);
    }
}

fn malformed(err: WireError) -> EventItem {
    tracing::warn!(err = %mptcpd_common::Chain(&err), "undecodable mptcp_pm event");
    EventItem::Malformed(err)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::{EventItem, decode_datagram};
    use crate::{Event, wire::tests::fixture};

    #[test]
    fn a_datagram_yields_each_event_and_skips_other_families() {
        let created = fixture("ev-kpm-cli-00-created");
        let closed = fixture("ev-kpm-cli-05-closed");
        let mut other_family = closed.clone();
        other_family[4] = 0x42;
        let mut truncated = created.clone();
        truncated.truncate(40);
        let datagram = [created, other_family, closed, truncated].concat();
        let mut queue = VecDeque::new();
        decode_datagram(0x1c, &datagram, &mut queue);
        let items: Vec<_> = queue.into_iter().collect();
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(matches!(items[0], EventItem::Event(Event::Created(_))));
        assert!(matches!(
            items[1],
            EventItem::Event(Event::Closed {
                token: 1_617_931_497
            })
        ));
        assert!(matches!(items[2], EventItem::Malformed(_)));
    }
}
