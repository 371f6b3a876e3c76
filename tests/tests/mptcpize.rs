//! `mptcpize` where the eBPF upgrade cannot run (the host kernel refuses BPF trampolines): the
//! `LD_PRELOAD` fallback, systemd drop-ins, the fallback messages, bad input, and the coverage
//! that `status` reads from the daemon's observer. The eBPF path is in `mptcpize_ebpf.rs`
//! (VM).

use std::{
    collections::BTreeMap,
    fs,
    os::unix::{fs::PermissionsExt as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Command, Output},
    time::SystemTime,
};

use mptcpd_bpf::Upgrade;
use mptcpd_tests::{
    bins,
    daemon::process::Daemon,
    ebpf::{cgroup::TestCgroup, mptcpize::PinDir, mptcpize::printed_protocol},
    net::netns::NetNs,
    skip,
};
use mptcpize::cli::DEFAULT_SYSTEMD_DIR;

/// `true` where the upgrade cannot run, so the wrapper is what mptcpize uses; otherwise skips.
fn fallback_expected(test: &str) -> bool {
    if Upgrade::probe().is_ok() {
        skip::skip(
            test,
            "the eBPF upgrade runs here, so the wrapper is not used",
        );
        return false;
    }
    true
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("ERROR: ld.so:"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn run_preloads_the_wrapper_into_a_dynamic_binary() {
    const TEST: &str = "run_preloads_the_wrapper_into_a_dynamic_binary";
    if !fallback_expected(TEST) {
        return;
    }
    let pins = PinDir::new("preload");
    let xfer = bins::path("mptcp-xfer").unwrap();
    let out = pins
        .run([
            "run".as_ref(),
            "-d".as_ref(),
            xfer.as_os_str(),
            "socket".as_ref(),
            "tcp".as_ref(),
        ])
        .unwrap();
    let err = stderr_lines(&out);
    assert!(out.status.success(), "{err:?}");
    assert_eq!(printed_protocol(&out), Some(262), "{err:?}");
    // One line says why not eBPF; -d names the library and the wrapper reports the socket.
    let fallback: Vec<&String> = err
        .iter()
        .filter(|l| l.contains("eBPF upgrade not available"))
        .collect();
    assert_eq!(fallback.len(), 1, "{err:?}");
    assert!(fallback[0].ends_with("using LD_PRELOAD"), "{err:?}");
    assert!(err.iter().any(|l| l.contains("LD_PRELOAD of ")), "{err:?}");
    assert!(
        err.iter()
            .any(|l| l.starts_with("mptcpwrap: socket(family 2")),
        "{err:?}"
    );
    // Without -d, only the fallback line.
    let quiet = pins
        .run([
            "run".as_ref(),
            xfer.as_os_str(),
            "socket".as_ref(),
            "tcp".as_ref(),
        ])
        .unwrap();
    assert_eq!(printed_protocol(&quiet), Some(262));
    assert_eq!(stderr_lines(&quiet).len(), 1, "{:?}", stderr_lines(&quiet));
}

#[test]
fn run_appends_to_an_existing_ld_preload_and_godebug() {
    const TEST: &str = "run_appends_to_an_existing_ld_preload_and_godebug";
    if !fallback_expected(TEST) {
        return;
    }
    let pins = PinDir::new("append");
    let out = pins
        .command(["run", "printenv", "LD_PRELOAD", "GODEBUG"])
        .unwrap()
        .env("LD_PRELOAD", "/nonexistent/first.so")
        .env("GODEBUG", "http2client=0")
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let (first, wrapper) = lines[0].split_once(':').expect("two preloads");
    assert_eq!(first, "/nonexistent/first.so");
    assert!(wrapper.ends_with("/libmptcpwrap.so"), "{stdout}");
    assert_eq!(lines[1], "http2client=0,multipathtcp=1");
}

#[test]
fn run_warns_that_a_static_binary_stays_on_tcp() {
    const TEST: &str = "run_warns_that_a_static_binary_stays_on_tcp";
    if !fallback_expected(TEST) {
        return;
    }
    let busybox = Path::new("/bin/busybox");
    if !fs::read(busybox).is_ok_and(|elf| is_static_elf64(&elf)) {
        skip::skip(
            TEST,
            "no static /bin/busybox here (apt-get install busybox-static)",
        );
        return;
    }
    let pins = PinDir::new("static");
    let out = pins.run(["run", "/bin/busybox", "true"]).unwrap();
    assert!(out.status.success());
    let err = stderr_lines(&out);
    assert!(
        err.iter()
            .any(|l| l.contains("/bin/busybox will keep using TCP")
                && l.contains("statically linked")),
        "{err:?}"
    );
}

#[test]
fn enable_and_disable_a_unit_write_and_remove_only_our_drop_in() {
    const TEST: &str = "enable_and_disable_a_unit_write_and_remove_only_our_drop_in";
    if !fallback_expected(TEST) {
        return;
    }
    let pins = PinDir::new("unit");
    let unit_dir = pins.systemd_dir().join("web.service.d");
    fs::create_dir_all(&unit_dir).unwrap();
    let admin = unit_dir.join("10-admin.conf");
    fs::write(&admin, "[Service]\nEnvironment=KEEP=1\n").unwrap();
    let mptcpize = |args: &[&str]| pins.run(args).unwrap();

    let out = mptcpize(&["enable", "web", "--no-reload"]);
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("enabled web.service by LD_PRELOAD"),
        "{stdout}"
    );
    assert!(
        stdout.contains("TCP until web.service is restarted"),
        "{stdout}"
    );
    let drop_in = fs::read_to_string(unit_dir.join("mptcpize.conf")).unwrap();
    assert!(
        drop_in.contains("\n[Service]\nEnvironment=LD_PRELOAD=/"),
        "{drop_in}"
    );
    assert!(
        drop_in.contains("/libmptcpwrap.so GODEBUG=multipathtcp=1\n"),
        "{drop_in}"
    );

    let status = mptcpize(&["status"]);
    let report = String::from_utf8_lossy(&status.stdout);
    assert!(report.contains("  web.service  LD_PRELOAD"), "{report}");

    let out = mptcpize(&["disable", "web", "--no-reload"]);
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    assert!(!unit_dir.join("mptcpize.conf").exists());
    // The administrator's drop-in, and so its directory, stay.
    assert_eq!(
        fs::read_to_string(&admin).unwrap(),
        "[Service]\nEnvironment=KEEP=1\n"
    );
    let again = mptcpize(&["disable", "web", "--no-reload"]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("web.service was not enabled"));
}

/// `netns allow` refuses, before touching anything, a namespace where MPTCP sockets fail (an
/// upgraded `socket()` there would fail with ENOPROTOOPT); without the upgrade it says so.
#[test]
fn netns_allow_refuses_a_namespace_where_mptcp_is_off_in_one_line() {
    const TEST: &str = "netns_allow_refuses_a_namespace_where_mptcp_is_off_in_one_line";
    if !skip::require_root(TEST) || !fallback_expected(TEST) {
        return;
    }
    let pins = PinDir::new("nsoff");
    let off = NetNs::new("mptcpd-t-mz-nsoff").unwrap();
    mptcpd_tests::net::sysctl::set_in(&off, "net.mptcp.enabled", "0").unwrap();
    let path = format!("/run/netns/{}", off.name());
    let out = pins.run(["netns", "allow", "--netns", &path]).unwrap();
    assert!(!out.status.success());
    let err = stderr_lines(&out);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with(&format!(
            "mptcpize: refusing to allow network namespace {path}"
        )),
        "{err:?}"
    );
    assert!(err[0].contains("net.mptcp.enabled is 0"), "{err:?}");
    assert!(!pins.path().exists(), "nothing installed");

    let out = pins
        .run(["netns", "allow", "--netns", "/proc/self/ns/uts"])
        .unwrap();
    let err = stderr_lines(&out);
    assert!(!out.status.success());
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(err[0].contains("not a network namespace"), "{err:?}");

    let out = pins.run(["netns", "allow"]).unwrap();
    let err = stderr_lines(&out);
    assert!(!out.status.success());
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("mptcpize: cannot enable a cgroup without the eBPF upgrade"),
        "{err:?}"
    );
    let list = pins.run(["netns", "list"]).unwrap();
    assert!(list.status.success());
    assert!(
        String::from_utf8_lossy(&list.stdout).starts_with("no eBPF upgrade installed"),
        "{list:?}"
    );
}

#[test]
fn enabling_a_cgroup_without_the_upgrade_fails_in_one_line() {
    const TEST: &str = "enabling_a_cgroup_without_the_upgrade_fails_in_one_line";
    if !fallback_expected(TEST) {
        return;
    }
    let pins = PinDir::new("nocg");
    let cgroup = TestCgroup::new("mptcpd-t-nocg").unwrap();
    let out = pins
        .command(["enable", "--cgroup"])
        .unwrap()
        .arg(cgroup.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_lines(&out);
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("mptcpize: cannot enable a cgroup without the eBPF upgrade"),
        "{err:?}"
    );
    let status = pins.run(["status"]).unwrap();
    let report = String::from_utf8_lossy(&status.stdout);
    let first = report.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("mechanism: LD_PRELOAD wrapper"),
        "{report}"
    );
    assert!(first.contains("eBPF upgrade not available: "), "{report}");
}

#[test]
fn bad_input_is_one_line_and_a_failure() {
    let pins = PinDir::new("bad");
    for args in [
        &["enable"][..],
        &["enable", "../etc/passwd", "--no-reload"],
        &["enable", "a", "--cgroup", "/"],
        &["disable", "--cgroup", "/no/such/cgroup"],
        &["run"],
        &["frobnicate"],
        &["run", "/no/such/program"],
    ] {
        let out = pins.run(args).unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr_lines(&out);
        let errors: Vec<&String> = err
            .iter()
            .filter(|l| !l.contains("eBPF upgrade not available"))
            .collect();
        assert_eq!(errors.len(), 1, "{args:?}: {err:?}");
        assert!(errors[0].starts_with("mptcpize: "), "{args:?}: {err:?}");
    }
}

#[test]
fn status_shows_the_observers_coverage_per_cgroup() {
    const TEST: &str = "status_shows_the_observers_coverage_per_cgroup";
    if !skip::require_root(TEST) || !fallback_expected(TEST) {
        return;
    }
    let netns = NetNs::new("mptcpd-t-cov").unwrap();
    let pins = PinDir::new("coverage");
    let cgroup = TestCgroup::new("mptcpd-t-cov").unwrap();
    let mut cmd = netns.command(bins::path("mptcpd").unwrap()).unwrap();
    cmd.args(["--log", "stderr", "--bpf-pin-dir"])
        .arg(pins.path());
    let daemon = Daemon::start(cmd).unwrap();

    let xfer = bins::path("mptcp-xfer").unwrap();
    // One socket through mptcpize (MPTCP), one without (TCP), both in the test cgroup.
    let mut wrapped = pins.command(["run"]).unwrap();
    wrapped.arg(&xfer).args(["socket", "tcp"]);
    cgroup.join_on_spawn(&mut wrapped).unwrap();
    assert_eq!(printed_protocol(&wrapped.output().unwrap()), Some(262));
    let mut plain = Command::new(&xfer);
    plain.args(["socket", "tcp"]);
    cgroup.join_on_spawn(&mut plain).unwrap();
    assert_eq!(printed_protocol(&plain.output().unwrap()), Some(6));

    let status = pins.run(["status"]).unwrap();
    let report = String::from_utf8_lossy(&status.stdout).into_owned();
    let name = cgroup
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let line = report
        .lines()
        .find(|l| l.ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("no coverage line for {name}:\n{report}"));
    let numbers: Vec<&str> = line.split_whitespace().take(2).collect();
    assert_eq!(numbers, ["1", "1"], "TCP and MPTCP: {line}");
    let (status, log) = daemon.stop().unwrap();
    assert!(status.success(), "{log}");
}

/// Every file below `dir` with its size and modification time (empty if `dir` is absent).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut files = BTreeMap::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(meta) = fs::symlink_metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir() {
                todo.push(entry.path());
            }
            files.insert(entry.path(), (meta.len(), meta.modified().ok()));
        }
    }
    files
}

#[test]
fn tests_never_write_to_the_real_systemd_directory() {
    const TEST: &str = "tests_never_write_to_the_real_systemd_directory";
    if !fallback_expected(TEST) {
        return;
    }
    let real = Path::new(DEFAULT_SYSTEMD_DIR);
    let before = snapshot(real);
    let pins = PinDir::new("realdir");
    // What the other tests run, enable and disable included, through the same harness; checked
    // after each command, as a disable would hide an enable's write.
    for args in [
        &["enable", "mptcpd-test-unit", "--no-reload"][..],
        &["status"],
        &["disable", "mptcpd-test-unit", "--no-reload"],
        &["enable", "../etc/passwd", "--no-reload"],
    ] {
        let _done = pins.run(args).unwrap();
        assert_eq!(
            snapshot(real),
            before,
            "{args:?} changed {}",
            real.display()
        );
        if args[0] == "enable" && args[1] == "mptcpd-test-unit" {
            // The harness's directory got the drop-in instead (and removes it on drop).
            assert!(
                pins.systemd_dir()
                    .join("mptcpd-test-unit.service.d")
                    .exists()
            );
        }
    }
}

/// An ELF64 little-endian executable without a `PT_INTERP` program header (no dynamic loader).
fn is_static_elf64(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let read = |at: usize, n: usize| elf.get(at..at + n);
    let (Some(magic), Some(phoff), Some(phentsize), Some(phnum)) =
        (read(0, 4), read(0x20, 8), read(0x36, 2), read(0x38, 2))
    else {
        return false;
    };
    if magic != b"\x7fELF" || elf.get(4) != Some(&2) {
        return false;
    }
    let phoff =
        usize::try_from(u64::from_le_bytes(phoff.try_into().unwrap())).unwrap_or(usize::MAX);
    let phentsize = usize::from(u16::from_le_bytes(phentsize.try_into().unwrap()));
    let phnum = usize::from(u16::from_le_bytes(phnum.try_into().unwrap()));
    (0..phnum).all(|i| {
        read(phoff + i * phentsize, 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().unwrap()) != PT_INTERP)
    })
}

/// `root/usr/bin/mptcpize` and `root/usr/lib/mptcpize/libmptcpwrap.so`, as `cargo xtask
/// install --destdir root` lays them out, copied from the build; returns the binary.
fn install_copy(root: &Path) -> PathBuf {
    let bin = root.join("usr/bin");
    let lib = root.join("usr/lib/mptcpize");
    for dir in [&bin, &lib] {
        fs::create_dir_all(dir).unwrap();
    }
    for dir in [
        root.join("usr"),
        root.join("usr/lib"),
        bin.clone(),
        lib.clone(),
    ] {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mptcpize = bin.join("mptcpize");
    fs::copy(bins::path("mptcpize").unwrap(), &mptcpize).unwrap();
    fs::copy(
        bins::path("libmptcpwrap.so").unwrap(),
        lib.join("libmptcpwrap.so"),
    )
    .unwrap();
    mptcpize
}

/// `MPTCPIZE --bpf-pin-dir PINS --systemd-dir SYSTEMD enable web --no-reload EXTRA...`.
fn enable_web(mptcpize: &Path, pins: &PinDir, systemd: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(mptcpize);
    cmd.arg("--bpf-pin-dir")
        .arg(pins.path())
        .arg("--systemd-dir")
        .arg(systemd)
        .args(["enable", "web", "--no-reload"])
        .args(extra);
    cmd
}

fn errors(out: &Output) -> Vec<String> {
    stderr_lines(out)
        .into_iter()
        .filter(|l| !l.contains("eBPF upgrade not available"))
        .collect()
}

#[test]
fn enable_refuses_a_wrapper_others_could_replace_unless_forced() {
    const TEST: &str = "enable_refuses_a_wrapper_others_could_replace_unless_forced";
    if !skip::require_root(TEST) || !fallback_expected(TEST) {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    let open = base.path().join("open");
    fs::create_dir(&open).unwrap();
    let mptcpize = install_copy(&open);
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let pins = PinDir::new("trust");
    let systemd = tempfile::tempdir().unwrap();
    let drop_in = systemd.path().join("web.service.d/mptcpize.conf");

    let out = enable_web(&mptcpize, &pins, systemd.path(), &[])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = errors(&out);
    assert_eq!(err.len(), 1, "{err:?}");
    let library = open.join("usr/lib/mptcpize/libmptcpwrap.so");
    assert!(
        err[0].starts_with(&format!(
            "mptcpize: refusing to name {} in a drop-in run as root: {} is writable by all \
             users (mode 777)",
            library.display(),
            open.display()
        )),
        "{err:?}"
    );
    assert!(err[0].ends_with("or pass --force)"), "{err:?}");
    assert!(!drop_in.exists());

    let out = enable_web(&mptcpize, &pins, systemd.path(), &["--force"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    assert!(
        errors(&out)
            .iter()
            .any(|l| l.starts_with("mptcpize: warning: --force: naming ")),
        "{:?}",
        stderr_lines(&out)
    );
    let text = fs::read_to_string(&drop_in).unwrap();
    assert!(
        text.contains(&format!("Environment=LD_PRELOAD={} ", library.display())),
        "{text}"
    );
}

#[test]
fn enable_from_the_installed_layout_names_the_installed_wrapper_only() {
    const TEST: &str = "enable_from_the_installed_layout_names_the_installed_wrapper_only";
    if !skip::require_root(TEST) || !fallback_expected(TEST) {
        return;
    }
    // tempdir: root's, 0700, below the sticky /tmp.
    let root = tempfile::tempdir().unwrap();
    let mptcpize = install_copy(root.path());
    let pins = PinDir::new("installed");
    let systemd = tempfile::tempdir().unwrap();
    // The caller's MPTCPIZE_LIB is for `run`, never for root's services.
    let elsewhere = tempfile::tempdir().unwrap();
    let theirs = elsewhere.path().join("libmptcpwrap.so");
    fs::write(&theirs, "").unwrap();
    let out = enable_web(&mptcpize, &pins, systemd.path(), &[])
        .env("MPTCPIZE_LIB", &theirs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    assert!(errors(&out).is_empty(), "{:?}", stderr_lines(&out));
    let text = fs::read_to_string(systemd.path().join("web.service.d/mptcpize.conf")).unwrap();
    let installed = root.path().join("usr/lib/mptcpize/libmptcpwrap.so");
    assert!(
        text.contains(&format!(
            "\nEnvironment=LD_PRELOAD={} GODEBUG=multipathtcp=1\n",
            installed.display()
        )),
        "{text}"
    );
}

#[test]
fn enable_takes_only_services() {
    const TEST: &str = "enable_takes_only_services";
    if !skip::require_root(TEST) || !fallback_expected(TEST) {
        return;
    }
    let pins = PinDir::new("types");
    for unit in ["app.socket", "user.slice", "backup.timer"] {
        let out = pins
            .command(["enable", unit, "--no-reload"])
            .unwrap()
            .output()
            .unwrap();
        assert!(!out.status.success(), "{unit}");
        let err = errors(&out);
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].starts_with(&format!("mptcpize: {unit} is not a service: ")),
            "{err:?}"
        );
    }
    let written = fs::read_dir(pins.systemd_dir()).map_or(0, Iterator::count);
    assert_eq!(written, 0);
}

#[test]
fn enable_writes_the_drop_in_0644_whatever_the_umask() {
    const TEST: &str = "enable_writes_the_drop_in_0644_whatever_the_umask";
    if !skip::require_root(TEST) || !fallback_expected(TEST) {
        return;
    }
    let pins = PinDir::new("umask");
    let mut cmd = pins.command(["enable", "web", "--no-reload"]).unwrap();
    // SAFETY: umask(2) only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        })
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{:?}", stderr_lines(&out));
    let drop_in = pins.systemd_dir().join("web.service.d/mptcpize.conf");
    let mode = fs::metadata(&drop_in).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644);
}

#[test]
fn enabling_the_root_cgroup_needs_force() {
    const TEST: &str = "enabling_the_root_cgroup_needs_force";
    if !skip::require_root(TEST) {
        return;
    }
    let pins = PinDir::new("root");
    let out = pins.run(["enable", "--cgroup", "/"]).unwrap();
    let err = stderr_lines(&out);
    assert!(!out.status.success(), "{err:?}");
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].contains("refusing to enable the root cgroup") && err[0].contains("--force"),
        "{err:?}"
    );
    assert!(!pins.path().exists(), "nothing installed");
}
