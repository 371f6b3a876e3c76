//! `cargo xtask deb [--revision N]`: the Debian package `mptcpd-rs` in `target/debian/`, made
//! by `cargo deb` (installed at a pinned version when missing) from the release build, then
//! checked with `lintian` (errors fail the task).
//!
//! What the package holds is declared in `mptcpd/Cargo.toml` (`[package.metadata.deb]`): the
//! binaries and `dist/` files where `cargo xtask install` puts them, and what this task
//! generates first below `target/release/deb/`: `mptcp.service` (the same text `install`
//! writes), the man pages and completions (`mptcpd-docgen`, from the clap definitions, and
//! `dist/man/mptcpd.conf.5`), compressed as Debian wants them, and `changelog.Debian.gz`.
//! The maintainer scripts are `dist/debian/`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::{Context as _, bail};

use crate::{cmd, install, setup, workspace};

/// The crate whose manifest holds the package's metadata.
const METADATA_CRATE: &str = "mptcpd";
/// What the package ships, built in one `cargo build --release` (one feature resolution, so
/// the same artifacts as `cargo xtask install`'s), and the generator of the man pages.
const BUILT: [&str; 5] = [
    "mptcpd",
    "mptcpctl",
    "mptcpize",
    "mptcpwrap",
    "mptcpd-docgen",
];
/// The written man page (the others are generated).
const CONF_MAN_PAGE: &str = "dist/man/mptcpd.conf.5";

/// The revision of a package built without `--revision`.
pub(crate) const DEFAULT_REVISION: u32 = 1;

#[derive(Debug, clap::Args)]
pub(crate) struct DebArgs {
    /// Debian revision (after the `-` of the version): a higher one makes a newer package of
    /// the same code, to test upgrades.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REVISION)]
    revision: u32,
    /// Do not run lintian on the package.
    #[arg(long)]
    no_lintian: bool,
}

pub(crate) fn run(args: &DebArgs) -> anyhow::Result<()> {
    let deb = build(args.revision)?;
    if !args.no_lintian {
        lintian(&deb)?;
    }
    println!("{}", deb.display());
    Ok(())
}

/// Builds the package; returns its path.
pub(crate) fn build(revision: u32) -> anyhow::Result<PathBuf> {
    setup::CARGO_DEB.ensure()?;
    cmd::run(cmd::build(BUILT).arg("--release"))?;
    let release = workspace::target_dir().join("release");
    let package = Package::read()?;
    stage(&release, &package, revision)?;
    let out_dir = workspace::target_dir().join("debian");
    let mut cargo_deb = cmd::cargo();
    cargo_deb
        .args(["deb", "-p", METADATA_CRATE, "--no-build", "--deb-revision"])
        .arg(revision.to_string())
        .arg("--output")
        .arg(&out_dir)
        // Its warnings go to the terminal; stdout is the path of the package.
        .stderr(Stdio::inherit());
    eprintln!("+ {}", cmd::display(&cargo_deb));
    let deb = cmd::stdout(&mut cargo_deb)?;
    let deb = PathBuf::from(deb.trim());
    anyhow::ensure!(
        deb.is_file(),
        "cargo deb printed {}, which is no file",
        deb.display()
    );
    Ok(deb)
}

/// What the package's metadata says that the staged files repeat.
#[derive(Debug)]
struct Package {
    version: String,
    name: String,
    maintainer: String,
}

impl Package {
    fn read() -> anyhow::Result<Self> {
        let metadata = cargo_metadata::MetadataCommand::new()
            .manifest_path(workspace::root().join("Cargo.toml"))
            .no_deps()
            .exec()
            .context("cargo metadata")?;
        let crate_ = metadata
            .workspace_packages()
            .into_iter()
            .find(|p| p.name.as_str() == METADATA_CRATE)
            .context("no mptcpd crate in the workspace")?;
        let deb = &crate_.metadata["deb"];
        let field = |name: &str| {
            deb[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("mptcpd/Cargo.toml: no package.metadata.deb.{name}"))
        };
        Ok(Self {
            version: crate_.version.to_string(),
            name: field("name")?,
            maintainer: field("maintainer")?,
        })
    }
}

/// Writes the generated files below `release/deb`, afresh.
fn stage(release: &Path, package: &Package, revision: u32) -> anyhow::Result<()> {
    let dir = release.join("deb");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let man = dir.join("man");
    fs::create_dir_all(&man).with_context(|| format!("creating {}", man.display()))?;
    write(
        &dir.join("mptcp.service"),
        &install::unit_text(Path::new("/usr/libexec")),
    )?;
    cmd::run(Command::new(release.join("mptcpd-docgen")).arg(&dir))?;
    let conf_page = workspace::root().join(CONF_MAN_PAGE);
    fs::copy(&conf_page, man.join("mptcpd.conf.5"))
        .with_context(|| format!("copying {}", conf_page.display()))?;
    let changelog = dir.join("changelog.Debian");
    write(&changelog, &changelog_text(package, revision)?)?;

    let mut compressed = vec![changelog];
    for entry in fs::read_dir(&man).with_context(|| format!("reading {}", man.display()))? {
        compressed.push(entry?.path());
    }
    // As dh_compress: the best compression, no name or time stamp in the header.
    cmd::run(Command::new("gzip").args(["-9", "-n"]).args(&compressed))
}

/// A one-entry Debian changelog for this build (lintian wants one in every package).
fn changelog_text(package: &Package, revision: u32) -> anyhow::Result<String> {
    let date = cmd::stdout(Command::new("date").arg("-R"))?;
    Ok(format!(
        "{name} ({version}-{revision}) unstable; urgency=medium\n\n  \
         * Built from the mptcpd-rs sources by cargo xtask deb.\n\n \
         -- {maintainer}  {date}\n",
        name = package.name,
        version = package.version,
        maintainer = package.maintainer,
        date = date.trim(),
    ))
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Runs lintian on `deb`; fails on errors, prints the rest.
pub(crate) fn lintian(deb: &Path) -> anyhow::Result<()> {
    let mut lintian = Command::new("lintian");
    lintian
        .args(["--fail-on", "error", "--info", "--display-info"])
        .arg(deb);
    eprintln!("+ {}", cmd::display(&lintian));
    let status = lintian.status().context("running lintian")?;
    if !status.success() {
        bail!("lintian reports errors on {} ({status})", deb.display());
    }
    Ok(())
}
