//! A namespace's in-kernel endpoint table as `ip mptcp endpoint show` prints it, without the
//! ids: two daemons number the same endpoints differently, so tables compare as sets of
//! (address, flags, device).

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    time::{Duration, Instant},
};

use anyhow::bail;

use crate::{daemon::process::LIVENESS, interrupt, net::netns::NetNs};

/// One endpoint, id left out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// The address, as `ip` prints it.
    pub addr: String,
    /// The flags, sorted (`backup subflow`).
    pub flags: String,
    /// The device it is bound to, if any.
    pub dev: Option<String>,
}

impl Entry {
    /// An entry from its parts; `flags` in any order, space-separated.
    #[must_use]
    pub fn new(addr: &str, flags: &str, dev: Option<&str>) -> Self {
        let flags: BTreeSet<&str> = flags.split_whitespace().collect();
        Self {
            addr: addr.to_owned(),
            flags: flags.into_iter().collect::<Vec<_>>().join(" "),
            dev: dev.map(str::to_owned),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.addr, self.flags)?;
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        Ok(())
    }
}

/// An endpoint table, ids left out.
pub type Table = BTreeSet<Entry>;

/// Parses `ip mptcp endpoint show` (`ADDR [port P] id N FLAGS... [dev DEV]` per line).
#[must_use]
pub fn parse(shown: &str) -> Table {
    let mut table = Table::new();
    for line in shown.lines() {
        let mut words = line.split_whitespace();
        let Some(addr) = words.next() else {
            continue;
        };
        let mut flags = Vec::new();
        let mut dev = None;
        while let Some(word) = words.next() {
            match word {
                "id" => {
                    let _id = words.next();
                }
                "dev" => dev = words.next(),
                "port" => {
                    if let Some(port) = words.next() {
                        flags.push(format!("port={port}"));
                    }
                }
                flag => flags.push(flag.to_owned()),
            }
        }
        table.insert(Entry::new(addr, &flags.join(" "), dev));
    }
    table
}

/// The table of `netns` now.
pub fn show(netns: &NetNs) -> anyhow::Result<Table> {
    Ok(parse(&netns.ip(&["mptcp", "endpoint", "show"])?))
}

/// The table of `netns` now, by id (where ids matter: an endpoint kept, not added again).
pub fn show_by_id(netns: &NetNs) -> anyhow::Result<BTreeMap<u8, Entry>> {
    let shown = netns.ip(&["mptcp", "endpoint", "show"])?;
    let mut table = BTreeMap::new();
    for line in shown.lines() {
        let mut words = line.split_whitespace().skip_while(|w| *w != "id");
        let id = words.nth(1).and_then(|id| id.parse().ok());
        if let (Some(id), Some(entry)) = (id, parse(line).pop_first()) {
            table.insert(id, entry);
        }
    }
    Ok(table)
}

/// Polls the table of `netns` until `done` holds; fails with the last table after the hang
/// limit ([`LIVENESS`]), a bound on a hang and not a timing expectation.
pub fn wait_until(
    netns: &NetNs,
    what: &str,
    done: impl Fn(&Table) -> bool,
) -> anyhow::Result<Table> {
    let deadline = Instant::now() + LIVENESS;
    loop {
        let table = show(netns)?;
        if done(&table) {
            return Ok(table);
        }
        interrupt::check()?;
        if Instant::now() > deadline {
            bail!(
                "{what}: not reached; the endpoints are:\n{}",
                display(&table)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One entry a line, for messages.
#[must_use]
pub fn display(table: &Table) -> String {
    if table.is_empty() {
        return "  (none)".to_owned();
    }
    table
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::{Entry, parse};

    #[test]
    fn parses_ip_output_without_ids() {
        let table = parse(
            "10.9.0.1 id 1 subflow backup dev a0 \n\
             2001:db8::1 id 7 signal \n\
             10.9.0.3 port 1000 id 3 signal dev a1 \n",
        );
        let expected = [
            Entry::new("10.9.0.1", "subflow backup", Some("a0")),
            Entry::new("2001:db8::1", "signal", None),
            Entry::new("10.9.0.3", "signal port=1000", Some("a1")),
        ];
        assert_eq!(table, expected.into_iter().collect());
    }
}
