//! systemd units: a drop-in (`DIR/UNIT.d/mptcpize.conf`) rather than an edit of the unit file,
//! so the vendor's unit and its `Environment=` lines stay as they are.

use std::{
    fs, io,
    path::{Path, PathBuf},
    process::Command,
};

use super::MptcpizeError;

/// The drop-in's file name.
pub const DROP_IN: &str = "mptcpize.conf";
/// Unit types a name may end with; a bare name is a `.service`.
const UNIT_TYPES: &[&str] = &[
    "service",
    "socket",
    "scope",
    "slice",
    "mount",
    "swap",
    "target",
    "timer",
    "path",
    "device",
    "automount",
];

/// What a drop-in does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropIn {
    /// Each start enables the unit's fresh cgroup for the eBPF upgrade.
    Ebpf {
        /// The `mptcpize` binary to run.
        mptcpize: PathBuf,
        /// Its pin directory.
        pin_dir: PathBuf,
    },
    /// The unit's processes preload the wrapper.
    Preload {
        /// The wrapper.
        library: PathBuf,
    },
}

impl DropIn {
    /// The file's text.
    #[must_use]
    pub fn render(&self) -> String {
        let header = "# Written by `mptcpize enable`; `mptcpize disable` removes it.\n";
        match self {
            Self::Ebpf { mptcpize, pin_dir } => format!(
                "{header}# MPTCP by the eBPF upgrade: each start enables the unit's new cgroup \
                 ('-': the unit starts even if that fails).\n[Service]\n\
                 ExecStartPre=-+{} --bpf-pin-dir {} enable --current-cgroup\n",
                mptcpize.display(),
                pin_dir.display()
            ),
            Self::Preload { library } => format!(
                "{header}# MPTCP by LD_PRELOAD (no eBPF upgrade on this kernel): dynamically \
                 linked programs only; Go programs through GODEBUG.\n[Service]\n\
                 Environment=LD_PRELOAD={} GODEBUG={}\n",
                library.display(),
                super::preload::GODEBUG_MPTCP
            ),
        }
    }

    /// Which mechanism a drop-in's text uses.
    #[must_use]
    pub fn mechanism_of(text: &str) -> &'static str {
        if text.contains("ExecStartPre=") {
            "eBPF upgrade"
        } else if text.contains("LD_PRELOAD=") {
            "LD_PRELOAD"
        } else {
            "unknown"
        }
    }
}

/// `NAME` or `NAME.TYPE`, as systemd spells units: `NAME.service` for a bare name.
pub fn unit_name(arg: &str) -> Result<String, MptcpizeError> {
    let bad = || MptcpizeError::BadUnit(arg.to_owned());
    let valid_char = |c: char| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c);
    if arg.is_empty() || arg.len() > 255 || arg.starts_with('.') || !arg.chars().all(valid_char) {
        return Err(bad());
    }
    match arg.rsplit_once('.') {
        Some((name, ty)) if UNIT_TYPES.contains(&ty) => {
            if name.is_empty() {
                Err(bad())
            } else {
                Ok(arg.to_owned())
            }
        }
        _ => Ok(format!("{arg}.service")),
    }
}

/// The drop-in's path for `unit` below `systemd_dir`.
#[must_use]
pub fn drop_in_path(systemd_dir: &Path, unit: &str) -> PathBuf {
    systemd_dir.join(format!("{unit}.d")).join(DROP_IN)
}

/// Writes the drop-in (replacing an earlier one of ours).
pub(super) fn write(
    systemd_dir: &Path,
    unit: &str,
    drop_in: &DropIn,
) -> Result<PathBuf, MptcpizeError> {
    let path = drop_in_path(systemd_dir, unit);
    let err = |source| MptcpizeError::DropIn {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(err)?;
    }
    // Written beside and renamed: systemd never reads half a file.
    let partial = path.with_extension("conf.partial");
    fs::write(&partial, drop_in.render()).map_err(err)?;
    fs::rename(&partial, &path).map_err(err)?;
    Ok(path)
}

/// Removes the drop-in (and its directory if nothing else is in it); `false` if there was none.
pub(super) fn remove(systemd_dir: &Path, unit: &str) -> Result<bool, MptcpizeError> {
    let path = drop_in_path(systemd_dir, unit);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(MptcpizeError::DropIn { path, source }),
    }
    if let Some(dir) = path.parent() {
        // Other drop-ins of the administrator stay, and so does their directory.
        let _kept = fs::remove_dir(dir);
    }
    Ok(true)
}

/// Units with one of our drop-ins, each with its text.
#[must_use]
pub(super) fn enabled_units(systemd_dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = fs::read_dir(systemd_dir) else {
        return Vec::new();
    };
    let mut units: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let unit = name.strip_suffix(".d")?.to_owned();
            let text = fs::read_to_string(entry.path().join(DROP_IN)).ok()?;
            Some((unit, text))
        })
        .collect();
    units.sort();
    units
}

/// `systemctl daemon-reload`, so that systemd reads the drop-in.
pub(super) fn daemon_reload() -> Result<(), MptcpizeError> {
    systemctl(&["daemon-reload"]).map(drop)
}

/// The unit's cgroup (`/system.slice/UNIT`) while it runs.
#[must_use]
pub(super) fn control_group(unit: &str) -> Option<String> {
    systemctl(&["show", "--property=ControlGroup", "--value", unit])
        .ok()
        .map(|out| out.trim().to_owned())
        .filter(|cg| !cg.is_empty())
}

fn systemctl(args: &[&str]) -> Result<String, MptcpizeError> {
    let err = |reason: String| MptcpizeError::Systemctl {
        args: args.join(" "),
        reason,
    };
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .map_err(|e| err(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::{DropIn, unit_name};

    #[test]
    fn unit_names() {
        assert_eq!(unit_name("nginx").unwrap(), "nginx.service");
        assert_eq!(
            unit_name("getty@tty1.service").unwrap(),
            "getty@tty1.service"
        );
        assert_eq!(unit_name("app.socket").unwrap(), "app.socket");
        assert_eq!(unit_name("my.app").unwrap(), "my.app.service");
        for bad in ["", "../etc", "a/b", ".service", "a b", "x\n", ".hidden"] {
            assert!(unit_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn drop_ins_say_their_mechanism() {
        let ebpf = DropIn::Ebpf {
            mptcpize: PathBuf::from("/usr/bin/mptcpize"),
            pin_dir: PathBuf::from("/sys/fs/bpf/mptcpd"),
        }
        .render();
        assert!(ebpf.contains(
            "\nExecStartPre=-+/usr/bin/mptcpize --bpf-pin-dir /sys/fs/bpf/mptcpd enable \
             --current-cgroup\n"
        ));
        assert_eq!(DropIn::mechanism_of(&ebpf), "eBPF upgrade");
        let preload = DropIn::Preload {
            library: PathBuf::from("/usr/lib/mptcpize/libmptcpwrap.so"),
        }
        .render();
        assert!(preload.contains(
            "\n[Service]\nEnvironment=LD_PRELOAD=/usr/lib/mptcpize/libmptcpwrap.so \
             GODEBUG=multipathtcp=1\n"
        ));
        assert_eq!(DropIn::mechanism_of(&preload), "LD_PRELOAD");
    }
}
