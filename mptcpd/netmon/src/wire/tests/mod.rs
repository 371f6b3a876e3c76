//! Tests of the wire format: messages captured from the kernel, the monitor's requests to the
//! byte, and malformed input (`tests/fuzz` fuzzes the decoder).

mod fixtures;
mod malformed;

use std::path::PathBuf;

use netlink_packet_core::NetlinkMessage;

use super::RtMessage;

/// The directory of the captured fixtures (see its README.md).
fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The bytes of fixture `name`.
fn fixture(name: &str) -> Vec<u8> {
    mptcpd_hex_fixtures::read(&fixture_dir(), name)
}

/// Every fixture, by name, sorted.
fn all_fixtures() -> Vec<(String, Vec<u8>)> {
    mptcpd_hex_fixtures::all(&fixture_dir())
}

/// Fixture `name` decoded as the monitor's sockets decode it.
fn message(name: &str) -> NetlinkMessage<RtMessage> {
    NetlinkMessage::deserialize(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `message` with its header completed and encoded, as netlink-proto sends it.
fn encode(mut message: NetlinkMessage<RtMessage>) -> Vec<u8> {
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}
