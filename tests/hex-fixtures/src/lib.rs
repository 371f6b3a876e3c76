//! Captured kernel messages as the unit tests, fuzz seeds and replays read them: `NAME.hex`
//! files of `#` comment lines, then hex bytes (each fixture directory's README.md says how
//! they were captured). One reader for the `mptcp_pm`, `sock_diag` and rtnetlink fixtures.

use std::{fs, path::Path};

/// The bytes of `DIR/NAME.hex`.
///
/// # Panics
/// If it cannot be read or holds something else than hex bytes (a test helper: the test
/// fails).
#[must_use]
pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(format!("{name}.hex"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|byte| {
            u8::from_str_radix(byte, 16)
                .unwrap_or_else(|e| panic!("{}: {byte:?}: {e}", path.display()))
        })
        .collect()
}

/// Every fixture of `dir`, by name (without `.hex`), in name order.
///
/// # Panics
/// If the directory or a fixture cannot be read (see [`read`]).
#[must_use]
pub fn all(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            Some(name.strip_suffix(".hex")?.to_owned())
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let bytes = read(dir, &name);
            (name, bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::{all, read};

    #[test]
    fn comments_are_skipped_and_bytes_read_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.hex"), "# a comment 00\n01 ff\n10\n").unwrap();
        fs::write(dir.path().join("a.hex"), "# nothing\n").unwrap();
        fs::write(dir.path().join("README.md"), "not a fixture").unwrap();
        assert_eq!(read(dir.path(), "b"), [0x01, 0xff, 0x10]);
        assert_eq!(
            all(dir.path()),
            [
                ("a".to_owned(), vec![]),
                ("b".to_owned(), vec![0x01, 0xff, 0x10])
            ]
        );
    }
}
