//! The apt and dpkg commands: which archives `apt-get download` would fetch, fetching them,
//! unpacking one.

use std::{path::Path, process::Command};

use crate::Error;

/// The file names of the archives `apt-get download packages` fetches now, sorted (no
/// download: `--print-uris` reads the local package lists).
pub(crate) fn archive_names(packages: &[&str]) -> Result<Vec<String>, Error> {
    let text = with_lists(|| {
        output(
            Command::new("apt-get")
                .args(["download", "--print-uris", "-q"])
                .args(packages),
        )
    })?;
    Ok(parse_uris(&text))
}

/// Downloads the archives of `packages` into `dir`.
pub(crate) fn download(dir: &Path, packages: &[&str]) -> Result<(), Error> {
    with_lists(|| {
        output(
            Command::new("apt-get")
                .args(["download", "-q"])
                .args(packages)
                .current_dir(dir),
        )
    })
    .map(drop)
}

/// Unpacks the archive `deb` into `dest`.
pub(crate) fn unpack(deb: &Path, dest: &Path) -> Result<(), Error> {
    output(Command::new("dpkg-deb").arg("-x").arg(deb).arg(dest)).map(drop)
}

/// `apt-get --print-uris` lines: `'URI' FILE_NAME SIZE HASH`; the names, sorted.
pub(crate) fn parse_uris(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter(|line| line.starts_with('\''))
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

/// Runs `apt`, and again after `apt-get update` if it fails: a fresh machine may have no
/// package lists, an old one stale lists that name archives the mirror no longer has.
fn with_lists(apt: impl Fn() -> Result<String, Error>) -> Result<String, Error> {
    apt().or_else(|_| {
        output(Command::new("apt-get").args(["update", "-q"]))?;
        apt()
    })
}

/// The command's stdout if it exits 0.
fn output(cmd: &mut Command) -> Result<String, Error> {
    let command = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| arg.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = cmd.output().map_err(|e| Error::Command {
        command: command.clone(),
        message: e.to_string(),
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::Command {
            command,
            message: match stderr.trim() {
                "" => out.status.to_string(),
                text => text.to_owned(),
            },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn print_uris_gives_the_file_names_sorted() {
        let text = "\
'http://deb.debian.org/debian/pool/main/m/mptcpd/mptcpd_0.12-1_amd64.deb' mptcpd_0.12-1_amd64.deb 21384 SHA256:dc
'http://deb.debian.org/debian/pool/main/e/ell/libell0_0.56-3_amd64.deb' libell0_0.56-3_amd64.deb 214532 SHA256:19
'http://deb.debian.org/debian/pool/main/v/vim/vim_9.0.1378-2%2bdeb12u2_amd64.deb' vim_2%3a9.0.1378-2+deb12u2_amd64.deb 1 SHA256:29
W: a warning line
";
        assert_eq!(
            parse_uris(text),
            [
                "libell0_0.56-3_amd64.deb",
                "mptcpd_0.12-1_amd64.deb",
                "vim_2%3a9.0.1378-2+deb12u2_amd64.deb"
            ]
        );
    }
}
