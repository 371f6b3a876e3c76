//! The plugins' path-health decisions as the daemon keeps them for operators: the latest per
//! local address (D-Bus, `mptcpctl connections`: why a subflow is backup) and a count per
//! plugin and outcome (metrics).

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use mptcpd_plugin::{PathDecision, PathHealth};

/// Decisions reported through [`mptcpd_plugin::PathManager::report_decision`]; a clone shares
/// them (the plugin handle records, the metrics and D-Bus read).
#[derive(Debug, Clone, Default)]
pub struct Decisions(Arc<Mutex<Log>>);

/// Told of every decision (the D-Bus `PathDecision` signal); must not wait.
type Observer = Box<dyn Fn(&PathDecision) + Send>;

#[derive(Default)]
struct Log {
    latest: HashMap<IpAddr, PathDecision>,
    counts: BTreeMap<(&'static str, PathHealth), u64>,
    observer: Option<Observer>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("latest", &self.latest)
            .field("counts", &self.counts)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Decisions {
    fn log(&self) -> MutexGuard<'_, Log> {
        // Nothing panics while holding it; the maps stay consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on, `observer` is told of every decision recorded (it must not wait).
    pub fn observe(&self, observer: impl Fn(&PathDecision) + Send + 'static) {
        self.log().observer = Some(Box::new(observer));
    }

    /// Records a decision: the latest of its address, counted, told to the observer.
    pub fn record(&self, decision: PathDecision) {
        let mut log = self.log();
        if let Some(observer) = &log.observer {
            observer(&decision);
        }
        *log.counts
            .entry((decision.plugin, decision.to))
            .or_default() += 1;
        log.latest.insert(decision.addr.to_canonical(), decision);
    }

    /// The latest decision about `addr`, if any plugin made one.
    #[must_use]
    pub fn latest(&self, addr: IpAddr) -> Option<PathDecision> {
        self.log().latest.get(&addr.to_canonical()).cloned()
    }

    /// An address's health as last judged (healthy when never judged).
    #[must_use]
    pub fn health(&self, addr: IpAddr) -> PathHealth {
        self.latest(addr).map_or(PathHealth::Healthy, |d| d.to)
    }

    /// The latest decision of every address judged, by address.
    #[must_use]
    pub fn all_latest(&self) -> Vec<PathDecision> {
        let mut all: Vec<PathDecision> = self.log().latest.values().cloned().collect();
        all.sort_by_key(|d| d.addr);
        all
    }

    /// How many decisions each plugin made, per outcome.
    #[must_use]
    pub fn counts(&self) -> Vec<((&'static str, PathHealth), u64)> {
        self.log().counts.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(addr: &str, to: PathHealth) -> PathDecision {
        PathDecision {
            plugin: "health",
            addr: addr.parse().unwrap(),
            from: PathHealth::Healthy,
            to,
            reason: "r".into(),
            action: "a".into(),
        }
    }

    #[test]
    fn the_observer_hears_every_decision() {
        let d = Decisions::default();
        let heard = Arc::new(Mutex::new(Vec::new()));
        let ear = Arc::clone(&heard);
        d.observe(move |decision| ear.lock().unwrap().push(decision.to));
        d.record(decision("192.0.2.1", PathHealth::Degraded));
        d.record(decision("192.0.2.1", PathHealth::Dead));
        assert_eq!(
            *heard.lock().unwrap(),
            [PathHealth::Degraded, PathHealth::Dead]
        );
    }

    #[test]
    fn keeps_the_latest_per_address_and_counts_every_one() {
        let d = Decisions::default();
        assert_eq!(d.health("192.0.2.1".parse().unwrap()), PathHealth::Healthy);
        d.record(decision("192.0.2.1", PathHealth::Degraded));
        d.record(decision("::ffff:192.0.2.1", PathHealth::Dead));
        d.record(decision("198.51.100.1", PathHealth::Degraded));
        assert_eq!(d.health("192.0.2.1".parse().unwrap()), PathHealth::Dead);
        assert_eq!(d.all_latest().len(), 2);
        assert_eq!(
            d.counts(),
            [
                (("health", PathHealth::Degraded), 2),
                (("health", PathHealth::Dead), 1)
            ]
        );
    }
}
