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
    Interface, NetEvent, NotifyFlags, decode,
    state::{Input, NetState, Output},
};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::{
    AddressFamily, RouteNetlinkMessage,
    address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope as Scope},
    link::{LinkAttribute, LinkFlags, LinkLayerType, LinkMessage, State},
    route::{RouteAddress, RouteAttribute, RouteMessage},
};

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
        let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(frame.bytes) else {
            continue;
        };
        match &message.payload {
            NetlinkPayload::InnerMessage(inner) => {
                if let RouteNetlinkMessage::NewRoute(route) = inner {
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

/// A start-up dump (loopback, two links, addresses of both families, one link-local and one
/// tentative), then notifications (routes, a link going down, deletions), a reload with
/// other flags and a dump after lost notifications, under four sets of flags.
#[must_use]
pub fn seeds() -> Vec<Vec<u8>> {
    let lo = link(
        1,
        "lo",
        LinkFlags::Up | LinkFlags::Running | LinkFlags::Loopback,
    );
    let eth = link(
        2,
        "eth0",
        LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp,
    );
    let wlan = link(
        3,
        "wlan0",
        LinkFlags::Up | LinkFlags::Running | LinkFlags::LowerUp,
    );
    let mut bridge_port = eth.clone();
    bridge_port.header.interface_family = AddressFamily::Bridge;
    let addresses = [
        address(1, "127.0.0.1", 8, Scope::Host, 0x80),
        address(1, "::1", 128, Scope::Host, 0x80),
        address(2, "192.0.2.1", 24, Scope::Universe, 0x80),
        address(2, "2001:db8::1", 64, Scope::Universe, 0),
        address(2, "fe80::1", 64, Scope::Link, 0x80),
        address(3, "198.51.100.7", 24, Scope::Universe, 0x40),
        address(3, "169.254.3.3", 16, Scope::Universe, 0),
    ];
    let mut dump: Vec<RouteNetlinkMessage> = [lo, eth.clone(), wlan.clone()]
        .into_iter()
        .map(RouteNetlinkMessage::NewLink)
        .collect();
    dump.extend(
        addresses
            .iter()
            .cloned()
            .map(RouteNetlinkMessage::NewAddress),
    );
    let mut down = wlan;
    down.header.flags = LinkFlags::Up;
    down.attributes.push(LinkAttribute::OperState(State::Down));
    let later = [
        RouteNetlinkMessage::NewRoute(route("0.0.0.0", 0, 2)),
        RouteNetlinkMessage::NewRoute(route("192.0.2.0", 24, 2)),
        RouteNetlinkMessage::DelRoute(route("::", 0, 2)),
        RouteNetlinkMessage::NewAddress(address(3, "203.0.113.9", 24, Scope::Universe, 0)),
        RouteNetlinkMessage::NewLink(bridge_port),
        RouteNetlinkMessage::NewLink(down),
        RouteNetlinkMessage::DelAddress(addresses[2].clone()),
        RouteNetlinkMessage::DelLink(eth),
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
    seeds
}

const NLMSG_NOOP: u16 = 1;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;

fn append(input: &mut Vec<u8>, messages: &[RouteNetlinkMessage]) {
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

fn link(index: u32, name: &str, flags: LinkFlags) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message.header.link_layer_type = LinkLayerType::Ether;
    message.header.flags = flags;
    message.attributes = vec![
        LinkAttribute::IfName(name.to_owned()),
        LinkAttribute::Mtu(1500),
        LinkAttribute::OperState(State::Up),
    ];
    message
}

fn address(index: u32, addr: &str, prefix_len: u8, scope: Scope, flags: u32) -> AddressMessage {
    let addr: IpAddr = addr.parse().expect("an address");
    let mut message = AddressMessage::default();
    message.header.family = match addr {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    message.header.index = index;
    message.header.prefix_len = prefix_len;
    message.header.scope = scope;
    message.attributes = vec![
        AddressAttribute::Address(addr),
        AddressAttribute::Local(addr),
        AddressAttribute::Flags(AddressFlags::from_bits_retain(flags)),
    ];
    message
}

fn route(destination: &str, prefix_len: u8, oif: u32) -> RouteMessage {
    let destination: IpAddr = destination.parse().expect("an address");
    let mut message = RouteMessage::default();
    message.header.address_family = match destination {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    message.header.destination_prefix_length = prefix_len;
    if prefix_len > 0 {
        message
            .attributes
            .push(RouteAttribute::Destination(match destination {
                IpAddr::V4(v4) => RouteAddress::Inet(v4),
                IpAddr::V6(v6) => RouteAddress::Inet6(v6),
            }));
    }
    message.attributes.push(RouteAttribute::Oif(oif));
    message
}
