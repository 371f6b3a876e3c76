//! What a local user or a compromised daemon could otherwise do: a pin directory another user
//! made or can write is refused by the daemon and by `mptcpize`; bpffs, when the daemon has to
//! mount it, is mounted for root only; and the daemon gives up `CAP_BPF` and `CAP_PERFMON` once
//! its programs are loaded.

use std::{
    fs,
    os::unix::{
        fs::{PermissionsExt as _, chown, symlink},
        process::CommandExt as _,
    },
    path::PathBuf,
};

use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    ebpf::{cgroup::TestCgroup, mptcpize::PinDir},
    kernel_pm::endpoints,
    net::{
        netns::NetNs,
        veth::{Address, VethPair},
    },
    skip,
};

/// A path under `/sys/fs/bpf` for this test only, removed (with whatever is in it) on drop.
struct BpffsPath(PathBuf);

impl BpffsPath {
    fn new(test: &str) -> Self {
        Self(PathBuf::from(format!(
            "/sys/fs/bpf/mptcpd-test-{}-{test}",
            std::process::id()
        )))
    }

    /// A directory there, with `mode` and owner `uid`.
    fn dir(test: &str, mode: u32, uid: u32) -> Self {
        let path = Self::new(test);
        fs::create_dir(&path.0).unwrap();
        fs::set_permissions(&path.0, fs::Permissions::from_mode(mode)).unwrap();
        chown(&path.0, Some(uid), None).unwrap();
        path
    }
}

impl Drop for BpffsPath {
    fn drop(&mut self) {
        if self.0.is_symlink() || self.0.is_file() {
            let _removed = fs::remove_file(&self.0);
        } else if let Ok(entries) = fs::read_dir(&self.0) {
            for entry in entries.flatten() {
                let _removed = fs::remove_file(entry.path());
            }
            let _removed = fs::remove_dir(&self.0);
        }
    }
}

fn bpffs_mounted() -> bool {
    fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split(' ').nth(1) == Some("/sys/fs/bpf"))
    })
}

/// Three pin directories nobody should trust: writable by all, owned by another user, and a
/// symbolic link to a directory that is fine in itself.
fn untrusted_dirs(test: &str) -> Vec<(BpffsPath, &'static str, Option<BpffsPath>)> {
    let open = BpffsPath::dir(&format!("{test}-0777"), 0o777, 0);
    let foreign = BpffsPath::dir(&format!("{test}-uid"), 0o700, 65534);
    let target = BpffsPath::dir(&format!("{test}-target"), 0o700, 0);
    let link = BpffsPath::new(&format!("{test}-link"));
    symlink(&target.0, &link.0).unwrap();
    vec![
        (open, "it is writable by others (mode 777)", None),
        (foreign, "it is owned by uid 65534, not root", None),
        (link, "it is a symbolic link", Some(target)),
    ]
}

#[test]
fn the_daemon_refuses_a_pin_directory_others_could_change() {
    const TEST: &str = "the_daemon_refuses_a_pin_directory_others_could_change";
    if !skip::require_root(TEST) {
        return;
    }
    if !bpffs_mounted() {
        skip::skip(TEST, "no bpffs at /sys/fs/bpf");
        return;
    }
    let ns = NetNs::new("mptcpd-t-hpin").unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    for (dir, why, _target) in untrusted_dirs("dpin") {
        let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
        cmd.args(["--log", "stderr", "--config"])
            .arg(config.path())
            .arg("--bpf-pin-dir")
            .arg(&dir.0);
        let daemon = Daemon::start(cmd).unwrap();
        let (status, log) = daemon.stop().unwrap();
        assert!(status.success(), "{log}");
        let refusal: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("refusing pin directory"))
            .collect();
        assert_eq!(refusal.len(), 1, "{why}:\n{log}");
        let line = refusal[0];
        assert!(line.contains(&dir.0.display().to_string()), "{line}");
        assert!(line.contains(why), "{line}");
        assert!(line.contains("--bpf-pin-dir"), "what to do: {line}");
        // Nothing was pinned in it.
        if !dir.0.is_symlink() {
            assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 0, "{log}");
        }
    }
}

#[test]
fn mptcpize_refuses_a_pin_directory_others_could_change() {
    const TEST: &str = "mptcpize_refuses_a_pin_directory_others_could_change";
    if !skip::require_root(TEST) {
        return;
    }
    if !bpffs_mounted() {
        skip::skip(TEST, "no bpffs at /sys/fs/bpf");
        return;
    }
    let systemd = tempfile::tempdir().unwrap();
    // A test cgroup: enabling the root cgroup is refused (without --force) before the pins.
    let cgroup = TestCgroup::new("mptcpd-t-zpin").unwrap();
    let cgroup = cgroup.path().to_str().unwrap();
    for (dir, why, _target) in untrusted_dirs("zpin") {
        for args in [
            &["status"][..],
            &["enable", "--cgroup", cgroup],
            &["enable", "web", "--no-reload"],
            &["run", "true"],
            &["reset"],
        ] {
            let out = std::process::Command::new(bins::path("mptcpize").unwrap())
                .arg("--bpf-pin-dir")
                .arg(&dir.0)
                .arg("--systemd-dir")
                .arg(systemd.path())
                .args(args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?} {why}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(
                stderr.starts_with(&format!(
                    "mptcpize: refusing pin directory {}: {why}",
                    dir.0.display()
                )),
                "{args:?}: {stderr}"
            );
        }
        assert_eq!(fs::read_dir(systemd.path()).unwrap().count(), 0);
    }
}

/// Moves the calling process into a mount namespace of its own whose changes stay there.
/// Async-signal-safe (system calls only): for `pre_exec`.
fn private_mount_namespace() -> std::io::Result<()> {
    // SAFETY: unshare(2) and mount(2) with valid strings or nulls.
    let failed = unsafe {
        libc::unshare(libc::CLONE_NEWNS) != 0
            || libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
    };
    if failed {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Options of the bpffs mounted at `/sys/fs/bpf` in the mount namespace of `pid`.
fn bpffs_options(pid: u32) -> Option<String> {
    let mountinfo = fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    // The last mount there is the one seen.
    mountinfo
        .lines()
        .rev()
        .filter(|l| l.split(' ').nth(4) == Some("/sys/fs/bpf"))
        .find_map(|l| {
            let (_, after) = l.split_once(" - ")?;
            let mut fields = after.split(' ');
            (fields.next() == Some("bpf")).then(|| fields.nth(1).unwrap_or_default().to_owned())
        })
}

#[test]
fn the_daemon_mounts_bpffs_for_root_only() {
    const TEST: &str = "the_daemon_mounts_bpffs_for_root_only";
    if !skip::require_root(TEST) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-hmnt").unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .args(["--bpf-pin-dir", "/sys/fs/bpf/mptcpd-test-mount"]);
    // SAFETY: only unshare(2), mount(2) and umount2(2) between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // A mount namespace of its own, where nothing is mounted at /sys/fs/bpf.
            private_mount_namespace()?;
            while libc::umount2(c"/sys/fs/bpf".as_ptr(), libc::MNT_DETACH) == 0 {}
            Ok(())
        })
    };
    let daemon = Daemon::start(cmd).unwrap();
    let options = bpffs_options(daemon.pid());
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("mounted bpffs at /sys/fs/bpf"), "{log}");
    let options = options.unwrap_or_else(|| panic!("no bpffs in the daemon's namespace:\n{log}"));
    assert!(
        options.split(',').any(|o| o == "mode=700"),
        "bpffs options {options}"
    );
}

/// `CapEff`, `CapPrm`, `CapInh`, `CapAmb` of every thread of `pid`.
fn capability_sets(pid: u32) -> Vec<(String, u64)> {
    let mut sets = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let status = fs::read_to_string(task.path().join("status")).unwrap();
        for line in status.lines() {
            if let Some((name, hex)) = line.split_once(":\t")
                && ["CapEff", "CapPrm", "CapInh", "CapAmb"].contains(&name)
            {
                sets.push((
                    format!("{} {name}", task.file_name().to_string_lossy()),
                    u64::from_str_radix(hex.trim(), 16).unwrap(),
                ));
            }
        }
    }
    sets
}

#[test]
fn the_daemon_drops_bpf_capabilities_once_its_programs_are_loaded() {
    const TEST: &str = "the_daemon_drops_bpf_capabilities_once_its_programs_are_loaded";
    const CAP_NET_ADMIN: u64 = 1 << 12;
    const CAP_PERFMON: u64 = 1 << 38;
    const CAP_BPF: u64 = 1 << 39;
    if !skip::require_root(TEST) {
        return;
    }
    let ns = NetNs::new("mptcpd-t-hcap").unwrap();
    let peer = NetNs::new("mptcpd-t-hcap").unwrap();
    let _link = VethPair::new("c-a", &ns, "c-b", &peer).unwrap();
    let pins = PinDir::new("caps");
    let config = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .args(["--addr-flags", "subflow", "--notify-flags", "skip_loopback"])
        .arg("--bpf-pin-dir")
        .arg(pins.path());
    let mut daemon = Daemon::start(cmd).unwrap();
    // Logged before READY=1, but the harness's reader of its stderr may not have it yet.
    daemon.wait_for_log("socket observer attached").unwrap();
    let sets = capability_sets(daemon.pid());
    assert!(sets.len() >= 4, "{sets:?}");
    for (set, value) in &sets {
        assert_eq!(value & (CAP_BPF | CAP_PERFMON), 0, "{set} = {value:#x}");
    }
    assert!(
        sets.iter()
            .filter(|(set, _)| set.ends_with("CapEff"))
            .all(|(_, value)| value & CAP_NET_ADMIN != 0),
        "{sets:?}"
    );
    // The programs were loaded and pinned before the drop, and the daemon still works.
    let log = daemon.log();
    assert!(pins.path().join("sock_counts").exists(), "{log}");
    let _addr = Address::add(&ns, "c-a", "198.51.100.21/24").unwrap();
    endpoints::wait_until(&ns, "the daemon adds an endpoint", |table| {
        table.iter().any(|e| e.addr == "198.51.100.21")
    })
    .unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    // Its pins are still removed, without the capabilities.
    assert!(!pins.path().join("sock_counts").exists(), "{log}");
    assert!(!log.contains("could not remove pin"), "{log}");
}

/// What `ProtectControlGroups=yes` does: every cgroup mount read-only, in a mount namespace of
/// the daemon's own. The observer still attaches: that takes a descriptor of the cgroup, not
/// write access.
#[test]
fn the_observer_attaches_with_the_cgroup_tree_read_only() {
    const TEST: &str = "the_observer_attaches_with_the_cgroup_tree_read_only";
    if !skip::require_root(TEST) {
        return;
    }
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    let cgroup_mounts: Vec<std::ffi::CString> = mounts
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(' ');
            let target = fields.nth(1)?;
            let fstype = fields.next()?;
            fstype
                .starts_with("cgroup")
                .then(|| std::ffi::CString::new(target).ok())?
        })
        .collect();
    if cgroup_mounts.is_empty() {
        skip::skip(TEST, "no cgroup file system mounted");
        return;
    }
    let ns = NetNs::new("mptcpd-t-hro").unwrap();
    let pins = PinDir::new("cgro");
    let config = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--config"])
        .arg(config.path())
        .arg("--bpf-pin-dir")
        .arg(pins.path());
    // SAFETY: only unshare(2) and mount(2) between fork and exec, on strings made before.
    unsafe {
        cmd.pre_exec(move || {
            private_mount_namespace()?;
            for target in &cgroup_mounts {
                let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
                let none = std::ptr::null();
                if libc::mount(none, target.as_ptr(), none, flags, none.cast()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    let daemon = Daemon::start(cmd).unwrap();
    // The daemon's view: every cgroup mount read-only.
    let mountinfo = fs::read_to_string(format!("/proc/{}/mountinfo", daemon.pid())).unwrap();
    let cgroup_lines: Vec<&str> = mountinfo
        .lines()
        .filter(|l| {
            l.split_once(" - ")
                .is_some_and(|(_, t)| t.starts_with("cgroup"))
        })
        .collect();
    assert!(!cgroup_lines.is_empty(), "{mountinfo}");
    for line in &cgroup_lines {
        assert_eq!(
            line.split(' ').nth(5).map(|o| o.split(',').next()),
            Some(Some("ro")),
            "{line}"
        );
    }
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("socket observer attached to cgroup"), "{log}");
    assert!(!log.contains("socket observer off"), "{log}");
}
