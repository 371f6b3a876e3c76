//! `struct sockaddr_storage` as the MPTCP socket options return it.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Decodes a `sockaddr_in` or `sockaddr_in6`; `None` for another family or a short buffer.
#[must_use]
pub fn parse_sockaddr(buf: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes(buf.get(0..2)?.try_into().ok()?);
    // sin_port and sin6_port are in network order.
    let port = u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?);
    match libc::c_int::from(family) {
        libc::AF_INET => {
            let ip: [u8; 4] = buf.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
        libc::AF_INET6 => {
            let flowinfo = u32::from_be_bytes(buf.get(4..8)?.try_into().ok()?);
            let ip: [u8; 16] = buf.get(8..24)?.try_into().ok()?;
            let scope_id = u32::from_ne_bytes(buf.get(24..28)?.try_into().ok()?);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                flowinfo,
                scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::parse_sockaddr;

    fn family(f: libc::c_int) -> [u8; 2] {
        u16::try_from(f).unwrap().to_ne_bytes()
    }

    #[test]
    fn ipv4() {
        let mut buf = [0_u8; 128];
        buf[0..2].copy_from_slice(&family(libc::AF_INET));
        buf[2..4].copy_from_slice(&5201_u16.to_be_bytes());
        buf[4..8].copy_from_slice(&[192, 0, 2, 1]);
        assert_eq!(
            parse_sockaddr(&buf),
            Some("192.0.2.1:5201".parse::<SocketAddr>().unwrap())
        );
    }

    #[test]
    fn ipv6_with_scope() {
        let mut buf = [0_u8; 128];
        buf[0..2].copy_from_slice(&family(libc::AF_INET6));
        buf[2..4].copy_from_slice(&443_u16.to_be_bytes());
        buf[8..24].copy_from_slice(&"fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        buf[24..28].copy_from_slice(&3_u32.to_ne_bytes());
        assert_eq!(
            parse_sockaddr(&buf),
            Some("[fe80::1%3]:443".parse::<SocketAddr>().unwrap())
        );
    }

    #[test]
    fn other_families_and_short_buffers() {
        let mut buf = [0_u8; 128];
        buf[0..2].copy_from_slice(&family(libc::AF_UNIX));
        assert_eq!(parse_sockaddr(&buf), None);
        assert_eq!(parse_sockaddr(&family(libc::AF_INET)), None);
        assert_eq!(parse_sockaddr(&[]), None);
    }
}
