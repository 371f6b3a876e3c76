//! The TCP-to-MPTCP upgrade (`fmod_ret/update_socket_protocol`) against the real kernel, through
//! the library. The host kernel refuses BPF trampolines: the `vm_` tests run in the VM (6.12 has
//! the hook; 6.1 lacks it and reports so).

use std::path::PathBuf;

use mptcpd_bpf::Upgrade;
use mptcpd_common::Chain;
use mptcpd_common::upgrade::{CgroupEntry, MODE_ENABLED, MODE_OPTED_OUT};
use mptcpd_tests::{ebpf::cgroup::TestCgroup, features, skip, sockets::mptcp};

/// A pin directory of this test's own, removed (with the upgrade) on drop.
struct Pins(PathBuf);

impl Pins {
    fn new(test: &str) -> Self {
        Self(PathBuf::from(format!(
            "/sys/fs/bpf/mptcpd-test-{}-{test}",
            std::process::id()
        )))
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _removed = Upgrade::uninstall(&self.0);
        let _removed = std::fs::remove_dir(&self.0);
    }
}

/// Installs the upgrade with this namespace allowed, or reports the missing feature (fails
/// where the runner expects it).
fn install(test: &str, pins: &Pins) -> Option<Upgrade> {
    match Upgrade::install(&pins.0) {
        Ok((mut upgrade, _)) => {
            allow_here(&mut upgrade);
            Some(upgrade)
        }
        Err(e) => {
            features::missing("fmod_ret", test, &Chain(&e).to_string());
            None
        }
    }
}

/// Puts the test's network namespace on the upgrade's allow-list.
fn allow_here(upgrade: &mut Upgrade) {
    let here = mptcpd_bpf::Netns::current().unwrap();
    assert_eq!(
        here.mptcp_enabled,
        Some(true),
        "MPTCP is on where tests run"
    );
    upgrade.allow_netns(here.cookie).unwrap();
}

#[test]
fn probing_the_upgrade_names_what_is_missing() {
    if !skip::require_root("probing_the_upgrade_names_what_is_missing") {
        return;
    }
    match Upgrade::probe() {
        Ok(()) => eprintln!("fmod_ret upgrade: available"),
        Err(e) => {
            let reason = Chain(&e).to_string();
            assert_ne!(reason.trim(), "");
            assert!(!reason.contains('\n'), "one line: {reason}");
            // Not a skip: the host kernel refuses trampolines, and saying so is what is tested.
            assert!(
                !features::expected("fmod_ret"),
                "fmod_ret expected here, but: {reason}"
            );
            eprintln!("fmod_ret upgrade: not available: {reason}");
        }
    }
}

#[test]
fn vm_static_binary_gets_mptcp_only_in_an_enabled_cgroup() {
    const TEST: &str = "vm_static_binary_gets_mptcp_only_in_an_enabled_cgroup";
    if !skip::require_root(TEST) {
        return;
    }
    let pins = Pins::new("static");
    let Some(mut upgrade) = install(TEST, &pins) else {
        return;
    };
    let enabled = TestCgroup::new("mptcpd-t-up-on").unwrap();
    let other = TestCgroup::new("mptcpd-t-up-off").unwrap();
    assert!(upgrade.enable(enabled.id().unwrap()).unwrap());
    assert!(!upgrade.enable(enabled.id().unwrap()).unwrap(), "already");

    assert_eq!(
        mptcp::new_process_socket(&enabled, None, "tcp").unwrap(),
        262
    );
    assert_eq!(mptcp::new_process_socket(&other, None, "tcp").unwrap(), 6);
    assert_eq!(
        mptcp::new_process_socket(&enabled, None, "tcp").unwrap(),
        262
    );
    let counts = upgrade.cgroups().unwrap();
    assert_eq!(counts.get(&enabled.id().unwrap()), Some(&2), "{counts:?}");
    assert_eq!(counts.get(&other.id().unwrap()), None, "{counts:?}");
}

#[test]
fn vm_an_enabled_parent_covers_its_children_until_disabled() {
    const TEST: &str = "vm_an_enabled_parent_covers_its_children_until_disabled";
    if !skip::require_root(TEST) {
        return;
    }
    let pins = Pins::new("parent");
    let Some(mut upgrade) = install(TEST, &pins) else {
        return;
    };
    let parent = TestCgroup::new("mptcpd-t-up-parent").unwrap();
    let child = parent.child("child").unwrap();
    let grandchild = child.child("grandchild").unwrap();
    assert!(upgrade.enable(parent.id().unwrap()).unwrap());

    assert_eq!(
        mptcp::new_process_socket(&grandchild, None, "tcp").unwrap(),
        262
    );
    assert_eq!(mptcp::new_process_socket(&child, None, "tcp").unwrap(), 262);
    // Counted for the enabled cgroup that covered them.
    assert_eq!(
        upgrade.cgroups().unwrap().get(&parent.id().unwrap()),
        Some(&2)
    );

    assert!(upgrade.disable(parent.id().unwrap()).unwrap());
    assert!(
        !upgrade.disable(parent.id().unwrap()).unwrap(),
        "already off"
    );
    assert_eq!(
        mptcp::new_process_socket(&grandchild, None, "tcp").unwrap(),
        6
    );
    assert_eq!(mptcp::new_process_socket(&parent, None, "tcp").unwrap(), 6);
}

#[test]
fn vm_the_pinned_upgrade_outlives_its_handle() {
    const TEST: &str = "vm_the_pinned_upgrade_outlives_its_handle";
    if !skip::require_root(TEST) {
        return;
    }
    let pins = Pins::new("pinned");
    let Some(mut upgrade) = install(TEST, &pins) else {
        return;
    };
    let cgroup = TestCgroup::new("mptcpd-t-up-pin").unwrap();
    upgrade.enable(cgroup.id().unwrap()).unwrap();
    drop(upgrade);

    // Nothing of this process holds the program now: only the pins do.
    assert_eq!(
        mptcp::new_process_socket(&cgroup, None, "tcp").unwrap(),
        262
    );
    let reopened = Upgrade::open(&pins.0).unwrap().expect("still installed");
    assert_eq!(
        reopened.cgroups().unwrap().get(&cgroup.id().unwrap()),
        Some(&1)
    );
    drop(reopened);

    assert!(Upgrade::uninstall(&pins.0).unwrap());
    assert_eq!(
        mptcp::new_process_socket(&cgroup, None, "tcp").unwrap(),
        6,
        "detached with its pins"
    );
}

/// Layout 1 (before versioned pin names): a per-CPU hash of enabled cgroup id -> count at
/// `mptcpize_cgroups`, and a link at `mptcpize_link`. Made here the way that version made it,
/// except that its link runs today's program (with a map of its own: it upgrades nothing).
fn pin_layout_1(dir: &std::path::Path, enabled: u64) {
    use aya::maps::{Map, MapData, PerCpuHashMap, PerCpuValues};
    use mptcpd_bpf::{V1_CGROUPS_PIN, V1_LINK_PIN};
    use std::os::fd::{FromRawFd as _, OwnedFd};

    std::fs::create_dir(dir).unwrap();
    // BPF_MAP_CREATE: map_type, key_size, value_size, max_entries (the rest zero).
    let mut attr = [0_u32; 32];
    attr[..4].copy_from_slice(&[5 /* BPF_MAP_TYPE_PERCPU_HASH */, 8, 8, 1024]);
    // SAFETY: a valid bpf_attr prefix, zero elsewhere.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_mut_ptr(), size_of_val(&attr)) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: a new fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).unwrap()) };
    let map_pin = dir.join(V1_CGROUPS_PIN);
    MapData::from_fd(fd).unwrap().pin(&map_pin).unwrap();
    let mut map: PerCpuHashMap<_, u64, u64> =
        PerCpuHashMap::try_from(Map::from_map_data(MapData::from_pin(&map_pin).unwrap()).unwrap())
            .unwrap();
    let cpus = usize::try_from(aya::util::nr_cpus().unwrap().get()).unwrap();
    map.insert(
        &enabled,
        PerCpuValues::try_from(vec![0_u64; cpus]).unwrap(),
        0,
    )
    .unwrap();

    let donor = Pins::new("layout1-donor");
    install("pin_layout_1", &donor).unwrap();
    let link: aya::programs::links::FdLink =
        aya::programs::links::PinnedLink::from_pin(donor.0.join(mptcpd_bpf::LINK_PIN))
            .unwrap()
            .into();
    link.pin(dir.join(V1_LINK_PIN)).unwrap();
}

#[test]
fn vm_an_older_layout_is_replaced_and_its_cgroups_kept() {
    const TEST: &str = "vm_an_older_layout_is_replaced_and_its_cgroups_kept";
    if !skip::require_root(TEST) || Upgrade::probe().is_err() {
        let _reported = Upgrade::probe()
            .map_err(|e| features::missing("fmod_ret", TEST, &Chain(&e).to_string()));
        return;
    }
    let pins = Pins::new("layout1");
    let old = TestCgroup::new("mptcpd-t-up-v1").unwrap();
    pin_layout_1(&pins.0, old.id().unwrap());

    let (mut upgrade, _) = Upgrade::install(&pins.0).unwrap();
    for gone in [mptcpd_bpf::V1_LINK_PIN, mptcpd_bpf::V1_CGROUPS_PIN] {
        assert!(!pins.0.join(gone).exists(), "{gone} replaced");
    }
    assert!(pins.0.join(mptcpd_bpf::LINK_PIN).exists());
    assert!(upgrade.cgroups().unwrap().contains_key(&old.id().unwrap()));
    allow_here(&mut upgrade);
    assert_eq!(mptcp::new_process_socket(&old, None, "tcp").unwrap(), 262);
}

/// Layout 2 (no namespace allow-list): a hash of cgroup id -> `CgroupEntry` at
/// `mptcpize_v2_cgroups`, a link at `mptcpize_v2_link` (today's program, maps of its own).
fn pin_layout_2(dir: &std::path::Path, entries: &[(u64, CgroupEntry)]) {
    use aya::maps::{HashMap, Map, MapData};
    use mptcpd_bpf::{V2_CGROUPS_PIN, V2_LINK_PIN};
    use std::os::fd::{FromRawFd as _, OwnedFd};

    std::fs::create_dir(dir).unwrap();
    let mut attr = [0_u32; 32];
    attr[..4].copy_from_slice(&[1 /* BPF_MAP_TYPE_HASH */, 8, 16, 1024]);
    // SAFETY: a valid bpf_attr prefix, zero elsewhere.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 0, attr.as_mut_ptr(), size_of_val(&attr)) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: a new fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(i32::try_from(fd).unwrap()) };
    let map_pin = dir.join(V2_CGROUPS_PIN);
    MapData::from_fd(fd).unwrap().pin(&map_pin).unwrap();
    let mut map: HashMap<_, u64, CgroupEntry> =
        HashMap::try_from(Map::from_map_data(MapData::from_pin(&map_pin).unwrap()).unwrap())
            .unwrap();
    for (id, entry) in entries {
        map.insert(id, entry, 0).unwrap();
    }
    let donor = Pins::new("layout2-donor");
    install("pin_layout_2", &donor).unwrap();
    let link: aya::programs::links::FdLink =
        aya::programs::links::PinnedLink::from_pin(donor.0.join(mptcpd_bpf::LINK_PIN))
            .unwrap()
            .into();
    link.pin(dir.join(V2_LINK_PIN)).unwrap();
}

#[test]
fn vm_layout_2_is_replaced_and_its_cgroups_and_opt_outs_kept() {
    const TEST: &str = "vm_layout_2_is_replaced_and_its_cgroups_and_opt_outs_kept";
    if !skip::require_root(TEST) || Upgrade::probe().is_err() {
        let _reported = Upgrade::probe()
            .map_err(|e| features::missing("fmod_ret", TEST, &Chain(&e).to_string()));
        return;
    }
    let pins = Pins::new("layout2");
    let parent = TestCgroup::new("mptcpd-t-up-v2").unwrap();
    let out = parent.child("out").unwrap();
    let entry = |mode| CgroupEntry { mode, upgraded: 5 };
    pin_layout_2(
        &pins.0,
        &[
            (parent.id().unwrap(), entry(MODE_ENABLED)),
            (out.id().unwrap(), entry(MODE_OPTED_OUT)),
        ],
    );

    let (mut upgrade, _) = Upgrade::install(&pins.0).unwrap();
    for gone in [mptcpd_bpf::V2_LINK_PIN, mptcpd_bpf::V2_CGROUPS_PIN] {
        assert!(!pins.0.join(gone).exists(), "{gone} replaced");
    }
    assert!(
        upgrade
            .cgroups()
            .unwrap()
            .contains_key(&parent.id().unwrap())
    );
    assert!(upgrade.opted_out().unwrap().contains(&out.id().unwrap()));
    // The new layout's allow-list starts empty: TCP until this namespace is allowed.
    assert_eq!(mptcp::new_process_socket(&parent, None, "tcp").unwrap(), 6);
    allow_here(&mut upgrade);
    assert_eq!(
        mptcp::new_process_socket(&parent, None, "tcp").unwrap(),
        262
    );
    assert_eq!(mptcp::new_process_socket(&out, None, "tcp").unwrap(), 6);
}

#[test]
fn vm_the_counts_are_exact_under_preemption() {
    const TEST: &str = "vm_the_counts_are_exact_under_preemption";
    const PROCESSES: u64 = 4;
    const SOCKETS: u64 = 2000;
    if !skip::require_root(TEST) {
        return;
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    eprintln!("kernel command line: {}", cmdline.trim());
    let pins = Pins::new("stress");
    let Some(mut upgrade) = install(TEST, &pins) else {
        return;
    };
    let cgroup = TestCgroup::new("mptcpd-t-up-stress").unwrap();
    upgrade.enable(cgroup.id().unwrap()).unwrap();
    let bench = mptcpd_tests::bins::path("socket-bench").unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            let mut cmd = std::process::Command::new(&bench);
            cmd.args(["stress", "tcp", &SOCKETS.to_string()]);
            cgroup.join_on_spawn(&mut cmd).unwrap();
            cmd.stdout(std::process::Stdio::null()).spawn().unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    // A run the kernel skips (the program already running on that CPU, preempted) leaves
    // its socket TCP and uncounted; every run that upgraded is counted exactly once.
    let skipped = upgrade.skipped_runs().unwrap();
    let counted = upgrade.cgroups().unwrap()[&cgroup.id().unwrap()];
    eprintln!("upgraded {counted}, skipped by the kernel {skipped}");
    // (A skipped run may also be another process's socket: hence `>=`.)
    assert!(
        counted <= PROCESSES * SOCKETS && counted + skipped >= PROCESSES * SOCKETS,
        "every upgraded socket counted once: {counted} counted, {skipped} skipped"
    );
}
