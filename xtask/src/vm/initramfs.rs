//! The VM's initramfs: static busybox, iproute2's `ip`, `ss` and `tc` and bash with their
//! libraries, the kernel modules the tests need, our static test binaries, and an init that
//! mounts what the tests expect (proc, sys, cgroup2, bpffs, tracefs), runs every test binary,
//! and powers off.

use std::{
    fmt::Write as _,
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail};

use super::{Payload, kernel::Boot, kernel::KernelSpec};
use crate::{cmd, workspace};

const BUSYBOX: &str = "/bin/busybox";
/// iproute2's `ip` and `ss` (the telemetry tests abort sockets with `ss -K`), and bash (a
/// test opens a plain TCP connection through its `/dev/tcp`).
const TOOLS: &[&str] = &["/usr/sbin/ip", "/usr/bin/ss", "/usr/bin/bash"];
/// iproute2's `tc`, for the benchmarks' qdiscs (netem, tbf); left out where missing.
const TC: &str = "/usr/sbin/tc";
/// The guest prints this as its last word; anything else (or nothing) is a failure.
pub(crate) const RESULT_PASS: &str = "vm: RESULT pass";

/// What the guest runs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Guest<'a> {
    /// Every test binary, with an optional name filter.
    Tests(Option<&'a str>),
    /// A shell script (busybox sh), e.g. a benchmark; it passes if it exits 0.
    Script(&'a str),
}

pub(crate) fn build(
    spec: &KernelSpec,
    boot: &Boot,
    payload: &Payload,
    guest: Guest<'_>,
) -> anyhow::Result<PathBuf> {
    let dir = workspace::target_dir()
        .join("vm")
        .join("initramfs")
        .join(spec.name);
    let root = dir.join("root");
    let _stale = fs::remove_dir_all(&root);
    for sub in [
        "bin",
        "proc",
        "sys",
        "dev",
        "tmp",
        "run",
        "lib/modules",
        "tests/bin",
    ] {
        fs::create_dir_all(root.join(sub))?;
    }
    copy_at_same_path(Path::new(BUSYBOX), &root)?;
    if Path::new(TC).is_file() {
        copy_with_libraries(Path::new(TC), &root)?;
    }
    for tool in TOOLS {
        copy_with_libraries(Path::new(tool), &root)?;
    }
    for module in spec.modules {
        copy_module(boot, module, &root.join("lib/modules"))?;
    }
    for test in &payload.tests {
        let file = test
            .file_name()
            .and_then(|n| n.to_str())
            .context("test name")?;
        // Cargo names test binaries NAME-HASH.
        let name = file.rsplit_once('-').map_or(file, |(name, _)| name);
        fs::copy(test, root.join("tests").join(name))?;
    }
    for bin in &payload.bins {
        fs::copy(
            bin,
            root.join("tests/bin")
                .join(bin.file_name().context("bin name")?),
        )?;
    }
    let init = root.join("init");
    fs::write(&init, init_script(spec, guest))?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;

    let cpio = dir.join("initramfs.cpio");
    pack(&root, &cpio)?;
    Ok(cpio)
}

/// Packs the tree `root` into the newc archive `cpio`.
pub(super) fn pack(root: &Path, cpio: &Path) -> anyhow::Result<()> {
    let status = Command::new("sh")
        .current_dir(root)
        .arg("-c")
        .arg(format!(
            "find . -print0 | cpio --null -o -H newc --quiet > '{}'",
            cpio.display()
        ))
        .status()?;
    if !status.success() {
        bail!("packing {} failed", cpio.display());
    }
    Ok(())
}

fn init_script(spec: &KernelSpec, guest: Guest<'_>) -> String {
    let mut script = String::from(
        r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/bin:/tests/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /run/netns
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
for m in /lib/modules/*.ko; do insmod "$m" || echo "vm: insmod $m failed"; done
ip link set lo up
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu MPTCPD_BIN_DIR=/tests/bin RUST_BACKTRACE=1
"#,
    );
    let _written = writeln!(
        script,
        "export MPTCPD_EXPECT_FEATURES={}",
        spec.expect.join(",")
    );
    let filter = match guest {
        Guest::Tests(filter) => filter,
        Guest::Script(body) => {
            let _written = write!(
                script,
                "status=pass\n( set -e\n{body}\n) || status=fail\necho \"vm: RESULT $status\"\npoweroff -f\n"
            );
            return script;
        }
    };
    let filter = filter
        .map(|f| format!(" '{}'", f.replace('\'', "")))
        .unwrap_or_default();
    let _written = write!(
        script,
        r#"echo "vm: kernel $(uname -r), expecting: $MPTCPD_EXPECT_FEATURES"
status=pass
for t in /tests/*; do
    [ -f "$t" ] || continue
    echo "vm: running $t"
    "$t" --test-threads=1{filter} || status=fail
done
echo "vm: RESULT $status"
poweroff -f
"#
    );
    script
}

/// Copies `module` (a path below `lib/modules/VERSION/kernel/`, without `.xz`) into `dir`,
/// decompressed: busybox insmod takes plain modules only.
pub(super) fn copy_module(boot: &Boot, module: &str, dir: &Path) -> anyhow::Result<()> {
    let name = Path::new(module).file_name().context("module name")?;
    let source = boot.modules.join("kernel").join(module);
    let dest = dir.join(name);
    let compressed = PathBuf::from(format!("{}.xz", source.display()));
    if compressed.is_file() {
        let out = cmd::output(Command::new("xz").arg("-dc").arg(&compressed))?;
        if !out.status.success() {
            bail!("xz -dc {} failed", compressed.display());
        }
        fs::write(&dest, out.stdout)?;
    } else {
        fs::copy(&source, &dest).with_context(|| format!("{}", source.display()))?;
    }
    Ok(())
}

fn copy_at_same_path(file: &Path, root: &Path) -> anyhow::Result<()> {
    let dest = root.join(file.strip_prefix("/")?);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(file, &dest).with_context(|| format!("copying {}", file.display()))?;
    Ok(())
}

/// Copies a dynamic binary and every library `ldd` resolves for it.
fn copy_with_libraries(binary: &Path, root: &Path) -> anyhow::Result<()> {
    copy_at_same_path(binary, root)?;
    let ldd = cmd::stdout(Command::new("ldd").arg(binary))?;
    for line in ldd.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line
                .split_whitespace()
                .next()
                .filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            copy_at_same_path(Path::new(path), root)?;
        }
    }
    Ok(())
}
