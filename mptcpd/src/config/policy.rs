//! The address policy sections of the file: `[policy]` (which interfaces and addresses may
//! carry paths, and which win under the kernel's 8 endpoints) and `[interface PATTERN]` (the
//! flags of the endpoints on matching interfaces). New sections rather than `[core]` keys, so
//! that `[core]` stays the C daemon's (which ignores other sections) and a pattern can name a
//! section (ELL, the C daemon's parser, allows `*` in a section name, not in a key; it refuses
//! `[` and `]` there, so such patterns are refused in section names too).

use std::fmt;

use mptcp_pm::EndpointFlags;
use mptcpd_netmon::{AddressFilter, Family, InterfacePattern, parse_list};
use mptcpd_plugin::EndpointPolicy;

use super::{LineProblem, file::typed};

/// The section of the filter and the ranking.
pub const POLICY_SECTION: &str = "policy";
/// What starts the name of a section of flags for the interfaces matching the rest.
pub const INTERFACE_SECTION: &str = "interface ";

/// What the policy sections say; the default when there are none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// What the network monitor reports at all (`interfaces`, `skip-interfaces`,
    /// `skip-addresses`).
    pub filter: AddressFilter,
    /// What `addr_adv` applies (flags per interface, `interfaces` order, `prefer-family`).
    pub endpoints: EndpointPolicy,
}

impl Policy {
    /// Sets a `[policy]` key.
    pub(super) fn set(&mut self, key: &str, value: &str) -> Result<(), LineProblem> {
        match key {
            "interfaces" => {
                let order: Vec<InterfacePattern> = typed(key, value, parse_list)?;
                self.filter.interfaces.clone_from(&order);
                self.endpoints.interface_order = order;
            }
            "skip-interfaces" => self.filter.skip_interfaces = typed(key, value, parse_list)?,
            "skip-addresses" => self.filter.skip_addresses = typed(key, value, parse_list)?,
            "prefer-family" => {
                self.endpoints.prefer_family = typed(key, value, parse_family)?;
            }
            _ => {
                return Err(LineProblem::UnknownKey {
                    section: POLICY_SECTION.to_owned(),
                    key: key.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Sets a key of `[interface PATTERN]`.
    pub(super) fn set_interface(
        &mut self,
        pattern: &InterfacePattern,
        key: &str,
        value: &str,
    ) -> Result<(), LineProblem> {
        if key != "flags" {
            return Err(LineProblem::UnknownKey {
                section: format!("{INTERFACE_SECTION}{pattern}"),
                key: key.to_owned(),
            });
        }
        let flags: EndpointFlags = typed(key, value, str::parse)?;
        let rules = &mut self.endpoints.interface_flags;
        // A section repeated for the same pattern: its last flags, in its first place.
        match rules.iter_mut().find(|(p, _)| p == pattern) {
            Some(rule) => rule.1 = flags,
            None => rules.push((pattern.clone(), flags)),
        }
        Ok(())
    }
}

/// `ipv4`, `ipv6`, or empty (no preference).
fn parse_family(value: &str) -> Result<Option<Family>, mptcpd_netmon::PolicyError> {
    match value {
        "" => Ok(None),
        "ipv4" => Ok(Some(Family::V4)),
        "ipv6" => Ok(Some(Family::V6)),
        other => Err(mptcpd_netmon::PolicyError::Family(other.to_owned())),
    }
}

/// A comma-separated list of what `items` holds.
fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Policy {
    /// The sections that say this policy (nothing for the default), as the file writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            filter:
                AddressFilter {
                    interfaces,
                    skip_interfaces,
                    skip_addresses,
                },
            endpoints:
                EndpointPolicy {
                    interface_flags,
                    interface_order,
                    prefer_family,
                },
        } = self;
        let mut keys = Vec::new();
        // `interfaces=` says both; they differ only after a reload kept the old order.
        let order = if interfaces.is_empty() {
            interface_order
        } else {
            interfaces
        };
        if !order.is_empty() {
            keys.push(format!("interfaces={}", list(order)));
        }
        if !skip_interfaces.is_empty() {
            keys.push(format!("skip-interfaces={}", list(skip_interfaces)));
        }
        if !skip_addresses.is_empty() {
            keys.push(format!("skip-addresses={}", list(skip_addresses)));
        }
        match prefer_family {
            Some(Family::V4) => keys.push("prefer-family=ipv4".to_owned()),
            Some(Family::V6) => keys.push("prefer-family=ipv6".to_owned()),
            None => {}
        }
        if !keys.is_empty() {
            writeln!(f, "[{POLICY_SECTION}]")?;
            for key in keys {
                writeln!(f, "{key}")?;
            }
        }
        for (pattern, flags) in interface_flags {
            writeln!(f, "[{INTERFACE_SECTION}{pattern}]\nflags={flags}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mptcp_pm::EndpointFlags;
    use mptcpd_netmon::{AddressClass, Family, parse_list};

    use super::Policy;
    use crate::config::{LineProblem, file::parse};

    #[test]
    fn the_sections_fill_the_filter_and_the_endpoint_policy() {
        let text = "[core]\naddr-flags=subflow\n\
            [policy]\n\
            interfaces=eth*, wlan0, wwan*\n\
            skip-interfaces=docker*,veth*\n\
            skip-addresses=temporary,deprecated,ula,2001:db8:dead::/48\n\
            prefer-family=ipv6\n\
            [interface wwan*]\nflags=subflow,backup\n\
            [interface eth0]\nflags=subflow,signal\n\
            [interface wwan*]\nflags=subflow,backup,fullmesh\n";
        let policy = parse(text).unwrap().policy;
        let order = parse_list("eth*,wlan0,wwan*").unwrap();
        assert_eq!(policy.filter.interfaces, order);
        assert_eq!(policy.endpoints.interface_order, order);
        assert_eq!(
            policy.filter.skip_interfaces,
            parse_list("docker*,veth*").unwrap()
        );
        assert_eq!(policy.filter.skip_addresses.len(), 4);
        assert_eq!(policy.filter.skip_addresses[2], AddressClass::Ula);
        assert_eq!(policy.endpoints.prefer_family, Some(Family::V6));
        let flags: Vec<_> = policy
            .endpoints
            .interface_flags
            .iter()
            .map(|(p, f)| (p.as_str(), *f))
            .collect();
        assert_eq!(
            flags,
            [
                (
                    "wwan*",
                    EndpointFlags::SUBFLOW | EndpointFlags::BACKUP | EndpointFlags::FULLMESH
                ),
                ("eth0", EndpointFlags::SUBFLOW | EndpointFlags::SIGNAL),
            ],
            "a repeated section keeps its place and takes its last flags"
        );
        // Printed as sections, it reads back the same.
        let printed = policy.to_string();
        assert_eq!(parse(&printed).unwrap().policy, policy, "{printed}");
        assert_eq!(Policy::default().to_string(), "");
    }

    #[test]
    fn the_shipped_file_documents_every_policy_key() {
        let shipped = include_str!("../../../dist/mptcpd.conf");
        for key in [
            "[policy]",
            "interfaces=",
            "skip-interfaces=",
            "skip-addresses=",
            "prefer-family=",
            "[interface wwan*]",
            "flags=",
        ] {
            assert!(shipped.contains(&format!("\n# {key}")), "{key}");
        }
    }

    #[test]
    fn each_bad_policy_line_is_named_with_its_key() {
        let cases: [(&str, usize, &str); 10] = [
            (
                "[policy]\ninterface=eth0\n",
                2,
                "unknown key \"interface\" in [policy]",
            ),
            (
                "[policy]\ninterfaces=eth0,,eth1\n",
                2,
                "key \"interfaces\": empty entry",
            ),
            (
                "[policy]\nskip-interfaces=eth[0\n",
                2,
                "key \"skip-interfaces\": bad interface pattern \"eth[0\"",
            ),
            (
                "[policy]\nskip-addresses=privacy\n",
                2,
                "key \"skip-addresses\": unknown address class \"privacy\"",
            ),
            (
                "[policy]\nprefer-family=inet6\n",
                2,
                "key \"prefer-family\": unknown family \"inet6\"",
            ),
            (
                "[interface wwan*]\nflag=backup\n",
                2,
                "unknown key \"flag\" in [interface wwan*]",
            ),
            (
                "[interface wwan*]\n\nflags=subflow,bakup\n",
                3,
                "key \"flags\": unknown",
            ),
            (
                "[interface]\nflags=backup\n",
                1,
                "bad interface pattern \"\"",
            ),
            (
                "[interface veth[0-3]]\nflags=backup\n",
                1,
                "[interface veth[0-3]]: a section name holds printable characters but no [ or ]",
            ),
            (
                "[interface eth 0]\nflags=backup\n",
                1,
                "[interface eth 0]: bad interface pattern \"eth 0\"",
            ),
        ];
        for (text, line, needle) in cases {
            let Err((at, problem)) = parse(text) else {
                panic!("{text:?} parses");
            };
            assert_eq!(at, line, "{text:?}");
            let message = problem.to_string();
            assert!(message.contains(needle), "{text:?}: {message}");
            assert!(!matches!(problem, LineProblem::Syntax), "{text:?}");
        }
    }
}
