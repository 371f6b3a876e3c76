//! Debian packages tests run without installing them (the C mptcpd peer, Prometheus): from the
//! download cache outside the clone ([`mptcpd_deb_cache`]), or from a directory an environment
//! variable names; run only inside test namespaces.

use std::path::PathBuf;

use anyhow::Context as _;
use mptcpd_deb_cache::Debs;

/// Packages unpacked side by side under one root.
#[derive(Debug, Clone, Copy)]
pub struct Unpacked<'a> {
    /// The cache entries' name (`c-mptcpd`).
    pub name: &'a str,
    /// An environment variable that names another directory for it (used whatever its
    /// versions; fetched into if empty).
    pub dir_env: &'a str,
    /// The packages; the first one's version is the [`Unpacked::get`]'s.
    pub packages: &'a [&'a str],
    /// A file below the root that is there once everything is unpacked.
    pub marker: &'a str,
}

impl Unpacked<'_> {
    /// The root the packages are unpacked in, and the first package's Debian version (empty
    /// if unknown); fetched and unpacked first if the cache has none of these versions yet.
    pub fn get(&self) -> anyhow::Result<(PathBuf, String)> {
        let debs = Debs {
            label: self.name,
            packages: self.packages,
            marker: self.marker,
        };
        let unpacked = match std::env::var_os(self.dir_env) {
            Some(dir) => debs.get_in(&PathBuf::from(dir)),
            None => debs.get(),
        }
        .with_context(|| format!("Debian packages {}", self.packages.join(" ")))?;
        let version = self
            .packages
            .first()
            .and_then(|first| unpacked.version(first))
            .unwrap_or_default();
        Ok((unpacked.root, version))
    }
}
