//! The monitor's logic, without I/O: decoded link, address and route inputs go in, events and
//! route lookups to perform come out.
//!
//! An address is reported ([`NetEvent::NewLocalAddress`]) while all of these hold, and
//! withdrawn ([`NetEvent::DeleteLocalAddress`]) as soon as one stops holding:
//! - its interface is reported, that is ready (up and running) and not hidden by
//!   `skip_loopback`;
//! - it passes the notify filters and is usable (duplicate address detection is over);
//! - it was not present at start-up, unless `existing` is set or it carries an endpoint
//!   adopted from a previous run ([`Input::Adopted`]);
//! - with `check_route`, the last route lookup found a default route through its interface.
//!
//! Unlike the C daemon, addresses are withdrawn before their interface goes down or away
//! (C issues #334 and #282), and route lookups are repeated whenever routes change instead of
//! giving up after 30 ms.

use std::{collections::BTreeMap, net::IpAddr};

use tracing::debug;

use super::{
    flags::NotifyFlags,
    model::{Family, Interface, LocalAddress, NetEvent},
    policy::AddressFilter,
};

/// One decoded kernel notification, dump entry or lookup result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A full dump of links and addresses begins; what it does not mention is gone.
    DumpStarted,
    /// The dump ended. The first one ends start-up: addresses seen after it are new.
    DumpFinished,
    /// `RTM_NEWLINK`: a link appeared or changed.
    NewLink(Interface),
    /// `RTM_DELLINK`.
    DelLink {
        /// Index of the link that went away.
        index: u32,
    },
    /// `RTM_NEWADDR`: an address appeared or changed (flags, lifetimes).
    NewAddress(LocalAddress),
    /// `RTM_DELADDR`.
    DelAddress(LocalAddress),
    /// A route that could decide a default-route lookup changed, or routes may have been
    /// flushed without notice.
    RoutesChanged(Family),
    /// An address present at start-up carries an endpoint a previous run of the daemon added
    /// (adopted): report it even without `existing`, as that run did. `None`: the address
    /// on any interface.
    Adopted {
        /// The interface the endpoint is bound to.
        ifindex: Option<u32>,
        /// The endpoint's address.
        addr: IpAddr,
    },
    /// The answer to an [`Output::CheckRoute`].
    RouteChecked {
        /// The lookup as it was asked for.
        check: RouteCheck,
        /// Whether a default route leaves through the address's interface.
        routable: bool,
    },
}

/// What the state machine asks of its driver, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Deliver this event.
    Event(NetEvent),
    /// Look up the default route through `check.ifindex` and answer with
    /// [`Input::RouteChecked`].
    CheckRoute(RouteCheck),
}

/// A default-route lookup for one address; `id` tells a current answer from a stale one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteCheck {
    /// Identifies this lookup; answers to older lookups of the same address are ignored.
    pub id: u64,
    /// The interface the route must leave through.
    pub ifindex: u32,
    /// The address the lookup is for (its family picks the route table).
    pub addr: IpAddr,
}

/// What the last route lookup said about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Not asked yet (or the answer no longer applies).
    Unchecked,
    /// Lookup `id` is under way.
    Pending(u64),
    Routable,
    Unroutable,
}

#[derive(Debug)]
struct Link {
    info: Interface,
    /// A `NewInterface` was delivered and no `DeleteInterface` since.
    reported: bool,
    /// The dump epoch in which the kernel last mentioned it.
    seen: u64,
}

#[derive(Debug)]
struct Addr {
    info: LocalAddress,
    /// Present at start-up without `existing`: never reported.
    suppressed: bool,
    route: Route,
    /// A `NewLocalAddress` was delivered and no `DeleteLocalAddress` since.
    reported: bool,
    seen: u64,
}

/// Links and addresses by index, and which of them the daemon has been told about.
#[derive(Debug)]
pub struct NetState {
    flags: NotifyFlags,
    filter: AddressFilter,
    links: BTreeMap<u32, Link>,
    /// Keyed by interface and address: the same address may sit on two interfaces.
    addrs: BTreeMap<(u32, IpAddr), Addr>,
    /// The first dump has finished.
    started: bool,
    epoch: u64,
    next_check: u64,
}

impl NetState {
    /// An empty state that filters with `flags`.
    #[must_use]
    pub const fn new(flags: NotifyFlags) -> Self {
        Self {
            flags,
            filter: AddressFilter {
                interfaces: Vec::new(),
                skip_interfaces: Vec::new(),
                skip_addresses: Vec::new(),
            },
            links: BTreeMap::new(),
            addrs: BTreeMap::new(),
            started: false,
            epoch: 0,
            next_check: 0,
        }
    }

    /// The flags this state filters with.
    #[must_use]
    pub const fn flags(&self) -> NotifyFlags {
        self.flags
    }

    /// Filters later decisions with `flags`, except `check_route`, which keeps its start-up
    /// value (the monitor subscribes to route notifications at start only).
    pub fn set_flags(&mut self, flags: NotifyFlags) {
        self.flags = flags.difference(NotifyFlags::CHECK_ROUTE)
            | self.flags.intersection(NotifyFlags::CHECK_ROUTE);
    }

    /// Filters with `filter` from now on, and re-evaluates every link and address at once:
    /// what it now refuses is withdrawn, what it now allows is reported (a reload).
    pub fn set_filter(&mut self, filter: AddressFilter) -> Vec<Output> {
        let mut out = Vec::new();
        if filter == self.filter {
            return out;
        }
        self.filter = filter;
        let indexes: Vec<u32> = self.links.keys().copied().collect();
        for index in indexes {
            self.reconcile_link(index, false, &mut out);
        }
        let keys: Vec<_> = self.addrs.keys().copied().collect();
        for key in keys {
            self.reconcile_addr(key, &mut out);
        }
        out
    }

    /// The address policy this state filters with.
    #[must_use]
    pub const fn filter(&self) -> &AddressFilter {
        &self.filter
    }

    /// Whether the first dump has finished.
    #[must_use]
    pub const fn started(&self) -> bool {
        self.started
    }

    /// The interfaces reported and not withdrawn, by index.
    pub fn interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.links
            .values()
            .filter(|link| link.reported)
            .map(|link| &link.info)
    }

    /// The addresses reported and not withdrawn, by interface index then address.
    pub fn addresses(&self) -> impl Iterator<Item = &LocalAddress> {
        self.addrs
            .values()
            .filter(|addr| addr.reported)
            .map(|addr| &addr.info)
    }

    /// Applies one input and returns what to do about it, in order.
    pub fn apply(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::DumpStarted => self.epoch = self.epoch.wrapping_add(1),
            Input::DumpFinished => self.finish_dump(&mut out),
            Input::NewLink(info) => self.new_link(info, &mut out),
            Input::DelLink { index } => self.del_link(index, &mut out),
            Input::NewAddress(addr) => self.new_address(addr, &mut out),
            Input::DelAddress(addr) => self.del_address(&addr, &mut out),
            Input::RoutesChanged(family) => self.recheck(family, &mut out),
            Input::Adopted { ifindex, addr } => self.adopted(ifindex, addr, &mut out),
            Input::RouteChecked { check, routable } => {
                self.route_checked(check, routable, &mut out);
            }
        }
        out
    }

    /// Whether a link in this state should be reported as an interface.
    /// The loopback interface never carries a path: like the C daemon, it is not reported at
    /// all, whatever the flags (`skip_loopback` is about host-scope addresses elsewhere).
    /// Neither is an interface the policy excludes by name.
    fn shows(&self, info: &Interface) -> bool {
        info.is_ready() && !info.is_loopback() && self.filter.allows_interface(&info.name)
    }

    fn new_link(&mut self, info: Interface, out: &mut Vec<Output>) {
        let index = info.index;
        let epoch = self.epoch;
        let link = self.links.entry(index).or_insert_with(|| Link {
            info: info.clone(),
            reported: false,
            seen: epoch,
        });
        let changed = link.info != info;
        link.info = info;
        link.seen = epoch;
        self.reconcile_link(index, changed, out);
    }

    /// Brings a link's reported state (and its addresses') in line with what it should be;
    /// `changed`: a reported link changed and plugins hear of it.
    fn reconcile_link(&mut self, index: u32, changed: bool, out: &mut Vec<Output>) {
        let Some(shows) = self.links.get(&index).map(|link| self.shows(&link.info)) else {
            return;
        };
        let Some(link) = self.links.get_mut(&index) else {
            return;
        };
        match (link.reported, shows) {
            (false, true) => {
                link.reported = true;
                out.push(Output::Event(NetEvent::NewInterface(link.info.clone())));
                self.reconcile_link_addrs(index, out);
            }
            (true, true) => {
                if changed {
                    out.push(Output::Event(NetEvent::UpdateInterface(link.info.clone())));
                }
            }
            (true, false) => {
                link.reported = false;
                let info = link.info.clone();
                self.reconcile_link_addrs(index, out);
                out.push(Output::Event(NetEvent::DeleteInterface(info)));
            }
            (false, false) => {}
        }
    }

    fn del_link(&mut self, index: u32, out: &mut Vec<Output>) {
        let Some(link) = self.links.get_mut(&index) else {
            debug!(index, "deleted link was not known");
            return;
        };
        if link.reported {
            link.reported = false;
            let info = link.info.clone();
            self.reconcile_link_addrs(index, out);
            out.push(Output::Event(NetEvent::DeleteInterface(info)));
        }
        self.links.remove(&index);
        // The kernel deletes them too; forget them so a new link with this index starts clean.
        self.addrs.retain(|&(ifindex, _), _| ifindex != index);
    }

    fn new_address(&mut self, info: LocalAddress, out: &mut Vec<Output>) {
        let key = (info.ifindex, info.addr);
        let suppressed = !self.started && !self.flags.contains(NotifyFlags::EXISTING);
        let epoch = self.epoch;
        if let Some(addr) = self.addrs.get_mut(&key) {
            addr.seen = epoch;
            if addr.info.prefix_len != info.prefix_len {
                // IPv4 allows one address with two prefixes; the first one stands for both.
                debug!(address = %info.addr, prefix = info.prefix_len, "second prefix ignored");
                return;
            }
            addr.info = info;
        } else {
            self.addrs.insert(
                key,
                Addr {
                    info,
                    suppressed,
                    route: Route::Unchecked,
                    reported: false,
                    seen: epoch,
                },
            );
        }
        self.reconcile_addr(key, out);
    }

    fn adopted(&mut self, ifindex: Option<u32>, addr: IpAddr, out: &mut Vec<Output>) {
        let keys: Vec<_> = self
            .addrs
            .iter()
            .filter(|&(&(index, a), entry)| {
                a == addr && entry.suppressed && ifindex.is_none_or(|i| i == index)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            if let Some(entry) = self.addrs.get_mut(&key) {
                entry.suppressed = false;
            }
            self.reconcile_addr(key, out);
        }
    }

    fn del_address(&mut self, info: &LocalAddress, out: &mut Vec<Output>) {
        let key = (info.ifindex, info.addr);
        match self.addrs.get(&key) {
            None => debug!(address = %info.addr, "deleted address was not known"),
            Some(addr) if addr.info.prefix_len != info.prefix_len => {
                debug!(address = %info.addr, prefix = info.prefix_len, "other prefix deleted");
            }
            Some(_) => self.forget_addr(key, out),
        }
        // Deleting an address flushes the routes through it without a notification.
        self.recheck(info.family(), out);
    }

    /// Removes an address, withdrawing it first if it was reported.
    fn forget_addr(&mut self, key: (u32, IpAddr), out: &mut Vec<Output>) {
        if let Some(addr) = self.addrs.remove(&key)
            && addr.reported
        {
            self.push_address_event(false, &addr.info, out);
        }
    }

    fn reconcile_link_addrs(&mut self, index: u32, out: &mut Vec<Output>) {
        let keys: Vec<_> = self
            .addrs
            .range((index, IpAddr::from([0_u8; 4]))..)
            .take_while(|((ifindex, _), _)| *ifindex == index)
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            self.reconcile_addr(key, out);
        }
    }

    /// Brings one address's reported state in line with what it should be.
    fn reconcile_addr(&mut self, key: (u32, IpAddr), out: &mut Vec<Output>) {
        let flags = self.flags;
        let Some(addr) = self.addrs.get_mut(&key) else {
            return;
        };
        let link = self.links.get(&key.0).filter(|link| link.reported);
        let eligible = link.is_some_and(|link| {
            !addr.suppressed
                && addr.info.is_usable()
                && passes_filters(flags, &addr.info, &link.info)
                && self.filter.allows_address(&addr.info)
        });
        let wanted = if !eligible {
            // Whatever a lookup said no longer applies once the address is offered again.
            addr.route = Route::Unchecked;
            false
        } else if !flags.contains(NotifyFlags::CHECK_ROUTE) {
            true
        } else {
            match addr.route {
                Route::Unchecked => {
                    let check = RouteCheck {
                        id: self.next_check,
                        ifindex: key.0,
                        addr: key.1,
                    };
                    self.next_check = self.next_check.wrapping_add(1);
                    addr.route = Route::Pending(check.id);
                    out.push(Output::CheckRoute(check));
                    addr.reported
                }
                Route::Pending(_) => addr.reported,
                Route::Routable => true,
                Route::Unroutable => false,
            }
        };
        if wanted != addr.reported {
            addr.reported = wanted;
            let info = addr.info;
            self.push_address_event(wanted, &info, out);
        }
    }

    fn push_address_event(&self, new: bool, address: &LocalAddress, out: &mut Vec<Output>) {
        let Some(link) = self.links.get(&address.ifindex) else {
            // Unreachable: addresses are reported only while their link is known.
            debug!(address = %address.addr, "address event without a link dropped");
            return;
        };
        let interface = link.info.clone();
        let address = *address;
        out.push(Output::Event(if new {
            NetEvent::NewLocalAddress { interface, address }
        } else {
            NetEvent::DeleteLocalAddress { interface, address }
        }));
    }

    /// Asks again for every address of `family` that a lookup decides.
    fn recheck(&mut self, family: Family, out: &mut Vec<Output>) {
        if !self.flags.contains(NotifyFlags::CHECK_ROUTE) {
            return;
        }
        for (&(ifindex, addr), entry) in &mut self.addrs {
            // Unchecked means not eligible: its next offer starts with a lookup anyway.
            if entry.info.family() != family || entry.route == Route::Unchecked {
                continue;
            }
            let check = RouteCheck {
                id: self.next_check,
                ifindex,
                addr,
            };
            self.next_check = self.next_check.wrapping_add(1);
            entry.route = Route::Pending(check.id);
            out.push(Output::CheckRoute(check));
        }
    }

    fn route_checked(&mut self, check: RouteCheck, routable: bool, out: &mut Vec<Output>) {
        let key = (check.ifindex, check.addr);
        match self.addrs.get_mut(&key) {
            Some(addr) if addr.route == Route::Pending(check.id) => {
                addr.route = if routable {
                    Route::Routable
                } else {
                    Route::Unroutable
                };
                self.reconcile_addr(key, out);
            }
            _ => debug!(address = %check.addr, id = check.id, "stale route lookup ignored"),
        }
    }

    /// Ends a dump: what it did not mention is gone (the kernel's notifications about it
    /// were lost), and routes may have changed unseen.
    fn finish_dump(&mut self, out: &mut Vec<Output>) {
        let epoch = self.epoch;
        let stale_addrs: Vec<_> = self
            .addrs
            .iter()
            .filter(|(_, addr)| addr.seen != epoch)
            .map(|(key, _)| *key)
            .collect();
        for key in stale_addrs {
            self.forget_addr(key, out);
        }
        let stale_links: Vec<_> = self
            .links
            .iter()
            .filter(|(_, link)| link.seen != epoch)
            .map(|(index, _)| *index)
            .collect();
        for index in stale_links {
            self.del_link(index, out);
        }
        if self.started {
            self.recheck(Family::V4, out);
            self.recheck(Family::V6, out);
        }
        self.started = true;
    }
}

/// The notify filters (`skip_link_local`, `skip_loopback`) for one address on `link`.
fn passes_filters(flags: NotifyFlags, addr: &LocalAddress, link: &Interface) -> bool {
    if flags.contains(NotifyFlags::SKIP_LINK_LOCAL) && addr.is_link_local() {
        return false;
    }
    !(flags.contains(NotifyFlags::SKIP_LOOPBACK)
        && (addr.is_host_or_loopback() || link.is_loopback()))
}

#[cfg(test)]
mod tests;
