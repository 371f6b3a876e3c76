//! `mptcpize status`: the mechanism and why, what is enabled, and whether sockets really are
//! MPTCP (the daemon's `sock_create` observer counts, per cgroup).

use std::{collections::BTreeMap, io::Write, path::Path};

use mptcpd_bpf::{SOCK_COUNTS_PIN, Upgrade, cgroup, read_pinned_counts};
use mptcpd_common::Chain;

use super::{MptcpizeError, unit};

/// Writes the report to `out`.
pub(super) fn status(
    pin_dir: &Path,
    systemd_dir: &Path,
    out: &mut dyn Write,
) -> Result<(), MptcpizeError> {
    let paths = cgroup::cgroup2_root()
        .map(|root| cgroup::paths_by_id(&root))
        .unwrap_or_default();
    let name = |id: &u64| {
        paths
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("cgroup id {id} (gone)"))
    };
    let io = |e: std::io::Error| MptcpizeError::DropIn {
        path: "stdout".into(),
        source: e,
    };

    let upgrade = Upgrade::open(pin_dir)?;
    match &upgrade {
        Some(_) => writeln!(
            out,
            "mechanism: eBPF upgrade (fmod_ret/update_socket_protocol), pinned in {}",
            pin_dir.display()
        ),
        None => match Upgrade::probe() {
            Ok(()) => writeln!(
                out,
                "mechanism: eBPF upgrade available (installed by the first enable or run)"
            ),
            Err(e) => writeln!(
                out,
                "mechanism: LD_PRELOAD wrapper (dynamically linked programs only); eBPF upgrade \
                 not available: {}",
                super::mechanism::why_not(&e)
            ),
        },
    }
    .map_err(io)?;

    let enabled = upgrade
        .as_ref()
        .map(Upgrade::cgroups)
        .transpose()?
        .unwrap_or_default();
    writeln!(out, "enabled cgroups: {}", enabled.len()).map_err(io)?;
    for (id, upgraded) in &enabled {
        writeln!(out, "  {}  upgraded {upgraded}", name(id)).map_err(io)?;
    }
    let opted_out = upgrade
        .as_ref()
        .map(Upgrade::opted_out)
        .transpose()?
        .unwrap_or_default();
    if !opted_out.is_empty() {
        writeln!(out, "opted-out cgroups (TCP): {}", opted_out.len()).map_err(io)?;
        for id in &opted_out {
            writeln!(out, "  {}", name(id)).map_err(io)?;
        }
    }
    if let Some(skipped) = upgrade.as_ref().and_then(|u| u.skipped_runs().ok())
        && skipped > 0
    {
        writeln!(
            out,
            "skipped by the kernel: {skipped} sockets stayed TCP (a task opened one while the \
             program was preempted on the same CPU)"
        )
        .map_err(io)?;
    }
    if let Some(upgrade) = &upgrade {
        super::netns::list(upgrade, out).map_err(io)?;
    }
    if let Some(why) = super::coverage::mptcp_off() {
        writeln!(out, "warning: {why}").map_err(io)?;
    }

    let units = unit::enabled_units(systemd_dir);
    writeln!(
        out,
        "units with an mptcpize drop-in in {}: {}",
        systemd_dir.display(),
        units.len()
    )
    .map_err(io)?;
    for (unit, text) in &units {
        writeln!(out, "  {unit}  {}", unit::DropIn::mechanism_of(text)).map_err(io)?;
    }

    coverage(pin_dir, &enabled, &name, out).map_err(io)
}

fn coverage(
    pin_dir: &Path,
    enabled: &BTreeMap<u64, u64>,
    name: &dyn Fn(&u64) -> String,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let pin = pin_dir.join(SOCK_COUNTS_PIN);
    if !pin.exists() {
        return writeln!(
            out,
            "coverage: unknown (mptcpd's socket observer is not running: no {})",
            pin.display()
        );
    }
    let counts = match read_pinned_counts(&pin) {
        Ok(counts) => counts,
        Err(e) => {
            return writeln!(out, "coverage: unknown ({}: {})", pin.display(), Chain(&e));
        }
    };
    writeln!(
        out,
        "coverage (stream sockets created, from {}):",
        pin.display()
    )?;
    writeln!(out, "  {:>8} {:>8}  cgroup", "TCP", "MPTCP")?;
    for (id, c) in &counts {
        let mark = if enabled.contains_key(id) {
            "  (enabled)"
        } else {
            ""
        };
        writeln!(out, "  {:>8} {:>8}  {}{mark}", c.tcp, c.mptcp, name(id))?;
    }
    Ok(())
}
