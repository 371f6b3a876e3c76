//! Fault injection: the same tests run bounded in `cargo xtask test` and longer in
//! `cargo xtask soak` (which sets `MPTCPD_SOAK=1`). Fault-injection tests live in
//! `tests/tests/faults_*.rs`; every random choice comes from [`Faults::rng`], whose seed is
//! printed and can be given back with `cargo xtask soak --seed N` (`MPTCPD_SEED=N`).

use std::io::Write as _;

/// How hard a fault-injection test pushes, and its random source.
#[derive(Debug)]
pub struct Faults {
    soak: bool,
    seed: u64,
}

impl Faults {
    /// For `test`: reads `MPTCPD_SOAK` and `MPTCPD_SEED` (a fresh seed when absent) and
    /// prints `seed: TEST: N` on stderr, so a failure can be replayed.
    ///
    /// # Panics
    /// If `MPTCPD_SEED` is set but is not a number.
    #[must_use]
    pub fn new(test: &str) -> Self {
        let soak = std::env::var("MPTCPD_SOAK").is_ok_and(|v| v == "1" || v == "true");
        let seed = std::env::var("MPTCPD_SEED").map_or_else(
            |_| fastrand::u64(..),
            |s| {
                s.parse()
                    .unwrap_or_else(|_| panic!("MPTCPD_SEED={s:?} is not a number"))
            },
        );
        // The real stderr: libtest captures only the print macros.
        let replay = if soak {
            format!("soak; replay with `cargo xtask soak --seed {seed} {test}`")
        } else {
            format!("bounded; replay with `MPTCPD_SEED={seed} cargo xtask test --no-vm {test}`")
        };
        let _ignored = writeln!(std::io::stderr(), "seed: {test}: {seed} ({replay})");
        Self { soak, seed }
    }

    /// Whether this is the long run (`cargo xtask soak`).
    #[must_use]
    pub const fn soak(&self) -> bool {
        self.soak
    }

    /// `bounded` in `cargo xtask test`, `soak` in `cargo xtask soak`.
    #[must_use]
    pub const fn rounds(&self, bounded: usize, soak: usize) -> usize {
        if self.soak { soak } else { bounded }
    }

    /// The seed.
    #[must_use]
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// A generator from the seed (each call starts the same sequence).
    #[must_use]
    pub fn rng(&self) -> fastrand::Rng {
        fastrand::Rng::with_seed(self.seed)
    }
}
