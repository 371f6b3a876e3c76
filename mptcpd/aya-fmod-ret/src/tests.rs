//! Reading and relocating programs, against tiny BPF objects written here (the kernel side,
//! load and attach, is tested with mptcpd's upgrade program in the real-kernel tests).

use std::os::fd::{AsFd as _, AsRawFd as _};

use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
    elf::R_BPF_64_64,
    write::{self, Relocation, SectionId, Symbol, SymbolId, SymbolSection},
};

use crate::{
    FModRet, FModRetError,
    elf::{INSN_SIZE, LD_IMM64},
};

/// `r1 = MAP ll; r0 = 0; exit`: one map load (16 bytes), then a return.
const INSNS: [u8; 32] = [
    LD_IMM64, 0x01, 0, 0, 0, 0, 0, 0, // ld_imm64 r1 (first half)
    0, 0, 0, 0, 0, 0, 0, 0, // (second half)
    0xb7, 0, 0, 0, 0, 0, 0, 0, // mov r0, 0
    0x95, 0, 0, 0, 0, 0, 0, 0, // exit
];

/// A BPF object with the program `prog` in `section`, loading the map `MY_MAP` of section
/// `map_section`, and a license unless `license` is `None`.
fn object(section: &str, map_section: &str, license: Option<&str>) -> Vec<u8> {
    let mut obj = write::Object::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
    let text = obj.add_section(Vec::new(), section.as_bytes().to_vec(), SectionKind::Text);
    symbol(&mut obj, "prog", text, &INSNS, SymbolKind::Text);
    let maps = obj.add_section(
        Vec::new(),
        map_section.as_bytes().to_vec(),
        SectionKind::Data,
    );
    let map = symbol(&mut obj, "MY_MAP", maps, &[0; 20], SymbolKind::Data);
    obj.add_relocation(
        text,
        Relocation {
            offset: 0,
            symbol: map,
            addend: 0,
            flags: RelocationFlags::Elf {
                r_type: R_BPF_64_64,
            },
        },
    )
    .unwrap();
    if let Some(license) = license {
        let section = obj.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
        obj.append_section_data(section, format!("{license}\0").as_bytes(), 1);
    }
    obj.write().unwrap()
}

fn symbol(
    obj: &mut write::Object<'_>,
    name: &str,
    section: SectionId,
    data: &[u8],
    kind: SymbolKind,
) -> SymbolId {
    let value = obj.append_section_data(section, data, 8);
    obj.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value,
        size: data.len() as u64,
        kind,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    })
}

#[test]
fn reads_the_program_its_target_license_and_map_references() {
    let program = FModRet::from_elf(
        &object("fmod_ret/some_function", "maps", Some("GPL")),
        "prog",
    )
    .unwrap();
    assert_eq!(program.name(), "prog");
    assert_eq!(program.target(), "some_function");
    assert_eq!(program.license(), "GPL");
    assert_eq!(program.insn_count(), 4);
    assert_eq!(program.map_names().collect::<Vec<_>>(), ["MY_MAP"]);
    assert!(matches!(program.fd(), Err(FModRetError::NotLoaded(p)) if p == "prog"));
    assert!(matches!(program.attach(), Err(FModRetError::NotLoaded(_))));
}

#[test]
fn map_references_become_map_fds() {
    let object = object("fmod_ret/some_function", "maps", Some("GPL"));
    let map = std::fs::File::open("/dev/null").unwrap();
    let mut program = FModRet::from_elf(&object, "prog").unwrap();
    program
        .relocate_maps(|name| (name == "MY_MAP").then(|| map.as_fd()))
        .unwrap();
    let insn = &program.program.insns[..INSN_SIZE];
    assert_eq!(insn[0], LD_IMM64);
    assert_eq!(insn[1] >> 4, 1, "src_reg = BPF_PSEUDO_MAP_FD");
    assert_eq!(insn[1] & 0x0f, 1, "dst_reg r1 kept");
    assert_eq!(
        i32::from_le_bytes(insn[4..8].try_into().unwrap()),
        map.as_raw_fd()
    );
    // The rest is untouched.
    assert_eq!(program.program.insns[INSN_SIZE..], INSNS[INSN_SIZE..]);

    let mut missing = FModRet::from_elf(&object, "prog").unwrap();
    assert!(matches!(
        missing.relocate_maps(|_| None),
        Err(FModRetError::MissingMap(m)) if m == "MY_MAP"
    ));
}

#[test]
fn other_programs_sections_and_objects_are_refused() {
    let good = object("fmod_ret/some_function", "maps", Some("GPL"));
    assert!(matches!(
        FModRet::from_elf(&good, "no_such_program"),
        Err(FModRetError::MissingProgram(p)) if p == "no_such_program"
    ));
    for section in ["kprobe/some_function", "fmod_ret/"] {
        assert!(
            matches!(
                FModRet::from_elf(&object(section, "maps", Some("GPL")), "prog"),
                Err(FModRetError::NotFmodRet { section: s, .. }) if s == section
            ),
            "{section}"
        );
    }
    // A reference to global data (not a map of the `maps` section) is not linked here.
    assert!(matches!(
        FModRet::from_elf(&object("fmod_ret/f", ".data", Some("GPL")), "prog"),
        Err(FModRetError::Unsupported(_))
    ));
    assert!(matches!(
        FModRet::from_elf(&object("fmod_ret/f", "maps", None), "prog"),
        Err(FModRetError::Elf(_))
    ));
    assert!(matches!(
        FModRet::from_elf(b"not an elf", "prog"),
        Err(FModRetError::Elf(_))
    ));
}
