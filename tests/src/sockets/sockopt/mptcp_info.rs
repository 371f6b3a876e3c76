//! `MPTCP_INFO`: the connection-level counters of an MPTCP socket.

use std::{io, os::fd::AsFd};

use super::{SOL_MPTCP, getsockopt, le};

const MPTCP_INFO: libc::c_int = 1;
/// `sizeof(struct mptcp_info)` on 6.18; older kernels write a prefix, newer ones no more than we
/// ask for.
pub(super) const MPTCP_INFO_SIZE: usize = 96;

/// `mptcpi_flags` bit: the connection fell back to plain TCP.
pub const MPTCP_INFO_FLAG_FALLBACK: u32 = 1 << 0;
/// `mptcpi_flags` bit: the peer's key was received (the MPTCP handshake completed).
pub const MPTCP_INFO_FLAG_REMOTE_KEY_RECEIVED: u32 = 1 << 1;

/// `struct mptcp_info`, the fields mptcpd uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MptcpInfo {
    /// Subflows beyond the initial one (`mptcpi_subflows`).
    pub extra_subflows: u8,
    /// `ADD_ADDR`s sent (`mptcpi_add_addr_signal`).
    pub add_addr_signal: u8,
    /// `ADD_ADDR`s accepted (`mptcpi_add_addr_accepted`).
    pub add_addr_accepted: u8,
    /// Limit on extra subflows (`mptcpi_subflows_max`).
    pub subflows_max: u8,
    /// `mptcpi_flags`.
    pub flags: u32,
    /// The local token.
    pub token: u32,
    /// Local addresses used for subflows (5.12+).
    pub local_addr_used: u8,
    /// Limit on local addresses (5.12+).
    pub local_addr_max: u8,
    /// Bytes sent, at the MPTCP level (6.5+).
    pub bytes_sent: u64,
    /// Bytes received (6.5+).
    pub bytes_received: u64,
    /// Bytes acknowledged by the peer (6.5+).
    pub bytes_acked: u64,
    /// Subflows ever created, the initial one included (6.8+; 0 before).
    pub subflows_total: u8,
}

impl MptcpInfo {
    /// Decodes the bytes `getsockopt(MPTCP_INFO)` wrote.
    #[must_use]
    pub fn parse(buf: &[u8]) -> Self {
        Self {
            extra_subflows: le::u8_at(buf, 0),
            add_addr_signal: le::u8_at(buf, 1),
            add_addr_accepted: le::u8_at(buf, 2),
            subflows_max: le::u8_at(buf, 3),
            flags: le::u32_at(buf, 8),
            token: le::u32_at(buf, 12),
            local_addr_used: le::u8_at(buf, 40),
            local_addr_max: le::u8_at(buf, 41),
            bytes_sent: le::u64_at(buf, 56),
            bytes_received: le::u64_at(buf, 64),
            bytes_acked: le::u64_at(buf, 72),
            subflows_total: le::u8_at(buf, 80),
        }
    }

    /// The connection fell back to plain TCP.
    #[must_use]
    pub const fn fell_back(&self) -> bool {
        self.flags & MPTCP_INFO_FLAG_FALLBACK != 0
    }
}

/// `getsockopt(SOL_MPTCP, MPTCP_INFO)`. Fails with `EOPNOTSUPP` or `ENOPROTOOPT` on a socket that
/// is, or fell back to, plain TCP.
pub fn mptcp_info(fd: impl AsFd) -> io::Result<MptcpInfo> {
    let mut buf = [0_u8; MPTCP_INFO_SIZE];
    let len = getsockopt(fd, SOL_MPTCP, MPTCP_INFO, &mut buf)?;
    Ok(MptcpInfo::parse(&buf[..len]))
}

#[cfg(test)]
mod tests {
    use super::{MPTCP_INFO_SIZE, MptcpInfo};

    #[test]
    fn decodes_fields_at_their_offsets() {
        let mut buf = [0_u8; MPTCP_INFO_SIZE];
        buf[0] = 1;
        buf[3] = 8;
        buf[8..12].copy_from_slice(&2_u32.to_ne_bytes());
        buf[12..16].copy_from_slice(&0xdead_beef_u32.to_ne_bytes());
        buf[56..64].copy_from_slice(&1_000_u64.to_ne_bytes());
        buf[64..72].copy_from_slice(&2_000_u64.to_ne_bytes());
        buf[72..80].copy_from_slice(&900_u64.to_ne_bytes());
        buf[80] = 2;
        let info = MptcpInfo::parse(&buf);
        assert_eq!(info.extra_subflows, 1);
        assert_eq!(info.subflows_max, 8);
        assert_eq!(info.token, 0xdead_beef);
        assert_eq!(info.bytes_sent, 1_000);
        assert_eq!(info.bytes_received, 2_000);
        assert_eq!(info.bytes_acked, 900);
        assert_eq!(info.subflows_total, 2);
        assert!(!info.fell_back());
    }

    #[test]
    fn an_old_kernels_short_struct_reads_missing_fields_as_zero() {
        // 5.9 wrote 40 bytes: no byte counters, no subflows_total.
        let mut buf = [0_u8; 40];
        buf[0] = 3;
        buf[8] = 1;
        let info = MptcpInfo::parse(&buf);
        assert_eq!(info.extra_subflows, 3);
        assert!(info.fell_back());
        assert_eq!(info.bytes_sent, 0);
        assert_eq!(info.subflows_total, 0);
    }
}
