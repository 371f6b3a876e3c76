//! `health`: acts on path health, from the subflow telemetry (see the README).

pub mod decision;
