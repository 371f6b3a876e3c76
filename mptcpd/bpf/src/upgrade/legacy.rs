//! Older pinned layouts, recognised and replaced by a newer `mptcpize` without losing the
//! enabled cgroups. Layout 1 (before versioned names): `mptcpize_link` and `mptcpize_cgroups`,
//! a per-CPU hash of enabled cgroup id -> sockets upgraded on that CPU.

use std::{fs, io, path::Path};

use aya::maps::{Map, MapData, PerCpuHashMap};

use crate::EbpfError;

/// Layout 1's link pin.
pub const V1_LINK_PIN: &str = "mptcpize_link";
/// Layout 1's map pin.
pub const V1_CGROUPS_PIN: &str = "mptcpize_cgroups";

/// The cgroups that layout 1 in `dir` enables, or `None` if there is no such layout.
pub(super) fn v1_cgroups(dir: &Path) -> Result<Option<Vec<u64>>, EbpfError> {
    let pin = dir.join(V1_CGROUPS_PIN);
    let err = |source| EbpfError::Bpffs {
        path: pin.clone(),
        source,
    };
    match fs::symlink_metadata(&pin) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    }
    let map = MapData::from_pin(&pin)
        .and_then(Map::from_map_data)
        .and_then(PerCpuHashMap::<_, u64, u64>::try_from)
        .map_err(|e| err(io::Error::other(e)))?;
    let ids = map
        .keys()
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|e| err(io::Error::other(e)))?;
    Ok(Some(ids))
}

/// Removes layout 1's pins: the link first (its program stops), then its map.
pub(super) fn remove_v1(dir: &Path) -> Result<(), EbpfError> {
    for name in [V1_LINK_PIN, V1_CGROUPS_PIN] {
        let path = dir.join(name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(EbpfError::Bpffs { path, source }),
        }
    }
    Ok(())
}
