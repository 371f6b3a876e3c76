//! systemd units: a drop-in (`DIR/UNIT.d/mptcpize.conf`) rather than an edit of the unit file,
//! so the vendor's unit and its `Environment=` lines stay as they are.

use std::{
    fs,
    io::{self, Write as _},
    os::unix::{
        ffi::OsStrExt as _,
        fs::{OpenOptionsExt as _, PermissionsExt as _},
    },
    path::{Path, PathBuf},
    process::Command,
};

use super::{
    MptcpizeError,
    syntax::{self, Field},
};

/// The drop-in's file name.
pub(crate) const DROP_IN: &str = "mptcpize.conf";
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
pub(crate) enum DropIn {
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
    /// The file's text; the error names the value that cannot be written safely, and why.
    pub(crate) fn render(&self) -> Result<String, MptcpizeError> {
        let header = "# Written by `mptcpize enable`; `mptcpize disable` removes it.\n";
        let word = |what: &'static str, value: &Path, field| {
            syntax::quote(value.as_os_str(), field).map_err(|why| MptcpizeError::DropInValue {
                what,
                value: value.to_owned(),
                why,
            })
        };
        Ok(match self {
            Self::Ebpf { mptcpize, pin_dir } => format!(
                "{header}# MPTCP by the eBPF upgrade: each start enables the unit's new cgroup \
                 ('-': the unit starts even if that fails).\n[Service]\n\
                 ExecStartPre=-+{} --bpf-pin-dir {} enable --current-cgroup\n",
                word("the mptcpize path", mptcpize, Field::Executable)?,
                word("the pin directory", pin_dir, Field::Argument)?,
            ),
            Self::Preload { library } => {
                if library.as_os_str().as_bytes().contains(&b':') {
                    return Err(MptcpizeError::DropInValue {
                        what: "the wrapper's path",
                        value: library.clone(),
                        why: "the dynamic loader splits LD_PRELOAD at colons",
                    });
                }
                if library.as_os_str().as_bytes().contains(&b' ') {
                    return Err(MptcpizeError::DropInValue {
                        what: "the wrapper's path",
                        value: library.clone(),
                        why: "the dynamic loader splits LD_PRELOAD at spaces",
                    });
                }
                let mut assignment = std::ffi::OsString::from("LD_PRELOAD=");
                assignment.push(library);
                format!(
                    "{header}# MPTCP by LD_PRELOAD (no eBPF upgrade on this kernel): dynamically \
                     linked programs only; Go programs through GODEBUG.\n[Service]\n\
                     Environment={} GODEBUG={}\n",
                    word(
                        "the wrapper's path",
                        Path::new(&assignment),
                        Field::Assignment
                    )?,
                    super::preload::GODEBUG_MPTCP
                )
            }
        })
    }

    /// Which mechanism a drop-in's text uses.
    #[must_use]
    pub(crate) fn mechanism_of(text: &str) -> &'static str {
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
pub(crate) fn unit_name(arg: &str) -> Result<String, MptcpizeError> {
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

/// [`unit_name`], for a unit a drop-in can change: only services run processes of their own
/// (`[Service]` means nothing to a `.socket`, `.slice`, ...).
pub(crate) fn service_name(arg: &str) -> Result<String, MptcpizeError> {
    let name = unit_name(arg)?;
    if name.ends_with(".service") {
        Ok(name)
    } else {
        Err(MptcpizeError::NotAService(name))
    }
}

/// The drop-in's path for `unit` below `systemd_dir`.
#[must_use]
pub(crate) fn drop_in_path(systemd_dir: &Path, unit: &str) -> PathBuf {
    systemd_dir.join(format!("{unit}.d")).join(DROP_IN)
}

/// Writes the drop-in (replacing an earlier one of ours): 0644, through a new file of a unique
/// name (never following a link planted there) renamed over the old one, so systemd never reads
/// half a file and nothing else is written.
pub(super) fn write(
    systemd_dir: &Path,
    unit: &str,
    drop_in: &DropIn,
) -> Result<PathBuf, MptcpizeError> {
    let text = drop_in.render()?;
    let path = drop_in_path(systemd_dir, unit);
    let err = |source| MptcpizeError::DropIn {
        path: path.clone(),
        source,
    };
    let dir = path.parent().unwrap_or(systemd_dir);
    fs::create_dir_all(dir).map_err(err)?;
    let (partial, mut file) = create_unique(dir).map_err(err)?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&partial, &path));
    if let Err(e) = written {
        let _removed = fs::remove_file(&partial);
        return Err(err(e));
    }
    Ok(path)
}

/// A new file `.mptcpize.conf.PID.N` in `dir`, mode 0644 whatever the umask.
fn create_unique(dir: &Path) -> io::Result<(PathBuf, fs::File)> {
    let pid = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut attempt = 0_u32;
    loop {
        let path = dir.join(format!(".{DROP_IN}.{pid}.{nanos:x}{attempt}"));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(file) => {
                file.set_permissions(fs::Permissions::from_mode(0o644))?;
                return Ok((path, file));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
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
    use std::{
        fs,
        os::unix::fs::{PermissionsExt as _, symlink},
        path::{Path, PathBuf},
        process::Command,
    };

    use super::{DropIn, service_name, unit_name, write};
    use crate::MptcpizeError;

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
    fn only_services_take_a_drop_in() {
        assert_eq!(service_name("nginx").unwrap(), "nginx.service");
        assert_eq!(service_name("a@b.service").unwrap(), "a@b.service");
        for other in ["app.socket", "user.slice", "x.timer", "m.mount", "t.target"] {
            let err = service_name(other).unwrap_err();
            assert!(matches!(err, MptcpizeError::NotAService(_)), "{other}");
            let line = err.to_string();
            assert!(
                line.starts_with(&format!("{other} is not a service")),
                "{line}"
            );
            assert_eq!(line.lines().count(), 1);
        }
    }

    #[test]
    fn drop_ins_say_their_mechanism() {
        let ebpf = DropIn::Ebpf {
            mptcpize: PathBuf::from("/usr/bin/mptcpize"),
            pin_dir: PathBuf::from("/sys/fs/bpf/mptcpd"),
        }
        .render()
        .unwrap();
        assert!(ebpf.contains(
            "\nExecStartPre=-+/usr/bin/mptcpize --bpf-pin-dir /sys/fs/bpf/mptcpd enable \
             --current-cgroup\n"
        ));
        assert_eq!(DropIn::mechanism_of(&ebpf), "eBPF upgrade");
        let preload = DropIn::Preload {
            library: PathBuf::from("/usr/lib/mptcpize/libmptcpwrap.so"),
        }
        .render()
        .unwrap();
        assert!(preload.contains(
            "\n[Service]\nEnvironment=LD_PRELOAD=/usr/lib/mptcpize/libmptcpwrap.so \
             GODEBUG=multipathtcp=1\n"
        ));
        assert_eq!(DropIn::mechanism_of(&preload), "LD_PRELOAD");
    }

    #[test]
    fn values_are_escaped_and_a_newline_cannot_add_a_directive() {
        let ebpf = DropIn::Ebpf {
            mptcpize: PathBuf::from("/opt/my tools/mptcpize"),
            pin_dir: PathBuf::from("/sys/fs/bpf/a%i$HOME"),
        }
        .render()
        .unwrap();
        assert!(
            ebpf.contains(
                "\nExecStartPre=-+\"/opt/my tools/mptcpize\" --bpf-pin-dir /sys/fs/bpf/a%%i$$HOME \
                 enable --current-cgroup\n"
            ),
            "{ebpf}"
        );
        let injected = DropIn::Ebpf {
            mptcpize: PathBuf::from("/usr/bin/mptcpize"),
            pin_dir: PathBuf::from("/sys/fs/bpf/x\nExecStartPre=/bin/sh -c evil"),
        }
        .render()
        .unwrap_err()
        .to_string();
        assert!(
            injected.starts_with("cannot write the pin directory \"/sys/fs/bpf/x\\nExec"),
            "{injected}"
        );
        assert!(injected.contains("control character"), "{injected}");
        assert_eq!(injected.lines().count(), 1);
        for library in ["/a b/libmptcpwrap.so", "/a:b/libmptcpwrap.so", "/a\n/l.so"] {
            let err = DropIn::Preload {
                library: PathBuf::from(library),
            }
            .render();
            assert!(err.is_err(), "{library:?}");
        }
        let preload = DropIn::Preload {
            library: PathBuf::from("/opt/100%/libmptcpwrap.so"),
        }
        .render()
        .unwrap();
        assert!(
            preload.contains("\nEnvironment=LD_PRELOAD=/opt/100%%/libmptcpwrap.so GODEBUG="),
            "{preload}"
        );
    }

    /// `systemd-analyze verify` reads the escaped values back: a unit whose drop-in runs an
    /// executable at a path full of characters systemd treats specially.
    #[test]
    fn systemd_reads_the_escaped_drop_in_back() {
        let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
            eprintln!("skipped: systemd_reads_the_escaped_drop_in_back: no systemd-analyze");
            return;
        };
        assert!(version.status.success());
        let dir = tempfile::tempdir().unwrap();
        let tools = dir.path().join("my tools %i $HOME");
        fs::create_dir(&tools).unwrap();
        let mptcpize = tools.join("mptcpize");
        fs::write(&mptcpize, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&mptcpize, fs::Permissions::from_mode(0o755)).unwrap();
        let systemd = dir.path().join("system");
        fs::create_dir(&systemd).unwrap();
        let unit = systemd.join("web.service");
        fs::write(&unit, "[Service]\nExecStart=/bin/true\n").unwrap();
        let drop_in = DropIn::Ebpf {
            mptcpize: mptcpize.clone(),
            pin_dir: PathBuf::from("/sys/fs/bpf/a \"b\" \\c %n $X"),
        };
        let path = write(&systemd, "web.service", &drop_in).unwrap();
        // verify checks a program's path only without the `-` prefix (failure ignored).
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replace("ExecStartPre=-+", "ExecStartPre=+")).unwrap();
        let (success, stderr) = verify(&unit);
        assert!(success, "{stderr}");
        assert!(
            !stderr.contains("web.service"),
            "remarks on the unit:\n{stderr}"
        );

        // The control: the same drop-in without escaping names a program that is not there.
        let raw = format!(
            "[Service]\nExecStartPre=+{} --bpf-pin-dir /x enable --current-cgroup\n",
            mptcpize.display()
        );
        fs::write(&path, raw).unwrap();
        let (success, stderr) = verify(&unit);
        assert!(!success || !stderr.is_empty());
    }

    /// `systemd-analyze verify UNIT`: whether it succeeded, and what it said.
    fn verify(unit: &Path) -> (bool, String) {
        let out = Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(unit)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn the_drop_in_is_written_0644_through_a_new_file_and_follows_no_link() {
        let dir = tempfile::tempdir().unwrap();
        let unit_dir = dir.path().join("web.service.d");
        fs::create_dir(&unit_dir).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, "precious\n").unwrap();
        // Links planted at the final name and at the temporary name older versions used.
        symlink(&victim, unit_dir.join("mptcpize.conf")).unwrap();
        symlink(&victim, unit_dir.join("mptcpize.conf.partial")).unwrap();
        let drop_in = DropIn::Preload {
            library: PathBuf::from("/usr/lib/mptcpize/libmptcpwrap.so"),
        };
        let path = write(dir.path(), "web.service", &drop_in).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            drop_in.render().unwrap()
        );
        // Nothing of ours is left beside it.
        let mut names: Vec<String> = fs::read_dir(&unit_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["mptcpize.conf", "mptcpize.conf.partial"]);
        assert!(Path::new(&unit_dir.join("mptcpize.conf.partial")).is_symlink());
    }
}
