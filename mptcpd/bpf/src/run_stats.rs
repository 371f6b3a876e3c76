//! The kernel's per-program run-time statistics (`BPF_ENABLE_STATS` with
//! `BPF_STATS_RUN_TIME`): while the returned fd is held, every program's `run_time_ns` and
//! `run_cnt` count up; closing it stops them. Not the global sysctl
//! `kernel.bpf_stats_enabled`, which would stay on if the holder died.

use std::{os::fd::OwnedFd, time::Duration};

use aya::{
    Ebpf,
    programs::ProgramError,
    sys::{Stats, enable_stats},
};

use super::EbpfError;

/// Turns the kernel's run-time statistics on for as long as the fd lives (host-wide: every
/// program's runs then cost two clock reads more).
pub fn enable_run_time_stats() -> Result<OwnedFd, EbpfError> {
    enable_stats(Stats::RunTime).map_err(EbpfError::Stats)
}

/// One loaded program's totals since it was loaded, counted while statistics were on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramRunTime {
    /// The program's name in the object.
    pub name: String,
    /// Time spent running it.
    pub run_time: Duration,
    /// Times it ran.
    pub run_count: u64,
}

/// The totals of every program of `ebpf` that is loaded (the others never ran).
pub(crate) fn of(ebpf: &Ebpf) -> Result<Vec<ProgramRunTime>, EbpfError> {
    let mut all = Vec::new();
    for (name, program) in ebpf.programs() {
        match program.info() {
            Ok(info) => all.push(ProgramRunTime {
                name: name.to_owned(),
                run_time: info.run_time(),
                run_count: info.run_count(),
            }),
            Err(ProgramError::NotLoaded) => {}
            Err(source) => {
                return Err(EbpfError::ProgramInfo {
                    name: name.to_owned(),
                    source,
                });
            }
        }
    }
    Ok(all)
}
