//! `mptcpize`: makes programs use MPTCP. Where the kernel runs the eBPF upgrade
//! (`fmod_ret/update_socket_protocol`, Linux 6.6+, BPF trampolines permitted), by cgroup, for
//! every program (static and setuid ones too); elsewhere through the `LD_PRELOAD` wrapper
//! (`libmptcpwrap.so`) and `GODEBUG=multipathtcp=1`. The binary only parses and calls
//! [`execute`].

pub mod cli;
mod coverage;
mod error;
mod forward;
mod mechanism;
mod netns;
mod preload;
mod run;
mod stale;
mod status;
mod syntax;
mod transient;
mod trust;
mod unit;

use std::path::{Path, PathBuf};

pub use cli::Args;
use cli::{Command, Scope, Target};
pub use error::MptcpizeError;
use mechanism::Mechanism;
use unit::{DropIn, service_name, unit_name};

use mptcpd_bpf::{Upgrade, cgroup};

/// The command line's definition (what `--help` shows), for man pages and completions.
#[must_use]
pub fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

/// Runs a command; returns the exit code (for `run`, the program's).
pub fn execute(args: &Args) -> Result<i32, MptcpizeError> {
    let Args {
        bpf_pin_dir,
        systemd_dir,
        command,
    } = args;
    match command {
        Command::Run { debug, command } => run::run(bpf_pin_dir, *debug, command),
        Command::Enable { target, force } => {
            enable(bpf_pin_dir, systemd_dir, target, *force).map(|()| 0)
        }
        Command::Disable(target) => disable(bpf_pin_dir, systemd_dir, target).map(|()| 0),
        Command::Status => {
            status::status(bpf_pin_dir, systemd_dir, &mut std::io::stdout().lock()).map(|()| 0)
        }
        Command::Netns(command) => netns::command(bpf_pin_dir, command).map(|()| 0),
        Command::Reset => {
            let removed = Upgrade::uninstall(bpf_pin_dir)?;
            println!(
                "mptcpize: {}",
                if removed {
                    "eBPF upgrade removed; no cgroup is upgraded any more"
                } else {
                    "no eBPF upgrade was installed"
                }
            );
            Ok(0)
        }
    }
}

fn enable(
    pin_dir: &Path,
    systemd_dir: &Path,
    target: &Target,
    force: bool,
) -> Result<(), MptcpizeError> {
    let dir = match target.scope() {
        Scope::Unit { name, no_reload } => {
            return enable_unit(pin_dir, systemd_dir, &service_name(name)?, no_reload, force);
        }
        Scope::Cgroup { path, current } => cgroup_dir(path, current)?,
    };
    if coverage::is_root(&dir) {
        if !force {
            return Err(MptcpizeError::RootCgroup(dir));
        }
        eprintln!("mptcpize: warning: --force: enabling the root cgroup (every process)");
    }
    let mut upgrade = match Mechanism::choose(pin_dir)? {
        Mechanism::Ebpf { upgrade, .. } => upgrade,
        Mechanism::Preload { why } => return Err(MptcpizeError::NoUpgrade(why)),
    };
    let id = cgroup_id(&dir)?;
    netns::recheck_current(&mut upgrade)?;
    let new = stale::enable(&mut upgrade, id)?;
    println!(
        "mptcpize: {} {} (id {id}): new TCP sockets of its processes are MPTCP",
        if new { "enabled" } else { "already enabled" },
        dir.display()
    );
    coverage::warn_if_mptcp_off();
    Ok(())
}

fn enable_unit(
    pin_dir: &Path,
    systemd_dir: &Path,
    unit: &str,
    no_reload: bool,
    force: bool,
) -> Result<(), MptcpizeError> {
    match Mechanism::choose(pin_dir)? {
        Mechanism::Ebpf { mut upgrade, .. } => {
            netns::recheck_current(&mut upgrade)?;
            // The drop-in runs this very binary as root at every start of the unit.
            let mptcpize = std::env::current_exe()
                .and_then(std::fs::canonicalize)
                .map_err(|source| MptcpizeError::DropIn {
                    path: PathBuf::from("/proc/self/exe"),
                    source,
                })?;
            require_trusted(&mptcpize, force)?;
            // ExecStartPre runs in /.
            let pin_dir = std::path::absolute(pin_dir).map_err(|source| MptcpizeError::DropIn {
                path: pin_dir.to_owned(),
                source,
            })?;
            let path = unit::write(systemd_dir, unit, &DropIn::Ebpf { mptcpize, pin_dir })?;
            reload(no_reload)?;
            let running = unit::control_group(unit)
                .and_then(|cg| cgroup::resolve(Path::new(&cg)).ok())
                .map(|dir| -> Result<_, MptcpizeError> {
                    let id = cgroup_id(&dir)?;
                    stale::enable(&mut upgrade, id)?;
                    Ok(dir)
                })
                .transpose()?;
            coverage::warn_if_mptcp_off();
            match running {
                Some(dir) => println!(
                    "mptcpize: enabled {unit} by the eBPF upgrade ({}); running now in {}: its \
                     new TCP sockets are MPTCP, no restart needed",
                    path.display(),
                    dir.display()
                ),
                None => println!(
                    "mptcpize: enabled {unit} by the eBPF upgrade ({}); not running: MPTCP from \
                     its next start",
                    path.display()
                ),
            }
        }
        Mechanism::Preload { why } => {
            eprintln!("mptcpize: eBPF upgrade not available ({why}); using LD_PRELOAD");
            let library = preload::drop_in_library()?;
            require_trusted(&library, force)?;
            let path = unit::write(systemd_dir, unit, &DropIn::Preload { library })?;
            reload(no_reload)?;
            println!(
                "mptcpize: enabled {unit} by LD_PRELOAD ({}): TCP until {unit} is restarted, \
                 and for good in static or setuid programs",
                path.display()
            );
        }
    }
    Ok(())
}

/// Refuses `path` for a drop-in if a user other than root could replace it, unless forced.
fn require_trusted(path: &Path, force: bool) -> Result<(), MptcpizeError> {
    match trust::untrusted(path) {
        None => Ok(()),
        Some(why) if force => {
            eprintln!(
                "mptcpize: warning: --force: naming {} although {why}",
                path.display()
            );
            Ok(())
        }
        Some(why) => Err(MptcpizeError::Untrusted {
            path: path.to_owned(),
            why,
        }),
    }
}

fn disable(pin_dir: &Path, systemd_dir: &Path, target: &Target) -> Result<(), MptcpizeError> {
    let upgrade = Upgrade::open(pin_dir)?;
    let dir = match target.scope() {
        Scope::Unit { name, no_reload } => {
            return disable_unit(systemd_dir, upgrade, name, no_reload);
        }
        Scope::Cgroup { path, current } => cgroup_dir(path, current)?,
    };
    let id = cgroup_id(&dir)?;
    let Some(mut upgrade) = upgrade else {
        println!("mptcpize: was not enabled: {} (id {id})", dir.display());
        return Ok(());
    };
    let was = upgrade.disable(id)?;
    // Under an enabled ancestor, forgetting the cgroup is not enough: it gets an explicit "no".
    if let Some(ancestor) = coverage::enabled_ancestor(&dir, &upgrade.entries()?) {
        upgrade.opt_out(id)?;
        println!(
            "mptcpize: opted out {} (id {id}): its sockets stay TCP although {} is enabled",
            dir.display(),
            ancestor.display()
        );
        return Ok(());
    }
    println!(
        "mptcpize: {} {} (id {id})",
        if was { "disabled" } else { "was not enabled:" },
        dir.display()
    );
    Ok(())
}

fn disable_unit(
    systemd_dir: &Path,
    upgrade: Option<Upgrade>,
    unit: &str,
    no_reload: bool,
) -> Result<(), MptcpizeError> {
    let unit = unit_name(unit)?;
    let removed = unit::remove(systemd_dir, &unit)?;
    if removed {
        reload(no_reload)?;
    }
    let running = unit::control_group(&unit).and_then(|cg| cgroup::resolve(Path::new(&cg)).ok());
    if let (Some(mut upgrade), Some(dir)) = (upgrade, running) {
        upgrade.disable(cgroup_id(&dir)?)?;
    }
    println!(
        "mptcpize: {}",
        if removed {
            format!(
                "disabled {unit} (drop-in removed; processes that preloaded the wrapper keep it \
                 until {unit} restarts)"
            )
        } else {
            format!("{unit} was not enabled")
        }
    );
    Ok(())
}

fn cgroup_dir(path: Option<&Path>, current: bool) -> Result<PathBuf, MptcpizeError> {
    let err = |path: &Path, source| MptcpizeError::Cgroup {
        path: path.to_owned(),
        source,
    };
    match path {
        Some(path) => cgroup::resolve(path).map_err(|e| err(path, e)),
        None if current => cgroup::current_cgroup().map_err(|e| err(Path::new("self"), e)),
        None => Err(MptcpizeError::BadUnit(String::new())),
    }
}

fn cgroup_id(dir: &Path) -> Result<u64, MptcpizeError> {
    cgroup::cgroup_id(dir).map_err(|source| MptcpizeError::Cgroup {
        path: dir.to_owned(),
        source,
    })
}

fn reload(no_reload: bool) -> Result<(), MptcpizeError> {
    if no_reload {
        Ok(())
    } else {
        unit::daemon_reload()
    }
}
