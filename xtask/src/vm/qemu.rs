//! Booting a kernel under qemu and following its console.

use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc::{RecvTimeoutError, Sender, channel},
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::initramfs::RESULT_PASS;

/// A bound on one boot, tests included: a hang, not slowness, trips it.
const BOOT_LIMIT: Duration = Duration::from_secs(600);

/// Boots `vmlinuz` with `initrd` and the extra arguments `cmdline` (TCG: KVM guests crash on these machines), passes every
/// console line to `out`, and tells whether the guest reported success.
pub(crate) fn boot(
    vmlinuz: &Path,
    initrd: &Path,
    cmdline: &str,
    out: &mut dyn FnMut(&str),
) -> anyhow::Result<bool> {
    boot_with(vmlinuz, initrd, cmdline, &[], BOOT_LIMIT, out)
}

/// [`boot`] with more qemu arguments (disks) and another hang guard.
pub(crate) fn boot_with(
    vmlinuz: &Path,
    initrd: &Path,
    cmdline: &str,
    extra: &[&std::ffi::OsStr],
    limit: Duration,
    out: &mut dyn FnMut(&str),
) -> anyhow::Result<bool> {
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args([
        "-accel",
        "tcg,thread=multi",
        "-cpu",
        "max",
        "-m",
        "1024",
        "-smp",
        "2",
    ])
    .args(["-nographic", "-no-reboot", "-kernel"])
    .arg(vmlinuz)
    .arg("-initrd")
    .arg(initrd)
    .arg("-append")
    .arg(format!("console=ttyS0 quiet panic=-1 {cmdline}").trim_end())
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    eprintln!("+ {}", crate::cmd::display(&qemu));
    let mut child = qemu.spawn().context("starting qemu-system-x86_64")?;
    let (tx, rx) = channel();
    if let Some(stdout) = child.stdout.take() {
        forward_lines(stdout, tx.clone());
    }
    if let Some(stderr) = child.stderr.take() {
        forward_lines(stderr, tx.clone());
    }
    drop(tx);
    let deadline = Instant::now() + limit;
    let mut passed = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                passed |= line.trim() == RESULT_PASS;
                out(&line);
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if Instant::now() > deadline {
                    out(&format!("vm: no result within {limit:?}; killing qemu"));
                    let _killed = child.kill();
                    break;
                }
            }
        }
    }
    let _status = child.wait()?;
    Ok(passed)
}

/// Sends each line of `stream` (console lines may end in CR) to `tx` from a thread.
fn forward_lines(stream: impl std::io::Read + Send + 'static, tx: Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_owned();
            if tx.send(line).is_err() {
                return;
            }
        }
    });
}
