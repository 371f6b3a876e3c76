//! Reading one `fmod_ret/FUNCTION` program out of a BPF ELF object: its instructions, license
//! and the instructions that load a map (relocations against map symbols).

use object::{
    Object as _, ObjectSection as _, ObjectSymbol as _, RelocationFlags, RelocationTarget,
    SectionIndex, SymbolKind, elf::R_BPF_64_64,
};

use super::FmodRetError;

/// Section-name prefix of `BPF_MODIFY_RETURN` programs (libbpf's convention).
pub(super) const SECTION_PREFIX: &str = "fmod_ret/";
/// Bytes per BPF instruction.
pub(super) const INSN_SIZE: usize = 8;
/// `BPF_LD | BPF_IMM | BPF_DW`: the 16-byte instruction that loads a 64-bit immediate (a map).
const LD_IMM64: u8 = 0x18;

/// A program of an object, ready to have its map references resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FmodRetProgram {
    /// The function's symbol name.
    pub name: String,
    /// The kernel function it attaches to (the section name after `fmod_ret/`).
    pub target: String,
    /// The instructions, as in the object (little endian, 8 bytes each).
    pub insns: Vec<u8>,
    /// The object's license (the `license` section, without its NUL).
    pub license: String,
    /// Instructions (by index) that load the map named by the symbol.
    pub map_refs: Vec<MapRef>,
}

/// An `ld_imm64` instruction that must load a map's fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRef {
    /// Index of the (first half of the) instruction.
    pub insn: usize,
    /// The map's symbol name.
    pub map: String,
}

impl FmodRetProgram {
    /// Reads the program `name` from the ELF `object`. Only what such a program needs is
    /// supported: references to maps of the `maps` section; no BPF-to-BPF calls, no globals.
    pub fn parse(object: &[u8], name: &str) -> Result<Self, FmodRetError> {
        let elf = object::File::parse(object).map_err(|e| elf_err(&e))?;
        if elf.architecture() != object::Architecture::Bpf {
            return Err(FmodRetError::Elf(format!(
                "not a BPF object ({:?})",
                elf.architecture()
            )));
        }
        if !elf.is_little_endian() {
            return Err(FmodRetError::Elf(
                "big-endian BPF objects are not supported".into(),
            ));
        }
        let symbol = elf
            .symbols()
            .find(|s| s.kind() == SymbolKind::Text && s.name() == Ok(name))
            .ok_or_else(|| FmodRetError::MissingProgram(name.to_owned()))?;
        let section_index = symbol
            .section_index()
            .ok_or_else(|| FmodRetError::MissingProgram(name.to_owned()))?;
        let section = elf
            .section_by_index(section_index)
            .map_err(|e| elf_err(&e))?;
        let section_name = section.name().map_err(|e| elf_err(&e))?;
        let target = section_name
            .strip_prefix(SECTION_PREFIX)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| FmodRetError::NotFmodRet {
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
            .ok_or_else(|| FmodRetError::Elf(format!("bad extent of symbol {name}")))?
            .to_vec();

        let mut map_refs = Vec::new();
        for (offset, reloc) in section.relocations() {
            let offset = usize::try_from(offset).map_err(|e| elf_err(&e))?;
            if !(start..start + size).contains(&offset) {
                continue; // Another program of the same section.
            }
            let RelocationTarget::Symbol(index) = reloc.target() else {
                return Err(FmodRetError::Unsupported(format!(
                    "relocation at {offset:#x} of {name} has no symbol"
                )));
            };
            let target_symbol = elf.symbol_by_index(index).map_err(|e| elf_err(&e))?;
            let symbol_name = target_symbol.name().map_err(|e| elf_err(&e))?;
            let r_type = match reloc.flags() {
                RelocationFlags::Elf { r_type } => r_type,
                other => {
                    return Err(FmodRetError::Unsupported(format!("relocation {other:?}")));
                }
            };
            let in_maps = target_symbol
                .section_index()
                .is_some_and(|i| section_named(&elf, i) == Some("maps"));
            let insn = (offset - start) / INSN_SIZE;
            if r_type != R_BPF_64_64 || !in_maps || insns.get(insn * INSN_SIZE) != Some(&LD_IMM64) {
                return Err(FmodRetError::Unsupported(format!(
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
            .ok_or_else(|| FmodRetError::Elf("no `license` section".into()))?;
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
    pub fn insn_count(&self) -> usize {
        self.insns.len() / INSN_SIZE
    }

    /// Points every map reference at a map fd: `lookup` gives the fd for a map name.
    pub fn resolve_maps(
        &mut self,
        mut lookup: impl FnMut(&str) -> Option<i32>,
    ) -> Result<(), FmodRetError> {
        for MapRef { insn, map } in &self.map_refs {
            let fd = lookup(map).ok_or_else(|| FmodRetError::MissingMap(map.clone()))?;
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

fn elf_err(e: &dyn std::fmt::Display) -> FmodRetError {
    FmodRetError::Elf(e.to_string())
}

#[cfg(test)]
mod tests {
    use mptcpd_common::upgrade::{CGROUPS_MAP, PROGRAM, TARGET_FUNCTION};

    use super::{FmodRetProgram, INSN_SIZE, LD_IMM64};
    use crate::ebpf::{FmodRetError, UPGRADE_OBJECT};

    #[test]
    fn reads_the_upgrade_program_from_the_built_object() {
        let program = FmodRetProgram::parse(UPGRADE_OBJECT, PROGRAM).unwrap();
        assert_eq!(program.target, TARGET_FUNCTION);
        assert_eq!(program.license, "Dual BSD/GPL");
        assert!(program.insn_count() > 10, "{}", program.insn_count());
        assert_ne!(program.map_refs.len(), 0);
        for map_ref in &program.map_refs {
            assert_eq!(map_ref.map, CGROUPS_MAP);
            assert_eq!(program.insns[map_ref.insn * INSN_SIZE], LD_IMM64);
        }
        // Ends with `exit`.
        assert_eq!(program.insns[program.insns.len() - INSN_SIZE], 0x95);
    }

    #[test]
    fn map_references_become_map_fds() {
        let mut program = FmodRetProgram::parse(UPGRADE_OBJECT, PROGRAM).unwrap();
        program
            .resolve_maps(|name| (name == CGROUPS_MAP).then_some(0x1234_5678))
            .unwrap();
        for map_ref in &program.map_refs {
            let insn = &program.insns[map_ref.insn * INSN_SIZE..(map_ref.insn + 1) * INSN_SIZE];
            assert_eq!(insn[1] >> 4, 1, "src_reg = BPF_PSEUDO_MAP_FD");
            assert_eq!(
                i32::from_le_bytes(insn[4..8].try_into().unwrap()),
                0x1234_5678
            );
        }
        let missing = FmodRetProgram::parse(UPGRADE_OBJECT, PROGRAM)
            .unwrap()
            .resolve_maps(|_| None);
        assert!(matches!(missing, Err(FmodRetError::MissingMap(m)) if m == CGROUPS_MAP));
    }

    #[test]
    fn other_programs_and_objects_are_refused() {
        assert!(matches!(
            FmodRetProgram::parse(UPGRADE_OBJECT, "no_such_program"),
            Err(FmodRetError::MissingProgram(_))
        ));
        // The daemon's object holds a cgroup/sock_create program, not an fmod_ret one.
        assert!(matches!(
            FmodRetProgram::parse(crate::ebpf::OBJECT, mptcpd_common::SOCK_CREATE_PROGRAM),
            Err(FmodRetError::NotFmodRet { .. })
        ));
        assert!(matches!(
            FmodRetProgram::parse(b"not an elf", PROGRAM),
            Err(FmodRetError::Elf(_))
        ));
    }
}
