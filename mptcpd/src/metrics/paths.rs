//! Per-path figures: the live subflows of [`crate::connections::Connections`] summed per local
//! address and interface at each scrape, with counters that stay monotonic when subflows
//! close (what a closed subflow counted is kept in its path's totals).
//!
//! The RTT histogram is observed at scrape time: each scrape adds one observation per live
//! subflow with figures (its smoothed RTT then). Its `_count` grows by the number of such
//! subflows per scrape, so it describes the RTTs of the paths as sampled at the scrapes.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use mptcpd_plugin::{PathFigures, Token};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::histogram::{Histogram, exponential_buckets},
};

/// A path's labels: the local address and its interface (never a connection or a token).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, EncodeLabelSet)]
pub(crate) struct PathLabels {
    /// The local IP address, without the port.
    pub(crate) address: String,
    /// The interface's name; empty when neither the kernel nor the addresses say.
    pub(crate) interface: String,
}

/// One subflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SubflowKey {
    pub(crate) token: Token,
    pub(crate) local: SocketAddr,
    pub(crate) remote: SocketAddr,
}

/// A live subflow as a scrape sees it.
#[derive(Debug, Clone)]
pub(crate) struct LiveSubflow {
    pub(crate) key: SubflowKey,
    pub(crate) path: PathLabels,
    /// `None` while telemetry has no record of it.
    pub(crate) figures: Option<PathFigures>,
}

/// The counters of a path (or of one subflow).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) bytes_acked: u64,
    pub(crate) bytes_received: u64,
    pub(crate) retransmissions: u64,
    pub(crate) rtos: u64,
}

impl Totals {
    fn of(figures: &PathFigures) -> Self {
        Self {
            bytes_acked: figures.bytes_acked,
            bytes_received: figures.bytes_received,
            retransmissions: figures.retransmissions.into(),
            rtos: figures.rtos.into(),
        }
    }

    fn add(&mut self, other: &Self) {
        let Self {
            bytes_acked,
            bytes_received,
            retransmissions,
            rtos,
        } = other;
        self.bytes_acked = self.bytes_acked.saturating_add(*bytes_acked);
        self.bytes_received = self.bytes_received.saturating_add(*bytes_received);
        self.retransmissions = self.retransmissions.saturating_add(*retransmissions);
        self.rtos = self.rtos.saturating_add(*rtos);
    }

    /// What of `before` a counter that went back (a new subflow under the same key) would
    /// lose: the fields of `before` that are above `now`'s.
    fn lost_by_going_back(before: &Self, now: &Self) -> Self {
        let keep = |b: u64, n: u64| if n < b { b } else { 0 };
        Self {
            bytes_acked: keep(before.bytes_acked, now.bytes_acked),
            bytes_received: keep(before.bytes_received, now.bytes_received),
            retransmissions: keep(before.retransmissions, now.retransmissions),
            rtos: keep(before.rtos, now.rtos),
        }
    }
}

/// One path's figures at a scrape.
#[derive(Debug)]
pub(crate) struct PathRow<'a> {
    pub(crate) subflows: u64,
    /// The counters and RTTs, once telemetry gave figures for a subflow of the path (without
    /// telemetry, none are exported rather than zeros).
    pub(crate) measured: Option<(Totals, &'a Histogram)>,
}

/// The state kept between scrapes. Its size is bounded by the live subflows and the paths
/// (address and interface pairs) seen since the daemon started.
#[derive(Debug, Default)]
pub(crate) struct Paths {
    /// Each live subflow's path and counters at the last scrape that had its figures.
    seen: HashMap<SubflowKey, (PathLabels, Totals)>,
    /// What subflows no longer live counted, per path.
    gone: BTreeMap<PathLabels, Totals>,
    /// Smoothed RTTs, seconds, per path.
    rtt: BTreeMap<PathLabels, Histogram>,
}

/// RTT buckets: 0.5 ms to 4.1 s, doubling.
fn rtt_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

impl Paths {
    /// Takes in the live subflows now; returns every path seen so far, by labels.
    pub(crate) fn scrape(&mut self, live: &[LiveSubflow]) -> BTreeMap<PathLabels, PathRow<'_>> {
        let mut seen = HashMap::with_capacity(live.len());
        let mut subflows: BTreeMap<PathLabels, u64> = BTreeMap::new();
        for sub in live {
            *subflows.entry(sub.path.clone()).or_default() += 1;
            let before = self.seen.remove(&sub.key);
            let Some(figures) = &sub.figures else {
                // No record now (telemetry evicted it): keep what it counted until it returns.
                if let Some(before) = before {
                    seen.insert(sub.key, before);
                }
                continue;
            };
            let now = Totals::of(figures);
            if let Some((path, before)) = before {
                let lost = if path == sub.path {
                    Totals::lost_by_going_back(&before, &now)
                } else {
                    before
                };
                self.gone.entry(path).or_default().add(&lost);
            }
            let rtt = self
                .rtt
                .entry(sub.path.clone())
                .or_insert_with(rtt_histogram);
            if figures.srtt_us > 0 {
                rtt.observe(f64::from(figures.srtt_us) / 1e6);
            }
            seen.insert(sub.key, (sub.path.clone(), now));
        }
        // The subflows that closed since the last scrape.
        for (path, before) in std::mem::replace(&mut self.seen, seen).into_values() {
            self.gone.entry(path).or_default().add(&before);
        }
        let mut live_totals: HashMap<&PathLabels, Totals> = HashMap::new();
        for (path, totals) in self.seen.values() {
            live_totals.entry(path).or_default().add(totals);
        }
        // Every path measured (a subflow had figures; `gone` only holds such) or with subflows.
        let mut rows: BTreeMap<PathLabels, PathRow<'_>> = self
            .rtt
            .iter()
            .map(|(path, rtt)| {
                let mut totals = self.gone.get(path).copied().unwrap_or_default();
                totals.add(&live_totals.get(path).copied().unwrap_or_default());
                let row = PathRow {
                    subflows: 0,
                    measured: Some((totals, rtt)),
                };
                (path.clone(), row)
            })
            .collect();
        for (path, n) in subflows {
            rows.entry(path)
                .or_insert(PathRow {
                    subflows: 0,
                    measured: None,
                })
                .subflows = n;
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use mptcpd_plugin::PathFigures;

    use super::{LiveSubflow, PathLabels, Paths, SubflowKey, Totals};

    fn path(address: &str, interface: &str) -> PathLabels {
        PathLabels {
            address: address.to_owned(),
            interface: interface.to_owned(),
        }
    }

    fn sub(token: u32, port: u16, path: &PathLabels, figures: Option<(u64, u32)>) -> LiveSubflow {
        LiveSubflow {
            key: SubflowKey {
                token,
                local: format!("{}:{port}", path.address).parse().unwrap(),
                remote: "198.51.100.2:80".parse().unwrap(),
            },
            path: path.clone(),
            figures: figures.map(|(bytes, srtt_us)| {
                PathFigures::new(srtt_us, 0, 0, 10, bytes, 2 * bytes, 1, 0)
            }),
        }
    }

    /// (subflows, bytes acked, RTT observations) per path; `u64::MAX`: not measured.
    fn rows(paths: &mut Paths, live: &[LiveSubflow]) -> Vec<(PathLabels, u64, u64, u64)> {
        paths
            .scrape(live)
            .into_iter()
            .map(|(p, row)| {
                let (acked, rtts) = row.measured.map_or((u64::MAX, u64::MAX), |(t, rtt)| {
                    (t.bytes_acked, rtt.count())
                });
                (p, row.subflows, acked, rtts)
            })
            .collect()
    }

    #[test]
    fn counters_keep_what_closed_subflows_counted_and_gauges_follow_the_live_ones() {
        let eth0 = path("192.0.2.1", "eth0");
        let eth1 = path("203.0.113.1", "eth1");
        let lo = path("127.0.0.1", "lo");
        let mut paths = Paths::default();
        assert_eq!(rows(&mut paths, &[]), []);
        assert_eq!(
            rows(&mut paths, &[sub(3, 4003, &lo, None)]),
            [(lo.clone(), 1, u64::MAX, u64::MAX)],
            "without figures: the subflows only"
        );
        let live = [
            sub(1, 4000, &eth0, Some((100, 20_000))),
            sub(1, 4001, &eth1, Some((50, 0))),
            sub(2, 4002, &eth0, None),
        ];
        assert_eq!(
            rows(&mut paths, &live),
            [(eth0.clone(), 2, 100, 1), (eth1.clone(), 1, 50, 0)],
            "no RTT observed before the kernel measured one, nor without figures"
        );
        // Connection 1's eth0 subflow closes after 150 bytes; eth1 moves on; 2 gets figures.
        let live = [
            sub(1, 4001, &eth1, Some((70, 30_000))),
            sub(2, 4002, &eth0, Some((5, 1_000))),
        ];
        paths.scrape(&[
            sub(1, 4000, &eth0, Some((150, 20_000))),
            live[0].clone(),
            live[1].clone(),
        ]);
        assert_eq!(
            rows(&mut paths, &live),
            [(eth0.clone(), 1, 155, 4), (eth1.clone(), 1, 70, 2)]
        );
        // Everything closes: the gauges drop to 0, the counters stay.
        assert_eq!(rows(&mut paths, &[]), [(eth0, 0, 155, 4), (eth1, 0, 70, 2)]);
    }

    #[test]
    fn a_subflow_without_figures_for_a_while_is_not_counted_twice_and_a_reset_is_not_lost() {
        let eth0 = path("192.0.2.1", "eth0");
        let mut paths = Paths::default();
        paths.scrape(&[sub(1, 4000, &eth0, Some((100, 0)))]);
        assert_eq!(
            rows(&mut paths, &[sub(1, 4000, &eth0, None)]),
            [(eth0.clone(), 1, 100, 0)]
        );
        assert_eq!(
            rows(&mut paths, &[sub(1, 4000, &eth0, Some((120, 0)))]),
            [(eth0.clone(), 1, 120, 0)]
        );
        // The same key with smaller counters: a new subflow; the old one's count stays.
        assert_eq!(
            rows(&mut paths, &[sub(1, 4000, &eth0, Some((10, 0)))]),
            [(eth0, 1, 130, 0)]
        );
        let mut totals = Totals::default();
        totals.add(&Totals {
            bytes_acked: u64::MAX,
            ..Totals::default()
        });
        totals.add(&Totals {
            bytes_acked: 1,
            ..Totals::default()
        });
        assert_eq!(totals.bytes_acked, u64::MAX, "saturates");
    }
}
