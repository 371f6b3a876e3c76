//! Writes a fuzz target's seeds into a directory, for `cargo xtask fuzz` to hand to libFuzzer
//! beside the committed corpus: `mptcpd-fuzz-seeds TARGET DIR`, or `--list` for the targets.

use std::{fs, path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [list] if list == "--list" => {
            for target in mptcpd_fuzz::TARGETS {
                println!("{}", target.name);
            }
            ExitCode::SUCCESS
        }
        [name, dir] => {
            let Some(target) = mptcpd_fuzz::target(name) else {
                eprintln!("mptcpd-fuzz-seeds: no target {name:?} (see --list)");
                return ExitCode::FAILURE;
            };
            let dir = PathBuf::from(dir);
            let written = fs::create_dir_all(&dir).and_then(|()| {
                (target.seeds)()
                    .iter()
                    .enumerate()
                    .try_for_each(|(index, seed)| {
                        fs::write(dir.join(format!("seed-{index:03}")), seed)
                    })
            });
            if let Err(e) = written {
                eprintln!("mptcpd-fuzz-seeds: {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("usage: mptcpd-fuzz-seeds TARGET DIR | --list");
            ExitCode::FAILURE
        }
    }
}
