//! `cargo xtask bench churn`: builds our daemon and `mptcpd-bench` (release) and runs its
//! `churn` benchmark (ours, the C mptcpd fetched by the harness, and the `ip` floor), which
//! prints the table and writes `target/bench/churn.json`. With `--feature-sets` it first builds
//! the daemon without each optional part too, and the small build for routers (`release-small`
//! without the optional parts), and measures those builds beside the default one.

use std::fs;

use crate::{cmd, workspace};

#[derive(Debug, clap::Args)]
pub(crate) struct ChurnArgs {
    /// Add-then-delete cycles of 8 addresses per subject (each ~0.1 s: deletes are slow in the
    /// kernel).
    #[arg(long, default_value_t = 200)]
    cycles: usize,
    /// Also build and measure the daemon without D-Bus, without metrics, without both, and the
    /// router build (`--profile release-small`, neither) (each a release build of its own:
    /// minutes).
    #[arg(long)]
    feature_sets: bool,
}

/// The builds besides the default one: a name, the features they keep and the profile.
const FEATURE_SETS: &[(&str, &str, &str)] = &[
    ("no-dbus", "metrics", "release"),
    ("no-metrics", "dbus", "release"),
    ("neither", "", "release"),
    ("router", "", "release-small"),
];

pub(crate) fn run(args: &ChurnArgs) -> anyhow::Result<()> {
    let target = workspace::target_dir();
    let release = target.join("release").join("mptcpd");
    let mut daemons = Vec::new();
    if args.feature_sets {
        for (name, features, profile) in FEATURE_SETS {
            cmd::run(
                cmd::cargo()
                    .args([
                        "build",
                        "--profile",
                        profile,
                        "-p",
                        "mptcpd",
                        "--bin",
                        "mptcpd",
                    ])
                    .args(["--no-default-features", "--features", features]),
            )?;
            let dir = target.join("bench").join("churn-builds").join(name);
            fs::create_dir_all(&dir)?;
            let copy = dir.join("mptcpd");
            fs::copy(target.join(profile).join("mptcpd"), &copy)?;
            daemons.push(format!("{name}={}", copy.display()));
        }
    }
    // The default build last, so that target/release holds it again; it is the judged one.
    daemons.insert(0, format!("default={}", release.display()));
    let mut bench_args = vec!["--cycles".to_owned(), args.cycles.to_string()];
    for daemon in daemons {
        bench_args.extend(["--daemon".to_owned(), daemon]);
    }
    let bench_args: Vec<&str> = bench_args.iter().map(String::as_str).collect();
    // The daemon under test runs from beside `mptcpd-bench`.
    super::mptcpd_bench("churn", &["-p", "mptcpd", "--bin", "mptcpd"], &bench_args)
}
