//! `/metrics/snapshot` and the master's flags (shared by `/state` and GET_FLAGS).

use super::{is_registered, Usage};
use crate::master::{Agent, Master, TaskState};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Mesos' `stringify(Duration)`: the largest unit the value reaches, e.g. `15secs`, `10mins`.
pub(in crate::master) fn duration_string(d: Duration) -> String {
    const UNITS: [(f64, &str); 8] = [
        (604_800e9, "weeks"),
        (86_400e9, "days"),
        (3_600e9, "hrs"),
        (60e9, "mins"),
        (1e9, "secs"),
        (1e6, "ms"),
        (1e3, "us"),
        (1.0, "ns"),
    ];
    let ns = d.as_nanos() as f64;
    let (n, unit) = UNITS
        .iter()
        .find(|(n, _)| ns >= *n)
        .copied()
        .unwrap_or((1.0, "ns"));
    format!("{}{unit}", ns / n)
}

/// The master's flags as `/state` and GET_FLAGS report them (string values).
pub(in crate::master) fn flags(m: &Master) -> BTreeMap<&'static str, String> {
    let c = m.config();
    let mut f = BTreeMap::new();
    f.insert("hostname", c.hostname.clone());
    f.insert("port", c.port.to_string());
    f.insert("agent_ping_timeout", duration_string(c.agent_ping_timeout));
    f.insert(
        "max_agent_ping_timeouts",
        c.max_agent_ping_timeouts.to_string(),
    );
    f.insert(
        "agent_reregister_timeout",
        duration_string(c.agent_reregister_timeout),
    );
    if let Some(t) = c.offer_timeout {
        f.insert("offer_timeout", duration_string(t));
    }
    f.insert("authenticate_agents", "false".into());
    f.insert("authenticate_frameworks", "false".into());
    f.insert("authenticate_http_frameworks", "false".into());
    f.insert("authenticate_http_readonly", "false".into());
    f.insert("authenticate_http_readwrite", "false".into());
    f.insert("registry", "kumos".into());
    f.insert("version", "false".into());
    f
}

/// `GET /metrics/snapshot`: the master's gauges and counters, every value an f64.
pub fn metrics_json(m: &Master, now_unix: f64) -> Json {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    let mut put = |k: &str, v: f64| {
        out.insert(format!("master/{k}"), v);
    };
    put("elected", 1.0);
    put("uptime_secs", (now_unix - m.start_time()).max(0.0));
    let agents: Vec<&Agent> = m.agents().filter(|a| is_registered(a)).collect();
    let n = |p: &dyn Fn(&Agent) -> bool| agents.iter().filter(|a| p(a)).count() as f64;
    put("slaves_active", n(&|a| a.active()));
    put("slaves_inactive", n(&|a| !a.active()));
    put("slaves_connected", n(&|a| a.stream.is_some()));
    put("slaves_disconnected", n(&|a| a.stream.is_none()));
    put(
        "slaves_unreachable",
        m.agents().filter(|a| !a.reachable).count() as f64,
    );
    let connected = m.frameworks().filter(|f| f.stream.is_some()).count() as f64;
    let total = m.frameworks().count() as f64;
    put("frameworks_active", connected);
    put("frameworks_inactive", total - connected);
    put("frameworks_connected", connected);
    put("frameworks_disconnected", total - connected);
    put("outstanding_offers", m.offers().count() as f64);
    let states = [
        ("staging", TaskState::Staging),
        ("starting", TaskState::Starting),
        ("running", TaskState::Running),
        ("killing", TaskState::Killing),
        ("unreachable", TaskState::Unreachable),
        ("finished", TaskState::Finished),
        ("failed", TaskState::Failed),
        ("killed", TaskState::Killed),
        ("lost", TaskState::Lost),
        ("error", TaskState::Error),
        ("dropped", TaskState::Dropped),
        ("gone", TaskState::Gone),
    ];
    for (name, st) in states {
        let c = m
            .tasks()
            .chain(m.completed_tasks())
            .filter(|t| t.state == st)
            .count();
        put(&format!("tasks_{name}"), c as f64);
    }
    let u = Usage::of(m);
    for r in ["cpus", "mem", "disk", "gpus"] {
        let total: f64 = agents.iter().map(|a| a.total.scalar(r).as_f64()).sum();
        let used: f64 = agents
            .iter()
            .map(|a| Usage::get(&u.agent_used, &a.id).scalar(r).as_f64())
            .sum();
        put(&format!("{r}_total"), total);
        put(&format!("{r}_used"), used);
        put(
            &format!("{r}_percent"),
            if total > 0.0 { used / total } else { 0.0 },
        );
    }
    json!(out)
}
