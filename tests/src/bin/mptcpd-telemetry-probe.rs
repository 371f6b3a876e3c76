//! `mptcpd-telemetry-probe`: mptcpd (same command line) with a `probe` plugin that prints, for
//! each telemetry event of a connection it handles, the event and the connection's view as
//! its handle answers it. The telemetry tests run it with `--load-plugins probe`.

use std::process::ExitCode;

use mptcpd::plugins::api::{BoxFuture, Event, PathManager, Plugin, TelemetryEvent, done};

/// Prints what a plugin learns of path quality.
#[derive(Debug)]
struct Probe;

impl Plugin for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }

    fn description(&self) -> &'static str {
        "prints telemetry events and connection views"
    }

    fn on_event<'a>(&'a self, event: &'a Event, pm: &'a dyn PathManager) -> BoxFuture<'a, ()> {
        if let Event::Telemetry(event) = event {
            eprintln!("{}", line(event, pm));
        }
        done()
    }
}

/// `probe: KIND on LOCAL -> REMOTE; view: N subflows, M with figures[, ...]`.
fn line(event: &TelemetryEvent, pm: &dyn PathManager) -> String {
    let head = format!(
        "probe: {:?} on {} -> {}",
        event.kind, event.local, event.remote
    );
    let Some(view) = pm.connection_view(event.token) else {
        return format!("{head}; view: none");
    };
    let figures = view.subflows.iter().filter(|s| s.figures.is_some()).count();
    let subflows: Vec<String> = view
        .subflows
        .iter()
        .map(|s| {
            let rtos = s.figures.map(|f| f.rtos);
            format!("{} rtos={rtos:?}", s.local)
        })
        .collect();
    format!(
        "{head}; view: {} subflows, {figures} with figures, mptcp {:?} [{}]",
        view.subflows.len(),
        view.mptcp,
        subflows.join(", ")
    )
}

fn main() -> ExitCode {
    mptcpd::Daemon::builder().plugin(Probe).run()
}
