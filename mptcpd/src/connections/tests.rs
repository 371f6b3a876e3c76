//! The shared handle: how often it reads its sources, and the fallback events it reports.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use mptcp_pm::{Connection, Event, EventFlags};
use mptcpd_bpf::EbpfError;
use mptcpd_common::telemetry::SubflowRecord;
use mptcpd_plugin::TelemetryKind;

use super::{Connections, RecordSource, SocketSource};
use crate::diag::{DiagError, InfoFlags, MptcpSocket, wire::state};

/// Counts its reads; its sockets fell back to TCP.
#[derive(Default)]
struct Counting {
    reads: AtomicUsize,
}

impl RecordSource for Counting {
    fn records(&self) -> Result<Vec<SubflowRecord>, EbpfError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(Vec::new())
    }
}

impl SocketSource for Counting {
    fn sockets(&self) -> Result<Vec<MptcpSocket>, DiagError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok((1..=3)
            .map(|token| MptcpSocket {
                state: state::ESTABLISHED,
                local: "192.0.2.1:1000".parse().unwrap(),
                remote: "198.51.100.2:80".parse().unwrap(),
                token,
                flags: InfoFlags::FALLBACK,
                orphan: false,
                retransmits: Some(0),
                bytes_retrans: Some(0),
                fully_established: None,
            })
            .collect())
    }
}

#[test]
fn each_read_walks_each_source_once_and_a_fallback_is_reported_once() {
    let connections = Connections::new();
    let mut events = connections.take_events().unwrap();
    assert!(connections.take_events().is_none(), "once only");
    for token in 1..=3 {
        connections.on_pm_event(&Event::Created(Connection {
            token,
            local: format!("192.0.2.1:{}", 1000 + token).parse().unwrap(),
            remote: "198.51.100.2:80".parse().unwrap(),
            local_id: Some(0),
            remote_id: Some(0),
            flags: EventFlags::empty(),
        }));
    }
    let (records, sockets) = (Arc::new(Counting::default()), Arc::new(Counting::default()));
    connections.set_record_source(Some(records.clone()));
    connections.set_socket_source(Some(sockets.clone()));
    let reads = || {
        (
            records.reads.load(Ordering::Relaxed),
            sockets.reads.load(Ordering::Relaxed),
        )
    };

    let all = connections.all();
    assert_eq!(all.len(), 3);
    assert_eq!(
        reads(),
        (1, 1),
        "one walk and one dump for three connections"
    );
    assert!(all.iter().all(|v| v.mptcp.is_some_and(|m| m.fallback)));
    assert!(connections.get(9).is_none());
    assert_eq!(reads(), (1, 1), "nothing read for an unknown connection");
    assert!(connections.get(2).is_some());
    assert_eq!(reads(), (2, 2));

    let mut fallbacks = Vec::new();
    while let Ok(event) = events.try_recv() {
        assert_eq!(event.kind, TelemetryKind::Fallback);
        fallbacks.push(event.token);
    }
    assert_eq!(fallbacks, [1, 2, 3], "once per connection, over both reads");

    // Telemetry off: no more reads of the records.
    connections.set_record_source(None);
    let _views = connections.all();
    assert_eq!(reads(), (2, 3));
}
