//! `rtnetlink`: what the network monitor reads from its rtnetlink socket, through its decoder
//! and state machine as the monitor drives them.
//!
//! Input: a notify-flags byte, a byte whose bits answer the route lookups in turn, then
//! netlink messages: link, address and route messages; `NLMSG_OVERRUN` starts a dump and
//! `NLMSG_DONE` ends it (the first dump is under way from the start); `NLMSG_NOOP` stands for a
//! reload with the notify flags in its sequence number. Checked:
//! - the events form a valid sequence: an interface is announced before its addresses and
//!   withdrawn after them, nothing is announced twice or withdrawn unannounced, and the
//!   state's own lists match what the events said;
//! - what is announced passes the notify flags: ready non-loopback interfaces, usable
//!   addresses outside the skipped ranges; no route lookup without `check_route`.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
};

use mptcp_pm::wire::frames;
use mptcpd_netmon::{
    IFF_LOOPBACK, IFF_LOWER_UP, IFF_RUNNING, IFF_UP, Interface, NetEvent, NotifyFlags, decode,
    state::{Input, NetState, Output},
    wire::{AF_BRIDGE, AF_INET, AF_INET6, Address, Link, Route, RtMessage},
};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};

/// The fuzz target.
///
/// # Panics
/// On a finding: a property that does not hold.
pub fn run(input: &[u8]) {
    let [flags, answers, messages @ ..] = input else {
        return;
    };
    let mut monitor = Monitor::new(NotifyFlags::from_bits_truncate(u32::from(*flags)), *answers);
    monitor.apply(Input::DumpStarted);
    for frame in frames(messages) {
        let Ok(frame) = frame else { break };
        let Ok(message) = NetlinkMessage::<RtMessage>::deserialize(frame.bytes) else {
            continue;
        };
        match &message.payload {
            NetlinkPayload::InnerMessage(inner) => {
                if let RtMessage::NewRoute(route) = inner {
                    // Lookup replies go through this; any index will do.
                    let _via = decode::leaves_through(route, monitor.lookups);
                }
                if let Some(decoded) = decode::input(inner) {
                    monitor.apply(decoded);
                }
            }
            NetlinkPayload::Overrun(_) => monitor.apply(Input::DumpStarted),
            NetlinkPayload::Done(_) => monitor.apply(Input::DumpFinished),
            NetlinkPayload::Noop => {
                let flags = NotifyFlags::from_bits_truncate(message.header.sequence_number);
                monitor.reload(flags);
            }
            _ => {}
        }
    }
}

/// The monitor's worker without its sockets, and what its events said so far.
struct Monitor {
    state: NetState,
    flags: NotifyFlags,
    answers: u8,
    lookups: u32,
    interfaces: BTreeMap<u32, Interface>,
    addresses: BTreeSet<(u32, IpAddr)>,
}

impl Monitor {
    const fn new(flags: NotifyFlags, answers: u8) -> Self {
        Self {
            state: NetState::new(flags),
            flags,
            answers,
            lookups: 0,
            interfaces: BTreeMap::new(),
            addresses: BTreeSet::new(),
        }
    }

    /// New flags, as on SIGHUP: they apply to what happens next.
    fn reload(&mut self, flags: NotifyFlags) {
        self.state.set_flags(flags);
        self.flags = self.state.flags();
    }

    /// Applies `input` and what it leads to, as `Worker::apply` does.
    fn apply(&mut self, input: Input) {
        let mut todo = self.state.apply(input);
        while !todo.is_empty() {
            for output in std::mem::take(&mut todo) {
                match output {
                    Output::Event(event) => self.check(event),
                    Output::CheckRoute(check) => {
                        assert!(
                            self.flags.contains(NotifyFlags::CHECK_ROUTE),
                            "route lookup without check_route: {check:?}"
                        );
                        let routable = self.answers & (1 << (self.lookups % 8)) != 0;
                        self.lookups = self.lookups.wrapping_add(1);
                        todo.extend(self.state.apply(Input::RouteChecked { check, routable }));
                    }
                }
            }
        }
        let interfaces: Vec<&Interface> = self.state.interfaces().collect();
        assert_eq!(
            interfaces,
            self.interfaces.values().collect::<Vec<_>>(),
            "the state lists the interfaces its events announced"
        );
        let addresses: BTreeSet<(u32, IpAddr)> = self
            .state
            .addresses()
            .map(|address| (address.ifindex, address.addr))
            .collect();
        assert_eq!(
            addresses, self.addresses,
            "the state lists the addresses its events announced"
        );
    }

    fn check(&mut self, event: NetEvent) {
        match event {
            NetEvent::NewInterface(interface) => {
                assert!(
                    interface.is_ready() && !interface.is_loopback(),
                    "{interface:?}"
                );
                let index = interface.index;
                assert!(
                    self.interfaces.insert(index, interface).is_none(),
                    "interface {index} announced twice"
                );
            }
            NetEvent::UpdateInterface(interface) => {
                assert!(
                    interface.is_ready() && !interface.is_loopback(),
                    "{interface:?}"
                );
                let known = self.interfaces.get_mut(&interface.index);
                *known.expect("an update of an announced interface") = interface;
            }
            NetEvent::DeleteInterface(interface) => {
                let index = interface.index;
                assert!(
                    self.interfaces.remove(&index).is_some(),
                    "interface {index} withdrawn unannounced"
                );
                assert!(
                    !self.addresses.iter().any(|&(ifindex, _)| ifindex == index),
                    "interface {index} withdrawn before its addresses"
                );
            }
            NetEvent::NewLocalAddress { interface, address } => {
                assert_eq!(
                    self.interfaces.get(&address.ifindex),
                    Some(&interface),
                    "{address:?} announced on an interface not announced as {interface:?}"
                );
                assert!(address.is_usable(), "{address:?}");
                assert!(
                    !(self.flags.contains(NotifyFlags::SKIP_LINK_LOCAL) && address.is_link_local()),
                    "{address:?} announced under skip_link_local"
                );
                assert!(
                    !(self.flags.contains(NotifyFlags::SKIP_LOOPBACK)
                        && address.is_host_or_loopback()),
                    "{address:?} announced under skip_loopback"
                );
                assert!(
                    self.addresses.insert((address.ifindex, address.addr)),
                    "{address:?} announced twice"
                );
            }
            NetEvent::DeleteLocalAddress { interface, address } => {
                // The interface as it is now (it may be going down).
                assert_eq!(
                    interface.index, address.ifindex,
                    "{address:?} on {interface:?}"
                );
                assert!(
                    self.addresses.remove(&(address.ifindex, address.addr)),
                    "{address:?} withdrawn unannounced"
                );
            }
        }
    }
}

/// `RT_SCOPE_*` of the seeds' addresses.
const UNIVERSE: u8 = 0;
const LINK: u8 = 253;
const HOST: u8 = 254;
/// `IF_OPER_UP` and `IF_OPER_DOWN`.
const OPER_UP: u8 = 6;
const OPER_DOWN: u8 = 2;

/// A start-up dump (loopback, two links, addresses of both families, one link-local and one
/// tentative), then notifications (routes, a link going down, deletions), a reload with
/// other flags and a dump after lost notifications, under four sets of flags; and the
/// messages captured from the kernel (`mptcpd/netmon/tests/fixtures`).
#[must_use]
pub fn seeds() -> Vec<Vec<u8>> {
    let lo = link(1, "lo", IFF_UP | IFF_RUNNING | IFF_LOOPBACK);
    let eth = link(2, "eth0", IFF_UP | IFF_RUNNING | IFF_LOWER_UP);
    let wlan = link(3, "wlan0", IFF_UP | IFF_RUNNING | IFF_LOWER_UP);
    let bridge_port = Link {
        family: AF_BRIDGE,
        ..eth.clone()
    };
    let addresses = [
        address(1, "127.0.0.1", 8, HOST, 0x80),
        address(1, "::1", 128, HOST, 0x80),
        address(2, "192.0.2.1", 24, UNIVERSE, 0x80),
        address(2, "2001:db8::1", 64, UNIVERSE, 0),
        address(2, "fe80::1", 64, LINK, 0x80),
        address(3, "198.51.100.7", 24, UNIVERSE, 0x40),
        address(3, "169.254.3.3", 16, UNIVERSE, 0),
    ];
    let mut dump: Vec<RtMessage> = [lo, eth.clone(), wlan.clone()]
        .into_iter()
        .map(RtMessage::NewLink)
        .collect();
    dump.extend(addresses.iter().cloned().map(RtMessage::NewAddress));
    let down = Link {
        flags: IFF_UP,
        oper_state: Some(OPER_DOWN),
        ..wlan
    };
    let later = [
        RtMessage::NewRoute(route("0.0.0.0", 0, 2)),
        RtMessage::NewRoute(route("192.0.2.0", 24, 2)),
        RtMessage::DelRoute(route("::", 0, 2)),
        RtMessage::NewAddress(address(3, "203.0.113.9", 24, UNIVERSE, 0)),
        RtMessage::NewLink(bridge_port),
        RtMessage::NewLink(down),
        RtMessage::DelAddress(addresses[2].clone()),
        RtMessage::DelLink(eth),
    ];
    let mut seeds = Vec::new();
    for flags in [0, 0b0001, 0b0111, 0b1111] {
        let mut input = vec![flags, 0b0101_0101];
        append(&mut input, &dump);
        input.extend(control(NLMSG_DONE, 0));
        append(&mut input, &later);
        input.extend(control(NLMSG_NOOP, u32::from(!flags & 0b0110)));
        input.extend(control(NLMSG_OVERRUN, 0));
        append(&mut input, &dump);
        input.extend(control(NLMSG_DONE, 0));
        seeds.push(input);
    }
    // The kernel's own messages (links, addresses, routes, lookups and their answers), under
    // every flag.
    let mut captured = vec![0b1111, 0b0101_0101];
    for message in crate::hex_fixtures("mptcpd/netmon/tests/fixtures") {
        let start = captured.len();
        captured.extend_from_slice(&message);
        captured.resize(start + message.len().next_multiple_of(4), 0);
    }
    seeds.push(captured);
    seeds
}

const NLMSG_NOOP: u16 = 1;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

fn append(input: &mut Vec<u8>, messages: &[RtMessage]) {
    for message in messages {
        let mut message = NetlinkMessage::from(message.clone());
        message.finalize();
        let start = input.len();
        input.resize(start + message.buffer_len(), 0);
        message.serialize(&mut input[start..]);
        // Aligned from the first message, not from the start of the input.
        input.resize(start + message.buffer_len().next_multiple_of(4), 0);
    }
}

/// A message without payload (`NLMSG_DONE` with its error code 0, `NLMSG_OVERRUN`,
/// `NLMSG_NOOP`).
fn control(kind: u16, seq: u32) -> Vec<u8> {
    let len: u32 = if kind == NLMSG_DONE { 20 } else { 16 };
    let mut message = vec![0; 16];
    message[..4].copy_from_slice(&len.to_ne_bytes());
    message[4..6].copy_from_slice(&kind.to_ne_bytes());
    message[8..12].copy_from_slice(&seq.to_ne_bytes());
    message.resize(usize::try_from(len).expect("a small length"), 0);
    message
}

fn link(index: u32, name: &str, flags: u32) -> Link {
    Link {
        index,
        // ARPHRD_ETHER.
        link_type: 1,
        flags,
        name: Some(name.to_owned()),
        oper_state: Some(OPER_UP),
        ..Link::default()
    }
}

fn address(index: u32, addr: &str, prefix_len: u8, scope: u8, flags: u32) -> Address {
    let addr: IpAddr = addr.parse().expect("an address");
    Address {
        family: family(addr),
        index,
        prefix_len,
        scope,
        address: Some(addr),
        local: Some(addr),
        flags: Some(flags),
        ..Address::default()
    }
}

fn route(destination: &str, prefix_len: u8, oif: u32) -> Route {
    let destination: IpAddr = destination.parse().expect("an address");
    Route {
        family: family(destination),
        dst_len: prefix_len,
        destination: (prefix_len > 0).then_some(destination),
        oif: Some(oif),
        ..Route::default()
    }
}

const fn family(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => AF_INET,
        IpAddr::V6(_) => AF_INET6,
    }
}
