//! The targets in the normal test build: every seed and every committed corpus input, then a
//! bounded number of fresh mutations of them (seeded, printed, `MPTCPD_SEED=N` replays).

use std::{
    fs,
    io::Write as _,
    panic::{self, AssertUnwindSafe},
    path::{Path, PathBuf},
};

use fastrand::Rng;

use crate::{Target, mutate, pm, target};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed corpus of `name`, sorted.
fn corpus(name: &str) -> Vec<Vec<u8>> {
    let Ok(entries) = fs::read_dir(dir().join("corpus").join(name)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .collect()
}

fn seed(test: &str) -> u64 {
    let seed = std::env::var("MPTCPD_SEED").map_or_else(
        |_| fastrand::u64(..),
        |s| {
            s.parse()
                .unwrap_or_else(|_| panic!("MPTCPD_SEED={s:?} is not a number"))
        },
    );
    // The real stderr: libtest captures only the print macros.
    let _ignored = writeln!(
        std::io::stderr(),
        "seed: {test}: {seed} (replay with `MPTCPD_SEED={seed} cargo test -p mptcpd-fuzz {test}`)"
    );
    seed
}

/// Runs `input`; on a finding, keeps it under the target directory and says where.
fn run_one(target: &Target, input: &[u8], origin: &str) {
    if panic::catch_unwind(AssertUnwindSafe(|| (target.run)(input))).is_ok() {
        return;
    }
    // Beside the build: TARGET_DIR/debug/deps/TEST -> TARGET_DIR/fuzz-findings/NAME.
    let exe = std::env::current_exe().unwrap_or_default();
    let out = exe
        .ancestors()
        .nth(3)
        .unwrap_or_else(|| Path::new("."))
        .join("fuzz-findings")
        .join(target.name);
    let kept = fs::create_dir_all(&out).and_then(|()| {
        let path = out.join(format!("{:016x}", fastrand::u64(..)));
        fs::write(&path, input).map(|()| path)
    });
    panic!(
        "{}: {origin} fails ({} bytes, kept as {:?}); once fixed, add it to \
         tests/fuzz/corpus/{}/",
        target.name,
        input.len(),
        kept.map_err(|e| e.to_string()),
        target.name
    );
}

/// Seeds, corpus, then `fresh` mutations; returns the inputs it started from and the random
/// source, for more.
fn replay(name: &str, fresh: usize) -> (Vec<Vec<u8>>, Rng) {
    let target = target(name).expect("a target");
    let mut inputs = (target.seeds)();
    inputs.extend(corpus(name));
    for (index, input) in inputs.iter().enumerate() {
        run_one(target, input, &format!("seed or corpus input {index}"));
    }
    let dict = mutate::dictionary(&dir().join("dicts").join(format!("{name}.dict")));
    let test = format!("replay_{name}");
    let mut rng = Rng::with_seed(seed(&test));
    for round in 0..fresh {
        let mut input = inputs[rng.usize(..inputs.len())].clone();
        mutate::mutate(&mut rng, &mut input, &inputs, &dict);
        run_one(target, &input, &format!("fresh input {round}"));
    }
    (inputs, rng)
}

#[test]
fn replay_pm() {
    const ROUNDS: usize = 60_000;
    let (inputs, mut rng) = replay("pm", ROUNDS);
    assert!(inputs.len() >= 60, "the captured fixtures are seeds");
    // Well-framed messages with random attributes reach the attribute decoders.
    let target = target("pm").expect("a target");
    let mut decoded = 0_usize;
    for round in 0..ROUNDS {
        let input = pm::framed(&mut rng);
        decoded += usize::from(
            mptcp_pm::wire::decode_message::<mptcp_pm::wire::PmMessage>(&input).is_ok(),
        );
        run_one(target, &input, &format!("framed input {round}"));
    }
    assert!(
        decoded > ROUNDS / 10,
        "only {decoded} framed inputs decoded"
    );
}

#[test]
fn replay_rtnetlink() {
    let _replayed = replay("rtnetlink", 20_000);
}

#[test]
fn replay_diag() {
    let (inputs, _) = replay("diag", 20_000);
    assert!(inputs.len() >= 10, "the captured replies are seeds");
}

#[test]
fn replay_state() {
    let _replayed = replay("state", 20_000);
}

#[test]
fn replay_config() {
    // Each input goes through clap once or twice: about 100 µs in a debug build.
    let _replayed = replay("config", 5_000);
}

#[test]
fn replay_cli() {
    let _replayed = replay("cli", 5_000);
}

/// Every target has a libFuzzer binary and a test here.
#[test]
fn every_target_is_built_and_replayed() {
    let manifest = fs::read_to_string(dir().join("Cargo.toml")).expect("the manifest");
    let here = include_str!("replay.rs");
    for target in crate::TARGETS {
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "{} is not a [[bin]] in Cargo.toml",
            target.name
        );
        assert!(
            dir()
                .join("fuzz_targets")
                .join(format!("{}.rs", target.name))
                .is_file(),
            "fuzz_targets/{}.rs is missing",
            target.name
        );
        assert!(
            here.contains(&format!("fn replay_{}()", target.name)),
            "no replay test for {}",
            target.name
        );
    }
}
