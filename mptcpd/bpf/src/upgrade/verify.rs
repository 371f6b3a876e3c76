//! The check after an install: the pinned link's program uses the pinned maps. Two installers
//! that raced (before the install lock) could leave a link whose map nobody pins: every later
//! `enable` then wrote to a map the program never reads.

use std::path::Path;

use aya::{
    maps::MapData,
    programs::{
        links::{FdLink, LinkError, PinnedLink},
        loaded_programs,
    },
};

use mptcpd_common::Chain;

use crate::EbpfError;

/// Map ids of the program behind the pinned link at `link_pin`.
pub(super) fn link_map_ids(link_pin: &Path) -> Result<Vec<u32>, EbpfError> {
    let err = |why: String| EbpfError::Inconsistent {
        path: link_pin.to_owned(),
        why,
    };
    Ok(link_program(link_pin)?
        .map_ids()
        .map_err(|e| err(Chain(&e).to_string()))?
        .unwrap_or_default())
}

/// Runs of the program behind the pinned link that the kernel skipped because the program
/// was already running on that CPU (preempted: `recursion_misses` in its fdinfo). Each one
/// is a socket left TCP.
pub(super) fn skipped_runs(link_pin: &Path) -> Result<u64, EbpfError> {
    let err = |why: String| EbpfError::Inconsistent {
        path: link_pin.to_owned(),
        why,
    };
    let fd = link_program(link_pin)?
        .fd()
        .map_err(|e| err(Chain(&e).to_string()))?;
    let raw = std::os::fd::AsRawFd::as_raw_fd(&std::os::fd::AsFd::as_fd(&fd));
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{raw}"))
        .map_err(|e| err(e.to_string()))?;
    info.lines()
        .find_map(|l| l.strip_prefix("recursion_misses:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| err("no recursion_misses in its fdinfo".to_owned()))
}

/// The program behind the pinned link at `link_pin`.
fn link_program(link_pin: &Path) -> Result<aya::programs::ProgramInfo, EbpfError> {
    let err = |why: String| EbpfError::Inconsistent {
        path: link_pin.to_owned(),
        why,
    };
    let link: FdLink = PinnedLink::from_pin(link_pin)
        .map_err(|e: LinkError| err(Chain(&e).to_string()))?
        .into();
    let prog_id = link
        .info()
        .map_err(|e| err(Chain(&e).to_string()))?
        .program_id();
    loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)
        .ok_or_else(|| err(format!("its program (id {prog_id}) is not loaded")))
}

/// The kernel id of `map`.
pub(super) fn map_id(map: &MapData, map_pin: &Path) -> Result<u32, EbpfError> {
    map.info()
        .map(|info| info.id())
        .map_err(|e| EbpfError::Inconsistent {
            path: map_pin.to_owned(),
            why: Chain(&e).to_string(),
        })
}
