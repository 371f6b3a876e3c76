//! The embedded upgrade object, read by the `fmod_ret` loader as the upgrade loads it.

use aya_fmod_ret::{FModRet, FModRetError};
use mptcpd_common::{
    SOCK_CREATE_PROGRAM,
    upgrade::{CGROUPS_MAP, NETNS_CONFIG_MAP, NETNS_MAP, PROGRAM, TARGET_FUNCTION},
};

use super::UPGRADE_OBJECT;
use crate::object::OBJECT;

#[test]
fn the_upgrade_program_hooks_its_function_and_reads_only_its_three_maps() {
    let program = FModRet::from_elf(UPGRADE_OBJECT, PROGRAM).unwrap();
    assert_eq!(program.target(), TARGET_FUNCTION);
    assert_eq!(program.license(), "Dual BSD/GPL");
    assert!(program.insn_count() > 10, "{}", program.insn_count());
    let mut maps: Vec<&str> = program.map_names().collect();
    maps.sort_unstable();
    maps.dedup();
    let mut expected = [CGROUPS_MAP, NETNS_MAP, NETNS_CONFIG_MAP];
    expected.sort_unstable();
    assert_eq!(maps, expected);
}

#[test]
fn the_daemons_object_holds_no_fmod_ret_program() {
    // Its sock_create observer is a cgroup/sock_create program.
    assert!(matches!(
        FModRet::from_elf(OBJECT, SOCK_CREATE_PROGRAM),
        Err(FModRetError::NotFmodRet { .. })
    ));
}
