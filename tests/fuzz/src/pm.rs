//! `pm`: a datagram from the `mptcp_pm` generic-netlink socket (replies, errors, events,
//! requests), as the kernel sends them. Every message that decodes must encode to bytes that
//! decode to the same message, and every typed request to a message that means the same.

use std::fmt;

use mptcp_pm::{
    Event,
    wire::{Family, PmEvent, PmMessage, Request, decode_genl, decode_message, frames},
};
use netlink_packet_core::{Emitable, ParseableParametrized};
use netlink_packet_generic::{GenlFamily, GenlHeader};

/// The fuzz target.
///
/// # Panics
/// On a finding: a property that does not hold.
pub fn run(input: &[u8]) {
    for frame in frames(input) {
        let Ok(frame) = frame else { break };
        let _kind = frame.kind();
        if let Ok(genl) = decode_genl::<PmMessage>(&frame) {
            check_message(&genl.payload, genl.header);
        }
        if let Ok(genl) = decode_genl::<PmEvent>(&frame) {
            check_event(&genl.payload, genl.header);
        }
        let _family = Family::parse(frame.payload().get(4..).unwrap_or_default());
    }
    check_whole::<PmMessage>(input);
    check_whole::<PmEvent>(input);
}

/// A whole message of family `F` that decodes encodes to bytes that decode the same.
fn check_whole<F>(input: &[u8])
where
    F: ParseableParametrized<[u8], GenlHeader> + GenlFamily + Emitable + PartialEq + fmt::Debug,
{
    if let Ok(mut msg) = decode_message::<F>(input) {
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        assert_eq!(
            decode_message::<F>(&buf).expect("the re-encoded message decodes"),
            msg
        );
    }
}

fn check_message(msg: &PmMessage, header: GenlHeader) {
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    let again = PmMessage::parse_with_param(&buf, header).expect("re-encoded message decodes");
    assert_eq!(&again, msg);
    for dump in [false, true] {
        if let Ok(request) = Request::from_message(msg, dump) {
            // A typed request encodes to a message that means the same request.
            assert_eq!(
                Request::from_message(&request.to_message(), dump).expect("a request"),
                request
            );
        }
    }
    let _endpoint = msg.endpoint();
    let _limits = msg.limits();
}

fn check_event(event: &PmEvent, header: GenlHeader) {
    let mut buf = vec![0; event.buffer_len()];
    event.emit(&mut buf);
    let again = PmEvent::parse_with_param(&buf, header).expect("re-encoded event decodes");
    assert_eq!(&again, event);
    let _typed = Event::try_from(event);
}

/// Every message captured from the kernel (`mptcpd/mptcp-pm/tests/fixtures/*.hex`).
#[must_use]
pub fn seeds() -> Vec<Vec<u8>> {
    crate::hex_fixtures("mptcpd/mptcp-pm/tests/fixtures")
}

/// A message with a right header and attributes with correct lengths but random types and
/// contents, sometimes nested: what gets past the framing to the attribute decoders.
#[cfg(test)]
pub(crate) fn framed(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut msg = vec![0; 16];
    msg[4..6].copy_from_slice(&0x1c_u16.to_ne_bytes());
    msg.extend([rng.u8(..20), 1, 0, 0]);
    msg.extend(random_attrs(rng, 0));
    let len = u32::try_from(msg.len()).expect("a short message");
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    msg
}

#[cfg(test)]
fn random_attrs(rng: &mut fastrand::Rng, depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.usize(..6) {
        let nested = depth < 2 && rng.u8(..3) == 0;
        let value = if nested {
            random_attrs(rng, depth + 1)
        } else {
            let len = rng.usize(..20);
            std::iter::repeat_with(|| rng.u8(..)).take(len).collect()
        };
        let kind = rng.u16(..20) | if nested { 0x8000 } else { 0 };
        let len = u16::try_from(4 + value.len()).expect("a short attribute");
        out.extend(len.to_ne_bytes());
        out.extend(kind.to_ne_bytes());
        out.extend(&value);
        // Usually padded, sometimes not (the last attribute of a nest may lack padding).
        if rng.u8(..8) != 0 {
            out.resize(out.len().next_multiple_of(4), 0);
        }
    }
    out
}
