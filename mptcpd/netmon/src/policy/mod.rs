//! The address policy of `[policy]`: which interfaces may carry paths (allow and deny lists of
//! names and glob patterns) and which classes of addresses never do (IPv6 temporary, deprecated,
//! unique local, or a prefix). Pure decisions: an interface name or an address in, yes or no out.

use std::{fmt, net::IpAddr, str::FromStr};

use super::model::LocalAddress;

/// `IFA_F_TEMPORARY`: an IPv6 privacy address (RFC 8981). The same bit is `IFA_F_SECONDARY`
/// for IPv4, so it only means "temporary" on IPv6 addresses.
pub const IFA_F_TEMPORARY: u32 = 0x01;
/// `IFA_F_DEPRECATED`: the preferred lifetime ran out (`preferred_lft 0`): existing
/// connections may use the address, new ones should not.
pub const IFA_F_DEPRECATED: u32 = 0x20;

/// An interface name or a shell-style pattern of one: `*` (any run), `?` (one character),
/// `[abc]`, `[a-z]`, `[!x]`. Interface names are at most 15 bytes, so a direct matcher is all
/// it takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InterfacePattern(String);

/// A word of a list that is not a valid pattern, prefix or class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An empty pattern, an unclosed `[`, or a character an interface name cannot hold.
    #[error("bad interface pattern {0:?} (a name, or a pattern with * ? [...])")]
    Pattern(String),
    /// Two commas in a row, or a comma at either end.
    #[error("empty entry in {0:?}")]
    Empty(String),
    /// Neither a class nor a prefix.
    #[error(
        "unknown address class {0:?} (expected temporary, deprecated, ula or a prefix such \
         as 2001:db8::/32)"
    )]
    Class(String),
    /// A family other than ipv4 or ipv6.
    #[error("unknown family {0:?} (expected ipv4 or ipv6)")]
    Family(String),
}

impl InterfacePattern {
    /// Whether `name` matches.
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for InterfacePattern {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PolicyError::Pattern(text.to_owned());
        // What the kernel refuses in a name (dev_valid_name), and our list separators.
        if text.is_empty()
            || text
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b == b'/' || b == b',')
            || unclosed_bracket(text.as_bytes())
        {
            return Err(bad());
        }
        Ok(Self(text.to_owned()))
    }
}

impl fmt::Display for InterfacePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn unclosed_bracket(pattern: &[u8]) -> bool {
    let mut i = 0;
    while i < pattern.len() {
        if pattern[i] == b'[' {
            match class_end(pattern, i) {
                Some(end) => i = end,
                None => return true,
            }
        }
        i += 1;
    }
    false
}

/// The index of the `]` closing the class that opens at `open` (a `]` first in it is literal).
fn class_end(pattern: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if pattern.get(i) == Some(&b'!') {
        i += 1;
    }
    if pattern.get(i) == Some(&b']') {
        i += 1;
    }
    pattern[i..]
        .iter()
        .position(|&b| b == b']')
        .map(|at| i + at)
}

/// Whether `byte` is in a class, given what stands between its `[` and `]`.
fn in_class(class: &[u8], byte: u8) -> bool {
    let (negated, mut set) = match class.split_first() {
        Some((b'!', rest)) => (true, rest),
        _ => (false, class),
    };
    let mut found = false;
    while let Some((&first, rest)) = set.split_first() {
        if let [b'-', last, tail @ ..] = rest {
            found |= (first..=*last).contains(&byte);
            set = tail;
        } else {
            found |= first == byte;
            set = rest;
        }
    }
    found != negated
}

/// fnmatch(3) without flags, over bytes.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
        Some((b'?', rest)) => name.split_first().is_some_and(|(_, tail)| glob(rest, tail)),
        Some((b'[', _)) => {
            let Some(end) = class_end(pattern, 0) else {
                return false;
            };
            name.split_first().is_some_and(|(&b, tail)| {
                in_class(&pattern[1..end], b) && glob(&pattern[end + 1..], tail)
            })
        }
        Some((&literal, rest)) => name
            .split_first()
            .is_some_and(|(&b, tail)| b == literal && glob(rest, tail)),
    }
}

/// A comma-separated list of `T` (blanks around each word allowed).
pub fn parse_list<T: FromStr<Err = PolicyError>>(list: &str) -> Result<Vec<T>, PolicyError> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .map(|word| match word.trim() {
            "" => Err(PolicyError::Empty(list.to_owned())),
            word => word.parse(),
        })
        .collect()
}

/// An address prefix (`ADDR/LEN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Whether `addr` lies in it (never across families).
    #[must_use]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.len)).unwrap_or(0);
                (u32::from(p) ^ u32::from(a)) & mask == 0
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.len))
                    .unwrap_or(0);
                (u128::from(p) ^ u128::from(a)) & mask == 0
            }
            _ => false,
        }
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One entry of `skip-addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// IPv6 temporary (privacy) addresses.
    Temporary,
    /// Deprecated addresses (preferred lifetime over): they lose their endpoint.
    Deprecated,
    /// IPv6 unique local addresses, `fc00::/7`.
    Ula,
    /// Addresses in this prefix.
    Prefix(Prefix),
}

impl AddressClass {
    /// Whether `address` belongs to the class.
    #[must_use]
    pub fn contains(&self, address: &LocalAddress) -> bool {
        let v6 = matches!(address.addr, IpAddr::V6(_));
        match self {
            Self::Temporary => v6 && address.flags & IFA_F_TEMPORARY != 0,
            Self::Deprecated => address.flags & IFA_F_DEPRECATED != 0,
            Self::Ula => matches!(address.addr, IpAddr::V6(a) if a.is_unique_local()),
            Self::Prefix(prefix) => prefix.contains(address.addr),
        }
    }
}

impl FromStr for AddressClass {
    type Err = PolicyError;

    fn from_str(word: &str) -> Result<Self, Self::Err> {
        let class = || PolicyError::Class(word.to_owned());
        Ok(match word {
            "temporary" => Self::Temporary,
            "deprecated" => Self::Deprecated,
            "ula" => Self::Ula,
            _ => {
                let (addr, len) = word.split_once('/').ok_or_else(class)?;
                let addr: IpAddr = addr.parse().map_err(|_| class())?;
                let len: u8 = len.parse().map_err(|_| class())?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                if len > max {
                    return Err(class());
                }
                Self::Prefix(Prefix { addr, len })
            }
        })
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Temporary => f.write_str("temporary"),
            Self::Deprecated => f.write_str("deprecated"),
            Self::Ula => f.write_str("ula"),
            Self::Prefix(prefix) => prefix.fmt(f),
        }
    }
}

/// Which interfaces and addresses the monitor reports at all (on top of the notify flags):
/// what is filtered out never reaches a plugin, so it never spends one of the kernel's 8
/// endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressFilter {
    /// `interfaces=`: only interfaces matching one of these (empty: all).
    pub interfaces: Vec<InterfacePattern>,
    /// `skip-interfaces=`: never these, even if `interfaces` names them.
    pub skip_interfaces: Vec<InterfacePattern>,
    /// `skip-addresses=`: never addresses of these classes.
    pub skip_addresses: Vec<AddressClass>,
}

impl AddressFilter {
    /// Whether the interface called `name` may carry paths.
    #[must_use]
    pub fn allows_interface(&self, name: &str) -> bool {
        (self.interfaces.is_empty() || self.interfaces.iter().any(|p| p.matches(name)))
            && !self.skip_interfaces.iter().any(|p| p.matches(name))
    }

    /// Whether `address` (its interface aside) may carry paths.
    #[must_use]
    pub fn allows_address(&self, address: &LocalAddress) -> bool {
        !self.skip_addresses.iter().any(|c| c.contains(address))
    }
}

#[cfg(test)]
mod tests;
