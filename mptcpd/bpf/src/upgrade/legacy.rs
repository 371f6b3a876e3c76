//! Older pinned layouts, recognised and replaced by a newer `mptcpize` without losing the
//! enabled (and opted-out) cgroups. Layout 1 (before versioned names): `mptcpize_link` and
//! `mptcpize_cgroups`, a per-CPU hash of enabled cgroup id -> sockets upgraded on that CPU.
//! Layout 2: `mptcpize_v2_link` and `mptcpize_v2_cgroups` (cgroup id -> `CgroupEntry`, as
//! today), without the namespace allow-list.

use std::{fs, io, path::Path};

use aya::maps::{HashMap, Map, MapData, PerCpuHashMap};
use mptcpd_common::upgrade::{CgroupEntry, MODE_ENABLED};

use crate::EbpfError;

/// Layout 1's link pin.
pub const V1_LINK_PIN: &str = "mptcpize_link";
/// Layout 1's map pin.
pub const V1_CGROUPS_PIN: &str = "mptcpize_cgroups";
/// Layout 2's link pin.
pub const V2_LINK_PIN: &str = "mptcpize_v2_link";
/// Layout 2's map pin.
pub const V2_CGROUPS_PIN: &str = "mptcpize_v2_cgroups";
/// Layout 2's temporary link pin (renamed over its link pin).
const V2_NEW_LINK_PIN: &str = "mptcpize_v2_link_new";

/// Every pin of the older layouts, links before maps (a link's program stops first).
pub(super) const PINS: [&str; 5] = [
    V1_LINK_PIN,
    V2_LINK_PIN,
    V2_NEW_LINK_PIN,
    V1_CGROUPS_PIN,
    V2_CGROUPS_PIN,
];

/// The cgroup entries of the older layouts in `dir` (layout 1's ids as enabled), or `None` if
/// there is no such layout.
pub(super) fn older_cgroups(dir: &Path) -> Result<Option<Vec<(u64, CgroupEntry)>>, EbpfError> {
    let v1 = read(dir, V1_CGROUPS_PIN, |map| {
        PerCpuHashMap::<_, u64, u64>::try_from(map)?
            .keys()
            .map(|id| {
                id.map(|id| {
                    let enabled = CgroupEntry {
                        mode: MODE_ENABLED,
                        upgraded: 0,
                    };
                    (id, enabled)
                })
            })
            .collect()
    })?;
    let v2 = read(dir, V2_CGROUPS_PIN, |map| {
        HashMap::<_, u64, CgroupEntry>::try_from(map)?
            .iter()
            .map(|e| {
                e.map(|(id, entry)| {
                    (
                        id,
                        CgroupEntry {
                            upgraded: 0,
                            ..entry
                        },
                    )
                })
            })
            .collect()
    })?;
    Ok(match (v1, v2) {
        (None, None) => None,
        (v1, v2) => Some(v1.into_iter().chain(v2).flatten().collect()),
    })
}

/// What `entries` reads from the map pinned at `dir/name`, or `None` if nothing is pinned there.
fn read(
    dir: &Path,
    name: &str,
    entries: impl FnOnce(Map) -> Result<Vec<(u64, CgroupEntry)>, aya::maps::MapError>,
) -> Result<Option<Vec<(u64, CgroupEntry)>>, EbpfError> {
    let pin = dir.join(name);
    let err = |source| EbpfError::Bpffs {
        path: pin.clone(),
        source,
    };
    match fs::symlink_metadata(&pin) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    }
    MapData::from_pin(&pin)
        .and_then(Map::from_map_data)
        .and_then(entries)
        .map(Some)
        .map_err(|e| err(io::Error::other(e)))
}

/// Removes the older layouts' pins.
pub(super) fn remove_older(dir: &Path) -> Result<(), EbpfError> {
    super::remove_pins(dir, &PINS).map(|_| ())
}
