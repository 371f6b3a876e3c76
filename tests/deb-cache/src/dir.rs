//! Where the cache lives: `$MPTCPD_CACHE_DIR`, else `${XDG_CACHE_HOME:-$HOME/.cache}/mptcpd-rs`.

use std::{ffi::OsString, path::PathBuf};

use crate::Error;

/// Names the cache directory itself (no `mptcpd-rs` appended).
pub const CACHE_DIR_ENV: &str = "MPTCPD_CACHE_DIR";

/// The cache directory of this environment (not created here).
pub fn cache_dir() -> Result<PathBuf, Error> {
    cache_dir_from(|name| std::env::var_os(name))
}

/// [`cache_dir`] with the environment read through `var`. Empty values count as unset, as
/// the XDG base directory specification says; relative ones are refused, as xtask and the
/// tests run from different directories and would then use different caches.
pub(crate) fn cache_dir_from(var: impl Fn(&str) -> Option<OsString>) -> Result<PathBuf, Error> {
    let set = |name: &'static str| -> Result<Option<PathBuf>, Error> {
        match var(name).filter(|v| !v.is_empty()).map(PathBuf::from) {
            Some(path) if path.is_relative() => Err(Error::BadCacheDir {
                name,
                value: path,
                why: "not an absolute path",
            }),
            other => Ok(other),
        }
    };
    if let Some(dir) = set(CACHE_DIR_ENV)? {
        return Ok(dir);
    }
    let base = match set("XDG_CACHE_HOME")? {
        Some(dir) => dir,
        None => set("HOME")?.ok_or(Error::NoCacheDir)?.join(".cache"),
    };
    Ok(base.join("mptcpd-rs"))
}

#[cfg(test)]
mod tests {
    use std::{collections::HashMap, path::Path};

    use super::*;

    fn resolve(vars: &[(&str, &str)]) -> Result<PathBuf, Error> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        cache_dir_from(|name| vars.get(name).map(OsString::from))
    }

    #[test]
    fn the_override_wins_then_xdg_then_home() {
        let all = [
            ("MPTCPD_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(resolve(&all).unwrap(), Path::new("/c"));
        assert_eq!(resolve(&all[1..]).unwrap(), Path::new("/x/mptcpd-rs"));
        assert_eq!(
            resolve(&all[2..]).unwrap(),
            Path::new("/h/.cache/mptcpd-rs")
        );
    }

    #[test]
    fn empty_values_are_unset() {
        let vars = [
            ("MPTCPD_CACHE_DIR", ""),
            ("XDG_CACHE_HOME", ""),
            ("HOME", "/h"),
        ];
        assert_eq!(resolve(&vars).unwrap(), Path::new("/h/.cache/mptcpd-rs"));
        assert!(matches!(resolve(&[("HOME", "")]), Err(Error::NoCacheDir)));
    }

    #[test]
    fn relative_directories_are_refused() {
        let err = resolve(&[("MPTCPD_CACHE_DIR", "cache"), ("HOME", "/h")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "MPTCPD_CACHE_DIR=\"cache\": not an absolute path"
        );
        assert!(resolve(&[("XDG_CACHE_HOME", "x"), ("HOME", "/h")]).is_err());
    }
}
