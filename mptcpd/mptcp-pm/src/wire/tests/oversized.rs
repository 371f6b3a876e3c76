//! Attribute nests at the edge of what a `u16` length holds, checked exactly (the `pm` fuzz
//! target in `tests/fuzz` exercises the decoders at large).

use netlink_packet_core::{Emitable as _, ParseableParametrized as _};
use netlink_packet_generic::GenlHeader;

use crate::wire::PmMessage;

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
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    assert_eq!(PmMessage::parse_with_param(&buf, header).unwrap(), msg);
}
