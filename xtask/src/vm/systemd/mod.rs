//! The systemd VM stage of `cargo xtask vm-test`: the package installed over Debian's C
//! mptcpd in a Debian 12 guest with systemd as PID 1 on the 6.12 kernel, driven by
//! `guest.sh` from a second, read-only disk. The root disk is a qcow2 overlay of the cached
//! image, kept across the stage's two boots: the first boot runs the checks up to a reboot
//! (`systemctl reboot`; qemu exits, `-no-reboot`), the second those after it. No network
//! beyond the guest's own (`-nic none`): veth pairs and a namespace inside the guest.

mod initrd;
mod package;
mod rootfs;

use std::{
    ffi::OsStr,
    fs,
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::{kernel, qemu};
use crate::{cmd, workspace};

/// The script the guest runs at every boot.
const GUEST_SCRIPT: &str = include_str!("guest.sh");
/// The kernel the stage boots (`update_socket_protocol` for `mptcpize enable`).
const KERNEL: &str = "6.12";
/// Modules the checks load (paths below `lib/modules/VERSION/kernel/`, without `.xz`).
const MODULES: &[&str] = &[
    "drivers/net/veth.ko",
    "drivers/net/dummy.ko",
    "net/ipv4/inet_diag.ko",
    "net/ipv4/tcp_diag.ko",
    "net/mptcp/mptcp_diag.ko",
];
/// The hang guard of one boot (TCG on two cores: a boot alone takes a minute).
const BOOT_LIMIT: Duration = Duration::from_mins(15);
/// The boots: the first ends in a reboot, the second checks what survives it.
const BOOTS: u32 = 2;

/// Runs the stage; every guest line goes to `out`. Tells whether both boots passed.
pub(crate) fn run(out: &mut dyn FnMut(&str)) -> anyhow::Result<bool> {
    let started = Instant::now();
    let spec = kernel::KERNELS
        .iter()
        .find(|k| k.name == KERNEL)
        .context("the systemd stage's kernel")?;
    let boot = kernel::fetch(spec)?;
    let image = rootfs::image()?;
    let dir = workspace::target_dir().join("vm").join("systemd");
    let _stale = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let payload = dir.join("payload");
    fs::create_dir_all(payload.join("debs"))?;
    fs::create_dir_all(payload.join("modules"))?;
    fs::create_dir_all(payload.join("bin"))?;
    for (name, deb) in package::build()? {
        fs::copy(&deb, payload.join("debs").join(name))
            .with_context(|| format!("copying {}", deb.display()))?;
    }
    for module in MODULES {
        super::initramfs::copy_module(&boot, module, &payload.join("modules"))?;
    }
    copy_client(&payload.join("bin"))?;
    let script = payload.join("guest.sh");
    fs::write(&script, GUEST_SCRIPT)?;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    let payload_disk = dir.join("payload.img");
    cmd::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-L", "payload", "-d"])
            .arg(&payload)
            .arg(&payload_disk)
            .arg("256M"),
    )?;
    let overlay = dir.join("root.qcow2");
    cmd::run(
        Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "raw", "-b"])
            .arg(&image)
            .arg(&overlay),
    )?;
    let initrd = initrd::build(&boot, &dir)?;
    let root_drive = drive(&overlay, "qcow2", false);
    let payload_drive = drive(&payload_disk, "raw", true);
    let extra: [&OsStr; 6] = [
        "-drive".as_ref(),
        root_drive.as_ref(),
        "-drive".as_ref(),
        payload_drive.as_ref(),
        "-nic".as_ref(),
        "none".as_ref(),
    ];
    let mut passed = true;
    for n in 1..=BOOTS {
        let boot_started = Instant::now();
        let ok = qemu::boot_with(
            &boot.vmlinuz,
            &initrd,
            "systemd.show_status=false loglevel=3",
            &extra,
            BOOT_LIMIT,
            out,
        )?;
        out(&format!(
            "vm: systemd boot {n} {} in {:.1?}",
            if ok { "passed" } else { "FAILED" },
            boot_started.elapsed()
        ));
        // The second boot runs even after a failed first one: it checks other things.
        passed &= ok;
    }
    out(&format!(
        "vm: systemd stage {} in {:.1?}",
        if passed { "passed" } else { "FAILED" },
        started.elapsed()
    ));
    Ok(passed)
}

/// A virtio disk argument for qemu.
fn drive(path: &Path, format: &str, read_only: bool) -> String {
    let mut arg = format!("file={},if=virtio,format={format}", path.display());
    if read_only {
        arg.push_str(",readonly=on");
    }
    arg
}

/// The MPTCP test client and server (`mptcp-xfer`), for the live connection: the debug build
/// (the guest's Debian 12 has the host's glibc), stripped.
fn copy_client(dir: &Path) -> anyhow::Result<()> {
    // Built with the packages' binaries (`package::build`).
    let built = workspace::target_dir().join("debug").join("mptcp-xfer");
    cmd::run(
        Command::new("strip")
            .arg("-o")
            .arg(dir.join("mptcp-xfer"))
            .arg(&built),
    )
}
