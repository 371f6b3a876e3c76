//! Debian packages tests run without installing them (the C mptcpd peer, Prometheus): fetched
//! with `apt-get download` and unpacked with `dpkg -x` under the target directory, once per
//! target directory, and run only inside test namespaces.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use crate::net::ip;

/// Packages unpacked side by side under one root.
#[derive(Debug, Clone, Copy)]
pub struct Unpacked<'a> {
    /// The directory's name under the target directory (`c-mptcpd`).
    pub name: &'a str,
    /// An environment variable that names another directory for it.
    pub dir_env: &'a str,
    /// The packages; the first one's version is the [`Unpacked::get`]'s.
    pub packages: &'a [&'a str],
    /// A file below the root that is there once everything is unpacked.
    pub marker: &'a str,
}

impl Unpacked<'_> {
    /// The root the packages are unpacked in, and the first package's Debian version;
    /// fetched and unpacked first if this target directory has none yet.
    pub fn get(&self) -> anyhow::Result<(PathBuf, String)> {
        let dir = std::env::var_os(self.dir_env)
            .map_or_else(|| default_dir(self.name), |d| Ok(PathBuf::from(d)))?;
        let root = dir.join("root");
        if !root.join(self.marker).is_file() {
            self.fetch(&dir)?;
        }
        let version = fs::read_to_string(dir.join("VERSION"))
            .unwrap_or_default()
            .trim()
            .to_owned();
        Ok((root, version))
    }

    /// Downloads and unpacks the packages into `dir` (built aside, then renamed into place,
    /// so that concurrent runs never see half of it).
    fn fetch(&self, dir: &Path) -> anyhow::Result<()> {
        let parent = dir.parent().context("package directory has no parent")?;
        fs::create_dir_all(parent)?;
        let staging = tempfile::Builder::new()
            .prefix(&format!("{}-fetch-", self.name))
            .tempdir_in(parent)?;
        eprintln!(
            "harness: fetching {} into {}",
            self.packages.join(" "),
            dir.display()
        );
        let download = |staging: &Path| {
            Command::new("apt-get")
                .arg("download")
                .args(self.packages)
                .current_dir(staging)
                .output()
        };
        let mut out = download(staging.path()).context("running apt-get download")?;
        if !out.status.success() {
            // A fresh machine may have no package lists yet.
            ip::run("apt-get", &["update", "-q"])?;
            out = download(staging.path()).context("running apt-get download")?;
        }
        if !out.status.success() {
            bail!(
                "apt-get download {}: {}",
                self.packages.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let root = staging.path().join("root");
        let first = format!("{}_", self.packages.first().copied().unwrap_or_default());
        let mut version = String::new();
        for entry in fs::read_dir(staging.path())? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "deb") {
                continue;
            }
            let (Some(deb), Some(target)) = (path.to_str(), root.to_str()) else {
                bail!("non-UTF-8 path under {}", staging.path().display());
            };
            ip::run("dpkg", &["-x", deb, target])?;
            // Kept only unpacked: the archives are large (Prometheus: 19 MB).
            fs::remove_file(&path)?;
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if let Some(rest) = name.strip_prefix(&first) {
                // apt-get download names files with the epoch's colon escaped.
                rest.split('_')
                    .next()
                    .unwrap_or_default()
                    .replace("%3a", ":")
                    .clone_into(&mut version);
            }
        }
        fs::write(staging.path().join("VERSION"), format!("{version}\n"))?;
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, dir) {
            let _removed = fs::remove_dir_all(&staged);
            // Another run may have put it in place meanwhile.
            if !dir.join("root").join(self.marker).is_file() {
                return Err(e).context(format!("moving the packages to {}", dir.display()));
            }
        }
        Ok(())
    }
}

/// `TARGET/NAME`, TARGET being the directory above the running binary's profile directory.
fn default_dir(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.pop();
    Ok(dir.join(name))
}
