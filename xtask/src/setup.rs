//! `cargo xtask setup`: installs what a fresh machine of this kind lacks, and nothing else.
//! Every check is cheap and installs nothing, so the other tasks look first and set up only
//! when something is missing; either way setup says what it does in one line.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::{cmd, workspace};

/// Debian packages, and why each is needed.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("llvm-22-dev", "bpf-linker links against LLVM 22"),
    ("libpolly-22-dev", "bpf-linker links against LLVM 22"),
    ("libzstd-dev", "bpf-linker links against LLVM 22"),
    ("zlib1g-dev", "bpf-linker links against LLVM 22"),
    ("iproute2", "the lab and the tests build namespaces with ip"),
    ("nftables", "the telemetry test blackholes a path with nft"),
    (
        "dbus-daemon",
        "the D-Bus tests run a private system-like bus",
    ),
    (
        "python3-dbus-next",
        "the external path manager example (plugins/examples/external_pm.py) and its test",
    ),
    ("qemu-system-x86", "the VM tests boot Debian kernels"),
    ("busybox-static", "the VM tests' initramfs"),
    ("cpio", "the VM tests' initramfs"),
    ("xz-utils", "the VM tests unpack compressed kernel modules"),
    (
        "mmdebstrap",
        "the systemd VM stage builds its Debian root filesystem",
    ),
    (
        "qemu-utils",
        "the systemd VM stage's overlay disk (qemu-img)",
    ),
    ("e2fsprogs", "the systemd VM stage's disks (mkfs.ext4 -d)"),
    ("g++", "libfuzzer-sys compiles libFuzzer (cargo xtask fuzz)"),
    ("lintian", "cargo xtask deb checks the package"),
];
/// Targets of the stable toolchain beyond the host's.
const STABLE_TARGETS: &[&str] = &["x86_64-unknown-linux-musl"];
/// bpf-linker reads rustc's bitcode: its LLVM must be the eBPF nightly's.
const LLVM_MAJOR: u32 = 22;
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

/// A tool installed with `cargo install --locked` at a pinned version, into the cargo home.
#[derive(Debug)]
pub(crate) struct CargoTool {
    /// The crate.
    pub(crate) name: &'static str,
    pub(crate) version: &'static str,
    /// How to ask the installed tool its version (its stdout then contains `version`).
    pub(crate) version_cmd: &'static [&'static str],
    /// Further `cargo install` arguments and environment.
    install_args: &'static [&'static str],
    install_env: &'static [(&'static str, &'static str)],
}

/// Links the eBPF objects, built on LLVM [`LLVM_MAJOR`] (Debian's /usr/bin/llvm-config may be
/// another LLVM: `LLVM_PREFIX` names the one).
const BPF_LINKER: CargoTool = CargoTool {
    name: "bpf-linker",
    version: "0.13.0",
    version_cmd: &["bpf-linker", "--version"],
    install_args: &["--no-default-features", "--features", "llvm-22"],
    install_env: &[("LLVM_PREFIX", LLVM_PREFIX)],
};
/// `cargo xtask test` checks for unused dependencies with it.
const CARGO_MACHETE: CargoTool = CargoTool {
    name: "cargo-machete",
    version: "0.9.2",
    version_cmd: &["cargo-machete", "--version"],
    install_args: &[],
    install_env: &[],
};
/// `cargo xtask fuzz` only: installed by that task, not by setup.
pub(crate) const CARGO_FUZZ: CargoTool = CargoTool {
    name: "cargo-fuzz",
    version: "0.13.2",
    version_cmd: &["cargo", "fuzz", "--version"],
    install_args: &[],
    install_env: &[],
};

/// `cargo xtask deb` only: installed by that task, not by setup (it takes minutes to build).
/// Without `debug-id` (build ids for separate debug symbols, which the package does not ship).
pub(crate) const CARGO_DEB: CargoTool = CargoTool {
    name: "cargo-deb",
    version: "3.8.0",
    version_cmd: &["cargo", "deb", "--version"],
    install_args: &["--no-default-features", "--features", "lzma"],
    install_env: &[],
};

/// Something this machine lacks, and how it is installed.
#[derive(Debug)]
enum Missing {
    Debian(Vec<&'static str>),
    Toolchain {
        channel: String,
        components: &'static [&'static str],
    },
    Components {
        channel: String,
        components: Vec<&'static str>,
    },
    Targets {
        channel: String,
        targets: Vec<&'static str>,
    },
    Tool(&'static CargoTool),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Debian(names) => write!(f, "Debian packages {}", names.join(" ")),
            Self::Toolchain { channel, .. } => write!(f, "toolchain {channel}"),
            Self::Components {
                channel,
                components,
            } => write!(f, "{} for {channel}", components.join(" ")),
            Self::Targets { channel, targets } => {
                write!(f, "targets {} for {channel}", targets.join(" "))
            }
            Self::Tool(tool) => write!(f, "{} {}", tool.name, tool.version),
        }
    }
}

/// Installs whatever is missing. `asked`: `cargo xtask setup` itself, which also says when
/// nothing is; the other tasks' setup is silent then.
pub(crate) fn run(asked: bool) -> anyhow::Result<()> {
    let stable = workspace::stable_toolchain()?;
    let nightly = workspace::ebpf_toolchain()?;
    let mut missing = Vec::new();
    missing.extend(debian_packages()?);
    missing.extend(toolchain(&stable, &["clippy", "rustfmt"])?);
    missing.extend(targets(&stable, STABLE_TARGETS));
    missing.extend(toolchain(&nightly, &["rust-src", "clippy"])?);
    for tool in [&BPF_LINKER, &CARGO_MACHETE] {
        missing.extend(tool.missing().then_some(Missing::Tool(tool)));
    }
    if let Some(line) = summary(&missing, asked) {
        eprintln!("{line}");
    }
    for item in &missing {
        install(item, &stable)?;
    }
    // After the nightly is there: a mismatch is for a person to fix, not an install.
    check_llvm(&nightly)
}

/// The one line setup prints, if any.
fn summary(missing: &[Missing], asked: bool) -> Option<String> {
    if missing.is_empty() {
        return asked.then(|| "setup: nothing missing".to_owned());
    }
    let items: Vec<String> = missing.iter().map(ToString::to_string).collect();
    Some(format!(
        "setup: installing what is missing: {}",
        items.join(", ")
    ))
}

fn install(item: &Missing, stable: &str) -> anyhow::Result<()> {
    match item {
        Missing::Debian(names) => {
            if !cmd::is_root() {
                let why: Vec<String> = DEBIAN_PACKAGES
                    .iter()
                    .filter(|(name, _)| names.contains(name))
                    .map(|(name, why)| format!("{name} ({why})"))
                    .collect();
                bail!(
                    "missing Debian packages {}; run as root, or: apt-get install {}",
                    why.join(", "),
                    names.join(" ")
                );
            }
            cmd::run(Command::new("apt-get").args(["update", "-q"]))?;
            cmd::run(&mut apt_install(names))?;
            // apt may remove a listed package to install another: a machine image's newer
            // qemu-utils from backports goes when Debian 12's qemu-system-x86 comes. Such a
            // package is installed again, in the version that fits.
            if let Some(Missing::Debian(removed)) = debian_packages()? {
                eprintln!(
                    "setup: installing again what that install removed: {}",
                    removed.join(" ")
                );
                cmd::run(&mut apt_install(&removed))?;
            }
            match debian_packages()? {
                Some(Missing::Debian(still)) => bail!(
                    "apt-get left Debian packages {} missing; install them by hand",
                    still.join(" ")
                ),
                _ => Ok(()),
            }
        }
        Missing::Toolchain {
            channel,
            components,
        } => {
            let mut install = Command::new("rustup");
            install.args(["toolchain", "install", channel, "--profile", "minimal"]);
            for component in *components {
                install.args(["-c", component]);
            }
            cmd::run(&mut install)
        }
        Missing::Components {
            channel,
            components,
        } => cmd::run(
            Command::new("rustup")
                .args(["component", "add", "--toolchain", channel])
                .args(components),
        ),
        Missing::Targets { channel, targets } => cmd::run(
            Command::new("rustup")
                .args(["target", "add", "--toolchain", channel])
                .args(targets),
        ),
        Missing::Tool(tool) => tool.install(stable),
    }
}

fn apt_install(names: &[&str]) -> Command {
    let mut apt = Command::new("apt-get");
    apt.args(["install", "-y", "-q", "--no-install-recommends"])
        .args(names)
        .env("DEBIAN_FRONTEND", "noninteractive");
    apt
}

impl CargoTool {
    /// Whether the pinned version is not the one installed.
    fn missing(&self) -> bool {
        let [program, args @ ..] = self.version_cmd else {
            return true;
        };
        !Command::new(program).args(args).output().is_ok_and(|out| {
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains(self.version)
        })
    }

    fn install(&self, stable: &str) -> anyhow::Result<()> {
        cmd::run(
            Command::new("rustup")
                .args(["run", stable, "cargo", "install", self.name, "--locked"])
                .args(["--version", self.version])
                .args(self.install_args)
                .envs(self.install_env.iter().copied()),
        )
    }

    /// Installs the tool unless its pinned version is there (for tools only one task needs).
    pub(crate) fn ensure(&self) -> anyhow::Result<()> {
        if !self.missing() {
            return Ok(());
        }
        eprintln!(
            "setup: installing what is missing: {} {}",
            self.name, self.version
        );
        self.install(&workspace::stable_toolchain()?)
    }
}

fn debian_packages() -> anyhow::Result<Option<Missing>> {
    let names: Vec<&str> = DEBIAN_PACKAGES.iter().map(|(name, _)| *name).collect();
    let out = cmd::output(
        Command::new("dpkg-query")
            .args(["-W", "-f", "${Package} ${db:Status-Abbrev}\\n"])
            .args(&names),
    )?;
    let listed = String::from_utf8_lossy(&out.stdout);
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| {
            !listed.lines().any(|line| {
                let mut words = line.split_whitespace();
                words.next() == Some(name) && words.next() == Some("ii")
            })
        })
        .collect();
    Ok((!missing.is_empty()).then_some(Missing::Debian(missing)))
}

fn toolchain(
    channel: &str,
    components: &'static [&'static str],
) -> anyhow::Result<Option<Missing>> {
    let toolchains = cmd::stdout(Command::new("rustup").args(["toolchain", "list"]))?;
    let present = toolchains
        .lines()
        .any(|line| line.starts_with(&format!("{channel}-")) || line == channel);
    if !present {
        return Ok(Some(Missing::Toolchain {
            channel: channel.to_owned(),
            components,
        }));
    }
    let have = cmd::stdout(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        channel,
    ]))?;
    let missing: Vec<&str> = components
        .iter()
        .copied()
        .filter(|c| {
            !have
                .lines()
                .any(|line| line == *c || line.starts_with(&format!("{c}-")))
        })
        .collect();
    Ok((!missing.is_empty()).then(|| Missing::Components {
        channel: channel.to_owned(),
        components: missing,
    }))
}

fn targets(channel: &str, wanted: &[&'static str]) -> Option<Missing> {
    let have = cmd::stdout(Command::new("rustup").args([
        "target",
        "list",
        "--installed",
        "--toolchain",
        channel,
    ]))
    // A toolchain still to install has no targets yet.
    .unwrap_or_default();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|t| !have.lines().any(|line| line.trim() == *t))
        .collect();
    (!missing.is_empty()).then(|| Missing::Targets {
        channel: channel.to_owned(),
        targets: missing,
    })
}

fn check_llvm(nightly: &str) -> anyhow::Result<()> {
    let version = cmd::stdout(Command::new("rustup").args(["run", nightly, "rustc", "-vV"]))?;
    let major = version
        .lines()
        .find_map(|line| line.strip_prefix("LLVM version: "))
        .and_then(|v| v.split('.').next())
        .and_then(|v| v.parse::<u32>().ok())
        .with_context(|| format!("no LLVM version in `rustc +{nightly} -vV`"))?;
    if major != LLVM_MAJOR {
        bail!(
            "{nightly} uses LLVM {major} but bpf-linker is built on LLVM {LLVM_MAJOR}; pin a \
             nightly with LLVM {LLVM_MAJOR} in mptcpd-ebpf/rust-toolchain.toml"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{CARGO_MACHETE, Missing, summary};

    #[test]
    fn setup_says_in_one_line_what_it_installs_and_is_silent_when_unasked() {
        assert_eq!(summary(&[], false), None);
        assert_eq!(
            summary(&[], true).as_deref(),
            Some("setup: nothing missing")
        );
        let missing = [
            Missing::Debian(vec!["cpio", "xz-utils"]),
            Missing::Components {
                channel: "1.99.1".to_owned(),
                components: vec!["clippy"],
            },
            Missing::Tool(&CARGO_MACHETE),
        ];
        for asked in [false, true] {
            let line = summary(&missing, asked).unwrap();
            assert_eq!(
                line,
                "setup: installing what is missing: Debian packages cpio xz-utils, clippy for \
                 1.99.1, cargo-machete 0.9.2"
            );
            assert!(!line.contains('\n'));
        }
    }
}
