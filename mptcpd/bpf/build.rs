//! Builds `mptcpd-ebpf` for the BPF target with its pinned nightly and leaves the object in
//! `OUT_DIR/mptcpd-ebpf`, where `mptcpd_bpf::OBJECT` embeds it. This is the only way the
//! object is built; `cargo xtask build-ebpf` runs this script and copies its output.
//!
//! The objects leave without their DWARF: the linker needs it to make BTF, the loader reads only
//! the BTF, and the DWARF was 580 KiB of the 670 KiB the daemon embeds (and maps).

use std::{fs, path::Path};

use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == "mptcpd-ebpf")
        .ok_or_else(|| anyhow!("mptcpd-ebpf is not in the workspace"))?;
    let root_dir = ebpf
        .manifest_path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", ebpf.manifest_path))?;

    let toolchain_file = root_dir.join("rust-toolchain.toml");
    println!("cargo::rerun-if-changed={toolchain_file}");
    let toolchain =
        fs::read_to_string(&toolchain_file).with_context(|| format!("reading {toolchain_file}"))?;
    let channel = toolchain_channel(&toolchain)
        .ok_or_else(|| anyhow!("{toolchain_file} names no channel"))?;

    aya_build::build_ebpf(
        [Package {
            name: ebpf.name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        Toolchain::Custom(channel),
    )
    .context("building mptcpd-ebpf (run `cargo xtask setup` if a tool is missing)")?;

    let out_dir = std::env::var_os("OUT_DIR").ok_or_else(|| anyhow!("cargo set no OUT_DIR"))?;
    for target in &ebpf.targets {
        if target.is_bin() {
            strip_dwarf(&Path::new(&out_dir).join(&target.name))?;
        }
    }
    Ok(())
}

/// Rewrites the object at `path` without its `.debug_*` sections and their relocations; the
/// `.BTF` and `.BTF.ext` sections (types, CO-RE relocations, line info) stay.
fn strip_dwarf(path: &Path) -> anyhow::Result<()> {
    use object::build::elf::{Builder, Section, SectionData};

    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut builder = Builder::read(data.as_slice())
        .with_context(|| format!("parsing {} as ELF", path.display()))?;
    let dwarf: Vec<_> = builder
        .sections
        .iter()
        .filter(|section| section.name.starts_with(b".debug_"))
        .map(Section::id)
        .collect();
    for section in &mut builder.sections {
        let relocates_dwarf = section
            .sh_info_section
            .is_some_and(|target| dwarf.contains(&target));
        if dwarf.contains(&section.id()) || relocates_dwarf {
            section.delete = true;
        }
    }
    builder.delete_orphans();
    // LLVM keeps the section names in `.strtab` with the symbols' names; the writer wants a
    // table of their own and fills it.
    if !builder
        .sections
        .iter()
        .any(|section| matches!(section.data, SectionData::SectionString))
    {
        let names = builder.sections.add();
        names.name = b".shstrtab"[..].into();
        names.sh_type = object::elf::SHT_STRTAB;
        names.sh_addralign = 1;
        names.data = SectionData::SectionString;
    }
    let mut stripped = Vec::with_capacity(data.len());
    builder
        .write(&mut stripped)
        .with_context(|| format!("writing {} without DWARF", path.display()))?;
    fs::write(path, stripped).with_context(|| format!("writing {}", path.display()))
}

/// The `channel = "..."` value of a rust-toolchain.toml (the file is ours and flat).
fn toolchain_channel(toml: &str) -> Option<&str> {
    toml.lines().find_map(|line| {
        let value = line
            .trim()
            .strip_prefix("channel")?
            .trim_start()
            .strip_prefix('=')?;
        value.trim().strip_prefix('"')?.split('"').next()
    })
}
