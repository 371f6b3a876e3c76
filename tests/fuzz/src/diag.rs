//! `diag`: a datagram of a `sock_diag` dump reply (`mptcp_diag`, what the daemon reads after
//! lost events). Checked: every message that decodes encodes back to the same message, and
//! reading its connection, or its subflow (a TCP dump's `INET_DIAG_ULP_INFO`), does not panic.

use mptcpd::diag::wire::{DiagMsg, read_reply};

/// The fuzz target.
///
/// # Panics
/// On a finding: a property that does not hold.
pub fn run(input: &[u8]) {
    let mut messages = Vec::new();
    let _end = read_reply(input, &mut messages);
    for message in messages {
        let again = DiagMsg::decode(&message.encode()).expect("what decoded encodes back");
        assert_eq!(again, message);
        let _socket = message.socket();
        let _subflow = message.subflow();
    }
}

/// Every reply captured from the kernel (`mptcpd/tests/fixtures/diag/*.hex`).
#[must_use]
pub fn seeds() -> Vec<Vec<u8>> {
    crate::hex_fixtures("mptcpd/tests/fixtures/diag")
}
