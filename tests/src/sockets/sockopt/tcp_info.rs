//! `struct tcp_info`, as the kernel returns it for each subflow.

use super::le;

/// `sizeof(struct tcp_info)` as far as the fields below reach (the struct is 280 bytes on
/// 6.18; asking for less is allowed, the kernel copies the common prefix).
pub(super) const TCP_INFO_SIZE: usize = 216;

/// The `struct tcp_info` fields mptcpd reports per subflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// `tcpi_state` (1 = established).
    pub state: u8,
    /// Retransmission timeout, microseconds (`tcpi_rto`).
    pub rto_us: u32,
    /// Smoothed RTT, microseconds.
    pub rtt_us: u32,
    /// Congestion window, segments.
    pub snd_cwnd: u32,
    /// Bytes acknowledged by the peer (`tcpi_bytes_acked`, 4.1+).
    pub bytes_acked: u64,
    /// Bytes received (`tcpi_bytes_received`, 4.1+).
    pub bytes_received: u64,
    /// Bytes sent, retransmissions included (`tcpi_bytes_sent`, 4.19+).
    pub bytes_sent: u64,
    /// Bytes retransmitted (`tcpi_bytes_retrans`, 4.19+).
    pub bytes_retrans: u64,
}

impl TcpInfo {
    /// Decodes one `struct tcp_info`.
    #[must_use]
    pub fn parse(buf: &[u8]) -> Self {
        Self {
            state: le::u8_at(buf, 0),
            rto_us: le::u32_at(buf, 8),
            rtt_us: le::u32_at(buf, 68),
            snd_cwnd: le::u32_at(buf, 80),
            bytes_acked: le::u64_at(buf, 120),
            bytes_received: le::u64_at(buf, 128),
            bytes_sent: le::u64_at(buf, 200),
            bytes_retrans: le::u64_at(buf, 208),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{TCP_INFO_SIZE, TcpInfo};

    #[test]
    fn decodes_fields_at_their_offsets() {
        let mut buf = [0_u8; TCP_INFO_SIZE];
        buf[0] = 1;
        buf[8..12].copy_from_slice(&204_000_u32.to_ne_bytes());
        buf[68..72].copy_from_slice(&250_u32.to_ne_bytes());
        buf[80..84].copy_from_slice(&10_u32.to_ne_bytes());
        buf[120..128].copy_from_slice(&4_096_u64.to_ne_bytes());
        buf[128..136].copy_from_slice(&7_u64.to_ne_bytes());
        buf[200..208].copy_from_slice(&5_000_u64.to_ne_bytes());
        buf[208..216].copy_from_slice(&904_u64.to_ne_bytes());
        assert_eq!(
            TcpInfo::parse(&buf),
            TcpInfo {
                state: 1,
                rto_us: 204_000,
                rtt_us: 250,
                snd_cwnd: 10,
                bytes_acked: 4_096,
                bytes_received: 7,
                bytes_sent: 5_000,
                bytes_retrans: 904,
            }
        );
    }
}
