//! Sysctls changed inside a test namespace only, restored on drop.

use std::{fs, path::PathBuf};

use anyhow::Context as _;

use crate::net::netns::NetNs;

/// A sysctl set inside one namespace; the old value comes back on drop.
#[derive(Debug)]
pub struct Sysctl<'a> {
    netns: &'a NetNs,
    path: PathBuf,
    old: String,
}

impl<'a> Sysctl<'a> {
    /// Sets `key` (dotted, e.g. `net.mptcp.pm_type`) to `value` in `netns`.
    pub fn set(netns: &'a NetNs, key: &str, value: &str) -> anyhow::Result<Self> {
        let path = path(key);
        let old = read_in(netns, key)?;
        write_in(netns, &path, value)?;
        Ok(Self { netns, path, old })
    }
}

impl Drop for Sysctl<'_> {
    fn drop(&mut self) {
        if let Err(e) = write_in(self.netns, &self.path, &self.old) {
            eprintln!("harness: could not restore {}: {e:#}", self.path.display());
        }
    }
}

/// Sets `key` in `netns` for the namespace's whole life (nothing to restore: the namespace goes
/// with the test). Prefer [`Sysctl::set`] where a test changes a value back and forth.
pub fn set_in(netns: &NetNs, key: &str, value: &str) -> anyhow::Result<()> {
    write_in(netns, &path(key), value)
}

/// Reads `key` as seen inside `netns`.
pub fn read_in(netns: &NetNs, key: &str) -> anyhow::Result<String> {
    let path = path(key);
    netns
        .run(|| fs::read_to_string(&path))?
        .map(|v| v.trim().to_owned())
        .with_context(|| format!("reading {}", path.display()))
}

fn write_in(netns: &NetNs, path: &PathBuf, value: &str) -> anyhow::Result<()> {
    // /proc/sys/net resolves the namespace of the task that opens it: the entered thread.
    netns
        .run(|| fs::write(path, value))?
        .with_context(|| format!("writing {value} to {}", path.display()))
}

fn path(key: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(key.replace('.', "/"))
}
