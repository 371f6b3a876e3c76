//! The Debian package `cargo xtask deb` builds (`target/debian/mptcpd-rs_*.deb`, or the one
//! `MPTCPD_DEB` names), read with `dpkg-deb`: its files and their modes, the conffile, the
//! control fields, a version below Debian's C mptcpd, the maintainer scripts' systemd
//! snippets, man pages that render without warnings and completions that parse. Also: the C
//! package's own `/etc/mptcpd/mptcpd.conf`, which an upgrade keeps, still parses.
//!
//! Without a package they skip (`cargo xtask test` builds it first).

use std::{
    ffi::OsStr,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use mptcpd::config::{Args, Config};
use mptcpd_tests::{daemon::c_peer::CPeer, skip};

/// Names the package to read instead of the newest in `target/debian`.
const DEB_ENV: &str = "MPTCPD_DEB";

/// The package, if one was built (the newest of `target/debian/mptcpd-rs_*.deb`).
fn package(test: &str) -> Option<PathBuf> {
    if let Some(deb) = std::env::var_os(DEB_ENV) {
        return Some(PathBuf::from(deb));
    }
    // Test binaries run from target/PROFILE/deps.
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap();
    let newest = fs::read_dir(target.join("debian"))
        .into_iter()
        .flatten()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("mptcpd-rs_") && Path::new(n).extension().is_some_and(|e| e == "deb")
            })
        })
        .max_by_key(|path| fs::metadata(path).unwrap().modified().unwrap());
    if newest.is_none() {
        skip::skip(
            test,
            &format!(
                "no package in {}: build it with cargo xtask deb (or set {DEB_ENV})",
                target.join("debian").display()
            ),
        );
    }
    newest
}

/// `dpkg-deb OPTION DEB REST...`: its stdout.
fn dpkg_deb(option: &str, deb: &Path, rest: &[&OsStr]) -> String {
    let out = Command::new("dpkg-deb")
        .arg(option)
        .arg(deb)
        .args(rest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg-deb {option} {} {rest:?}: {}",
        deb.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `dpkg-deb -c`: each file (not directory) with its mode and owner, by path.
fn contents(deb: &Path) -> Vec<(String, String, String)> {
    dpkg_deb("-c", deb, &[])
        .lines()
        .filter(|line| !line.starts_with('d'))
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields[5].trim_start_matches('.').to_owned();
            (path, fields[0].to_owned(), fields[1].to_owned())
        })
        .collect()
}

/// Every file of the package but the subcommands' man pages, with its mode.
const FILES: &[(&str, &str)] = &[
    ("/usr/libexec/mptcpd", "-rwxr-xr-x"),
    ("/usr/bin/mptcpctl", "-rwxr-xr-x"),
    ("/usr/bin/mptcpize", "-rwxr-xr-x"),
    ("/usr/lib/mptcpize/libmptcpwrap.so", "-rw-r--r--"),
    ("/etc/mptcpd/mptcpd.conf", "-rw-r--r--"),
    ("/lib/systemd/system/mptcp.service", "-rw-r--r--"),
    (
        "/usr/share/dbus-1/system.d/org.mptcpd.Mptcpd.conf",
        "-rw-r--r--",
    ),
    ("/usr/lib/sysusers.d/mptcpd.conf", "-rw-r--r--"),
    ("/usr/share/man/man8/mptcpd.8.gz", "-rw-r--r--"),
    ("/usr/share/man/man8/mptcpctl.8.gz", "-rw-r--r--"),
    ("/usr/share/man/man8/mptcpize.8.gz", "-rw-r--r--"),
    ("/usr/share/man/man5/mptcpd.conf.5.gz", "-rw-r--r--"),
    (
        "/usr/share/bash-completion/completions/mptcpctl",
        "-rw-r--r--",
    ),
    (
        "/usr/share/bash-completion/completions/mptcpize",
        "-rw-r--r--",
    ),
    ("/usr/share/zsh/vendor-completions/_mptcpctl", "-rw-r--r--"),
    ("/usr/share/zsh/vendor-completions/_mptcpize", "-rw-r--r--"),
    (
        "/usr/share/fish/vendor_completions.d/mptcpctl.fish",
        "-rw-r--r--",
    ),
    (
        "/usr/share/fish/vendor_completions.d/mptcpize.fish",
        "-rw-r--r--",
    ),
    ("/usr/share/doc/mptcpd-rs/copyright", "-rw-r--r--"),
    ("/usr/share/doc/mptcpd-rs/changelog.Debian.gz", "-rw-r--r--"),
];

/// A subcommand's man page (`mptcpctl-endpoint-add.8.gz`).
fn is_subcommand_page(path: &str) -> bool {
    path.strip_prefix("/usr/share/man/man8/")
        .and_then(|name| name.strip_suffix(".8.gz"))
        .is_some_and(|name| {
            ["mptcpctl-", "mptcpize-"]
                .iter()
                .any(|program| name.starts_with(program))
        })
}

#[test]
fn the_package_holds_the_programs_the_unit_and_their_documentation() {
    let Some(deb) = package("the_package_holds_the_programs_the_unit_and_their_documentation")
    else {
        return;
    };
    let files = contents(&deb);
    // Owned by root (cargo deb writes the ids without names).
    for (path, _, owner) in &files {
        assert!(
            matches!(owner.as_str(), "0/0" | "root/root"),
            "{path}: {owner}"
        );
    }
    for (wanted, expected) in FILES {
        let mode = files
            .iter()
            .find(|(path, _, _)| path == wanted)
            .map_or_else(
                || panic!("{wanted} is not in the package: {files:#?}"),
                |(_, mode, _)| mode,
            );
        assert_eq!(mode, expected, "{wanted}");
    }
    let unexpected: Vec<&str> = files
        .iter()
        .map(|(path, _, _)| path.as_str())
        .filter(|path| !FILES.iter().any(|(file, _)| file == path) && !is_subcommand_page(path))
        .collect();
    assert!(unexpected.is_empty(), "unexpected files: {unexpected:?}");
    assert!(
        files
            .iter()
            .any(|(path, _, _)| path == "/usr/share/man/man8/mptcpctl-endpoint-add.8.gz"),
        "no subcommand pages: {files:#?}"
    );

    // The unit runs the daemon where the package puts it.
    let root = tempfile::tempdir().unwrap();
    dpkg_deb("-x", &deb, &[root.path().as_os_str()]);
    let unit = fs::read_to_string(root.path().join("lib/systemd/system/mptcp.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/libexec/mptcpd --log=journal\n"),
        "{unit}"
    );
    // The copyright file with the license's text.
    assert_eq!(
        fs::read_to_string(root.path().join("usr/share/doc/mptcpd-rs/copyright")).unwrap(),
        include_str!("../../dist/debian/copyright")
    );
    // The shipped configuration is the repository's default.
    assert_eq!(
        fs::read_to_string(root.path().join("etc/mptcpd/mptcpd.conf")).unwrap(),
        include_str!("../../dist/mptcpd.conf")
    );
}

#[test]
fn the_control_fields_replace_debians_c_packages_and_sort_below_them() {
    let Some(deb) = package("the_control_fields_replace_debians_c_packages_and_sort_below_them")
    else {
        return;
    };
    let field = |name: &str| dpkg_deb("-f", &deb, &[OsStr::new(name)]).trim().to_owned();
    assert_eq!(field("Package"), "mptcpd-rs");
    assert_eq!(field("Architecture"), "amd64");
    assert_eq!(field("Section"), "net");
    // One line, a phrase (lintian: no full stop), under 80 characters.
    let description = field("Description");
    let mut lines = description.lines();
    let synopsis = lines.next().unwrap();
    assert!(
        synopsis.len() < 80 && !synopsis.ends_with('.') && synopsis.contains("Multipath TCP"),
        "{description}"
    );
    // Not wrapped: the extended description follows at once.
    assert!(
        lines
            .next()
            .is_some_and(|line| line.trim_start().starts_with("A Multipath TCP")),
        "{description}"
    );
    let c_packages = "mptcpd, mptcpd-plugins, mptcpize, libmptcpwrap0";
    assert_eq!(field("Conflicts"), c_packages);
    assert_eq!(field("Replaces"), c_packages);
    assert_eq!(field("Provides"), "mptcpd, mptcpize");
    let depends = field("Depends");
    assert!(depends.contains("libc6"), "{depends}");
    assert!(depends.contains("systemd-sysusers"), "{depends}");
    // The unit's `ExecReload=/bin/kill`: a minimal Debian has no kill without it.
    assert!(depends.contains("procps"), "{depends}");

    let version = field("Version");
    for c_version in ["0.12", "0.12-1"] {
        let below = Command::new("dpkg")
            .args(["--compare-versions", &version, "lt", c_version])
            .status()
            .unwrap();
        assert!(below.success(), "{version} does not sort below {c_version}");
    }

    let conffiles = dpkg_deb("-I", &deb, &[OsStr::new("conffiles")]);
    assert_eq!(conffiles.trim(), "/etc/mptcpd/mptcpd.conf");
}

#[test]
fn the_maintainer_scripts_run_the_units_debhelper_snippets_and_purge_what_runs_left() {
    let Some(deb) =
        package("the_maintainer_scripts_run_the_units_debhelper_snippets_and_purge_what_runs_left")
    else {
        return;
    };
    let script = |name: &str| dpkg_deb("-I", &deb, &[OsStr::new(name)]);
    let postinst = script("postinst");
    for line in [
        "systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} mptcpd.conf",
        "deb-systemd-helper enable 'mptcp.service' >/dev/null || true",
        "_dh_action=restart",
        "deb-systemd-invoke $_dh_action 'mptcp.service' >/dev/null || true",
    ] {
        assert!(
            postinst.contains(line),
            "postinst lacks {line:?}:\n{postinst}"
        );
    }
    let prerm = script("prerm");
    assert!(
        prerm.contains("[ \"$1\" = remove ] && [ -d /run/systemd/system ]")
            && prerm.contains("deb-systemd-invoke stop 'mptcp.service'"),
        "{prerm}"
    );
    let postrm = script("postrm");
    for line in [
        "deb-systemd-helper purge 'mptcp.service'",
        "rm -rf /run/mptcpd /sys/fs/bpf/mptcpd",
        "groupdel mptcpd",
    ] {
        assert!(postrm.contains(line), "postrm lacks {line:?}:\n{postrm}");
    }
    for (name, text) in [
        ("postinst", &postinst),
        ("prerm", &prerm),
        ("postrm", &postrm),
    ] {
        let check = Command::new("sh")
            .args(["-n", "-c", text])
            .output()
            .unwrap();
        assert!(check.status.success(), "{name}: {check:?}");
    }
}

#[test]
fn the_man_pages_render_without_warnings_and_the_completions_parse() {
    let Some(deb) = package("the_man_pages_render_without_warnings_and_the_completions_parse")
    else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    dpkg_deb("-x", &deb, &[root.path().as_os_str()]);
    let mut pages = Vec::new();
    for section in ["man5", "man8"] {
        for entry in fs::read_dir(root.path().join("usr/share/man").join(section)).unwrap() {
            pages.push(entry.unwrap().path());
        }
    }
    assert!(pages.len() > 4, "{pages:?}");
    for page in &pages {
        let out = Command::new("man")
            .args(["--warnings", "-E", "UTF-8", "-l"])
            .arg(page)
            .env("LC_ALL", "C.UTF-8")
            .env("MANWIDTH", "80")
            .env_remove("MANPAGER")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{}: {stderr}",
            page.display()
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("NAME"), "{}: {text}", page.display());
        // A whatis entry (`name \- what it does`), as apropos and lintian read it.
        let source = Command::new("zcat").arg(page).output().unwrap();
        let source = String::from_utf8(source.stdout).unwrap();
        let name = source
            .lines()
            .skip_while(|line| *line != ".SH NAME")
            .nth(1)
            .unwrap_or_default();
        assert!(
            name.contains(" \\- "),
            "{}: NAME is {name:?}",
            page.display()
        );
    }
    let conf = Command::new("man")
        .args(["-E", "UTF-8", "-l"])
        .arg(root.path().join("usr/share/man/man5/mptcpd.conf.5.gz"))
        .env("LC_ALL", "C.UTF-8")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    let conf = String::from_utf8_lossy(&conf.stdout);
    // Every [core] key of the shipped file is documented.
    for key in [
        "log=",
        "debug=",
        "plugin-dir=",
        "path-manager=",
        "addr-flags=",
        "notify-flags=",
        "load-plugins=",
        "max-subflows=",
        "bpf-pin-dir=",
        "observe-cgroup=",
        "state-dir=",
        "dbus-group=",
        "metrics-address=",
        "hold=",
        "retrans-percent=",
        "rtt-percent=",
        "dead-rtos=",
        "min-peers=",
        "min-share=",
        "reprobe-max=",
        "interfaces=",
        "skip-interfaces=",
        "skip-addresses=",
        "prefer-family=",
        "flags=",
    ] {
        assert!(
            include_str!("../../dist/mptcpd.conf").contains(&format!("# {key}")) || key == "flags=",
            "{key} is not in dist/mptcpd.conf"
        );
        assert!(conf.contains(key), "mptcpd.conf(5) does not document {key}");
    }

    let bash = root.path().join("usr/share/bash-completion/completions");
    for name in ["mptcpctl", "mptcpize"] {
        let check = Command::new("bash")
            .arg("-n")
            .arg(bash.join(name))
            .output()
            .unwrap();
        assert!(check.status.success(), "{name}: {check:?}");
    }
}

#[test]
fn the_c_packages_default_configuration_still_parses() {
    // Debian's C mptcpd package, downloaded and unpacked (never installed).
    let peer = match CPeer::get() {
        Ok(peer) => peer,
        Err(e) => {
            skip::skip(
                "the_c_packages_default_configuration_still_parses",
                &format!("no C mptcpd package: {e:#}"),
            );
            return;
        }
    };
    let text = fs::read_to_string(peer.config_file()).unwrap();
    let config = Config::from_text(&Args::default(), Some(&text))
        .unwrap_or_else(|e| panic!("mptcpd {}'s mptcpd.conf: {e}", peer.version()));
    assert_eq!(
        config.plugin_dir,
        PathBuf::from("/usr/lib/x86_64-linux-gnu/mptcpd")
    );
    assert_eq!(config.path_manager.as_deref(), Some("addr_adv"));
}

/// `path` with merged /usr's aliases resolved (`/lib/x` is `/usr/lib/x`).
fn unaliased(path: &str) -> String {
    for alias in ["/lib/", "/lib64/", "/bin/", "/sbin/"] {
        if path.starts_with(alias) {
            return format!("/usr{path}");
        }
    }
    path.to_owned()
}

/// The files below `dir`, as absolute paths of the tree `root`.
fn files_below(root: &Path, dir: &Path, found: &mut Vec<String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() && !path.is_symlink() {
            files_below(root, &path, found);
        } else {
            let relative = path.strip_prefix(root).unwrap();
            found.push(format!("/{}", relative.display()));
        }
    }
}

/// A file both packages ship must be spelled alike: dpkg takes `/lib/systemd/system/x` and
/// `/usr/lib/systemd/system/x` (one file under merged /usr) for two, so it would delete ours
/// when it removes the C package after unpacking this one (Replaces hands over a path only).
#[test]
fn files_shared_with_the_c_package_are_spelled_as_it_spells_them() {
    let test = "files_shared_with_the_c_package_are_spelled_as_it_spells_them";
    let Some(deb) = package(test) else {
        return;
    };
    let peer = match CPeer::get() {
        Ok(peer) => peer,
        Err(e) => {
            skip::skip(test, &format!("no C mptcpd package: {e:#}"));
            return;
        }
    };
    let root = peer.root();
    let mut theirs = Vec::new();
    files_below(root, root, &mut theirs);
    assert!(
        theirs.iter().any(|path| path == "/usr/libexec/mptcpd"),
        "{theirs:?}"
    );
    let mut shared = 0;
    for (ours, _, _) in contents(&deb) {
        for their in &theirs {
            if unaliased(&ours) == unaliased(their) {
                assert_eq!(&ours, their, "the C package spells {ours} otherwise");
                shared += 1;
            }
        }
    }
    // The daemon, the configuration file, the unit and the daemon's man page at least.
    assert!(shared >= 4, "{shared} shared files");
}
