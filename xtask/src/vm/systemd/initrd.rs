//! The systemd guest's initramfs: busybox and the virtio disk driver (a module in Debian's
//! cloud kernel; ext4 is built in), enough to mount the root disk and hand over to systemd.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use crate::vm::kernel::Boot;

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
insmod /virtio_blk.ko
for i in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
mount -o rw /dev/vda /newroot || { echo "vm: cannot mount the root disk"; poweroff -f; }
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot /sbin/init
"#;

/// Builds it in `dir`; returns the archive.
pub(super) fn build(boot: &Boot, dir: &Path) -> anyhow::Result<PathBuf> {
    let root = dir.join("initrd");
    for sub in ["bin", "dev", "proc", "sys", "newroot"] {
        fs::create_dir_all(root.join(sub))?;
    }
    fs::copy("/bin/busybox", root.join("bin/busybox"))?;
    crate::vm::initramfs::copy_module(boot, "drivers/block/virtio_blk.ko", &root)?;
    let init = root.join("init");
    fs::write(&init, INIT)?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;
    let cpio = dir.join("initrd.cpio");
    crate::vm::initramfs::pack(&root, &cpio)?;
    Ok(cpio)
}
