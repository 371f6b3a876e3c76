//! Running an `mptcpctl` command against the kernel.

use mptcpd_common::Chain;
use std::io::Write as _;

use super::{
    args::{
        Command, CtlArgs, EndpointCommand, FlagChange, LimitsCommand, SetFlags, SubflowCommand,
    },
    bus::BusError,
    connections, format, iface,
};
use mptcp_pm::{
    Endpoint, EndpointFlags, EventItem, Limits, NewSubflow, PmClient, PmError, SubflowPath,
};

/// Why a command failed; each says what was wrong in one line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CtlError {
    /// The kernel (or the netlink layer) refused.
    #[error(transparent)]
    Pm(#[from] PmError),
    /// `--dev` names no interface here.
    #[error("no interface named {0:?} in this network namespace")]
    UnknownInterface(String),
    /// `set-flags --token ... fullmesh|nofullmesh`: the kernel sets a subflow's backup bit from
    /// every request and has no fullmesh for subflows, so this would only clear backup.
    #[error(
        "set-flags --token changes a subflow's backup flag only: use backup or nobackup \
         ({0} applies to in-kernel endpoints, --id)"
    )]
    NotASubflowFlag(&'static str),
    /// The daemon's D-Bus surface could not be read.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// Writing the output failed (a closed pipe, say).
    #[error("writing output")]
    Output(#[from] std::io::Error),
}

/// Runs `args`, printing to stdout.
pub(crate) async fn run(args: CtlArgs) -> Result<(), CtlError> {
    let CtlArgs { json, command } = args;
    let mut out = std::io::stdout().lock();
    // Over D-Bus: the daemon's view, no netlink socket needed.
    match command {
        Command::Connections => connections::list(json, &mut out).await,
        Command::Top { once, iterations } => {
            connections::top(if once { Some(1) } else { iterations }, &mut out).await
        }
        command => kernel(json, command, &mut out).await,
    }
}

/// Runs a command of the kernel's path manager (`mptcp_pm`).
async fn kernel(
    json: bool,
    command: Command,
    out: &mut std::io::StdoutLock<'_>,
) -> Result<(), CtlError> {
    let client = PmClient::connect().await?;
    let name = |i| iface::name(i);
    match command {
        Command::Endpoint(EndpointCommand::Add {
            addr,
            dev,
            id,
            port,
            flags,
        }) => {
            let flags = flags
                .into_iter()
                .fold(EndpointFlags::empty(), |all, f| all | f);
            let mut endpoint = Endpoint::new(addr, flags).with_id(id.unwrap_or(0));
            if let Some(port) = port {
                endpoint = endpoint.with_port(port);
            }
            if let Some(dev) = dev {
                let index = iface::index(&dev).ok_or(CtlError::UnknownInterface(dev))?;
                endpoint = endpoint.with_if_idx(index);
            }
            client.add_addr(&endpoint).await?;
        }
        Command::Endpoint(EndpointCommand::Del { id }) => client.del_addr(id).await?,
        Command::Endpoint(EndpointCommand::Show { id }) => {
            let endpoints = match id {
                Some(id) => vec![client.get_addr(id).await?],
                None => client.dump_addrs().await?,
            };
            for endpoint in &endpoints {
                if json {
                    writeln!(out, "{}", format::endpoint_json(endpoint, name))?;
                } else {
                    writeln!(out, "{}", format::endpoint_text(endpoint, name))?;
                }
            }
        }
        Command::Endpoint(EndpointCommand::Flush) => client.flush_addrs().await?,
        Command::Limits(LimitsCommand::Show) => {
            let limits = client.get_limits().await?;
            print_limits(out, json, limits)?;
        }
        Command::Limits(LimitsCommand::Set {
            subflows,
            add_addr_accepted,
        }) => {
            let current = client.get_limits().await?;
            client
                .set_limits(Limits {
                    subflows: subflows.unwrap_or(current.subflows),
                    add_addr_accepted: add_addr_accepted.unwrap_or(current.add_addr_accepted),
                })
                .await?;
        }
        Command::Monitor => monitor(&client, json, out).await?,
        Command::Announce {
            token,
            addr,
            id,
            port,
        } => {
            let endpoint = Endpoint::new(addr, EndpointFlags::SIGNAL)
                .with_id(id)
                .with_port(port.unwrap_or(0));
            client.announce(token, &endpoint).await?;
        }
        Command::Remove { token, id } => client.remove(token, id).await?,
        Command::Subflow(SubflowCommand::Create {
            token,
            local,
            local_id,
            remote,
        }) => {
            let subflow = NewSubflow {
                token,
                local: Endpoint::new(local, EndpointFlags::empty()).with_id(local_id),
                remote,
            };
            client.subflow_create(&subflow).await?;
        }
        Command::Subflow(SubflowCommand::Destroy {
            token,
            local,
            remote,
        }) => {
            let subflow = SubflowPath {
                token,
                local,
                remote,
            };
            client.subflow_destroy(subflow).await?;
        }
        Command::SetFlags(set) => set_flags(&client, set).await?,
        Command::Connections | Command::Top { .. } => {}
    }
    Ok(())
}

/// Prints events until the stream fails (or the process is stopped).
async fn monitor(
    client: &PmClient,
    json: bool,
    out: &mut impl std::io::Write,
) -> Result<(), CtlError> {
    let mut events = client.subscribe()?;
    // On stderr, so that --json output stays JSON: from here on no event is missed.
    eprintln!("mptcpctl: monitoring mptcp_pm events");
    loop {
        match events.recv().await? {
            EventItem::Event(event) => {
                if json {
                    writeln!(out, "{}", format::event_json(&event))?;
                } else {
                    writeln!(out, "{}", format::event_text(&event))?;
                }
            }
            EventItem::Overrun => writeln!(out, "# events were lost (receive buffer overrun)")?,
            EventItem::Malformed(e) => writeln!(out, "# undecodable event: {}", Chain(&e))?,
        }
        // One line at a time, so a pipe reader sees events as they happen.
        out.flush()?;
    }
}

fn print_limits(out: &mut impl std::io::Write, json: bool, limits: Limits) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", format::limits_json(limits))
    } else {
        writeln!(out, "{}", format::limits_text(limits))
    }
}

async fn set_flags(client: &PmClient, set: SetFlags) -> Result<(), CtlError> {
    let SetFlags {
        id,
        token,
        local,
        remote,
        change,
    } = set;
    if let (Some(token), Some(local), Some(remote)) = (token, local, remote) {
        // The kernel sets the subflow's backup bit from what it gets and cannot tell us the
        // current one, so a read-modify-write as by id is impossible: refuse what is not
        // about backup rather than clear it.
        let flags = match change {
            FlagChange::Backup => EndpointFlags::BACKUP,
            FlagChange::Nobackup => EndpointFlags::empty(),
            FlagChange::Fullmesh => return Err(CtlError::NotASubflowFlag("fullmesh")),
            FlagChange::Nofullmesh => return Err(CtlError::NotASubflowFlag("nofullmesh")),
        };
        let subflow = SubflowPath {
            token,
            local,
            remote,
        };
        client.set_flags_for(subflow, flags).await?;
    } else if let Some(id) = id {
        // The kernel sets backup and fullmesh both from what it gets: start from the current
        // flags so that changing one leaves the other.
        let current = client.get_addr(id).await?.flags;
        let flags = match change {
            FlagChange::Backup => current | EndpointFlags::BACKUP,
            FlagChange::Nobackup => current - EndpointFlags::BACKUP,
            FlagChange::Fullmesh => current | EndpointFlags::FULLMESH,
            FlagChange::Nofullmesh => current - EndpointFlags::FULLMESH,
        };
        client.set_flags(id, flags).await?;
    }
    Ok(())
}
