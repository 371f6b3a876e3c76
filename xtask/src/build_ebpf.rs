//! `cargo xtask build-ebpf`: runs mptcpd-bpf's build script, the one mechanism that builds the
//! eBPF object, then copies the object out and lists its programs.

use std::{fs, io::BufReader, path::PathBuf, process::Stdio};

use anyhow::{Context as _, bail};
use cargo_metadata::Message;
use object::{Object as _, ObjectSection as _};

use crate::{cmd, workspace};

/// The object's name in mptcpd-bpf's `OUT_DIR` (the eBPF crate's binary).
const OBJECT_NAME: &str = "mptcpd-ebpf";

pub(crate) fn run() -> anyhow::Result<()> {
    let object = build()?;
    let dest_dir = workspace::target_dir().join("bpf");
    fs::create_dir_all(&dest_dir)?;
    let dest = dest_dir.join(format!("{OBJECT_NAME}.o"));
    fs::copy(&object, &dest).with_context(|| format!("copying {}", object.display()))?;
    let bytes = fs::read(&dest)?;
    let elf = object::File::parse(&*bytes).context("parsing the eBPF object")?;
    let programs: Vec<String> = elf
        .sections()
        .filter_map(|s| s.name().ok().map(str::to_owned))
        .filter(|name| is_program_section(name))
        .collect();
    if programs.is_empty() {
        bail!("{} has no program sections", dest.display());
    }
    println!("{}", dest.display());
    for section in programs {
        println!("  program section {section}");
    }
    Ok(())
}

/// Builds the object through `mptcpd/bpf/build.rs` and returns where it landed.
pub(crate) fn build() -> anyhow::Result<PathBuf> {
    let mut check = cmd::cargo();
    check.args([
        "check",
        "--package",
        "mptcpd-bpf",
        "--message-format=json-render-diagnostics",
    ]);
    eprintln!("+ {}", cmd::display(&check));
    let mut child = check.stdout(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut out_dir = None;
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::BuildScriptExecuted(script) = message?
            && script.package_id.repr.contains("#mptcpd-bpf@")
        {
            out_dir = Some(script.out_dir.into_std_path_buf());
        }
    }
    if !child.wait()?.success() {
        bail!("{} failed", cmd::display(&check));
    }
    let object = out_dir
        .context("mptcpd-bpf's build script did not run")?
        .join(OBJECT_NAME);
    if !object.is_file() {
        bail!("{} was not built (AYA_BUILD_SKIP set?)", object.display());
    }
    Ok(object)
}

/// ELF sections aya loads as programs (maps, BTF, license and the like are not).
fn is_program_section(name: &str) -> bool {
    [
        "cgroup/",
        "kprobe",
        "kretprobe",
        "tracepoint/",
        "raw_tp",
        "sockops",
        "fentry/",
        "fexit/",
        "fmod_ret/",
        "lsm/",
        "tp_btf/",
        "xdp",
        "classifier",
    ]
    .iter()
    .any(|prefix| name.starts_with(prefix))
}
