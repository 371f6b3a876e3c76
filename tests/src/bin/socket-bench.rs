//! `socket-bench LABEL tcp|mptcp N`: the cost of `socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC,
//! PROTO)` + `close()`, through libc's `socket` (so that an `LD_PRELOAD` wrapper interposes).
//! Prints `bench: LABEL NS_PER_OP`, the median of 5 rounds of N/5 calls. For
//! `cargo xtask bench upgrade`.

use std::time::Instant;

use anyhow::{Context as _, bail};

const ROUNDS: u32 = 5;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [label, proto, n] = args.as_slice() else {
        bail!("usage: socket-bench LABEL tcp|mptcp N");
    };
    let protocol = match proto.as_str() {
        "tcp" => 0,
        "mptcp" => 262,
        other => bail!("unknown protocol {other}"),
    };
    let per_round = n.parse::<u32>().context("N")? / ROUNDS;
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..per_round {
            // SAFETY: plain system calls on an fd this loop owns.
            let fd = unsafe {
                libc::socket(
                    libc::AF_INET,
                    libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                    protocol,
                )
            };
            if fd < 0 {
                bail!("socket: {}", std::io::Error::last_os_error());
            }
            // SAFETY: as above.
            unsafe { libc::close(fd) };
        }
        rounds.push(started.elapsed().as_secs_f64() * 1e9 / f64::from(per_round.max(1)));
    }
    rounds.sort_by(f64::total_cmp);
    println!("bench: {label} {:.1}", rounds[rounds.len() / 2]);
    Ok(())
}
