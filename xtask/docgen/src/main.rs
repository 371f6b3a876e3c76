//! `mptcpd-docgen OUT_DIR`: writes what the Debian package ships beside the binaries and
//! generates from their clap definitions (so a new option is documented without a second
//! copy):
//!
//! - `OUT_DIR/man/mptcpd.8`, `mptcpctl.8`, `mptcpize.8` (`clap_mangen`; section 8: tools for
//!   the administrator), and a page for each subcommand (`mptcpctl-endpoint-add.8`);
//! - `OUT_DIR/completions/{bash,zsh,fish}/` for `mptcpctl` and `mptcpize`, named as each
//!   shell's vendor directory expects (`mptcpctl`, `_mptcpctl`, `mptcpctl.fish`). The daemon
//!   gets none: it lives in `/usr/libexec`, off `PATH`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap_complete::Shell;

/// Each program's command line, by its name.
fn programs() -> [(&'static str, clap::Command); 3] {
    [
        ("mptcpd", mptcpd::cli::command()),
        ("mptcpctl", mptcpctl::command()),
        ("mptcpize", mptcpize::command()),
    ]
}

/// The programs on `PATH`, which get completions.
const COMPLETED: [&str; 2] = ["mptcpctl", "mptcpize"];

/// Writes the man page of `command` and one for each of its subcommands (`mptcpctl-endpoint`,
/// as git's), which the page of their parent names in its SUBCOMMANDS section.
fn pages(
    command: &clap::Command,
    version: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(command.clone())
        .section("8")
        .manual("System Administration")
        .source(format!("mptcpd-rs {version}"));
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render(&mut page)
        .with_context(|| format!("rendering {}", path.display()))?;
    fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        pages(sub, version, dir, written)?;
    }
    Ok(())
}

/// Writes the man pages and completions below `out`; returns the files written.
fn generate(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man_dir = out.join("man");
    fs::create_dir_all(&man_dir).with_context(|| format!("creating {}", man_dir.display()))?;
    for (name, command) in programs() {
        let version = command.get_version().unwrap_or_default().to_owned();
        // Built, so that each subcommand knows its full name (`mptcpctl-endpoint-add`).
        let mut built = command.clone().disable_help_subcommand(true);
        built.build();
        pages(&built, &version, &man_dir, &mut written)?;

        if !COMPLETED.contains(&name) {
            continue;
        }
        for (shell, file) in [
            (Shell::Bash, name.to_owned()),
            (Shell::Zsh, format!("_{name}")),
            (Shell::Fish, format!("{name}.fish")),
        ] {
            let dir = out.join("completions").join(shell.to_string());
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), name, &mut script);
            let path = dir.join(file);
            fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: mptcpd-docgen OUT_DIR (cargo xtask deb runs it)");
        return ExitCode::from(2);
    };
    match generate(Path::new(&out)) {
        Ok(written) => {
            for path in written {
                eprintln!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mptcpd-docgen: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::generate;

    #[test]
    fn writes_a_page_per_program_and_completions_for_those_on_path() {
        let out = tempfile::tempdir().unwrap();
        let written = generate(out.path()).unwrap();
        let man = |name: &str| out.path().join("man").join(name);
        for page in ["mptcpd.8", "mptcpctl.8", "mptcpize.8"] {
            assert!(written.contains(&man(page)), "{page}: {written:?}");
        }
        // The subcommands' pages, as the SUBCOMMANDS sections name them.
        assert!(
            written.contains(&man("mptcpctl-endpoint-add.8")),
            "{written:?}"
        );
        assert!(written.contains(&man("mptcpize-enable.8")), "{written:?}");
        assert!(!written.contains(&man("mptcpctl-help.8")), "{written:?}");
        let page = fs::read_to_string(out.path().join("man/mptcpctl.8")).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq \\(aq"), "{page}");
        assert!(page.contains(".TH mptcpctl 8 "), "{page}");
        // Subcommands and options are listed.
        assert!(page.contains("endpoint"), "{page}");
        assert!(page.contains("\\-\\-json"), "{page}");
        let daemon = fs::read_to_string(out.path().join("man/mptcpd.8")).unwrap();
        assert!(daemon.contains("\\-\\-addr\\-flags"), "{daemon}");
        let bash = fs::read_to_string(out.path().join("completions/bash/mptcpize")).unwrap();
        assert!(bash.contains("complete -F _mptcpize"), "{bash}");
        assert!(out.path().join("completions/zsh/_mptcpctl").is_file());
        assert!(out.path().join("completions/fish/mptcpctl.fish").is_file());
        assert!(!out.path().join("completions/bash/mptcpd").exists());
    }
}
