//! A bounded, deterministic fuzz run of the decoders: random bytes, mutated fixtures and
//! well-framed messages with random attributes. Nothing may panic, and every value that
//! decodes must encode to bytes that decode to the same value.

use netlink_packet_core::{Emitable as _, ParseableParametrized as _};
use netlink_packet_generic::GenlHeader;

use super::all_fixtures;
use crate::pm::wire::{
    Event, Family, PmEvent, PmMessage, Request, decode_genl, decode_message, frames,
};

/// Inputs per generator; three generators: 300 000 inputs, about two seconds in a debug build.
const ROUNDS: usize = 100_000;

/// `SplitMix64`: tiny, fast, and good enough to drive mutations from a fixed seed.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }

    /// Random, or one of the values that sit on length and type boundaries.
    fn interesting(&mut self) -> u8 {
        const SPECIAL: [u8; 12] = [0, 1, 3, 4, 5, 8, 16, 20, 0x7f, 0x80, 0xfe, 0xff];
        if self.below(2) == 0 {
            SPECIAL[self.below(SPECIAL.len())]
        } else {
            self.byte()
        }
    }
}

pub(crate) fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len());
        match rng.below(6) {
            0 if !input.is_empty() => input[at] ^= 1 << rng.below(8),
            1 if !input.is_empty() => input[at] = rng.interesting(),
            2 => input.truncate(at),
            3 => {
                let len = rng.below(12);
                let extra = rng.bytes(len);
                input.splice(at..at, extra);
            }
            4 if !input.is_empty() => {
                let end = (at + rng.below(8)).min(input.len());
                input.drain(at..end);
            }
            _ => {
                let end = (at + rng.below(16)).min(input.len());
                let copy = input[at..end].to_vec();
                input.extend(copy);
            }
        }
    }
    // Half the time the netlink length field is made right, so decoding goes past it.
    if rng.below(2) == 0 && input.len() >= 4 {
        let len = u32::try_from(input.len()).unwrap();
        input[..4].copy_from_slice(&len.to_ne_bytes());
    }
}

/// Attributes with correct lengths but random types and contents, sometimes nested.
fn random_attrs(rng: &mut Rng, depth: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.below(6) {
        let nested = depth < 2 && rng.below(3) == 0;
        let value = if nested {
            random_attrs(rng, depth + 1)
        } else {
            let len = rng.below(20);
            rng.bytes(len)
        };
        let kind = u16::try_from(rng.below(20)).unwrap() | if nested { 0x8000 } else { 0 };
        let len = u16::try_from(4 + value.len()).unwrap();
        out.extend(len.to_ne_bytes());
        out.extend(kind.to_ne_bytes());
        out.extend(&value);
        // Usually padded, sometimes not (the last attribute of a nest may lack padding).
        if rng.below(8) != 0 {
            out.resize(out.len().next_multiple_of(4), 0);
        }
    }
    out
}

fn framed(rng: &mut Rng) -> Vec<u8> {
    let mut msg = vec![0; 16];
    msg[4..6].copy_from_slice(&0x1c_u16.to_ne_bytes());
    msg.extend([u8::try_from(rng.below(20)).unwrap(), 1, 0, 0]);
    msg.extend(random_attrs(rng, 0));
    let len = u32::try_from(msg.len()).unwrap();
    msg[..4].copy_from_slice(&len.to_ne_bytes());
    if rng.below(10) == 0 {
        mutate(rng, &mut msg);
    }
    msg
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
                Request::from_message(&request.to_message(), dump).unwrap(),
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

fn exercise(input: &[u8]) {
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
    if let Ok(mut msg) = decode_message::<PmMessage>(input) {
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        assert_eq!(
            decode_message::<PmMessage>(&buf).expect("re-encoded message decodes"),
            msg
        );
    }
    if let Ok(mut msg) = decode_message::<PmEvent>(input) {
        msg.finalize();
        let mut buf = vec![0; msg.buffer_len()];
        msg.serialize(&mut buf);
        assert_eq!(
            decode_message::<PmEvent>(&buf).expect("re-encoded event decodes"),
            msg
        );
    }
}

#[test]
fn decoders_survive_random_and_mutated_input() {
    let corpus: Vec<Vec<u8>> = all_fixtures().into_iter().map(|(_, bytes)| bytes).collect();
    let mut rng = Rng(0x6d70_7463_7064_2d72); // "mptcpd-r"
    let mut decoded = 0_usize;
    for _ in 0..ROUNDS {
        let len = rng.below(129);
        exercise(&rng.bytes(len));

        let mut input = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &mut input);
        exercise(&input);

        let input = framed(&mut rng);
        decoded += usize::from(decode_message::<PmMessage>(&input).is_ok());
        exercise(&input);
    }
    // The framed generator must reach the attribute decoders, not stop at the header.
    assert!(
        decoded > ROUNDS / 10,
        "only {decoded} framed inputs decoded"
    );
}

/// A nest whose re-encoding (which pads its last attribute) would no longer fit the `u16`
/// length must be refused rather than wrap.
#[test]
fn oversized_nest_is_an_error() {
    let mut nest = Vec::new();
    // One padded attribute of 65524 bytes, then an unpadded u8 `ID`: 65529 bytes, which
    // re-encode to 65532, one more than an attribute can hold.
    nest.extend(65_524_u16.to_ne_bytes());
    nest.extend(100_u16.to_ne_bytes());
    nest.resize(65_524, 0);
    nest.extend([5, 0, 2, 0, 1]);
    let mut payload = Vec::new();
    payload.extend(u16::try_from(4 + nest.len()).unwrap().to_ne_bytes());
    payload.extend(0x8001_u16.to_ne_bytes());
    payload.extend(&nest);
    let header = GenlHeader { cmd: 3, version: 1 };
    assert!(PmMessage::parse_with_param(&payload, header).is_err());
    // Three bytes less, and it fits.
    nest.truncate(65_520);
    nest[..2].copy_from_slice(&65_520_u16.to_ne_bytes());
    nest.extend([5, 0, 2, 0, 1]);
    let mut payload = Vec::new();
    payload.extend(u16::try_from(4 + nest.len()).unwrap().to_ne_bytes());
    payload.extend(0x8001_u16.to_ne_bytes());
    payload.extend(&nest);
    let msg = PmMessage::parse_with_param(&payload, header).unwrap();
    check_message(&msg, header);
}
