//! `mptcpctl connections` and `mptcpctl top`: the daemon's connections, their subflows and
//! figures, read over D-Bus; `top` redraws them once a second.

use std::time::Duration;

use mptcpd_common::dbus::{Judgement, NO_ID, Subflow};
use serde_json::{Value, json};

use super::{
    bus::{self, Listed},
    exec::CtlError,
    iface,
};

/// How often `top` redraws.
const REFRESH: Duration = Duration::from_secs(1);

/// ANSI: cursor home, clear the screen.
const CLEAR: &str = "\x1b[H\x1b[2J";

/// `mptcpctl connections [--json]`.
pub(crate) async fn list(json: bool, out: &mut impl std::io::Write) -> Result<(), CtlError> {
    let bus = bus::connect().await?;
    let listed = bus::connections(&bus).await?;
    if json {
        for connection in &listed {
            writeln!(out, "{}", connection_json(connection))?;
        }
    } else {
        write!(out, "{}", text(&listed, Health::Why))?;
    }
    Ok(())
}

/// How a subflow line shows the judged health of its local address (when not healthy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// `(health: degraded: <figures>; <action>)`: why it is backup (`connections`).
    Why,
    /// `[degraded]`: a mark (`top`, where lines must stay short).
    Mark,
}

/// `mptcpctl top`: redraws every [`REFRESH`], `iterations` times or until stopped.
pub(crate) async fn top(
    iterations: Option<u64>,
    out: &mut impl std::io::Write,
) -> Result<(), CtlError> {
    let bus = bus::connect().await?;
    let mut drawn = 0_u64;
    loop {
        let listed = bus::connections(&bus).await?;
        write!(
            out,
            "{CLEAR}mptcpctl top: {} MPTCP connection(s), every {}s\n\n{}",
            listed.len(),
            REFRESH.as_secs(),
            text(&listed, Health::Mark)
        )?;
        out.flush()?;
        drawn += 1;
        if iterations.is_some_and(|n| drawn >= n) {
            return Ok(());
        }
        tokio::time::sleep(REFRESH).await;
    }
}

/// An address id, `-` when the kernel did not say.
fn id(id: i16) -> String {
    if id == NO_ID {
        "-".to_owned()
    } else {
        id.to_string()
    }
}

fn id_json(id: i16) -> Value {
    if id == NO_ID { Value::Null } else { id.into() }
}

fn interface(index: u32) -> Option<String> {
    if index == 0 {
        return None;
    }
    i32::try_from(index)
        .ok()
        .and_then(iface::name)
        .or_else(|| Some(format!("if{index}")))
}

/// The judgement of the subflow's local address, if a plugin judged it.
fn judgement<'a>(c: &'a Listed, s: &Subflow) -> Option<&'a Judgement> {
    let addr: std::net::SocketAddr = s.local.parse().ok()?;
    c.path_health.get(&addr.ip().to_canonical().to_string())
}

/// The text view: a line per connection, an indented line per subflow.
fn text(listed: &[Listed], health: Health) -> String {
    use std::fmt::Write as _;
    let mut text = String::new();
    for c in listed {
        let _ok = writeln!(
            text,
            "connection {}: {} -> {} {}{}",
            c.number,
            c.local,
            c.remote,
            if c.server_side { "server" } else { "client" },
            if c.established { " established" } else { "" },
        );
        for s in &c.subflows {
            let _ok = writeln!(text, "  {}", subflow_text(s, judgement(c, s), health));
        }
    }
    text
}

fn subflow_text(s: &Subflow, judged: Option<&Judgement>, health: Health) -> String {
    use std::fmt::Write as _;
    let mut line = format!(
        "subflow {} -> {} id {}/{}",
        s.local,
        s.remote,
        id(s.local_id),
        id(s.remote_id)
    );
    if let Some(dev) = interface(s.if_index) {
        let _ok = write!(line, " dev {dev}");
    }
    if s.backup {
        line.push_str(" backup");
    }
    if let Some(j) = judged.filter(|j| j.state != "healthy") {
        let _ok = match health {
            Health::Why => write!(line, " (health: {}: {})", j.state, j.reason),
            Health::Mark => write!(line, " [{}]", j.state),
        };
    }
    if s.has_figures {
        let f = &s.figures;
        let _ok = write!(
            line,
            " rtt {:.1}ms rttvar {:.1}ms cwnd {} acked {} received {} retrans {} rtos {}",
            f64::from(f.srtt_us) / 1000.0,
            f64::from(f.rttvar_us) / 1000.0,
            f.snd_cwnd,
            f.bytes_acked,
            f.bytes_received,
            f.retransmissions,
            f.rtos
        );
    } else {
        line.push_str(" (no figures)");
    }
    line
}

fn connection_json(c: &Listed) -> Value {
    json!({
        "connection": c.number,
        "local": c.local,
        "remote": c.remote,
        "server_side": c.server_side,
        "established": c.established,
        "subflows": c
            .subflows
            .iter()
            .map(|s| subflow_json(s, judgement(c, s)))
            .collect::<Vec<_>>(),
    })
}

fn subflow_json(s: &Subflow, judged: Option<&Judgement>) -> Value {
    let f = &s.figures;
    json!({
        "local": s.local,
        "remote": s.remote,
        "local_id": id_json(s.local_id),
        "remote_id": id_json(s.remote_id),
        "dev": interface(s.if_index),
        "backup": s.backup,
        "health": judged.map(|j| json!({ "state": j.state, "reason": j.reason })),
        "figures": s.has_figures.then(|| json!({
            "srtt_us": f.srtt_us,
            "rttvar_us": f.rttvar_us,
            "snd_cwnd": f.snd_cwnd,
            "bytes_acked": f.bytes_acked,
            "bytes_received": f.bytes_received,
            "retransmissions": f.retransmissions,
            "rtos": f.rtos,
        })),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use mptcpd_common::dbus::Figures;

    use super::*;

    fn listed(figures: bool) -> Listed {
        Listed {
            path_health: HashMap::new(),
            number: 3,
            local: "192.0.2.1:40000".into(),
            remote: "198.51.100.2:80".into(),
            server_side: false,
            established: true,
            subflows: vec![Subflow {
                local: "192.0.2.1:40000".into(),
                remote: "198.51.100.2:80".into(),
                local_id: 0,
                remote_id: NO_ID,
                if_index: 0,
                backup: true,
                has_figures: figures,
                figures: Figures {
                    srtt_us: 20_500,
                    bytes_acked: 7,
                    ..Figures::default()
                },
            }],
        }
    }

    #[test]
    fn text_names_connections_subflows_and_figures() {
        assert_eq!(
            text(&[listed(true)], Health::Why),
            "connection 3: 192.0.2.1:40000 -> 198.51.100.2:80 client established\n  \
             subflow 192.0.2.1:40000 -> 198.51.100.2:80 id 0/- backup rtt 20.5ms rttvar 0.0ms \
             cwnd 0 acked 7 received 0 retrans 0 rtos 0\n"
        );
        assert!(text(&[listed(false)], Health::Why).contains("(no figures)"));
    }

    #[test]
    fn a_judged_path_says_why_it_is_backup_and_top_marks_it() {
        let mut c = listed(false);
        c.path_health.insert(
            "192.0.2.1".into(),
            Judgement {
                state: "degraded".into(),
                reason: "4/4 subflows bad; endpoint 2 set backup".into(),
            },
        );
        assert!(
            text(std::slice::from_ref(&c), Health::Why).contains(
                " backup (health: degraded: 4/4 subflows bad; endpoint 2 set backup) (no figures)"
            ),
            "{}",
            text(std::slice::from_ref(&c), Health::Why)
        );
        assert!(text(std::slice::from_ref(&c), Health::Mark).contains(" backup [degraded] "));
        let value = connection_json(&c);
        assert_eq!(value["subflows"][0]["health"]["state"], "degraded");
        // Judged healthy again: nothing in the text, the judgement in the JSON.
        c.path_health.get_mut("192.0.2.1").unwrap().state = "healthy".into();
        assert!(!text(std::slice::from_ref(&c), Health::Why).contains("health"));
        assert_eq!(
            connection_json(&c)["subflows"][0]["health"]["state"],
            "healthy"
        );
        assert_eq!(
            connection_json(&listed(false))["subflows"][0]["health"],
            Value::Null
        );
    }

    #[test]
    fn json_has_no_token_and_null_for_the_unknown() {
        let value = connection_json(&listed(false));
        assert!(value.get("token").is_none());
        assert_eq!(value["subflows"][0]["remote_id"], Value::Null);
        assert_eq!(value["subflows"][0]["figures"], Value::Null);
        let value = connection_json(&listed(true));
        assert_eq!(value["subflows"][0]["figures"]["srtt_us"], 20_500);
    }
}
