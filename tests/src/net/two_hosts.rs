//! Two namespaces, a client and a server, joined by two veth pairs ("paths") that carry both
//! IPv4 and IPv6: path P has `10.0.P.0/24` and `fd00:P::/64`, the client is host 1, the server
//! host 2.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    process::{Child, Stdio},
};

use anyhow::{Context as _, ensure};

use crate::{
    bins,
    net::{netns::NetNs, sysctl, veth::VethPair},
};

/// The client's host number on every path.
pub const CLIENT: u8 = 1;
/// The server's host number on every path.
pub const SERVER: u8 = 2;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpVersion {
    /// Address `host` on path `path` (1 or 2).
    #[must_use]
    pub fn addr(self, path: u8, host: u8) -> IpAddr {
        match self {
            Self::V4 => Ipv4Addr::new(10, 0, path, host).into(),
            Self::V6 => Ipv6Addr::new(0xfd00, path.into(), 0, 0, 0, 0, 0, host.into()).into(),
        }
    }

    /// The wildcard address (to listen on).
    #[must_use]
    pub fn unspecified(self) -> IpAddr {
        match self {
            Self::V4 => Ipv4Addr::UNSPECIFIED.into(),
            Self::V6 => Ipv6Addr::UNSPECIFIED.into(),
        }
    }
}

/// The two namespaces and their links; everything is removed on drop.
#[derive(Debug)]
pub struct TwoHosts {
    // Declared first so that the links go before the namespaces.
    _paths: [VethPair; 2],
    /// The client's namespace; its ends are `c1` and `c2`.
    pub client: NetNs,
    /// The server's namespace; its ends are `s1` and `s2`.
    pub server: NetNs,
}

impl TwoHosts {
    /// Creates `PREFIX-cli-…` and `PREFIX-srv-…` with both paths up and addressed (IPv6
    /// without duplicate address detection, so usable at once).
    pub fn new(prefix: &str) -> anyhow::Result<Self> {
        let client = NetNs::new(&format!("{prefix}-cli"))?;
        let server = NetNs::new(&format!("{prefix}-srv"))?;
        // No duplicate address detection on the links at all: their link-local addresses,
        // which neighbour discovery uses, are usable at once too.
        for ns in [&client, &server] {
            sysctl::set_in(ns, "net.ipv6.conf.default.accept_dad", "0")?;
        }
        let paths = [
            VethPair::new("c1", &client, "s1", &server)?,
            VethPair::new("c2", &client, "s2", &server)?,
        ];
        for path in 1..=2_u8 {
            for (ns, dev, host) in [(&client, "c", CLIENT), (&server, "s", SERVER)] {
                let dev = format!("{dev}{path}");
                let v4 = format!("{}/24", IpVersion::V4.addr(path, host));
                let v6 = format!("{}/64", IpVersion::V6.addr(path, host));
                ns.ip(&["addr", "add", &v4, "dev", &dev])?;
                ns.ip(&["addr", "add", &v6, "dev", &dev, "nodad"])?;
            }
        }
        Ok(Self {
            _paths: paths,
            client,
            server,
        })
    }

    /// Sets the MPTCP limits of `ns` (one of the hosts): 2 subflows, 2 accepted addresses.
    pub fn set_limits(ns: &NetNs) -> anyhow::Result<()> {
        ns.ip(&[
            "mptcp",
            "limits",
            "set",
            "subflows",
            "2",
            "add_addr_accepted",
            "2",
        ])?;
        Ok(())
    }

    /// Sets both hosts' MPTCP limits ([`Self::set_limits`]) and gives the client a `subflow`
    /// endpoint on path 2 (IPv4): the in-kernel PM joins a second subflow there.
    pub fn join_path_2(&self) -> anyhow::Result<()> {
        for ns in [&self.client, &self.server] {
            Self::set_limits(ns)?;
        }
        let addr = IpVersion::V4.addr(2, CLIENT).to_string();
        self.client
            .ip(&["mptcp", "endpoint", "add", &addr, "dev", "c2", "subflow"])?;
        Ok(())
    }

    /// `mptcp-xfer server` on the server's path-1 address, sending `reply` bytes back; returns
    /// once it listens.
    pub fn xfer_server(&self, port: u16, reply: u64) -> anyhow::Result<Child> {
        let mut cmd = self.server.command(bins::path("mptcp-xfer")?)?;
        cmd.args(["server", "--listen", &format!("10.0.1.2:{port}")])
            .args(["--reply", &reply.to_string()])
            .stdout(Stdio::piped());
        let mut server = cmd.spawn()?;
        let mut line = String::new();
        BufReader::new(server.stdout.as_mut().context("server stdout")?).read_line(&mut line)?;
        ensure!(
            line.starts_with("listening"),
            "mptcp-xfer server said {line:?}"
        );
        Ok(server)
    }

    /// `mptcp-xfer client` in the client's namespace, sending `bytes` to the server's path-1
    /// address at `port` once its extra subflow joined (output discarded); spawn it.
    pub fn xfer_client(&self, port: u16, bytes: u64) -> anyhow::Result<std::process::Command> {
        let mut client = self.client.command(bins::path("mptcp-xfer")?)?;
        client
            .args(["client", "--connect", &format!("10.0.1.2:{port}")])
            .args(["--bytes", &bytes.to_string(), "--wait-extra-subflows", "1"])
            .stdout(Stdio::null());
        Ok(client)
    }

    /// Adds `rule` to an input-hook chain in the server's namespace (the receiving side: a
    /// drop there is a lost packet, not a local error). Needs `nft`.
    pub fn server_input_rule(&self, rule: &str) -> anyhow::Result<()> {
        let mut nft = self.server.command("nft")?;
        let mut nft = nft.args(["-f", "-"]).stdin(Stdio::piped()).spawn()?;
        let table = format!(
            "table inet lossy {{\n chain input {{\n  type filter hook input priority 0;\n  {rule}\n }}\n}}\n"
        );
        nft.stdin
            .take()
            .context("nft stdin")?
            .write_all(table.as_bytes())?;
        ensure!(nft.wait()?.success(), "nft refused {rule:?}");
        Ok(())
    }

    /// Path 2 lets the join's small handshake packets through and drops every data segment in
    /// the receiving namespace's input hook: the link stays up, the data is lost. Path 1
    /// slowed (20 Mbit/s), so that the scheduler must put data on path 2 too.
    pub fn blackhole_path_2(&self) -> anyhow::Result<()> {
        self.server_input_rule("iifname \"s2\" ip length > 200 drop")?;
        self.shape_client(&["c1"])
    }

    /// Limits the client's egress on each of `devs` (`c1`, `c2`) to 20 Mbit/s (tbf, a 100 ms
    /// queue): transfers last seconds, and the scheduler needs both paths.
    pub fn shape_client(&self, devs: &[&str]) -> anyhow::Result<()> {
        for dev in devs {
            let tc = self
                .client
                .command("tc")?
                .args(["qdisc", "add", "dev", dev, "root", "tbf", "rate", "20mbit"])
                .args(["burst", "32kbit", "latency", "100ms"])
                .status()?;
            ensure!(tc.success(), "tc refused the tbf qdisc on {dev}");
        }
        Ok(())
    }
}
