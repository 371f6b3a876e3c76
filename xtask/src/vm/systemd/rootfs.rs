//! The systemd VM's root filesystem: a minimal Debian 12 with systemd as init and Debian's C
//! mptcpd installed (what the package replaces), built with `mmdebstrap` from Debian's
//! packages into an ext4 image. Cached outside the clone (as the kernels are), keyed by the
//! package list and what is written into it; rebuilt when missing.

use std::{
    fs,
    os::unix::fs::{PermissionsExt as _, symlink},
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context as _;
use mptcpd_deb_cache::cache_dir;

use crate::cmd;

/// What the image holds beyond the `apt` variant. The C packages are what ours replaces;
/// `apt-utils` indexes the local repository of their archives (`/srv/repo`), busybox-static
/// is the demo unit's static plain-TCP server, procps has the `kill` of the unit's
/// `ExecReload=` (priority important: on every standard Debian system, not in a minimal one).
const PACKAGES: &[&str] = &[
    "procps",
    "systemd",
    "systemd-sysv",
    "dbus",
    "iproute2",
    "kmod",
    "apt-utils",
    "busybox-static",
    "mptcpd",
    "mptcpd-plugins",
    "mptcpize",
    "libmptcpwrap0",
];
/// The archives put in `/srv/repo` (downloaded on the host: mmdebstrap drops its own): the C
/// daemon's, which `apt-get upgrade` must not bring back.
const REPO_PACKAGES: &[&str] = &[
    "mptcpd",
    "mptcpd-plugins",
    "mptcpize",
    "libmptcpwrap0",
    "libmptcpd3",
    "libell0",
];
const SUITE: &str = "bookworm";
/// The image's size (sparse: only what is written takes room).
const IMAGE_SIZE: &str = "3G";

/// The unit that runs the stage's script from the second disk at every boot and prints to the
/// serial console without the journal's prefixes; a getty would wait 90 s for a device unit
/// (no udev here), so there is none.
const RUNNER_UNIT: &str = "\
[Unit]
Description=mptcpd-rs systemd VM stage
After=multi-user.target dbus.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /payload && mount -o ro /dev/vdb /payload && exec /bin/bash /payload/guest.sh'
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no

[Install]
WantedBy=multi-user.target
";
/// Units masked: nothing here waits for them.
const MASKED: &[&str] = &[
    "serial-getty@ttyS0.service",
    "getty@tty1.service",
    "getty.target",
    "systemd-timesyncd.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "fstrim.timer",
];

/// The cached image, built first when missing.
pub(super) fn image() -> anyhow::Result<PathBuf> {
    let dir = cache_dir()?.join(format!("systemd-rootfs-{:016x}", key()));
    let image = dir.join("rootfs.img");
    if image.is_file() {
        return Ok(image);
    }
    fs::create_dir_all(&dir)?;
    let staging = dir.join("root.staging");
    let _stale = fs::remove_dir_all(&staging);
    let mut mmdebstrap = Command::new("mmdebstrap");
    mmdebstrap
        .args(["--variant=apt", "--mode=root"])
        .arg(format!("--include={}", PACKAGES.join(",")))
        .arg(SUITE)
        .arg(&staging);
    cmd::run(&mut mmdebstrap)?;
    customize(&staging)?;
    let building = dir.join("rootfs.img.new");
    let _stale = fs::remove_file(&building);
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-L", "root", "-d"])
            .arg(&staging)
            .arg(&building)
            .arg(IMAGE_SIZE),
    )?;
    fs::rename(&building, &image)?;
    fs::remove_dir_all(&staging)?;
    Ok(image)
}

/// The runner unit, masks, the local repository; downloaded archives dropped.
fn customize(root: &Path) -> anyhow::Result<()> {
    let units = root.join("etc/systemd/system");
    fs::write(units.join("mptcpd-vm-stage.service"), RUNNER_UNIT)?;
    let wants = units.join("multi-user.target.wants");
    fs::create_dir_all(&wants)?;
    symlink(
        "/etc/systemd/system/mptcpd-vm-stage.service",
        wants.join("mptcpd-vm-stage.service"),
    )?;
    for unit in MASKED {
        let link = units.join(unit);
        let _absent = fs::remove_file(&link);
        symlink("/dev/null", link)?;
    }
    fs::write(root.join("etc/hostname"), "mptcpd-vm\n")?;
    let repo = root.join("srv/repo");
    fs::create_dir_all(&repo)?;
    cmd::run(
        Command::new("apt-get")
            .args(["download", "-q"])
            .args(REPO_PACKAGES)
            .current_dir(&repo),
    )?;
    fs::set_permissions(&repo, fs::Permissions::from_mode(0o755))
        .context("the local repository")?;
    Ok(())
}

/// FNV-1a of everything that goes into the image (stable across toolchains).
fn key() -> u64 {
    let mut text = format!(
        "{SUITE}\n{IMAGE_SIZE}\n{}\n{RUNNER_UNIT}",
        PACKAGES.join(",")
    );
    text.push_str(&MASKED.join(","));
    text.push_str(&REPO_PACKAGES.join(","));
    text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}
