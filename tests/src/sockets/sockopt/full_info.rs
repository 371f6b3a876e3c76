//! `MPTCP_FULL_INFO` (6.5+): the connection and all its subflows in one consistent snapshot.

use std::{io, net::SocketAddr, os::fd::AsFd};

use super::{
    MptcpInfo, SOL_MPTCP, TcpInfo, getsockopt, le, mptcp_info::MPTCP_INFO_SIZE, parse_sockaddr,
    tcp_info::TCP_INFO_SIZE,
};

const MPTCP_TCPINFO: libc::c_int = 2;
const MPTCP_SUBFLOW_ADDRS: libc::c_int = 3;
const MPTCP_FULL_INFO: libc::c_int = 4;
/// `struct mptcp_subflow_data`, the header of the per-subflow arrays (5.16+).
const SUBFLOW_DATA_SIZE: usize = 16;
/// `struct mptcp_subflow_addrs`: two `sockaddr_storage`.
const SUBFLOW_ADDRS_SIZE: usize = 256;
/// `struct mptcp_full_info` up to its embedded `struct mptcp_info`.
const HEADER_SIZE: usize = 40;
/// `struct mptcp_subflow_info`: a `u32` id, padding, then two `sockaddr_storage`.
const SUBFLOW_INFO_SIZE: usize = 264;
const SOCKADDR_STORAGE_SIZE: usize = 128;

/// One subflow of an MPTCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubflowInfo {
    /// The subflow's id within the connection (1, 2, ...; not the path manager's address id).
    pub id: u32,
    /// Local address and port.
    pub local: Option<SocketAddr>,
    /// Remote address and port.
    pub remote: Option<SocketAddr>,
    /// The subflow's TCP state.
    pub tcp: TcpInfo,
}

/// A connection's state and its subflows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FullInfo {
    /// Connection-level counters.
    pub info: MptcpInfo,
    /// Every subflow, the initial one included.
    pub subflows: Vec<SubflowInfo>,
}

/// The connection and its subflows: `MPTCP_FULL_INFO` (6.5+, one consistent snapshot), or on
/// older kernels (5.16+) `MPTCP_INFO`, `MPTCP_SUBFLOW_ADDRS` and `MPTCP_TCPINFO` one after the
/// other.
pub fn full_info(fd: impl AsFd) -> io::Result<FullInfo> {
    let fd = fd.as_fd();
    match full_info_at_once(fd) {
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
            // Also what a plain-TCP socket answers: MPTCP_INFO then says so itself.
            let info = super::mptcp_info(fd)?;
            let addrs = subflow_array(fd, MPTCP_SUBFLOW_ADDRS, SUBFLOW_ADDRS_SIZE)?;
            let tcp = subflow_array(fd, MPTCP_TCPINFO, TCP_INFO_SIZE)?;
            let subflows = (0..addrs.num.min(tcp.num))
                .map_while(|i| {
                    let sf = addrs.element(i)?;
                    let ti = tcp.element(i)?;
                    Some(SubflowInfo {
                        // These options number nothing: count in kernel order, as FULL_INFO does.
                        id: u32::try_from(i + 1).unwrap_or(u32::MAX),
                        local: parse_sockaddr(sf.get(..SOCKADDR_STORAGE_SIZE)?),
                        remote: parse_sockaddr(sf.get(SOCKADDR_STORAGE_SIZE..)?),
                        tcp: TcpInfo::parse(ti),
                    })
                })
                .collect();
            Ok(FullInfo { info, subflows })
        }
        other => other,
    }
}

/// Elements of a per-subflow array option.
struct SubflowArray {
    bytes: Vec<u8>,
    num: usize,
    /// The kernel copies min(its element size, ours) bytes per element, packed.
    stride: usize,
}

impl SubflowArray {
    fn element(&self, i: usize) -> Option<&[u8]> {
        self.bytes.get(i * self.stride..(i + 1) * self.stride)
    }
}

/// `MPTCP_SUBFLOW_ADDRS` or `MPTCP_TCPINFO`: a `mptcp_subflow_data` header, then one element
/// per subflow.
fn subflow_array(
    fd: std::os::fd::BorrowedFd<'_>,
    name: libc::c_int,
    elem: usize,
) -> io::Result<SubflowArray> {
    let mut capacity = 8;
    loop {
        let mut buf = vec![0_u8; SUBFLOW_DATA_SIZE + capacity * elem];
        put_u32(&mut buf, 0, size_u32(SUBFLOW_DATA_SIZE));
        put_u32(&mut buf, 12, size_u32(elem));
        let len = getsockopt(fd, SOL_MPTCP, name, &mut buf)?;
        let num = usize::try_from(le::u32_at(&buf, 4)).unwrap_or(usize::MAX);
        if num > capacity {
            capacity = num;
            continue;
        }
        let kernel_size = usize::try_from(le::u32_at(&buf, 8)).unwrap_or(elem);
        let stride = elem.min(kernel_size).max(1);
        buf.truncate(len);
        buf.drain(..SUBFLOW_DATA_SIZE.min(buf.len()));
        let num = num.min(buf.len() / stride);
        return Ok(SubflowArray {
            bytes: buf,
            num,
            stride,
        });
    }
}

/// `getsockopt(SOL_MPTCP, MPTCP_FULL_INFO)`, retried with larger arrays until every subflow fits.
fn full_info_at_once(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<FullInfo> {
    let mut capacity: u32 = 8;
    loop {
        let slots = usize::try_from(capacity).unwrap_or(usize::MAX);
        let mut subflows = vec![0_u8; slots * SUBFLOW_INFO_SIZE];
        let mut tcp = vec![0_u8; slots * TCP_INFO_SIZE];
        let mut buf = [0_u8; HEADER_SIZE + MPTCP_INFO_SIZE];
        put_u32(&mut buf, 4, size_u32(TCP_INFO_SIZE));
        put_u32(&mut buf, 12, size_u32(SUBFLOW_INFO_SIZE));
        put_u32(&mut buf, 20, capacity);
        // The kernel writes through these user pointers; the vectors outlive the call.
        buf[24..32].copy_from_slice(&(subflows.as_mut_ptr() as u64).to_ne_bytes());
        buf[32..40].copy_from_slice(&(tcp.as_mut_ptr() as u64).to_ne_bytes());
        let len = getsockopt(fd, SOL_MPTCP, MPTCP_FULL_INFO, &mut buf)?;
        let written = &buf[..len];
        let num = le::u32_at(written, 16);
        if num > capacity {
            capacity = num;
            continue;
        }
        let sf_size = usize::try_from(le::u32_at(written, 12)).unwrap_or(SUBFLOW_INFO_SIZE);
        let tcp_size = usize::try_from(le::u32_at(written, 4)).unwrap_or(TCP_INFO_SIZE);
        return Ok(parse(written, &subflows, sf_size, &tcp, tcp_size, num));
    }
}

/// Decodes the header the kernel wrote and the arrays it filled.
fn parse(
    header: &[u8],
    subflows: &[u8],
    sf_size: usize,
    tcp: &[u8],
    tcp_size: usize,
    num: u32,
) -> FullInfo {
    let info = MptcpInfo::parse(header.get(HEADER_SIZE..).unwrap_or_default());
    let subflows = (0..usize::try_from(num).unwrap_or(0))
        .map_while(|i| {
            let sf = subflows.get(i * sf_size..(i + 1) * sf_size)?;
            let ti = tcp.get(i * tcp_size..(i + 1) * tcp_size)?;
            let local = sf
                .get(8..8 + SOCKADDR_STORAGE_SIZE)
                .and_then(parse_sockaddr);
            let remote = sf
                .get(8 + SOCKADDR_STORAGE_SIZE..8 + 2 * SOCKADDR_STORAGE_SIZE)
                .and_then(parse_sockaddr);
            Some(SubflowInfo {
                id: le::u32_at(sf, 0),
                local,
                remote,
                tcp: TcpInfo::parse(ti),
            })
        })
        .collect();
    FullInfo { info, subflows }
}

fn put_u32(buf: &mut [u8], off: usize, value: u32) {
    buf[off..off + 4].copy_from_slice(&value.to_ne_bytes());
}

fn size_u32(size: usize) -> u32 {
    u32::try_from(size).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{HEADER_SIZE, MPTCP_INFO_SIZE, SUBFLOW_INFO_SIZE, TCP_INFO_SIZE, parse, put_u32};

    fn sockaddr_in(buf: &mut [u8], ip: [u8; 4], port: u16) {
        buf[0..2].copy_from_slice(&u16::try_from(libc::AF_INET).unwrap().to_ne_bytes());
        buf[2..4].copy_from_slice(&port.to_be_bytes());
        buf[4..8].copy_from_slice(&ip);
    }

    #[test]
    fn decodes_two_subflows() {
        let mut header = [0_u8; HEADER_SIZE + MPTCP_INFO_SIZE];
        put_u32(&mut header, 16, 2);
        header[HEADER_SIZE] = 1; // one extra subflow
        let mut sf = vec![0_u8; 2 * SUBFLOW_INFO_SIZE];
        let mut tcp = vec![0_u8; 2 * TCP_INFO_SIZE];
        for (i, (local, remote)) in [
            ([192, 0, 2, 1], [192, 0, 2, 2]),
            ([198, 51, 100, 1], [192, 0, 2, 2]),
        ]
        .into_iter()
        .enumerate()
        {
            let base = i * SUBFLOW_INFO_SIZE;
            put_u32(&mut sf, base, u32::try_from(i + 1).unwrap());
            sockaddr_in(&mut sf[base + 8..], local, 40_000);
            sockaddr_in(&mut sf[base + 136..], remote, 5201);
            let t = i * TCP_INFO_SIZE;
            tcp[t + 120..t + 128].copy_from_slice(&(1_000 * (i as u64 + 1)).to_ne_bytes());
        }
        let full = parse(&header, &sf, SUBFLOW_INFO_SIZE, &tcp, TCP_INFO_SIZE, 2);
        assert_eq!(full.info.extra_subflows, 1);
        assert_eq!(full.subflows.len(), 2);
        assert_eq!(full.subflows[1].id, 2);
        assert_eq!(
            full.subflows[1].local,
            Some("198.51.100.1:40000".parse::<SocketAddr>().unwrap())
        );
        assert_eq!(
            full.subflows[1].remote,
            Some("192.0.2.2:5201".parse::<SocketAddr>().unwrap())
        );
        assert_eq!(full.subflows[0].tcp.bytes_acked, 1_000);
        assert_eq!(full.subflows[1].tcp.bytes_acked, 2_000);
    }

    #[test]
    fn a_count_larger_than_the_arrays_stops_at_what_was_filled() {
        let header = [0_u8; HEADER_SIZE + MPTCP_INFO_SIZE];
        let sf = vec![0_u8; SUBFLOW_INFO_SIZE];
        let tcp = vec![0_u8; TCP_INFO_SIZE];
        let full = parse(&header, &sf, SUBFLOW_INFO_SIZE, &tcp, TCP_INFO_SIZE, 5);
        assert_eq!(full.subflows.len(), 1);
    }
}
