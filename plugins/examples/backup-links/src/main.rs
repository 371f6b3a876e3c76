//! `mptcpd-backup-links`: mptcpd (same command line) with the `backup_links` plugin too.
//! Run it with `--load-plugins backup_links` (or `--path-manager backup_links`).

use std::process::ExitCode;

use mptcpd_example_backup_links::BackupLinks;

fn main() -> ExitCode {
    mptcpd::Daemon::builder()
        .plugin(BackupLinks::new(&["wwan", "ppp"]))
        .run()
}
