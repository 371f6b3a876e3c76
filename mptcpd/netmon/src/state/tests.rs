//! The state machine, input by input, against the events the daemon must see.

use std::net::IpAddr;

use super::{Input, NetState, Output, RouteCheck};
use crate::{
    AddressFilter, AddressScope, Family, IFA_F_DADFAILED, IFA_F_DEPRECATED, IFA_F_TEMPORARY,
    IFA_F_TENTATIVE, IFF_LOOPBACK, IFF_LOWER_UP, IFF_RUNNING, IFF_UP, Interface, LocalAddress,
    NetEvent, NotifyFlags, OperState, parse_list,
};

const READY: u32 = IFF_UP | IFF_RUNNING | IFF_LOWER_UP;
const IFA_F_PERMANENT: u32 = 0x80;

fn eth(index: u32) -> Interface {
    Interface {
        index,
        name: format!("eth{index}"),
        flags: READY,
        oper_state: OperState::Up,
        link_type: 1,
    }
}

fn lo() -> Interface {
    Interface {
        index: 1,
        name: "lo".to_owned(),
        flags: READY | IFF_LOOPBACK,
        oper_state: OperState::Unknown,
        link_type: 772,
    }
}

fn with_flags(mut link: Interface, flags: u32, oper_state: OperState) -> Interface {
    link.flags = flags;
    link.oper_state = oper_state;
    link
}

/// `ADDR/LEN` on `ifindex`, with the scope the kernel would give it.
fn addr(ifindex: u32, cidr: &str) -> LocalAddress {
    let (ip, len) = cidr.split_once('/').unwrap();
    let addr: IpAddr = ip.parse().unwrap();
    let scope = match addr {
        IpAddr::V4(v4) if v4.is_loopback() => AddressScope::Host,
        IpAddr::V6(v6) if v6.is_loopback() => AddressScope::Host,
        IpAddr::V6(v6) if v6.is_unicast_link_local() => AddressScope::Link,
        _ => AddressScope::Universe,
    };
    LocalAddress {
        ifindex,
        addr,
        prefix_len: len.parse().unwrap(),
        scope,
        flags: IFA_F_PERMANENT,
    }
}

fn new_if(link: &Interface) -> Output {
    Output::Event(NetEvent::NewInterface(link.clone()))
}

fn update_if(link: &Interface) -> Output {
    Output::Event(NetEvent::UpdateInterface(link.clone()))
}

fn del_if(link: &Interface) -> Output {
    Output::Event(NetEvent::DeleteInterface(link.clone()))
}

fn new_addr(link: &Interface, address: LocalAddress) -> Output {
    Output::Event(NetEvent::NewLocalAddress {
        interface: link.clone(),
        address,
    })
}

fn del_addr(link: &Interface, address: LocalAddress) -> Output {
    Output::Event(NetEvent::DeleteLocalAddress {
        interface: link.clone(),
        address,
    })
}

fn check(id: u64, address: LocalAddress) -> Output {
    Output::CheckRoute(RouteCheck {
        id,
        ifindex: address.ifindex,
        addr: address.addr,
    })
}

fn checked(id: u64, address: LocalAddress, routable: bool) -> Input {
    Input::RouteChecked {
        check: RouteCheck {
            id,
            ifindex: address.ifindex,
            addr: address.addr,
        },
        routable,
    }
}

/// A state after a start-up dump of `links` and `addrs`, with what the dump produced.
fn start(
    flags: NotifyFlags,
    links: &[Interface],
    addrs: &[LocalAddress],
) -> (NetState, Vec<Output>) {
    let mut state = NetState::new(flags);
    let mut out = state.apply(Input::DumpStarted);
    for link in links {
        out.extend(state.apply(Input::NewLink(link.clone())));
    }
    for address in addrs {
        out.extend(state.apply(Input::NewAddress(*address)));
    }
    out.extend(state.apply(Input::DumpFinished));
    assert!(state.started());
    (state, out)
}

#[test]
fn dumped_interfaces_are_reported_with_or_without_existing() {
    let down = with_flags(eth(3), IFF_UP, OperState::LowerLayerDown);
    for flags in [NotifyFlags::empty(), NotifyFlags::EXISTING] {
        let (state, out) = start(flags, &[lo(), eth(2), down.clone()], &[]);
        // The loopback interface is never reported (as in the C daemon).
        assert_eq!(out, [new_if(&eth(2))], "{flags}");
        assert_eq!(state.interfaces().cloned().collect::<Vec<_>>(), [eth(2)]);
    }
}

#[test]
fn existing_reports_dumped_addresses() {
    let v4 = addr(2, "192.0.2.1/24");
    let v6 = addr(2, "2001:db8::1/64");
    let (state, out) = start(NotifyFlags::EXISTING, &[eth(2)], &[v4, v6]);
    assert_eq!(
        out,
        [
            new_if(&eth(2)),
            new_addr(&eth(2), v4),
            new_addr(&eth(2), v6)
        ]
    );
    assert_eq!(state.addresses().copied().collect::<Vec<_>>(), [v4, v6]);
}

#[test]
fn without_existing_only_later_addresses_are_reported() {
    let old = addr(2, "192.0.2.1/24");
    let (mut state, out) = start(NotifyFlags::empty(), &[eth(2)], &[old]);
    assert_eq!(out, [new_if(&eth(2))]);

    // Refreshes of a start-up address and a link bounce do not turn it into a new one.
    assert_eq!(state.apply(Input::NewAddress(old)), []);
    let down = with_flags(eth(2), IFF_UP, OperState::LowerLayerDown);
    assert_eq!(state.apply(Input::NewLink(down.clone())), [del_if(&down)]);
    assert_eq!(state.apply(Input::NewLink(eth(2))), [new_if(&eth(2))]);
    // Deleting it says nothing: it was never reported.
    assert_eq!(state.apply(Input::DelAddress(old)), []);

    let new = addr(2, "192.0.2.2/24");
    assert_eq!(
        state.apply(Input::NewAddress(new)),
        [new_addr(&eth(2), new)]
    );
    // Once deleted, the start-up address comes back as a new one.
    assert_eq!(
        state.apply(Input::NewAddress(old)),
        [new_addr(&eth(2), old)]
    );
}

#[test]
fn start_up_addresses_with_adopted_endpoints_are_reported_and_withdrawn() {
    let kept = addr(2, "192.0.2.1/24");
    let moved = addr(3, "192.0.2.2/24");
    let anywhere = addr(3, "192.0.2.3/24");
    let other = addr(2, "192.0.2.9/24");
    let (mut state, out) = start(
        NotifyFlags::empty(),
        &[eth(2), eth(3)],
        &[kept, moved, anywhere, other],
    );
    assert_eq!(out, [new_if(&eth(2)), new_if(&eth(3))]);
    // Adopted on its interface: reported, as the previous run did.
    let adopted = |ifindex, address: LocalAddress| Input::Adopted {
        ifindex,
        addr: address.addr,
    };
    assert_eq!(
        state.apply(adopted(Some(2), kept)),
        [new_addr(&eth(2), kept)]
    );
    assert_eq!(state.apply(adopted(Some(2), kept)), [], "once");
    // Bound to another interface than the address's: not this one.
    assert_eq!(state.apply(adopted(Some(2), moved)), []);
    assert_eq!(
        state.apply(adopted(None, anywhere)),
        [new_addr(&eth(3), anywhere)]
    );
    assert_eq!(state.apply(adopted(None, addr(2, "192.0.2.77/24"))), []);
    // From then on they come and go like addresses that came after start-up.
    assert_eq!(
        state.apply(Input::DelAddress(kept)),
        [del_addr(&eth(2), kept)]
    );
    assert_eq!(state.apply(Input::DelAddress(other)), []);
    assert_eq!(state.addresses().copied().collect::<Vec<_>>(), [anywhere]);
}

#[test]
fn ipv4_and_ipv6_addresses_come_and_go() {
    let (mut state, _) = start(NotifyFlags::empty(), &[eth(2), eth(3)], &[]);
    let v4 = addr(2, "198.51.100.7/24");
    let v6 = addr(3, "2001:db8:1::7/64");
    assert_eq!(state.apply(Input::NewAddress(v4)), [new_addr(&eth(2), v4)]);
    assert_eq!(state.apply(Input::NewAddress(v6)), [new_addr(&eth(3), v6)]);
    // A refresh (lifetimes, flags) is not news.
    let mut refreshed = v6;
    refreshed.flags |= 0x20; // IFA_F_DEPRECATED: still usable for existing and new subflows
    assert_eq!(state.apply(Input::NewAddress(refreshed)), []);
    assert_eq!(state.apply(Input::DelAddress(v4)), [del_addr(&eth(2), v4)]);
    assert_eq!(
        state.apply(Input::DelAddress(v6)),
        [del_addr(&eth(3), refreshed)]
    );
    assert_eq!(state.apply(Input::DelAddress(v6)), []);
    assert_eq!(state.addresses().count(), 0);
}

#[test]
fn the_same_address_on_two_interfaces_is_two_addresses() {
    let (mut state, _) = start(NotifyFlags::empty(), &[eth(2), eth(3)], &[]);
    let a = addr(2, "192.0.2.1/24");
    let b = addr(3, "192.0.2.1/24");
    assert_eq!(state.apply(Input::NewAddress(a)), [new_addr(&eth(2), a)]);
    assert_eq!(state.apply(Input::NewAddress(b)), [new_addr(&eth(3), b)]);
    assert_eq!(state.apply(Input::DelAddress(a)), [del_addr(&eth(2), a)]);
    assert_eq!(state.addresses().copied().collect::<Vec<_>>(), [b]);
}

#[test]
fn a_second_prefix_of_one_address_neither_adds_nor_removes_it() {
    let (mut state, _) = start(NotifyFlags::empty(), &[eth(2)], &[]);
    let a24 = addr(2, "192.0.2.1/24");
    let a16 = addr(2, "192.0.2.1/16");
    assert_eq!(
        state.apply(Input::NewAddress(a24)),
        [new_addr(&eth(2), a24)]
    );
    assert_eq!(state.apply(Input::NewAddress(a16)), []);
    assert_eq!(state.apply(Input::DelAddress(a16)), []);
    assert_eq!(
        state.apply(Input::DelAddress(a24)),
        [del_addr(&eth(2), a24)]
    );
}

#[test]
fn skip_link_local_drops_link_scope_and_link_local_values() {
    let fe80 = addr(2, "fe80::1/64");
    let mut v4_scope_link = addr(2, "10.0.0.1/8");
    v4_scope_link.scope = AddressScope::Link;
    // Assigned with the default (global) scope, as `ip addr add` does.
    let v4_169 = addr(2, "169.254.3.4/16");
    let global = addr(2, "2001:db8::1/64");

    let (mut state, _) = start(NotifyFlags::SKIP_LINK_LOCAL, &[eth(2)], &[]);
    for address in [fe80, v4_scope_link, v4_169] {
        assert_eq!(state.apply(Input::NewAddress(address)), [], "{address:?}");
    }
    assert_eq!(
        state.apply(Input::NewAddress(global)),
        [new_addr(&eth(2), global)]
    );
    for address in [fe80, v4_scope_link, v4_169] {
        assert_eq!(state.apply(Input::DelAddress(address)), [], "{address:?}");
    }

    let (mut state, _) = start(NotifyFlags::empty(), &[eth(2)], &[]);
    for address in [fe80, v4_scope_link, v4_169] {
        assert_eq!(
            state.apply(Input::NewAddress(address)),
            [new_addr(&eth(2), address)]
        );
    }
}

#[test]
fn the_loopback_interface_is_never_reported_and_skip_loopback_hides_host_scope() {
    let lo4 = addr(1, "127.0.0.1/8");
    let lo6 = addr(1, "::1/128");
    let lo_global = addr(1, "203.0.113.9/32");
    let mut host_on_eth = addr(2, "10.9.9.9/32");
    host_on_eth.scope = AddressScope::Host;
    let all = [lo4, lo6, lo_global, host_on_eth];

    let flags = NotifyFlags::EXISTING | NotifyFlags::SKIP_LOOPBACK;
    let (mut state, out) = start(flags, &[lo(), eth(2)], &all);
    assert_eq!(out, [new_if(&eth(2))]);
    // Neither changes of the hidden interface nor its addresses are reported.
    let lo_down = with_flags(lo(), IFF_LOOPBACK, OperState::Unknown);
    assert_eq!(state.apply(Input::NewLink(lo_down)), []);
    assert_eq!(state.apply(Input::NewLink(lo())), []);
    assert_eq!(state.apply(Input::DelLink { index: 1 }), []);

    // Without skip_loopback, host-scope addresses elsewhere are reported; lo still is not.
    let (_, out) = start(NotifyFlags::EXISTING, &[lo(), eth(2)], &all);
    assert_eq!(out, [new_if(&eth(2)), new_addr(&eth(2), host_on_eth)]);
}

#[test]
fn admin_down_withdraws_addresses_before_the_interface_and_up_offers_them_again() {
    let v4 = addr(2, "192.0.2.1/24");
    let v6 = addr(2, "2001:db8::1/64");
    let (mut state, _) = start(NotifyFlags::EXISTING, &[eth(2)], &[v4, v6]);

    let down = with_flags(eth(2), 0, OperState::Down);
    assert_eq!(
        state.apply(Input::NewLink(down.clone())),
        [del_addr(&down, v4), del_addr(&down, v6), del_if(&down)]
    );
    assert_eq!(state.interfaces().count(), 0);
    assert_eq!(state.addresses().count(), 0);
    // Still down: nothing more.
    assert_eq!(state.apply(Input::NewLink(down)), []);
    // The kernel removed the IPv6 address while the link was down.
    assert_eq!(state.apply(Input::DelAddress(v6)), []);
    assert_eq!(
        state.apply(Input::NewLink(eth(2))),
        [new_if(&eth(2)), new_addr(&eth(2), v4)]
    );
}

#[test]
fn carrier_loss_and_other_oper_states_withdraw_too() {
    let v4 = addr(2, "192.0.2.1/24");
    let not_ready = [
        // Cable unplugged: up, no carrier, so not running (C issue #334).
        with_flags(eth(2), IFF_UP, OperState::LowerLayerDown),
        with_flags(eth(2), IFF_UP | IFF_LOWER_UP, OperState::Dormant),
        // Flags and oper state disagree: the oper state wins.
        with_flags(eth(2), READY, OperState::Down),
        with_flags(eth(2), READY, OperState::NotPresent),
    ];
    for down in not_ready {
        let (mut state, _) = start(NotifyFlags::EXISTING, &[eth(2)], &[v4]);
        assert_eq!(
            state.apply(Input::NewLink(down.clone())),
            [del_addr(&down, v4), del_if(&down)],
            "{down:?}"
        );
        assert_eq!(
            state.apply(Input::NewLink(eth(2))),
            [new_if(&eth(2)), new_addr(&eth(2), v4)]
        );
    }
    // UNKNOWN with IFF_RUNNING is ready (tunnels, loopback).
    let unknown = with_flags(eth(2), READY, OperState::Unknown);
    let (_, out) = start(NotifyFlags::EXISTING, std::slice::from_ref(&unknown), &[v4]);
    assert_eq!(out, [new_if(&unknown), new_addr(&unknown, v4)]);
}

#[test]
fn deleting_an_interface_withdraws_its_addresses_first_and_forgets_them() {
    let v4 = addr(2, "192.0.2.1/24");
    let other = addr(3, "192.0.2.2/24");
    let (mut state, _) = start(NotifyFlags::EXISTING, &[eth(2), eth(3)], &[v4, other]);
    assert_eq!(
        state.apply(Input::DelLink { index: 2 }),
        [del_addr(&eth(2), v4), del_if(&eth(2))]
    );
    assert_eq!(state.apply(Input::DelAddress(v4)), []);
    assert_eq!(state.apply(Input::DelLink { index: 2 }), []);
    // A new link that reuses the index starts without the old addresses.
    assert_eq!(state.apply(Input::NewLink(eth(2))), [new_if(&eth(2))]);
    assert_eq!(state.addresses().copied().collect::<Vec<_>>(), [other]);
}

#[test]
fn deleting_a_down_interface_reports_nothing() {
    let down = with_flags(eth(2), 0, OperState::Down);
    let (mut state, out) = start(NotifyFlags::EXISTING, &[down], &[addr(2, "192.0.2.1/24")]);
    assert_eq!(out, []);
    assert_eq!(state.apply(Input::DelLink { index: 2 }), []);
}

#[test]
fn updates_are_reported_only_when_something_changed() {
    let (mut state, _) = start(NotifyFlags::empty(), &[eth(2)], &[]);
    assert_eq!(state.apply(Input::NewLink(eth(2))), []);
    let mut renamed = eth(2);
    renamed.name = "wan0".to_owned();
    assert_eq!(
        state.apply(Input::NewLink(renamed.clone())),
        [update_if(&renamed)]
    );
    let promisc = with_flags(renamed, READY | 0x100, OperState::Up);
    assert_eq!(
        state.apply(Input::NewLink(promisc.clone())),
        [update_if(&promisc)]
    );
    // Events about its addresses carry the interface as it is now.
    let v4 = addr(2, "192.0.2.1/24");
    assert_eq!(state.apply(Input::NewAddress(v4)), [new_addr(&promisc, v4)]);
}

#[test]
fn addresses_wait_for_duplicate_address_detection() {
    let (mut state, _) = start(NotifyFlags::empty(), &[eth(2)], &[]);
    let mut v6 = addr(2, "2001:db8::1/64");
    v6.flags |= IFA_F_TENTATIVE;
    assert_eq!(state.apply(Input::NewAddress(v6)), []);
    v6.flags &= !IFA_F_TENTATIVE;
    assert_eq!(state.apply(Input::NewAddress(v6)), [new_addr(&eth(2), v6)]);
    // After a carrier loss the kernel runs DAD again, and it may fail.
    v6.flags |= IFA_F_TENTATIVE;
    assert_eq!(state.apply(Input::NewAddress(v6)), [del_addr(&eth(2), v6)]);
    v6.flags = IFA_F_DADFAILED | IFA_F_TENTATIVE;
    assert_eq!(state.apply(Input::NewAddress(v6)), []);
    assert_eq!(state.apply(Input::DelAddress(v6)), []);
}

#[test]
fn an_address_seen_before_its_link_is_offered_with_the_link() {
    let (mut state, _) = start(NotifyFlags::empty(), &[], &[]);
    let v4 = addr(5, "192.0.2.1/24");
    assert_eq!(state.apply(Input::NewAddress(v4)), []);
    assert_eq!(
        state.apply(Input::NewLink(eth(5))),
        [new_if(&eth(5)), new_addr(&eth(5), v4)]
    );
}

#[test]
fn unknown_deletions_and_stray_answers_are_harmless() {
    let (mut state, _) = start(NotifyFlags::CHECK_ROUTE, &[], &[]);
    assert_eq!(state.apply(Input::DelLink { index: 42 }), []);
    assert_eq!(state.apply(Input::DelAddress(addr(42, "192.0.2.1/24"))), []);
    assert_eq!(state.apply(checked(7, addr(42, "192.0.2.1/24"), true)), []);
    assert_eq!(state.apply(Input::RoutesChanged(Family::V6)), []);
}

#[test]
fn check_route_reports_only_routable_addresses() {
    let v4 = addr(2, "192.0.2.1/24");
    let (mut state, out) = start(
        NotifyFlags::EXISTING | NotifyFlags::CHECK_ROUTE,
        &[eth(2)],
        &[v4],
    );
    assert_eq!(out, [new_if(&eth(2)), check(0, v4)]);
    assert_eq!(state.apply(checked(0, v4, true)), [new_addr(&eth(2), v4)]);

    let late = addr(2, "198.51.100.1/24");
    assert_eq!(state.apply(Input::NewAddress(late)), [check(1, late)]);
    assert_eq!(state.apply(checked(1, late, false)), []);
    assert_eq!(state.addresses().copied().collect::<Vec<_>>(), [v4]);
}

#[test]
fn check_route_reports_when_a_default_route_appears_later_and_withdraws_when_it_goes() {
    let v4 = addr(2, "192.0.2.1/24");
    let v6 = addr(2, "2001:db8::1/64");
    let (mut state, _) = start(NotifyFlags::CHECK_ROUTE, &[eth(2)], &[]);
    assert_eq!(state.apply(Input::NewAddress(v4)), [check(0, v4)]);
    assert_eq!(state.apply(checked(0, v4, false)), []);
    assert_eq!(state.apply(Input::NewAddress(v6)), [check(1, v6)]);
    assert_eq!(state.apply(checked(1, v6, false)), []);

    // Long after the C daemon would have given up, an IPv4 default route appears.
    assert_eq!(
        state.apply(Input::RoutesChanged(Family::V4)),
        [check(2, v4)]
    );
    assert_eq!(state.apply(checked(2, v4, true)), [new_addr(&eth(2), v4)]);
    // Another IPv4 route change that keeps it routable is quiet.
    assert_eq!(
        state.apply(Input::RoutesChanged(Family::V4)),
        [check(3, v4)]
    );
    assert_eq!(state.apply(checked(3, v4, true)), []);
    // The default route goes away.
    assert_eq!(
        state.apply(Input::RoutesChanged(Family::V4)),
        [check(4, v4)]
    );
    assert_eq!(state.apply(checked(4, v4, false)), [del_addr(&eth(2), v4)]);

    assert_eq!(
        state.apply(Input::RoutesChanged(Family::V6)),
        [check(5, v6)]
    );
    assert_eq!(state.apply(checked(5, v6, true)), [new_addr(&eth(2), v6)]);
}

#[test]
fn check_route_ignores_stale_answers() {
    let v4 = addr(2, "192.0.2.1/24");
    let (mut state, _) = start(NotifyFlags::CHECK_ROUTE, &[eth(2)], &[]);
    assert_eq!(state.apply(Input::NewAddress(v4)), [check(0, v4)]);
    // Routes change before the first answer: only the second lookup counts.
    assert_eq!(
        state.apply(Input::RoutesChanged(Family::V4)),
        [check(1, v4)]
    );
    assert_eq!(state.apply(checked(0, v4, true)), []);
    assert_eq!(state.apply(checked(1, v4, false)), []);
    assert_eq!(state.apply(checked(1, v4, true)), []);
    assert_eq!(state.addresses().count(), 0);

    // An answer for an address deleted meanwhile is dropped.
    assert_eq!(
        state.apply(Input::RoutesChanged(Family::V4)),
        [check(2, v4)]
    );
    assert_eq!(state.apply(Input::DelAddress(v4)), []);
    assert_eq!(state.apply(checked(2, v4, true)), []);
    assert_eq!(state.addresses().count(), 0);
}

#[test]
fn check_route_starts_over_after_the_link_comes_back() {
    let v4 = addr(2, "192.0.2.1/24");
    let (mut state, _) = start(NotifyFlags::CHECK_ROUTE, &[eth(2)], &[]);
    assert_eq!(state.apply(Input::NewAddress(v4)), [check(0, v4)]);
    assert_eq!(state.apply(checked(0, v4, true)), [new_addr(&eth(2), v4)]);

    let down = with_flags(eth(2), IFF_UP, OperState::LowerLayerDown);
    assert_eq!(
        state.apply(Input::NewLink(down.clone())),
        [del_addr(&down, v4), del_if(&down)]
    );
    // Not eligible while down: route changes do not ask about it.
    assert_eq!(state.apply(Input::RoutesChanged(Family::V4)), []);
    // The kernel flushed the routes through the link: ask again.
    assert_eq!(
        state.apply(Input::NewLink(eth(2))),
        [new_if(&eth(2)), check(1, v4)]
    );
    assert_eq!(state.apply(checked(1, v4, false)), []);
}

#[test]
fn route_changes_of_one_family_recheck_only_that_family() {
    let v4 = addr(2, "192.0.2.1/24");
    let v6 = addr(3, "2001:db8::1/64");
    let (mut state, out) = start(
        NotifyFlags::EXISTING | NotifyFlags::CHECK_ROUTE,
        &[eth(2), eth(3)],
        &[v4, v6],
    );
    assert_eq!(
        out,
        [new_if(&eth(2)), new_if(&eth(3)), check(0, v4), check(1, v6)]
    );
    assert_eq!(
        state.apply(Input::RoutesChanged(Family::V6)),
        [check(2, v6)]
    );
    assert_eq!(
        state.apply(Input::RoutesChanged(Family::V4)),
        [check(3, v4)]
    );
}

#[test]
fn deleting_an_address_rechecks_its_family() {
    let a = addr(2, "192.0.2.1/24");
    let b = addr(2, "198.51.100.1/24");
    let (mut state, _) = start(
        NotifyFlags::EXISTING | NotifyFlags::CHECK_ROUTE,
        &[eth(2)],
        &[a, b],
    );
    assert_eq!(state.apply(checked(0, a, true)), [new_addr(&eth(2), a)]);
    assert_eq!(state.apply(checked(1, b, true)), [new_addr(&eth(2), b)]);
    // The default route went through a's subnet; the kernel flushes it silently.
    assert_eq!(
        state.apply(Input::DelAddress(a)),
        [del_addr(&eth(2), a), check(2, b)]
    );
    assert_eq!(state.apply(checked(2, b, false)), [del_addr(&eth(2), b)]);
}

#[test]
fn route_changes_are_ignored_without_check_route() {
    let (mut state, _) = start(NotifyFlags::EXISTING, &[eth(2)], &[addr(2, "192.0.2.1/24")]);
    assert_eq!(state.apply(Input::RoutesChanged(Family::V4)), []);
    assert_eq!(state.apply(Input::DelAddress(addr(2, "10.0.0.1/8"))), []);
}

#[test]
fn a_resync_dump_sweeps_what_it_no_longer_mentions() {
    let kept = addr(2, "192.0.2.1/24");
    let lost = addr(2, "192.0.2.2/24");
    let on_gone_link = addr(3, "198.51.100.1/24");
    let (mut state, _) = start(
        NotifyFlags::EXISTING,
        &[eth(2), eth(3)],
        &[kept, lost, on_gone_link],
    );

    // Notifications were lost: dump again. Link 3 and one address are gone, one address and
    // link 4 are new (reported: they did not exist at start-up).
    let found = addr(4, "203.0.113.1/24");
    let mut out = state.apply(Input::DumpStarted);
    out.extend(state.apply(Input::NewLink(eth(2))));
    out.extend(state.apply(Input::NewLink(eth(4))));
    out.extend(state.apply(Input::NewAddress(kept)));
    out.extend(state.apply(Input::NewAddress(found)));
    out.extend(state.apply(Input::DumpFinished));
    assert_eq!(
        out,
        [
            new_if(&eth(4)),
            new_addr(&eth(4), found),
            del_addr(&eth(2), lost),
            del_addr(&eth(3), on_gone_link),
            del_if(&eth(3)),
        ]
    );
    assert_eq!(
        state.addresses().copied().collect::<Vec<_>>(),
        [kept, found]
    );
}

#[test]
fn a_resync_without_existing_still_reports_what_appeared_meanwhile() {
    let (mut state, _) = start(NotifyFlags::empty(), &[eth(2)], &[]);
    let appeared = addr(2, "192.0.2.9/24");
    let mut out = state.apply(Input::DumpStarted);
    out.extend(state.apply(Input::NewLink(eth(2))));
    out.extend(state.apply(Input::NewAddress(appeared)));
    out.extend(state.apply(Input::DumpFinished));
    assert_eq!(out, [new_addr(&eth(2), appeared)]);
}

#[test]
fn a_resync_rechecks_routes() {
    let v4 = addr(2, "192.0.2.1/24");
    let (mut state, _) = start(
        NotifyFlags::EXISTING | NotifyFlags::CHECK_ROUTE,
        &[eth(2)],
        &[v4],
    );
    assert_eq!(state.apply(checked(0, v4, true)), [new_addr(&eth(2), v4)]);
    let mut out = state.apply(Input::DumpStarted);
    out.extend(state.apply(Input::NewLink(eth(2))));
    out.extend(state.apply(Input::NewAddress(v4)));
    out.extend(state.apply(Input::DumpFinished));
    assert_eq!(out, [check(1, v4)]);
    assert_eq!(state.apply(checked(1, v4, false)), [del_addr(&eth(2), v4)]);
}

#[test]
fn flags_are_kept() {
    let flags = NotifyFlags::SKIP_LINK_LOCAL | NotifyFlags::CHECK_ROUTE;
    assert_eq!(NetState::new(flags).flags(), flags);
    assert!(!NetState::new(flags).started());
}

#[test]
fn changed_flags_filter_later_addresses_and_keep_check_route() {
    let fe80 = addr(2, "fe80::1/64");
    let fe81 = addr(2, "fe80::2/64");
    let (mut state, _) = start(NotifyFlags::empty(), &[eth(2)], &[]);
    assert_eq!(
        state.apply(Input::NewAddress(fe80)),
        [new_addr(&eth(2), fe80)]
    );
    state.set_flags(NotifyFlags::SKIP_LINK_LOCAL | NotifyFlags::CHECK_ROUTE);
    assert_eq!(state.flags(), NotifyFlags::SKIP_LINK_LOCAL);
    assert_eq!(state.apply(Input::NewAddress(fe81)), []);

    let (mut state, _) = start(NotifyFlags::CHECK_ROUTE, &[eth(2)], &[]);
    state.set_flags(NotifyFlags::SKIP_LOOPBACK);
    assert_eq!(
        state.flags(),
        NotifyFlags::SKIP_LOOPBACK | NotifyFlags::CHECK_ROUTE
    );
}

fn wwan(index: u32) -> Interface {
    Interface {
        name: format!("wwan{index}"),
        ..eth(index)
    }
}

fn filter(interfaces: &str, skip_interfaces: &str, skip_addresses: &str) -> AddressFilter {
    AddressFilter {
        interfaces: parse_list(interfaces).unwrap(),
        skip_interfaces: parse_list(skip_interfaces).unwrap(),
        skip_addresses: parse_list(skip_addresses).unwrap(),
    }
}

#[test]
fn interfaces_the_policy_excludes_are_not_reported_nor_their_addresses() {
    let mut state = NetState::new(NotifyFlags::EXISTING);
    assert_eq!(state.set_filter(filter("eth*", "eth3", "")), []);
    let (on2, on3, on4) = (
        addr(2, "192.0.2.1/24"),
        addr(3, "198.51.100.1/24"),
        addr(4, "203.0.113.1/24"),
    );
    let mut out = state.apply(Input::DumpStarted);
    for link in [eth(2), eth(3), wwan(4)] {
        out.extend(state.apply(Input::NewLink(link)));
    }
    for address in [on2, on3, on4] {
        out.extend(state.apply(Input::NewAddress(address)));
    }
    out.extend(state.apply(Input::DumpFinished));
    assert_eq!(out, [new_if(&eth(2)), new_addr(&eth(2), on2)]);
    // A rename onto the deny list withdraws the address, then the interface.
    let renamed = Interface {
        name: "eth3".to_owned(),
        ..eth(2)
    };
    assert_eq!(
        state.apply(Input::NewLink(renamed.clone())),
        [del_addr(&renamed, on2), del_if(&renamed)]
    );
}

#[test]
fn a_new_filter_is_applied_to_every_link_and_address_at_once() {
    let (v4, ula) = (addr(2, "192.0.2.1/24"), addr(3, "fd00::1/64"));
    let (mut state, out) = start(NotifyFlags::EXISTING, &[eth(2), wwan(3)], &[v4, ula]);
    assert_eq!(out.len(), 4, "{out:?}");
    assert_eq!(
        state.set_filter(filter("", "wwan*", "")),
        [del_addr(&wwan(3), ula), del_if(&wwan(3))]
    );
    assert_eq!(
        state.set_filter(filter("", "", "ula")),
        [new_if(&wwan(3))],
        "the interface is back, its ULA is not"
    );
    assert_eq!(
        state.set_filter(AddressFilter::default()),
        [new_addr(&wwan(3), ula)]
    );
    assert_eq!(state.set_filter(AddressFilter::default()), [], "no change");
}

#[test]
fn an_address_that_becomes_deprecated_is_withdrawn_and_comes_back() {
    let mut state = NetState::new(NotifyFlags::EXISTING);
    state.set_filter(filter("", "", "temporary,deprecated"));
    let stable = addr(2, "2001:db8::1/64");
    let mut out = state.apply(Input::DumpStarted);
    out.extend(state.apply(Input::NewLink(eth(2))));
    out.extend(state.apply(Input::NewAddress(stable)));
    out.extend(state.apply(Input::DumpFinished));
    assert_eq!(out, [new_if(&eth(2)), new_addr(&eth(2), stable)]);
    let deprecated = LocalAddress {
        flags: stable.flags | IFA_F_DEPRECATED,
        ..stable
    };
    assert_eq!(
        state.apply(Input::NewAddress(deprecated)),
        [del_addr(&eth(2), deprecated)]
    );
    assert_eq!(
        state.apply(Input::NewAddress(stable)),
        [new_addr(&eth(2), stable)],
        "preferred again"
    );
    let temporary = LocalAddress {
        addr: "2001:db8::abcd".parse().unwrap(),
        flags: IFA_F_TEMPORARY,
        ..stable
    };
    assert_eq!(state.apply(Input::NewAddress(temporary)), []);
}
