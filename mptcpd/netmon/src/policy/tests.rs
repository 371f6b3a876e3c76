//! The policy's decisions: an interface name or an address in, yes or no out.

use std::net::IpAddr;

use super::{
    AddressClass, AddressFilter, IFA_F_DEPRECATED, IFA_F_TEMPORARY, InterfacePattern, PolicyError,
    parse_list,
};
use crate::{AddressScope, LocalAddress};

fn pattern(text: &str) -> InterfacePattern {
    text.parse().unwrap()
}

fn address(text: &str, flags: u32) -> LocalAddress {
    LocalAddress {
        ifindex: 2,
        addr: text.parse::<IpAddr>().unwrap(),
        prefix_len: 64,
        scope: AddressScope::Universe,
        flags,
    }
}

#[test]
fn patterns_match_as_fnmatch_does() {
    let cases = [
        ("eth0", "eth0", true),
        ("eth0", "eth01", false),
        ("wwan*", "wwan0", true),
        ("wwan*", "wwan", true),
        ("wwan*", "wlan0", false),
        ("*", "anything", true),
        ("eth?", "eth1", true),
        ("eth?", "eth10", false),
        ("veth[0-3]", "veth2", true),
        ("veth[0-3]", "veth4", false),
        ("veth[!0-3]", "veth4", true),
        ("veth[!0-3]", "veth1", false),
        ("[]x]", "]", true),
        ("*.10", "eth0.10", true),
        ("d*r*", "docker0", true),
        ("d*r*", "dummy0", false),
    ];
    for (p, name, expected) in cases {
        assert_eq!(pattern(p).matches(name), expected, "{p} ~ {name}");
    }
}

#[test]
fn bad_patterns_are_refused() {
    for bad in ["", "eth 0", "a/b", "eth[0", "a,b"] {
        assert_eq!(
            bad.parse::<InterfacePattern>(),
            Err(PolicyError::Pattern(bad.to_owned())),
            "{bad:?}"
        );
    }
}

#[test]
fn lists_parse_and_name_what_is_wrong() {
    assert_eq!(
        parse_list::<InterfacePattern>(" eth0 , wwan* "),
        Ok(vec![pattern("eth0"), pattern("wwan*")])
    );
    assert_eq!(parse_list::<InterfacePattern>(""), Ok(vec![]));
    assert_eq!(
        parse_list::<InterfacePattern>("eth0,,wwan*"),
        Err(PolicyError::Empty("eth0,,wwan*".to_owned()))
    );
    let classes =
        parse_list::<AddressClass>("temporary,deprecated,ula,2001:db8:1::/48,10.0.0.0/8").unwrap();
    assert_eq!(classes.len(), 5);
    let shown: Vec<_> = classes.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "temporary",
            "deprecated",
            "ula",
            "2001:db8:1::/48",
            "10.0.0.0/8"
        ]
    );
    for bad in [
        "temporay",
        "10.0.0.0/33",
        "2001:db8::/129",
        "10.0.0.0",
        "x/8",
    ] {
        let err = parse_list::<AddressClass>(bad).unwrap_err();
        assert_eq!(err, PolicyError::Class(bad.to_owned()));
        assert!(err.to_string().contains(bad), "{err}");
    }
}

#[test]
fn deny_wins_over_allow_and_an_empty_allow_list_allows_all() {
    let all = AddressFilter::default();
    assert!(all.allows_interface("docker0"));
    let filter = AddressFilter {
        interfaces: vec![pattern("eth*"), pattern("wwan0")],
        skip_interfaces: vec![pattern("eth9")],
        skip_addresses: vec![],
    };
    assert!(filter.allows_interface("eth0"));
    assert!(filter.allows_interface("wwan0"));
    assert!(!filter.allows_interface("wwan1"), "not on the allow list");
    assert!(!filter.allows_interface("eth9"), "denied");
    let deny_only = AddressFilter {
        skip_interfaces: vec![pattern("docker*"), pattern("veth*")],
        ..AddressFilter::default()
    };
    assert!(deny_only.allows_interface("eth0"));
    assert!(!deny_only.allows_interface("docker0"));
}

#[test]
fn address_classes_decide_by_flags_and_value() {
    let filter = AddressFilter {
        skip_addresses: parse_list("temporary,deprecated,ula,203.0.113.0/24").unwrap(),
        ..AddressFilter::default()
    };
    assert!(filter.allows_address(&address("2001:db8::1", 0)));
    assert!(!filter.allows_address(&address("2001:db8::1", IFA_F_TEMPORARY)));
    assert!(!filter.allows_address(&address("2001:db8::1", IFA_F_DEPRECATED)));
    assert!(!filter.allows_address(&address("198.51.100.1", IFA_F_DEPRECATED)));
    // IFA_F_SECONDARY on IPv4 shares the bit: a secondary IPv4 address is not temporary.
    assert!(filter.allows_address(&address("198.51.100.1", IFA_F_TEMPORARY)));
    assert!(!filter.allows_address(&address("fd00::1", 0)));
    assert!(!filter.allows_address(&address("fc12::1", 0)));
    assert!(filter.allows_address(&address("fe80::1", 0)), "not a ULA");
    assert!(!filter.allows_address(&address("203.0.113.9", 0)));
    assert!(filter.allows_address(&address("203.0.114.9", 0)));
    // Without classes, everything passes.
    assert!(AddressFilter::default().allows_address(&address("fd00::1", IFA_F_TEMPORARY)));
}
