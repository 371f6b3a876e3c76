//! The telemetry sources beyond `sock_ops`: `tp_btf` programs on the reset and scheduler
//! tracepoints of the telemetry object, each loaded only where its hook exists (tried, never
//! guessed from the kernel version). What cannot load is named with why and what is off
//! without it, one entry per source, for the daemon's log.

use aya::{
    Btf, Ebpf,
    programs::{BtfTracePoint, KProbe},
};
use mptcpd_common::{
    Chain,
    telemetry::{
        MPTCP_RETRANS_FUNCTION, MPTCP_RETRANS_PROGRAM, RESET_RECEIVED_PROGRAM, RESET_SENT_PROGRAM,
        RESET_SENT_REASON_PROGRAM, SCHED_PROGRAM,
    },
};

use super::{
    EbpfError,
    object::{program_error, typed_program},
};

/// A telemetry source this kernel lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSource {
    /// The hook, e.g. `tp_btf mptcp_subflow_get_send`.
    pub hook: &'static str,
    /// Why it is missing (the kernel's or aya's words, one line).
    pub why: String,
    /// What is off without it.
    pub off: &'static str,
}

impl std::fmt::Display for MissingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self { hook, why, off } = self;
        write!(f, "no {hook} ({why}): {off}")
    }
}

const SENT_HOOK: &str = "tp_btf tcp_send_reset";
const SENT_OFF: &str = "resets sent are told only from local aborts, without a reason";
const REASON_HOOK: &str = "reason argument of tp_btf tcp_send_reset";
const REASON_OFF: &str = "resets sent carry no reason";
const RECEIVED_HOOK: &str = "tp_btf tcp_receive_reset";
const RECEIVED_OFF: &str = "received resets are not told apart from other aborts";
const SCHED_HOOK: &str = "tp_btf mptcp_subflow_get_send";
const SCHED_OFF: &str = "scheduler counts off";
const RETRANS_HOOK: &str = "mptcpi_retransmits in MPTCP_INFO nor kprobe __mptcp_retrans";
const RETRANS_OFF: &str = "MPTCP-level retransmissions unknown";

/// Where the MPTCP-level retransmission counts come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MptcpRetransSource {
    /// `MPTCP_INFO` has them (Linux 6.5+): no probe.
    MptcpInfo,
    /// The kprobe on `__mptcp_retrans` counts them per token.
    Kprobe,
    /// Neither (a [`MissingSource`] says why).
    None,
}

/// Loads the kprobe on `__mptcp_retrans` only where the kernel's `struct mptcp_info` has no
/// `mptcpi_retransmits` (told by BTF, never by the version).
pub(crate) fn attach_mptcp_retrans(ebpf: &mut Ebpf) -> Result<MptcpRetransSource, MissingSource> {
    let fields = [("mptcp_info", "mptcpi_retransmits", 4)];
    let Err(no_field) = super::upgrade::offsets::running_kernel_fields(fields) else {
        return Ok(MptcpRetransSource::MptcpInfo);
    };
    let result = (|| {
        let prog: &mut KProbe = typed_program(ebpf, MPTCP_RETRANS_PROGRAM)?;
        prog.load().map_err(program_error(MPTCP_RETRANS_PROGRAM))?;
        prog.attach(MPTCP_RETRANS_FUNCTION, 0)
            .map_err(program_error(MPTCP_RETRANS_PROGRAM))?;
        Ok::<_, EbpfError>(())
    })();
    match result {
        Ok(()) => Ok(MptcpRetransSource::Kprobe),
        Err(e) => Err(MissingSource {
            hook: RETRANS_HOOK,
            why: format!("MPTCP_INFO: {no_field}; the kprobe: {}", one_line(&e)),
            off: RETRANS_OFF,
        }),
    }
}

/// Loads and attaches every source the kernel has (the links live as long as `ebpf`); returns
/// the ones it has not.
pub(crate) fn attach(ebpf: &mut Ebpf) -> Vec<MissingSource> {
    let btf = match Btf::from_sys_fs() {
        Ok(btf) => btf,
        Err(e) => {
            let why = one_line(&EbpfError::Btf(e));
            return [
                (SENT_HOOK, SENT_OFF),
                (RECEIVED_HOOK, RECEIVED_OFF),
                (SCHED_HOOK, SCHED_OFF),
            ]
            .into_iter()
            .map(|(hook, off)| MissingSource {
                hook,
                why: why.clone(),
                off,
            })
            .collect();
        }
    };
    let mut missing = Vec::new();
    // With the reason first; a kernel before 6.10 refuses its third argument.
    if let Err(with_reason) = attach_one(ebpf, &btf, RESET_SENT_REASON_PROGRAM, "tcp_send_reset") {
        let found = match attach_one(ebpf, &btf, RESET_SENT_PROGRAM, "tcp_send_reset") {
            Ok(()) => MissingSource {
                hook: REASON_HOOK,
                why: format!("Linux 6.10+; the verifier: {with_reason}"),
                off: REASON_OFF,
            },
            Err(why) => MissingSource {
                hook: SENT_HOOK,
                why,
                off: SENT_OFF,
            },
        };
        missing.push(found);
    }
    for (program, tracepoint, hook, off) in [
        (
            RESET_RECEIVED_PROGRAM,
            "tcp_receive_reset",
            RECEIVED_HOOK,
            RECEIVED_OFF,
        ),
        (
            SCHED_PROGRAM,
            "mptcp_subflow_get_send",
            SCHED_HOOK,
            SCHED_OFF,
        ),
    ] {
        if let Err(why) = attach_one(ebpf, &btf, program, tracepoint) {
            missing.push(MissingSource { hook, why, off });
        }
    }
    missing
}

/// Loads `program` against `tracepoint` and attaches it; the error in one line.
fn attach_one(
    ebpf: &mut Ebpf,
    btf: &Btf,
    program: &'static str,
    tracepoint: &str,
) -> Result<(), String> {
    let result = (|| {
        let prog: &mut BtfTracePoint = typed_program(ebpf, program)?;
        prog.load(tracepoint, btf).map_err(program_error(program))?;
        prog.attach().map_err(program_error(program))?;
        Ok::<_, EbpfError>(())
    })();
    result.map_err(|e| one_line(&e))
}

/// An error chain in one line: a verifier log is many; its first line and the last that says
/// something (not the statistics) are kept.
fn one_line(error: &EbpfError) -> String {
    let text = Chain(error).to_string();
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_owned();
    let last = lines.rfind(|l| {
        !(l.starts_with("processed")
            || l.starts_with("verification time")
            || l.starts_with("stack depth"))
    });
    match last {
        Some(last) => format!("{first} ... {last}"),
        None => first,
    }
}

#[cfg(test)]
mod tests {
    use super::MissingSource;

    #[test]
    fn a_missing_source_is_one_line_naming_hook_why_and_what_is_off() {
        let missing = MissingSource {
            hook: super::SCHED_HOOK,
            why: "no BTF type btf_trace_mptcp_subflow_get_send".to_owned(),
            off: super::SCHED_OFF,
        };
        assert_eq!(
            missing.to_string(),
            "no tp_btf mptcp_subflow_get_send (no BTF type btf_trace_mptcp_subflow_get_send): \
             scheduler counts off"
        );
    }
}
