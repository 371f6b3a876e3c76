//! `mptcpctl`'s command line.

use std::net::{IpAddr, SocketAddr};

use clap::{Args, Parser, Subcommand, ValueEnum};
use mptcp_pm::EndpointFlags;

/// Multipath TCP path-manager control (`mptcp_pm` generic netlink).
#[derive(Debug, Parser)]
#[command(name = "mptcpctl", version, about)]
pub(crate) struct CtlArgs {
    /// Print JSON, one value per line.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Say on stderr whether a change goes through mptcpd (D-Bus) or to the kernel directly.
    #[arg(long, short, global = true)]
    pub(crate) verbose: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// In-kernel path-manager endpoints.
    #[command(subcommand, alias = "endp")]
    Endpoint(EndpointCommand),
    /// Per-connection limits of the in-kernel path manager.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// Print path-manager events as they arrive (needs `CAP_NET_ADMIN`).
    Monitor,
    /// Userspace PM: announce a local address on a connection (`ADD_ADDR`).
    Announce {
        #[arg(long)]
        token: u32,
        /// The local address.
        #[arg(long)]
        addr: IpAddr,
        /// Its address id (1..=255).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
        id: u8,
        #[arg(long)]
        port: Option<u16>,
    },
    /// Userspace PM: withdraw an announced address id (`RM_ADDR`) and close its subflows.
    Remove {
        #[arg(long)]
        token: u32,
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
        id: u8,
    },
    /// Userspace PM: subflows of a connection.
    #[command(subcommand)]
    Subflow(SubflowCommand),
    /// Change flags of an endpoint (`--id`) or of one connection's subflow (`--token`).
    SetFlags(SetFlags),
    /// The daemon's MPTCP connections with their subflows, figures and, for a path a plugin
    /// judged, its health and why (over D-Bus).
    Connections,
    /// `connections`, redrawn every second (a judged path marked `[degraded]` or `[dead]`).
    Top {
        /// Draw once and exit.
        #[arg(long, conflicts_with = "iterations")]
        once: bool,
        /// Draw this many times and exit [default: until interrupted].
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        iterations: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum EndpointCommand {
    /// Add an endpoint.
    Add {
        addr: IpAddr,
        /// Bind subflows from this address to the interface.
        #[arg(long)]
        dev: Option<String>,
        /// Address id (default: the kernel picks).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
        id: Option<u8>,
        #[arg(long)]
        port: Option<u16>,
        /// What the endpoint is for: signal, subflow, backup, fullmesh, laminar (separate
        /// words or one comma-separated list).
        #[arg(required = true)]
        flags: Vec<EndpointFlags>,
    },
    /// Delete an endpoint by id.
    Del {
        #[arg(value_parser = clap::value_parser!(u8).range(1..))]
        id: u8,
    },
    /// Show one endpoint, or all.
    Show {
        #[arg(value_parser = clap::value_parser!(u8).range(1..))]
        id: Option<u8>,
    },
    /// Delete every endpoint.
    Flush,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LimitsCommand {
    /// Show the limits.
    Show,
    /// Set the limits; an omitted one keeps its value.
    Set {
        #[arg(long)]
        subflows: Option<u32>,
        #[arg(long)]
        add_addr_accepted: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SubflowCommand {
    /// Open a subflow from a local address to a remote one.
    Create {
        #[arg(long)]
        token: u32,
        #[arg(long)]
        local: IpAddr,
        /// The local address's id (1..=255).
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
        local_id: u8,
        #[arg(long)]
        remote: SocketAddr,
    },
    /// Close the subflow between these two addresses and ports.
    Destroy {
        #[arg(long)]
        token: u32,
        #[arg(long)]
        local: SocketAddr,
        #[arg(long)]
        remote: SocketAddr,
    },
}

#[derive(Debug, Args)]
pub(crate) struct SetFlags {
    /// An in-kernel endpoint (1..=255).
    #[arg(
        long,
        conflicts_with = "token",
        required_unless_present = "token",
        value_parser = clap::value_parser!(u8).range(1..)
    )]
    pub(crate) id: Option<u8>,
    /// A connection of the userspace path manager (with --local and --remote).
    #[arg(long, requires_all = ["local", "remote"])]
    pub(crate) token: Option<u32>,
    /// The subflow's local address (port 0: any).
    #[arg(long)]
    pub(crate) local: Option<SocketAddr>,
    /// The subflow's remote address and port.
    #[arg(long)]
    pub(crate) remote: Option<SocketAddr>,
    /// With --token only backup or nobackup: a subflow has no fullmesh flag.
    #[arg(value_enum)]
    pub(crate) change: FlagChange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum FlagChange {
    Backup,
    Nobackup,
    Fullmesh,
    Nofullmesh,
}
