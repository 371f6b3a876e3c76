//! Ctrl-C for long-running harness users (the lab): a flag set by SIGINT or SIGTERM that every
//! harness wait checks, so an interrupted run unwinds through its guards and cleans up.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use anyhow::bail;

static FLAG: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Makes SIGINT and SIGTERM set the flag instead of killing the process.
pub fn install() -> std::io::Result<()> {
    let flag = FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(flag))?;
    }
    Ok(())
}

/// Fails if a signal arrived since [`install`].
pub fn check() -> anyhow::Result<()> {
    if FLAG.get().is_some_and(|f| f.load(Ordering::SeqCst)) {
        bail!("interrupted");
    }
    Ok(())
}
