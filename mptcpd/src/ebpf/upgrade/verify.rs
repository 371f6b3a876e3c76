//! The check after an install: the pinned link's program uses the pinned map. Two installers
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

use crate::ebpf::EbpfError;

/// Map ids of the program behind the pinned link at `link_pin`.
pub(super) fn link_map_ids(link_pin: &Path) -> Result<Vec<u32>, EbpfError> {
    let err = |why: String| EbpfError::Inconsistent {
        path: link_pin.to_owned(),
        why,
    };
    let link: FdLink = PinnedLink::from_pin(link_pin)
        .map_err(|e: LinkError| err(e.to_string()))?
        .into();
    let prog_id = link.info().map_err(|e| err(e.to_string()))?.program_id();
    let program = loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)
        .ok_or_else(|| err(format!("its program (id {prog_id}) is not loaded")))?;
    Ok(program
        .map_ids()
        .map_err(|e| err(e.to_string()))?
        .unwrap_or_default())
}

/// The kernel id of `map`.
pub(super) fn map_id(map: &MapData, map_pin: &Path) -> Result<u32, EbpfError> {
    map.info()
        .map(|info| info.id())
        .map_err(|e| EbpfError::Inconsistent {
            path: map_pin.to_owned(),
            why: e.to_string(),
        })
}

/// Whether the pinned link's program reads `map`.
pub(super) fn link_uses_map(
    link_pin: &Path,
    map: &MapData,
    map_pin: &Path,
) -> Result<bool, EbpfError> {
    Ok(link_map_ids(link_pin)?.contains(&map_id(map, map_pin)?))
}
