//! The counters the programs keep in maps are added to atomically: a program can be preempted
//! (`preempt=full`) between a load and a store by another run of it on the same CPU, so a
//! plain `+= 1`, even on a per-CPU slot, loses counts.

#[cfg(test)]
mod tests {
    use object::{Object as _, ObjectSection as _};

    use crate::{object::OBJECT, upgrade::UPGRADE_OBJECT};

    /// `BPF_STX | BPF_DW | BPF_ATOMIC`.
    const ATOMIC_DW: u8 = 0x03 | 0x18 | 0xc0;
    /// `BPF_ADD`, and `BPF_ADD | BPF_FETCH`.
    const ADDS: [i32; 2] = [0x00, 0x01];
    /// `BPF_STX | BPF_DW | BPF_MEM`: a plain 64-bit store from a register.
    const STORE_DW: u8 = 0x03 | 0x18 | 0x60;

    /// (atomic 64-bit adds, plain 64-bit register stores) in the section `name` of `elf`.
    fn count(elf: &[u8], name: &str) -> (usize, usize) {
        let file = object::File::parse(elf).unwrap();
        let section = file
            .section_by_name(name)
            .unwrap_or_else(|| panic!("{name}"));
        let insns = section.data().unwrap();
        let mut adds = 0;
        let mut stores = 0;
        for insn in insns.as_chunks::<8>().0 {
            let imm = i32::from_le_bytes(insn[4..8].try_into().unwrap());
            if insn[0] == ATOMIC_DW && ADDS.contains(&imm) {
                adds += 1;
            } else if insn[0] == STORE_DW {
                stores += 1;
            }
        }
        (adds, stores)
    }

    #[test]
    fn the_upgrade_counts_with_an_atomic_add() {
        let (adds, _) = count(UPGRADE_OBJECT, "fmod_ret/update_socket_protocol");
        assert!(adds >= 1, "the upgraded count is added to atomically");
    }

    #[test]
    fn the_sock_create_observer_counts_with_atomic_adds() {
        let (adds, _) = count(OBJECT, "cgroup/sock_create");
        assert!(
            adds >= 1,
            "the TCP and MPTCP counts are added to atomically"
        );
    }

    #[test]
    fn the_counter_check_sees_plain_stores() {
        // The check above would pass on any object without atomics only if it could not read
        // instructions: the observer's first insert builds its value with plain stores.
        let (_, stores) = count(OBJECT, "cgroup/sock_create");
        assert!(stores > 0);
    }
}
