//! The daemon's configuration against the real binary: file and options, bad usage, refusals
//! (world-writable file, MPTCP disabled, no `CAP_NET_ADMIN`) and SIGHUP reloads.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use mptcpd_tests::{
    bins,
    daemon::process::{self, Daemon},
    net::{netns::NetNs, sysctl},
    skip,
};

/// A config file with `text`, mode `mode`, in a directory removed on drop.
fn config_file(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("mptcpd-config-")
        .tempdir()
        .unwrap();
    let path = dir.path().join("mptcpd.conf");
    write(&path, text, mode);
    (dir, path)
}

fn write(path: &Path, text: &str, mode: u32) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn pin_dir(name: &str) -> String {
    format!("/sys/fs/bpf/mptcpd-test-{name}")
}

/// Asserts that the daemon refused with exit status `code` and one line containing `needle`.
fn assert_refused(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line:\n{stderr}");
    assert!(stderr.starts_with("mptcpd: "), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} in {stderr}");
}

#[test]
fn bad_usage_exits_64_with_one_line() {
    let mptcpd = bins::path("mptcpd").unwrap();
    let cases: [(&[&str], &str); 7] = [
        (&["--bogus"], "--bogus"),
        (&["--log=loud"], "loud"),
        (&["-l", ""], "--log"),
        (&["--plugin-dir="], "--plugin-dir"),
        (&["--path-manager="], "--path-manager"),
        (&["--addr-flags=subflow,nope"], "nope"),
        (&["--load-plugins="], "--load-plugins"),
    ];
    for (args, needle) in cases {
        let out = Command::new(&mptcpd).args(args).output().unwrap();
        assert_refused(&out, 64, needle);
    }
    let usage = Command::new(&mptcpd).arg("--usage").output().unwrap();
    assert!(usage.status.success());
    assert!(String::from_utf8_lossy(&usage.stdout).starts_with("Usage: mptcpd"));
}

#[test]
fn bad_config_files_are_refused_with_one_line() {
    let mptcpd = bins::path("mptcpd").unwrap();
    let (_dir, path) = config_file("[core]\nlog=stderr\n", 0o666);
    let out = Command::new(&mptcpd)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_refused(&out, 1, "world-writable");

    write(
        &path,
        "[core]\nlog=stderr\nnotify-flags=existing,sometimes\n",
        0o644,
    );
    let out = Command::new(&mptcpd)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_refused(
        &out,
        1,
        &format!("{}:3: key \"notify-flags\"", path.display()),
    );

    let missing = path.with_file_name("missing.conf");
    let out = Command::new(&mptcpd)
        .arg("--config")
        .arg(&missing)
        .output()
        .unwrap();
    assert_refused(&out, 1, "missing.conf");
}

/// A `MPTCPD_LOG` that does not parse is named in one warning and the default filter kept.
#[test]
fn a_bad_mptcpd_log_is_named_and_the_default_filter_kept() {
    if !skip::require_root("a_bad_mptcpd_log_is_named_and_the_default_filter_kept") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-envlog").unwrap();
    let (_dir, path) = config_file("[core]\n", 0o644);
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.arg("--config")
        .arg(&path)
        .args(["--log=stderr", "--notify-flags=skip_loopback"])
        .args(["--bpf-pin-dir", &pin_dir("envlog")])
        .env("MPTCPD_LOG", "mptcpd=loud");
    let mut daemon = Daemon::start(cmd).unwrap();
    daemon
        .wait_for_log("MPTCPD_LOG=\"mptcpd=loud\" ignored: not a filter")
        .unwrap();
    daemon.wait_for_log("ready").unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert_eq!(log.matches("MPTCPD_LOG").count(), 1, "{log}");
    assert!(!log.contains("DEBUG"), "{log}");
}

#[test]
fn config_file_and_options_make_the_effective_settings() {
    if !skip::require_root("config_file_and_options_make_the_effective_settings") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-cfg").unwrap();
    let (_dir, path) = config_file(
        "[core]\nlog=null\npath-manager=sspi\naddr-flags=subflow,backup\n\
         notify-flags=existing\nload-plugins=sspi\n",
        0o644,
    );
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.arg("--config")
        .arg(&path)
        .args(["--log=stderr", "-d", "--notify-flags=skip_loopback"])
        .args(["--bpf-pin-dir", &pin_dir("cfg")]);
    let mut daemon = Daemon::start(cmd).unwrap();
    daemon.wait_for_log("configuration: ").unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("configuration: "))
        .unwrap_or_default();
    for setting in [
        format!("config-file={}", path.display()),
        "debug=true".to_owned(),
        "log=stderr".to_owned(),
        "path-manager=sspi".to_owned(),
        "load-plugins=sspi".to_owned(),
        "addr-flags=subflow,backup".to_owned(),
        "notify-flags=skip_loopback".to_owned(),
    ] {
        assert!(line.contains(&format!("{setting} ")), "{setting} in {line}");
    }
}

#[test]
fn mptcp_disabled_is_refused_with_one_line() {
    if !skip::require_root("mptcp_disabled_is_refused_with_one_line") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-nomptcp").unwrap();
    sysctl::set_in(&ns, "net.mptcp.enabled", "0").unwrap();
    let out = ns
        .command(bins::path("mptcpd").unwrap())
        .unwrap()
        .args(["--log=stderr", "--bpf-pin-dir", &pin_dir("nomptcp")])
        .output()
        .unwrap();
    assert_refused(&out, 1, "net.mptcp.enabled = 0");
}

#[test]
fn missing_cap_net_admin_is_refused_with_one_line() {
    if !skip::require_root("missing_cap_net_admin_is_refused_with_one_line") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-nocap").unwrap();
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log=stderr", "--bpf-pin-dir", &pin_dir("nocap")]);
    drop_capability_on_spawn(&mut cmd, CAP_NET_ADMIN);
    let out = cmd.output().unwrap();
    assert_refused(&out, 1, "CAP_NET_ADMIN");
}

#[test]
fn sighup_reloads_the_config_file_and_the_daemon_stays_ready() {
    if !skip::require_root("sighup_reloads_the_config_file_and_the_daemon_stays_ready") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-hup").unwrap();
    let (_dir, path) = config_file("[core]\nlog=stderr\ndebug=false\n", 0o644);
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.arg("--config")
        .arg(&path)
        .args(["--bpf-pin-dir", &pin_dir("hup")]);
    let mut daemon = Daemon::start(cmd).unwrap();
    assert!(!daemon.log().contains("DEBUG"), "{}", daemon.log());

    // A bad file is reported and the running configuration stays.
    write(&path, "[core]\ndebug=perhaps\n", 0o644);
    daemon.signal(libc::SIGHUP).unwrap();
    daemon.wait_for_notify("RELOADING=1").unwrap();
    daemon.wait_for_notify("READY=1").unwrap();
    daemon
        .wait_for_log("keeping the current configuration")
        .unwrap();

    write(&path, "[core]\nlog=stderr\ndebug=true\n", 0o644);
    daemon.signal(libc::SIGHUP).unwrap();
    daemon.wait_for_notify("RELOADING=1").unwrap();
    daemon.wait_for_notify("READY=1").unwrap();
    daemon.wait_for_log("configuration reloaded").unwrap();
    // Debug messages now appear: the one after the reload names the new setting.
    daemon.wait_for_log("debug=true").unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(log.contains("DEBUG"), "{log}");
}

/// Replaces `path` with a FIFO that nobody writes to.
fn make_fifo(path: &Path) {
    let _absent = fs::remove_file(path);
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Runs `cmd` to completion, killed after the hang limit (then the output says so).
fn output_within_liveness(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + process::LIVENESS;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _killed = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {:?}: {}",
                process::LIVENESS,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_as_config_file_fails_at_start_in_one_line() {
    let (_dir, path) = config_file("", 0o644);
    make_fifo(&path);
    let mut cmd = Command::new(bins::path("mptcpd").unwrap());
    cmd.arg("--config").arg(&path);
    // Before anything else: the file is read first, so this needs neither root nor a kernel.
    let out = output_within_liveness(cmd);
    assert_refused(
        &out,
        1,
        &format!("config file {} is not a regular file", path.display()),
    );
}

#[test]
fn a_reload_with_a_fifo_keeps_the_running_configuration() {
    if !skip::require_root("a_reload_with_a_fifo_keeps_the_running_configuration") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-fifo").unwrap();
    let (_dir, path) = config_file("[core]\nlog=stderr\ndebug=false\n", 0o644);
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.arg("--config")
        .arg(&path)
        .args(["--bpf-pin-dir", &pin_dir("fifo")]);
    let mut daemon = Daemon::start(cmd).unwrap();
    make_fifo(&path);
    daemon.signal(libc::SIGHUP).unwrap();
    daemon.wait_for_notify("RELOADING=1").unwrap();
    // A blocking open would wait for a writer here, and the daemon with it.
    daemon.wait_for_notify("READY=1").unwrap();
    daemon
        .wait_for_log("is not a regular file; keeping the current configuration")
        .unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    assert!(!log.contains("configuration reloaded"), "{log}");
}

/// From linux/capability.h (libc does not export it).
const CAP_NET_ADMIN: libc::c_ulong = 12;

/// Drops `cap` from the bounding set before exec, so that the root child lacks it.
fn drop_capability_on_spawn(cmd: &mut Command, cap: libc::c_ulong) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: prctl is async-signal-safe; the closure allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `[health]` is reloadable: a SIGHUP gives the `health` plugin the new thresholds (one line
/// names what changed); a bad value is refused by file, line and key and the ones in force stay.
#[test]
fn sighup_applies_new_health_settings_and_a_bad_value_keeps_them() {
    if !skip::require_root("sighup_applies_new_health_settings_and_a_bad_value_keeps_them") {
        return;
    }
    let ns = NetNs::new("mptcpd-t-hup-health").unwrap();
    let core = "[core]\nlog=stderr\nload-plugins=addr_adv,health\n";
    let (_dir, path) = config_file(&format!("{core}[health]\nhold=10\n"), 0o644);
    let mut cmd = ns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.arg("--config")
        .arg(&path)
        .args(["--bpf-pin-dir", &pin_dir("hup-health")]);
    let mut daemon = Daemon::start(cmd).unwrap();

    let reload = |daemon: &mut Daemon, text: &str| {
        write(&path, text, 0o644);
        daemon.signal(libc::SIGHUP).unwrap();
        daemon.wait_for_notify("RELOADING=1").unwrap();
        daemon.wait_for_notify("READY=1").unwrap();
    };
    reload(
        &mut daemon,
        &format!("{core}[health]\nhold=2\nmin-peers=1\n"),
    );
    daemon
        .wait_for_log("health: new settings apply: hold 10s -> 2s, min-peers 3 -> 1")
        .unwrap();

    reload(
        &mut daemon,
        &format!("{core}[health]\nhold=2\nmin-peers=-1\n"),
    );
    daemon
        .wait_for_log("keeping the current configuration")
        .unwrap();
    // Then only what differs from the values in force (hold 2, min-peers 1) is named.
    reload(
        &mut daemon,
        &format!("{core}[health]\nhold=2\nmin-peers=1\ndead-rtos=5\n"),
    );
    daemon
        .wait_for_log("health: new settings apply: dead-rtos 2 -> 5")
        .unwrap();
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
    let refused = log
        .lines()
        .find(|l| l.contains("keeping the current configuration"))
        .unwrap();
    assert!(
        refused.contains(&format!("{}:6: key \"min-peers\"", path.display())),
        "{refused}"
    );
    assert_eq!(
        log.matches("health: new settings apply").count(),
        2,
        "{log}"
    );
}
