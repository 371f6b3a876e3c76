//! Output: text close to `ip mptcp`, and JSON values. Pure, so it is tested on values.

use std::fmt::Write as _;

use serde_json::{Value, json};

use mptcp_pm::{Endpoint, Event, Limits, Subflow};

/// `ADDR [port P] id N FLAGS [dev IFNAME]`, as `ip mptcp endpoint show` prints it: the
/// fields of [`endpoint_json`], so both show the same.
#[must_use]
pub(crate) fn endpoint_text(endpoint: &Endpoint, ifname: impl Fn(i32) -> Option<String>) -> String {
    let value = endpoint_json(endpoint, ifname);
    let mut line = value["address"].as_str().unwrap_or("?").to_owned();
    if let Some(port) = value["port"].as_u64() {
        let _written = write!(line, " port {port}");
    }
    let _written = write!(line, " id {}", value["id"]);
    // Space separated, as `ip mptcp` prints them.
    for flag in value["flags"].as_array().into_iter().flatten() {
        let _written = write!(line, " {}", flag.as_str().unwrap_or("?"));
    }
    match (value["dev"].as_str(), value["ifindex"].as_i64()) {
        (Some(dev), _) => {
            let _written = write!(line, " dev {dev}");
        }
        (None, Some(index)) if index > 0 => {
            let _written = write!(line, " dev if{index}");
        }
        _ => {}
    }
    line
}

/// An endpoint as a JSON object (`--json`): its fields, and the interface name where known.
/// (The state file, not this view, is where a new `Endpoint` field must not be missed: it
/// destructures the whole endpoint.)
#[must_use]
pub(crate) fn endpoint_json(endpoint: &Endpoint, ifname: impl Fn(i32) -> Option<String>) -> Value {
    let flags = endpoint.flags.to_string();
    json!({
        "id": endpoint.id,
        "address": endpoint.addr.to_string(),
        "port": endpoint.port,
        "flags": flags.split(',').filter(|w| !w.is_empty()).collect::<Vec<_>>(),
        "dev": endpoint.if_idx.filter(|&i| i > 0).and_then(&ifname),
        "ifindex": endpoint.if_idx,
    })
}

/// `add_addr_accepted N subflows N`, as `ip mptcp limits show` prints it.
#[must_use]
pub(crate) fn limits_text(limits: Limits) -> String {
    let Limits {
        add_addr_accepted,
        subflows,
    } = limits;
    format!("add_addr_accepted {add_addr_accepted} subflows {subflows}")
}

/// `{"add_addr_accepted": N, "subflows": N}`.
#[must_use]
pub(crate) fn limits_json(limits: Limits) -> Value {
    let Limits {
        add_addr_accepted,
        subflows,
    } = limits;
    json!({ "add_addr_accepted": add_addr_accepted, "subflows": subflows })
}

/// One line per event: `[KIND] token=... key=value ...`.
#[must_use]
pub(crate) fn event_text(event: &Event) -> String {
    let value = event_json(event);
    let mut line = format!("[{:>16}]", value["event"].as_str().unwrap_or("?"));
    if let Some(map) = value.as_object() {
        for (key, v) in map.iter().filter(|(k, _)| k.as_str() != "event") {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Null => continue,
                other => other.to_string(),
            };
            let _written = write!(line, " {key}={text}");
        }
    }
    line
}

#[must_use]
pub(crate) fn event_json(event: &Event) -> Value {
    let token = |t: u32| format!("{t:#010x}");
    match event {
        Event::Created(c) | Event::Established(c) => json!({
            "event": if matches!(event, Event::Created(_)) { "CREATED" } else { "ESTABLISHED" },
            "token": token(c.token),
            "local": c.local.to_string(),
            "remote": c.remote.to_string(),
            "local_id": c.local_id,
            "remote_id": c.remote_id,
            "server_side": c.server_side(),
            "deny_join_id0": c.deny_join_id0(),
        }),
        Event::Closed { token: t } => json!({ "event": "CLOSED", "token": token(*t) }),
        Event::Announced(a) => json!({
            "event": "ANNOUNCED",
            "token": token(a.token),
            "remote_id": a.id,
            "address": a.addr.to_string(),
            "port": a.port,
        }),
        Event::Removed {
            token: t,
            remote_id,
        } => {
            json!({ "event": "REMOVED", "token": token(*t), "remote_id": remote_id })
        }
        Event::SubflowEstablished(s) => subflow_json("SF_ESTABLISHED", s),
        Event::SubflowClosed(s) => subflow_json("SF_CLOSED", s),
        Event::SubflowPriority(s) => subflow_json("SF_PRIORITY", s),
        Event::ListenerCreated(l) => {
            json!({ "event": "LISTENER_CREATED", "local": l.local.to_string() })
        }
        Event::ListenerClosed(l) => {
            json!({ "event": "LISTENER_CLOSED", "local": l.local.to_string() })
        }
        Event::Other(raw) => json!({ "event": format!("{:?}", raw.kind) }),
    }
}

fn subflow_json(kind: &str, s: &Subflow) -> Value {
    let Subflow {
        token,
        local,
        remote,
        local_id,
        remote_id,
        backup,
        if_idx,
        error,
        reset_reason,
        reset_flags,
    } = s;
    json!({
        "event": kind,
        "token": format!("{token:#010x}"),
        "local": local.to_string(),
        "remote": remote.to_string(),
        "local_id": local_id,
        "remote_id": remote_id,
        "backup": backup,
        "ifindex": if_idx,
        "error": error,
        "reset_reason": reset_reason,
        "reset_flags": reset_flags,
    })
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::{endpoint_json, endpoint_text, event_json, event_text, limits_text};
    use mptcp_pm::{
        Connection, Endpoint, EndpointFlags, Event, EventFlags, Limits, Subflow, SubflowPath,
    };
    use mptcpd_plugin::testing;

    fn endpoint() -> Endpoint {
        Endpoint::new(
            "198.51.100.1".parse().unwrap(),
            EndpointFlags::SUBFLOW | EndpointFlags::BACKUP,
        )
        .with_id(3)
        .with_if_idx(4)
    }

    #[test]
    fn endpoints_read_like_ip_mptcp() {
        let name = |i| (i == 4).then(|| "c-b".to_owned());
        assert_eq!(
            endpoint_text(&endpoint(), name),
            "198.51.100.1 id 3 subflow backup dev c-b"
        );
        let signal = Endpoint::new("2001:db8::1".parse().unwrap(), EndpointFlags::SIGNAL)
            .with_id(1)
            .with_port(8080);
        assert_eq!(
            endpoint_text(&signal, |_| None),
            "2001:db8::1 port 8080 id 1 signal"
        );
        assert_eq!(
            endpoint_text(&endpoint(), |_| None),
            "198.51.100.1 id 3 subflow backup dev if4",
            "an interface without a name here"
        );
        let value = endpoint_json(&endpoint(), name);
        assert_eq!(value["flags"], serde_json::json!(["subflow", "backup"]));
        assert_eq!(value["dev"], "c-b");
        assert_eq!(value["port"], serde_json::Value::Null);
    }

    #[test]
    fn limits_read_like_ip_mptcp() {
        let limits = Limits {
            add_addr_accepted: 2,
            subflows: 4,
        };
        assert_eq!(limits_text(limits), "add_addr_accepted 2 subflows 4");
    }

    #[test]
    fn subflow_events_carry_every_field() {
        let sf = Subflow {
            if_idx: Some(3),
            ..testing::subflow(SubflowPath {
                token: 0xabc,
                local: "198.51.100.1:40000".parse::<SocketAddr>().unwrap(),
                remote: "192.0.2.2:5201".parse::<SocketAddr>().unwrap(),
            })
        };
        let event = Event::SubflowEstablished(sf);
        let value = event_json(&event);
        assert_eq!(value["event"], "SF_ESTABLISHED");
        assert_eq!(value["token"], "0x00000abc");
        assert_eq!(value["local"], "198.51.100.1:40000");
        let text = event_text(&event);
        assert!(text.starts_with("[  SF_ESTABLISHED] "), "{text}");
        assert!(text.contains(" local=198.51.100.1:40000"), "{text}");
        assert!(
            !text.contains("error="),
            "absent fields are left out: {text}"
        );
        assert_eq!(event_json(&Event::Closed { token: 1 })["event"], "CLOSED");
    }

    #[test]
    fn connection_events_say_which_side_accepted_and_whether_joins_to_id0_are_denied() {
        let conn = Connection {
            token: 0xabc,
            local: "192.0.2.1:40000".parse::<SocketAddr>().unwrap(),
            remote: "192.0.2.2:5201".parse::<SocketAddr>().unwrap(),
            local_id: Some(0),
            remote_id: Some(0),
            flags: EventFlags::DENY_JOIN_ID0,
        };
        let value = event_json(&Event::Established(conn));
        assert_eq!(
            (&value["server_side"], &value["deny_join_id0"]),
            (&serde_json::json!(false), &serde_json::json!(true))
        );
        assert!(event_text(&Event::Created(conn)).contains(" deny_join_id0=true"));
    }
}
