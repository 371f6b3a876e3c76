//! Running an `mptcpctl` command: reads against the kernel (or the daemon's D-Bus view),
//! changes through the daemon when it is on the bus for this namespace, else to the kernel.

use mptcpd_common::Chain;
use std::io::Write as _;

use super::{
    args::{
        Command, CtlArgs, EndpointCommand, FlagChange, LimitsCommand, SetFlags, SubflowCommand,
    },
    bus::BusError,
    connections,
    control::{Daemon, DaemonError},
    format, iface,
};
use mptcp_pm::{
    Endpoint, EndpointFlags, EventItem, Limits, NewSubflow, PmClient, PmError, SubflowPath, Token,
};

/// Why a command failed; each says what was wrong in one line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CtlError {
    /// The kernel (or the netlink layer) refused.
    #[error(transparent)]
    Pm(#[from] PmError),
    /// The daemon refused a change, or could not be asked.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
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

/// A command that changes the path manager's state.
#[derive(Debug)]
enum Change {
    AddEndpoint(Endpoint),
    RemoveEndpoint(u8),
    Flush,
    Limits {
        subflows: Option<u32>,
        add_addr_accepted: Option<u32>,
    },
    Announce(Token, Endpoint),
    Remove(Token, u8),
    CreateSubflow(NewSubflow),
    DestroySubflow(SubflowPath),
    /// An endpoint's flags, by id (the change applied to its current flags).
    EndpointFlags(u8, FlagChange),
    /// A subflow's backup flag.
    Backup(SubflowPath, bool),
}

/// Runs `args`, printing to stdout.
pub(crate) async fn run(args: CtlArgs) -> Result<(), CtlError> {
    let CtlArgs {
        json,
        verbose,
        command,
    } = args;
    let mut out = std::io::stdout().lock();
    // Over D-Bus: the daemon's view, no netlink socket needed.
    match command {
        Command::Connections => connections::list(json, &mut out).await,
        Command::Top { once, iterations } => {
            connections::top(if once { Some(1) } else { iterations }, &mut out).await
        }
        command => match change(command)? {
            Ok(change) => {
                if let Some(daemon) = Daemon::find().await {
                    if verbose {
                        eprintln!("mptcpctl: through mptcpd (D-Bus)");
                    }
                    through_daemon(&daemon, change).await
                } else {
                    if verbose {
                        eprintln!(
                            "mptcpctl: directly to the kernel (no mptcpd on the bus for this \
                             network namespace)"
                        );
                    }
                    to_kernel(&PmClient::connect().await?, change).await
                }
            }
            Err(read) => kernel(json, read, &mut out).await,
        },
    }
}

/// The change `command` asks for, or the command back when it only reads.
fn change(command: Command) -> Result<Result<Change, Command>, CtlError> {
    let change = match command {
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
            Change::AddEndpoint(endpoint)
        }
        Command::Endpoint(EndpointCommand::Del { id }) => Change::RemoveEndpoint(id),
        Command::Endpoint(EndpointCommand::Flush) => Change::Flush,
        Command::Limits(LimitsCommand::Set {
            subflows,
            add_addr_accepted,
        }) => Change::Limits {
            subflows,
            add_addr_accepted,
        },
        Command::Announce {
            token,
            addr,
            id,
            port,
        } => {
            let endpoint = Endpoint::new(addr, EndpointFlags::SIGNAL)
                .with_id(id)
                .with_port(port.unwrap_or(0));
            Change::Announce(token, endpoint)
        }
        Command::Remove { token, id } => Change::Remove(token, id),
        Command::Subflow(SubflowCommand::Create {
            token,
            local,
            local_id,
            remote,
        }) => Change::CreateSubflow(NewSubflow {
            token,
            local: Endpoint::new(local, EndpointFlags::empty()).with_id(local_id),
            remote,
        }),
        Command::Subflow(SubflowCommand::Destroy {
            token,
            local,
            remote,
        }) => Change::DestroySubflow(SubflowPath {
            token,
            local,
            remote,
        }),
        Command::SetFlags(set) => flags_change(&set)?,
        read => return Ok(Err(read)),
    };
    Ok(Ok(change))
}

/// `set-flags` by id, or by token (backup only: the kernel sets a subflow's backup bit from
/// what it gets and cannot tell the current one, so refuse what is not about backup rather
/// than clear it).
fn flags_change(set: &SetFlags) -> Result<Change, CtlError> {
    let SetFlags {
        id,
        token,
        local,
        remote,
        change,
    } = *set;
    if let (Some(token), Some(local), Some(remote)) = (token, local, remote) {
        let backup = match change {
            FlagChange::Backup => true,
            FlagChange::Nobackup => false,
            FlagChange::Fullmesh => return Err(CtlError::NotASubflowFlag("fullmesh")),
            FlagChange::Nofullmesh => return Err(CtlError::NotASubflowFlag("nofullmesh")),
        };
        let subflow = SubflowPath {
            token,
            local,
            remote,
        };
        return Ok(Change::Backup(subflow, backup));
    }
    // clap requires --id without --token.
    Ok(Change::EndpointFlags(id.unwrap_or(0), change))
}

/// The kernel sets backup and fullmesh both from what it gets: start from the current flags
/// so that changing one leaves the other.
async fn new_flags(
    client: &PmClient,
    id: u8,
    change: FlagChange,
) -> Result<EndpointFlags, CtlError> {
    let current = client.get_addr(id).await?.flags;
    Ok(match change {
        FlagChange::Backup => current | EndpointFlags::BACKUP,
        FlagChange::Nobackup => current - EndpointFlags::BACKUP,
        FlagChange::Fullmesh => current | EndpointFlags::FULLMESH,
        FlagChange::Nofullmesh => current - EndpointFlags::FULLMESH,
    })
}

async fn to_kernel(client: &PmClient, change: Change) -> Result<(), CtlError> {
    match change {
        Change::AddEndpoint(endpoint) => client.add_addr(&endpoint).await?,
        Change::RemoveEndpoint(id) => client.del_addr(id).await?,
        Change::Flush => client.flush_addrs().await?,
        Change::Limits {
            subflows,
            add_addr_accepted,
        } => {
            let current = client.get_limits().await?;
            client
                .set_limits(Limits {
                    subflows: subflows.unwrap_or(current.subflows),
                    add_addr_accepted: add_addr_accepted.unwrap_or(current.add_addr_accepted),
                })
                .await?;
        }
        Change::Announce(token, endpoint) => client.announce(token, &endpoint).await?,
        Change::Remove(token, id) => client.remove(token, id).await?,
        Change::CreateSubflow(subflow) => client.subflow_create(&subflow).await?,
        Change::DestroySubflow(subflow) => client.subflow_destroy(subflow).await?,
        Change::EndpointFlags(id, change) => {
            let flags = new_flags(client, id, change).await?;
            client.set_flags(id, flags).await?;
        }
        Change::Backup(subflow, backup) => {
            let flags = if backup {
                EndpointFlags::BACKUP
            } else {
                EndpointFlags::empty()
            };
            client.set_flags_for(subflow, flags).await?;
        }
    }
    Ok(())
}

async fn through_daemon(daemon: &Daemon, change: Change) -> Result<(), CtlError> {
    match change {
        Change::AddEndpoint(endpoint) => {
            daemon.add_endpoint(&endpoint).await?;
        }
        Change::RemoveEndpoint(id) => daemon.remove_endpoint(id).await?,
        Change::Flush => daemon.flush_endpoints().await?,
        Change::Limits {
            subflows,
            add_addr_accepted,
        } => daemon.set_limits(subflows, add_addr_accepted).await?,
        Change::Announce(token, endpoint) => daemon.announce(token, &endpoint).await?,
        Change::Remove(token, id) => daemon.remove_address(token, id).await?,
        Change::CreateSubflow(subflow) => daemon.create_subflow(&subflow).await?,
        Change::DestroySubflow(subflow) => daemon.destroy_subflow(subflow).await?,
        Change::EndpointFlags(id, change) => {
            // Reading the current flags needs no privilege.
            let flags = new_flags(&PmClient::connect().await?, id, change).await?;
            daemon.set_endpoint_flags(id, flags).await?;
        }
        Change::Backup(subflow, backup) => daemon.set_backup(subflow, backup).await?,
    }
    Ok(())
}

/// Runs a reading command of the kernel's path manager (`mptcp_pm`).
async fn kernel(
    json: bool,
    command: Command,
    out: &mut std::io::StdoutLock<'_>,
) -> Result<(), CtlError> {
    let client = PmClient::connect().await?;
    let name = |i| iface::name(i);
    match command {
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
        Command::Limits(LimitsCommand::Show) => {
            let limits = client.get_limits().await?;
            print_limits(out, json, limits)?;
        }
        Command::Monitor => monitor(&client, json, out).await?,
        // Changes and the D-Bus readers are handled by `run`.
        _ => {}
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
