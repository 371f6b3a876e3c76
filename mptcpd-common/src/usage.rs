//! Bad usage in one line, for the `mptcpctl` and `mptcpize` binaries: clap's message without
//! its usage block.

use std::process::ExitCode;

use clap::error::ErrorKind;

/// Parses the command line of `program`. `--help` and `--version` print and exit 0; bad usage
/// is one line on stderr and `Err` with exit status 2 (clap's).
pub fn parse<T: clap::Parser>(program: &str) -> Result<T, ExitCode> {
    match T::try_parse() {
        Ok(args) => Ok(args),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) => {
            eprintln!("{program}: {} ({program} --help)", one_line(&e));
            Err(ExitCode::from(2))
        }
    }
}

/// What clap found wrong, on one line, without `error: ` and the usage block that follows.
#[must_use]
pub fn one_line(error: &clap::Error) -> String {
    let text = error.render().to_string();
    let what: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty())
        .collect();
    what.join(" ").trim_start_matches("error: ").to_owned()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::one_line;

    /// An option like mptcpctl's `--id` (an endpoint id, 1..=255).
    #[derive(Debug, clap::Parser)]
    struct Args {
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..))]
        id: u8,
    }

    #[test]
    fn a_range_error_is_one_line_naming_the_option() {
        let error = Args::try_parse_from(["mptcpctl", "--id", "0"]).expect_err("id 0");
        let line = one_line(&error);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.contains("--id"), "{line}");
        assert!(line.contains("1..=255"), "{line}");
    }
}
