//! Reading one `fmod_ret/FUNCTION` program out of a BPF ELF object: its instructions, license
//! and the instructions that load a map (relocations against map symbols).

use object::{
    Object as _, ObjectSection as _, ObjectSymbol as _, RelocationFlags, RelocationTarget,
    SectionIndex, SymbolKind, elf::R_BPF_64_64,
};

use std::os::fd::{AsRawFd as _, BorrowedFd};

use super::FModRetError;

/// Section-name prefix of `BPF_MODIFY_RETURN` programs (libbpf's convention).
const SECTION_PREFIX: &str = "fmod_ret/";
/// Bytes per BPF instruction.
pub(super) const INSN_SIZE: usize = 8;
/// `BPF_LD | BPF_IMM | BPF_DW`: the 16-byte instruction that loads a 64-bit immediate (a map).
pub(crate) const LD_IMM64: u8 = 0x18;

/// A program of an object, ready to have its map references resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElfProgram {
    /// The function's symbol name.
    pub(crate) name: String,
    /// The kernel function it attaches to (the section name after `fmod_ret/`).
    pub(crate) target: String,
    /// The instructions, as in the object (little endian, 8 bytes each).
    pub(crate) insns: Vec<u8>,
    /// The object's license (the `license` section, without its NUL).
    pub(crate) license: String,
    /// Instructions (by index) that load the map named by the symbol.
    pub(crate) map_refs: Vec<MapRef>,
}

/// An `ld_imm64` instruction that must load a map's fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapRef {
    /// Index of the (first half of the) instruction.
    pub(crate) insn: usize,
    /// The map's symbol name.
    pub(crate) map: String,
}

impl ElfProgram {
    /// Reads the program `name` from the ELF `object`. Only what such a program needs is
    /// supported: references to maps of the `maps` section; no BPF-to-BPF calls, no globals.
    pub(crate) fn parse(object: &[u8], name: &str) -> Result<Self, FModRetError> {
        let elf = object::File::parse(object).map_err(|e| elf_err(&e))?;
        if elf.architecture() != object::Architecture::Bpf {
            return Err(FModRetError::Elf(format!(
                "not a BPF object ({:?})",
                elf.architecture()
            )));
        }
        if !elf.is_little_endian() {
            return Err(FModRetError::Elf(
                "big-endian BPF objects are not supported".into(),
            ));
        }
        let symbol = elf
            .symbols()
            .find(|s| s.kind() == SymbolKind::Text && s.name() == Ok(name))
            .ok_or_else(|| FModRetError::MissingProgram(name.to_owned()))?;
        let section_index = symbol
            .section_index()
            .ok_or_else(|| FModRetError::MissingProgram(name.to_owned()))?;
        let section = elf
            .section_by_index(section_index)
            .map_err(|e| elf_err(&e))?;
        let section_name = section.name().map_err(|e| elf_err(&e))?;
        let target = section_name
            .strip_prefix(SECTION_PREFIX)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| FModRetError::NotFmodRet {
                program: name.to_owned(),
                section: section_name.to_owned(),
            })?
            .to_owned();
        let data = section.data().map_err(|e| elf_err(&e))?;
        let start = usize::try_from(symbol.address()).map_err(|e| elf_err(&e))?;
        let size = usize::try_from(symbol.size()).map_err(|e| elf_err(&e))?;
        let insns = data
            .get(start..start + size)
            .filter(|bytes| !bytes.is_empty() && bytes.len() % INSN_SIZE == 0)
            .ok_or_else(|| FModRetError::Elf(format!("bad extent of symbol {name}")))?
            .to_vec();

        let mut map_refs = Vec::new();
        for (offset, reloc) in section.relocations() {
            let offset = usize::try_from(offset).map_err(|e| elf_err(&e))?;
            if !(start..start + size).contains(&offset) {
                continue; // Another program of the same section.
            }
            let RelocationTarget::Symbol(index) = reloc.target() else {
                return Err(FModRetError::Unsupported(format!(
                    "relocation at {offset:#x} of {name} has no symbol"
                )));
            };
            let target_symbol = elf.symbol_by_index(index).map_err(|e| elf_err(&e))?;
            let symbol_name = target_symbol.name().map_err(|e| elf_err(&e))?;
            let r_type = match reloc.flags() {
                RelocationFlags::Elf { r_type } => r_type,
                other => {
                    return Err(FModRetError::Unsupported(format!("relocation {other:?}")));
                }
            };
            let in_maps = target_symbol
                .section_index()
                .is_some_and(|i| section_named(&elf, i) == Some("maps"));
            let insn = (offset - start) / INSN_SIZE;
            if r_type != R_BPF_64_64 || !in_maps || insns.get(insn * INSN_SIZE) != Some(&LD_IMM64) {
                return Err(FModRetError::Unsupported(format!(
                    "{name} refers to {symbol_name} (relocation {r_type:?}): only maps of \
                     the `maps` section are supported (no calls to other functions, no globals)"
                )));
            }
            map_refs.push(MapRef {
                insn,
                map: symbol_name.to_owned(),
            });
        }

        let license = elf
            .section_by_name("license")
            .and_then(|s| s.data().ok())
            .map(|d| String::from_utf8_lossy(d.split(|b| *b == 0).next().unwrap_or(d)).into_owned())
            .ok_or_else(|| FModRetError::Elf("no `license` section".into()))?;
        Ok(Self {
            name: name.to_owned(),
            target,
            insns,
            license,
            map_refs,
        })
    }

    /// Number of instructions.
    #[must_use]
    pub(crate) fn insn_count(&self) -> usize {
        self.insns.len() / INSN_SIZE
    }

    /// Points every map reference at a map fd: `lookup` gives the fd for a map name.
    pub(crate) fn resolve_maps<'fd>(
        &mut self,
        mut lookup: impl FnMut(&str) -> Option<BorrowedFd<'fd>>,
    ) -> Result<(), FModRetError> {
        for MapRef { insn, map } in &self.map_refs {
            let fd = lookup(map)
                .ok_or_else(|| FModRetError::MissingMap(map.clone()))?
                .as_raw_fd();
            let at = insn * INSN_SIZE;
            // src_reg (high nibble of byte 1) = BPF_PSEUDO_MAP_FD: the kernel reads imm as an fd.
            self.insns[at + 1] = (self.insns[at + 1] & 0x0f) | (PSEUDO_MAP_FD << 4);
            self.insns[at + 4..at + 8].copy_from_slice(&fd.to_le_bytes());
        }
        Ok(())
    }
}

/// `BPF_PSEUDO_MAP_FD`.
const PSEUDO_MAP_FD: u8 = 1;

fn section_named<'a>(elf: &'a object::File<'a>, index: SectionIndex) -> Option<&'a str> {
    elf.section_by_index(index).ok()?.name().ok()
}

fn elf_err(e: &dyn std::fmt::Display) -> FModRetError {
    FModRetError::Elf(e.to_string())
}
