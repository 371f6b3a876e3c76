//! Types shared by mptcpd's eBPF programs and user space.
//!
//! Everything here is `#[repr(C)]` and `no_std`: the same bytes are written by a BPF program
//! and read by the daemon. The `user` feature adds the user-space impls; the `cli` feature
//! (std) the one-line usage errors that `mptcpctl` and `mptcpize` share ([`usage`]); the `std`
//! feature the one-line display of an error chain ([`Chain`]); the `sys` feature (std) the
//! netlink sockets' receive buffers (`rcvbuf`); the `dbus` feature (std) the names and wire
//! types of the D-Bus surface ([`dbus`]).
#![cfg_attr(not(any(test, feature = "std")), no_std)]

#[cfg(feature = "dbus")]
pub mod dbus;
#[cfg(any(test, feature = "std"))]
pub mod error;
#[cfg(feature = "sys")]
pub mod rcvbuf;
pub mod telemetry;
pub mod telemetry_refresh;
#[cfg(feature = "cli")]
pub mod usage;

#[cfg(any(test, feature = "std"))]
pub use error::Chain;

/// Name of the map in which the `sock_create` observer counts stream sockets per cgroup.
pub const SOCK_COUNTS_MAP: &str = "SOCK_COUNTS";

/// Name of the `cgroup/sock_create` observer program.
pub const SOCK_CREATE_PROGRAM: &str = "sock_create_observer";

/// Most cgroups the observer tracks at once; the map is an LRU, so the least recently active
/// cgroups are evicted first.
pub const SOCK_COUNTS_MAX_ENTRIES: u32 = 4096;

/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u32 = 6;
/// `IPPROTO_MPTCP` (Linux 5.6+).
pub const IPPROTO_MPTCP: u32 = 262;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: u32 = 1;
/// `AF_INET`.
pub const AF_INET: u32 = 2;
/// `AF_INET6`.
pub const AF_INET6: u32 = 10;

/// `(type & SOCK_TYPE_MASK)` is the socket type; `SOCK_NONBLOCK` and `SOCK_CLOEXEC` are above.
pub const SOCK_TYPE_MASK: u32 = 0xf;

/// THE rule of which `socket(family, type, protocol)` calls get MPTCP in place of TCP, shared
/// by the `LD_PRELOAD` wrapper and the eBPF upgrade: `AF_INET`/`AF_INET6`, a stream type
/// (flags allowed), protocol 0 or `IPPROTO_TCP`. The arguments are C ints taken bit for bit.
#[must_use]
pub const fn upgrades_to_mptcp(family: u32, sock_type: u32, protocol: u32) -> bool {
    (family == AF_INET || family == AF_INET6)
        && sock_type & SOCK_TYPE_MASK == SOCK_STREAM
        && (protocol == 0 || protocol == IPPROTO_TCP)
}

/// Stream sockets created by the tasks of one cgroup, by protocol.
///
/// The map is per CPU: user space sums the per-CPU values.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockCounts {
    /// Sockets created as plain TCP.
    pub tcp: u64,
    /// Sockets created as MPTCP.
    pub mptcp: u64,
}

impl SockCounts {
    /// Adds another CPU's counts to these.
    #[must_use]
    pub const fn saturating_add(self, other: Self) -> Self {
        let Self { tcp, mptcp } = self;
        Self {
            tcp: tcp.saturating_add(other.tcp),
            mptcp: mptcp.saturating_add(other.mptcp),
        }
    }
}

#[cfg(feature = "user")]
mod user {
    // SAFETY: `SockCounts` is `#[repr(C)]`, made of two `u64` without padding, and every bit
    // pattern is a valid value.
    unsafe impl aya::Pod for super::SockCounts {}
    // SAFETY: as above: `#[repr(C)]`, two `u64`, no padding.
    unsafe impl aya::Pod for super::upgrade::CgroupEntry {}
    // SAFETY: `#[repr(C)]`, five `u64`, no padding.
    unsafe impl aya::Pod for super::upgrade::NetnsConfig {}
}

/// Kernel-feature probes: tiny programs that mptcpd loads and attaches to learn what the running
/// kernel allows (never guessed from its version).
pub mod probes {
    /// Per-CPU array of hit counters, indexed by [`KPROBE_SLOT`] and [`FENTRY_SLOT`].
    pub const HITS_MAP: &str = "PROBE_HITS";
    /// Slot the kprobe probe counts in.
    pub const KPROBE_SLOT: u32 = 0;
    /// Slot the fentry probe counts in.
    pub const FENTRY_SLOT: u32 = 1;
    /// Number of slots.
    pub const SLOTS: u32 = 2;
    /// The kprobe program.
    pub const KPROBE_PROGRAM: &str = "probe_kprobe";
    /// The fentry program.
    pub const FENTRY_PROGRAM: &str = "probe_fentry";
    /// The kernel function both attach to: present on every kernel with TCP, called by every
    /// active TCP open and every MPTCP subflow connect.
    pub const TARGET_FUNCTION: &str = "tcp_connect";
}

/// The TCP-to-MPTCP upgrade: an `fmod_ret/update_socket_protocol` program in its own object
/// (aya cannot parse `fmod_ret` sections), with a map of enabled cgroups that user space creates
/// and pins.
pub mod upgrade {
    /// The program (also its name in the kernel: at most 15 bytes).
    pub const PROGRAM: &str = "upgrade_socket";
    /// The kernel function whose return value the program replaces (Linux 6.6+).
    pub const TARGET_FUNCTION: &str = "update_socket_protocol";
    /// Hash: key, a cgroup v2 id; value, a [`CgroupEntry`]. A cgroup's entry covers its
    /// descendants down to the next cgroup with an entry of its own.
    pub const CGROUPS_MAP: &str = "UPGRADE_CGROUPS";
    /// Version of the pinned layout (pin names, map shape, program). Part of the pin names, so
    /// that a newer `mptcpize` recognises an older layout and replaces it.
    pub const LAYOUT_VERSION: u32 = 3;
    /// [`CgroupEntry::mode`]: the cgroup's new TCP sockets are MPTCP.
    pub const MODE_ENABLED: u64 = 1;
    /// [`CgroupEntry::mode`]: the cgroup's sockets stay TCP even under an enabled ancestor.
    pub const MODE_OPTED_OUT: u64 = 2;

    /// What the map says about one cgroup. Not per CPU: the program adds to `upgraded`
    /// atomically (a per-CPU slot is not enough: the program can be preempted).
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct CgroupEntry {
        /// [`MODE_ENABLED`] or [`MODE_OPTED_OUT`].
        pub mode: u64,
        /// Sockets upgraded for this cgroup (enabled ones only).
        pub upgraded: u64,
    }
    /// Most cgroups enabled at once.
    pub const CGROUPS_MAX_ENTRIES: u32 = 1024;
    /// How many cgroup levels the program looks at, root (level 0) first. systemd nests about 5
    /// deep; deeper cgroups are covered only by an enabled ancestor within this depth.
    pub const MAX_CGROUP_DEPTH: i32 = 32;

    /// Hash: key, a network namespace's cookie (`SO_NETNS_COOKIE`, never reused within a
    /// boot); value, sockets upgraded in it. The allow-list: only tasks of a namespace in it
    /// get MPTCP (a namespace with `net.mptcp.enabled = 0` would fail their `socket()`).
    pub const NETNS_MAP: &str = "UPGRADE_NETNS";
    /// Most namespaces allowed at once.
    pub const NETNS_MAX_ENTRIES: u32 = 4096;
    /// Array of one [`NetnsConfig`]: how the program reaches the task's namespace cookie.
    pub const NETNS_CONFIG_MAP: &str = "UPGRADE_NETNS_CFG";

    /// Byte offsets of the kernel fields on the way from the current task to its network
    /// namespace's cookie (`task_struct.nsproxy`, `nsproxy.net_ns`, `net.net_cookie`), read
    /// from the kernel's BTF by user space before the program is loaded; and a counter.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct NetnsConfig {
        /// 1 once the offsets are written; until then the program upgrades nothing.
        pub ready: u64,
        /// `offsetof(struct task_struct, nsproxy)`.
        pub task_nsproxy: u64,
        /// `offsetof(struct nsproxy, net_ns)`.
        pub nsproxy_net_ns: u64,
        /// `offsetof(struct net, net_cookie)`.
        pub net_cookie: u64,
        /// Sockets of enabled cgroups left TCP because their namespace is not allowed.
        pub not_allowed: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::{AF_INET, AF_INET6, IPPROTO_MPTCP, IPPROTO_TCP, SOCK_STREAM, upgrades_to_mptcp};

    /// `SOCK_DGRAM`, `AF_UNIX`, `SOCK_NONBLOCK | SOCK_CLOEXEC` on `x86_64`.
    const SOCK_DGRAM: u32 = 2;
    const AF_UNIX: u32 = 1;
    const FLAGS: u32 = 0o4000 | 0o2_000_000;

    #[test]
    fn only_tcp_stream_sockets_of_inet_families_get_mptcp() {
        assert!(upgrades_to_mptcp(AF_INET, SOCK_STREAM, 0));
        assert!(upgrades_to_mptcp(
            AF_INET6,
            SOCK_STREAM | FLAGS,
            IPPROTO_TCP
        ));
        assert!(!upgrades_to_mptcp(AF_UNIX, SOCK_STREAM, 0));
        assert!(!upgrades_to_mptcp(AF_INET, SOCK_DGRAM, 0));
        assert!(!upgrades_to_mptcp(AF_INET, SOCK_STREAM, IPPROTO_MPTCP));
        // SCTP's one-to-one style is a stream socket of another protocol.
        assert!(!upgrades_to_mptcp(AF_INET, SOCK_STREAM, 132));
        // C ints taken bit for bit: -1 is no family, no type, no protocol.
        assert!(!upgrades_to_mptcp(u32::MAX, SOCK_STREAM, 0));
        assert!(!upgrades_to_mptcp(AF_INET, u32::MAX, 0));
    }
}
