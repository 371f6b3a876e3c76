//! Our daemon with `sspi` (or another userspace plugin, `mesh`) under the userspace path
//! manager, and a peer: two namespaces joined by two paths, each with IPv4 and IPv6. Path A: `192.0.2.0/24`, `2001:db8:a::/64`; path B:
//! `198.51.100.0/24`, `2001:db8:b::/64`; the daemon's side is host 1 (links `d-a`, `d-b`), the
//! peer host 2 (`p-a`, `p-b`). Everything is removed on drop.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{
    bins,
    daemon::process::Daemon,
    net::{
        netns::NetNs,
        sysctl,
        veth::{Address, VethPair},
    },
};

/// Path A or B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// `192.0.2.0/24`, `2001:db8:a::/64`.
    A,
    /// `198.51.100.0/24`, `2001:db8:b::/64`.
    B,
}

/// The daemon's side (host 1) or the peer (host 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Where our daemon runs.
    Daemon,
    /// The other end.
    Peer,
}

impl Side {
    const fn host(self) -> u8 {
        match self {
            Self::Daemon => 1,
            Self::Peer => 2,
        }
    }
}

/// The IPv4 address of `side` on `path`.
#[must_use]
pub fn v4(path: Path, side: Side) -> IpAddr {
    let net = match path {
        Path::A => [192, 0, 2],
        Path::B => [198, 51, 100],
    };
    IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], side.host()))
}

/// The IPv6 address of `side` on `path`.
#[must_use]
pub fn v6(path: Path, side: Side) -> IpAddr {
    let net = match path {
        Path::A => 0xa,
        Path::B => 0xb,
    };
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        net,
        0,
        0,
        0,
        0,
        side.host().into(),
    ))
}

/// The two namespaces and their links.
#[derive(Debug)]
pub struct SspiPair {
    // Declared first so that they go before the namespaces.
    _addrs: Vec<Address>,
    _paths: [VethPair; 2],
    /// Where the daemon runs, with `net.mptcp.pm_type=1`.
    pub daemon: NetNs,
    /// The peer, with the in-kernel path manager unless a test changes it.
    pub peer: NetNs,
    config: tempfile::NamedTempFile,
}

impl SspiPair {
    /// Creates `PREFIX-d-…` and `PREFIX-p-…`, both paths up and addressed.
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let daemon = NetNs::new(&format!("{prefix}-d"))?;
        let peer = NetNs::new(&format!("{prefix}-p"))?;
        let paths = [
            VethPair::new("d-a", &daemon, "p-a", &peer)?,
            VethPair::new("d-b", &daemon, "p-b", &peer)?,
        ];
        let mut addrs = Vec::new();
        for (path, dev) in [(Path::A, "a"), (Path::B, "b")] {
            for (side, ns, prefix) in [(Side::Daemon, &daemon, "d"), (Side::Peer, &peer, "p")] {
                let dev = format!("{prefix}-{dev}");
                addrs.push(Address::add(ns, &dev, &format!("{}/24", v4(path, side)))?);
                addrs.push(Address::add(ns, &dev, &format!("{}/64", v6(path, side)))?);
            }
        }
        sysctl::set_in(&daemon, "net.mptcp.pm_type", "1")?;
        // An empty configuration file of its own: /etc/mptcpd/mptcpd.conf must not count.
        let config = tempfile::Builder::new()
            .prefix("mptcpd-sspi-")
            .suffix(".conf")
            .tempfile()?;
        Ok(Self {
            _addrs: addrs,
            _paths: paths,
            daemon,
            peer,
            config,
        })
    }

    /// Starts our daemon in its namespace (`sspi`, the addresses present at start reported,
    /// debug log on stderr), with `env` added, and waits until it is ready.
    pub fn start_daemon(&self, env: &[(&str, &str)]) -> anyhow::Result<Daemon> {
        self.start_plugin("sspi", &[], env)
    }

    /// As [`Self::start_daemon`], with `plugin` as the only plugin and `args` added.
    pub fn start_plugin(
        &self,
        plugin: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Daemon> {
        let mut cmd = self.daemon.command(bins::path("mptcpd")?)?;
        cmd.args(["--log", "stderr", "--debug", "--config"])
            .arg(self.config.path())
            .args(["--path-manager", plugin, "--load-plugins", plugin])
            .args(["--notify-flags", "existing,skip_loopback,skip_link_local"])
            .arg(format!("--bpf-pin-dir=/sys/fs/bpf/{}", self.daemon.name()))
            .args(args)
            .envs(env.iter().copied());
        Daemon::start(cmd)
    }

    /// The `mptcp_pm` events of the daemon's namespace.
    ///
    /// # Panics
    /// If the generic netlink family cannot be reached (a test helper: the test fails).
    pub async fn daemon_events(&self) -> mptcp_pm::EventStream {
        let _in = self.daemon.enter().expect("enter the daemon's namespace");
        let pm = mptcp_pm::PmClient::connect().await.expect("mptcp_pm");
        pm.subscribe().expect("subscribe")
    }

    /// An MPTCP connection from the daemon's namespace to `port` on the peer's path-A address,
    /// accepted by `listener` within `wait`, one byte each way (fully established).
    ///
    /// # Panics
    /// If the connection is not made or not accepted in time (a test helper: the test fails).
    pub async fn connect_established(
        &self,
        listener: &tokio::net::TcpListener,
        port: u16,
        wait: std::time::Duration,
    ) -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let stream = {
            let _in = self.daemon.enter().expect("enter the daemon's namespace");
            crate::sockets::mptcp_tokio::connect(std::net::SocketAddr::new(
                v4(Path::A, Side::Peer),
                port,
            ))
            .expect("connect")
        };
        let (accepted, _) = tokio::time::timeout(wait, listener.accept())
            .await
            .expect("accept hangs")
            .expect("accept");
        crate::sockets::mptcp_tokio::send(&stream, b"x")
            .await
            .expect("send");
        crate::sockets::mptcp_tokio::send(&accepted, b"y")
            .await
            .expect("send");
        (stream, accepted)
    }
}
