//! The v0 read-only endpoints in Mesos 1.11's JSON shapes: `/state` (`/master/state.json`),
//! `/slaves`, `/master/frameworks`, `/tasks` and `/metrics/snapshot`. Pure functions of the
//! master's state: the HTTP layer serves what they return.
//!
//! Shapes follow Mesos' `src/master/readonly_handler.cpp` (`SlaveWriter`, `FullFrameworkWriter`)
//! and `src/common/http.cpp` (`json(Task)`, `json(TaskStatus)`, the resource map writer).

use super::{Agent, Framework, Master, Task, TaskState, MESOS_VERSION};
use crate::resources::{Resources, Value};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};

/// `/tasks` returns at most this many tasks (Mesos' `TASK_LIMIT`).
const TASK_LIMIT: usize = 100;

mod metrics;

pub(super) use metrics::flags;
pub use metrics::metrics_json;

/// Resources in use and on offer, per agent and per framework (tasks holding resources and
/// outstanding offers are the only consumers the master tracks).
pub(super) struct Usage {
    /// Non-terminal task resources per agent.
    pub agent_used: BTreeMap<String, Resources>,
    /// Outstanding offers per agent.
    pub agent_offered: BTreeMap<String, Resources>,
    /// Non-terminal task resources per framework.
    pub framework_used: BTreeMap<String, Resources>,
    /// Outstanding offers per framework.
    pub framework_offered: BTreeMap<String, Resources>,
}

impl Usage {
    pub(super) fn of(m: &Master) -> Usage {
        let mut u = Usage {
            agent_used: BTreeMap::new(),
            agent_offered: BTreeMap::new(),
            framework_used: BTreeMap::new(),
            framework_offered: BTreeMap::new(),
        };
        for t in m.tasks().filter(|t| !t.state.is_terminal()) {
            u.agent_used
                .entry(t.agent.clone())
                .or_default()
                .add(&t.resources);
            u.framework_used
                .entry(t.framework.clone())
                .or_default()
                .add(&t.resources);
        }
        for o in m.offers() {
            u.agent_offered
                .entry(o.agent.clone())
                .or_default()
                .add(&o.resources);
            u.framework_offered
                .entry(o.framework.clone())
                .or_default()
                .add(&o.resources);
        }
        u
    }

    pub(super) fn get(map: &BTreeMap<String, Resources>, key: &str) -> Resources {
        map.get(key).cloned().unwrap_or_default()
    }
}

/// Mesos' `stringify(Value::Set)`: `{a, b}`.
fn set_string(s: &BTreeSet<String>) -> String {
    let items: Vec<&str> = s.iter().map(String::as_str).collect();
    format!("{{{}}}", items.join(", "))
}

/// The v0 resource map: `{"cpus": 4.0, "gpus": 0.0, "mem": .., "disk": .., "ports": "[31000-32000]"}`
/// (scalars summed across reservations, ranges and sets merged and stringified).
pub(super) fn resources_v0(r: &Resources) -> Json {
    let mut scalars: BTreeMap<&str, f64> =
        [("cpus", 0.0), ("gpus", 0.0), ("mem", 0.0), ("disk", 0.0)].into();
    let mut merged: BTreeMap<&str, Value> = BTreeMap::new();
    for res in r.iter() {
        match &res.value {
            Value::Scalar(_) => {
                scalars.insert(&res.name, r.scalar(&res.name).as_f64());
            }
            Value::Ranges(x) => {
                let e = merged
                    .entry(&res.name)
                    .or_insert_with(|| Value::Ranges(Default::default()));
                if let Value::Ranges(acc) = e {
                    *acc = acc.merge(x);
                }
            }
            Value::Set(x) => {
                let e = merged
                    .entry(&res.name)
                    .or_insert_with(|| Value::Set(BTreeSet::new()));
                if let Value::Set(acc) = e {
                    acc.extend(x.iter().cloned());
                }
            }
        }
    }
    let mut m: Map<String, Json> = scalars
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    for (k, v) in merged {
        let s = match v {
            Value::Ranges(r) => r.to_string(),
            Value::Set(s) => set_string(&s),
            Value::Scalar(_) => continue,
        };
        m.insert(k.to_string(), json!(s));
    }
    Json::Object(m)
}

/// `reserved_resources`: v0 resource maps keyed by reservation role.
fn reserved_v0(total: &Resources) -> Json {
    let roles: BTreeSet<&str> = total
        .iter()
        .filter(|r| r.is_reserved())
        .map(|r| r.role())
        .collect();
    Json::Object(
        roles
            .into_iter()
            .map(|role| (role.to_string(), resources_v0(&total.reserved(Some(role)))))
            .collect(),
    )
}

/// Mesos' `model(Attributes)`: the `Attribute` list as `{"rack": "r1", "level": 2.0}`.
pub(super) fn attributes_v0(attrs: &Json) -> Json {
    let mut m = Map::new();
    for a in attrs.as_array().into_iter().flatten() {
        let Some(name) = a.get("name").and_then(Json::as_str) else {
            continue;
        };
        let v = match a.get("type").and_then(Json::as_str) {
            Some("SCALAR") => json!(a.pointer("/scalar/value").and_then(Json::as_f64)),
            Some("RANGES") => {
                let pairs = a
                    .pointer("/ranges/range")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|r| Some((r.get("begin")?.as_u64()?, r.get("end")?.as_u64()?)));
                let parts: Vec<String> = pairs.map(|(b, e)| format!("{b}-{e}")).collect();
                json!(format!("[{}]", parts.join(", ")))
            }
            Some("SET") => {
                let items: BTreeSet<String> = a
                    .pointer("/set/item")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect();
                json!(set_string(&items))
            }
            Some("TEXT") => json!(a.pointer("/text/value").and_then(Json::as_str)),
            _ => continue,
        };
        m.insert(name.to_string(), v);
    }
    Json::Object(m)
}

/// Mesos' `json(TaskStatus)`: `{state, timestamp, labels?, container_status?, healthy?}`.
fn status_v0(s: &Json, state: TaskState) -> Json {
    let mut out = json!({
        "state": s.get("state").and_then(Json::as_str).unwrap_or(state.as_str()),
        "timestamp": s.get("timestamp").and_then(Json::as_f64).unwrap_or(0.0),
    });
    if let Some(l) = s.pointer("/labels/labels") {
        out["labels"] = l.clone();
    }
    if let Some(c) = s.get("container_status") {
        let mut cs = Map::new();
        for k in ["container_id", "network_infos", "cgroup_info"] {
            if let Some(v) = c.get(k) {
                cs.insert(k.into(), v.clone());
            }
        }
        out["container_status"] = Json::Object(cs);
    }
    if let Some(h) = s.get("healthy") {
        out["healthy"] = h.clone();
    }
    out
}

/// Mesos' `json(Task)`.
pub(super) fn task_v0(t: &Task) -> Json {
    let statuses: Vec<Json> = t.status.iter().map(|s| status_v0(s, t.state)).collect();
    let mut j = json!({
        "id": t.id,
        "name": t.name,
        "framework_id": t.framework,
        "executor_id": t.executor.clone().unwrap_or_default(),
        "slave_id": t.agent,
        "state": t.state.as_str(),
        "resources": resources_v0(&t.resources),
        "role": t.role,
        "statuses": statuses,
    });
    if let Some(l) = t.info.pointer("/labels/labels") {
        j["labels"] = l.clone();
    }
    for k in ["discovery", "container", "health_check"] {
        if let Some(v) = t.info.get(k) {
            j[k] = v.clone();
        }
    }
    j
}

/// Agents recovered from the store that have not re-registered yet (`recovered_slaves`).
pub(super) fn is_recovered(a: &Agent) -> bool {
    a.reachable && a.stream.is_none() && a.reregister_deadline.is_some()
}

/// Agents listed under `slaves`: registered (connected or not) and reachable.
pub(super) fn is_registered(a: &Agent) -> bool {
    a.reachable && !is_recovered(a)
}

/// Agent capabilities the master reports (what its agents support).
pub(super) const AGENT_CAPABILITIES: [&str; 3] =
    ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"];

/// Master capabilities (`MasterInfo.Capability`).
pub(super) const MASTER_CAPABILITIES: [&str; 1] = ["AGENT_UPDATE"];

/// The agent's libprocess-style pid.
pub(super) fn agent_pid(a: &Agent) -> String {
    format!("slave(1)@{}:{}", a.hostname, a.port)
}

/// The master's pid, `master@127.0.0.1:5050`.
pub(super) fn master_pid(m: &Master) -> String {
    format!("master@127.0.0.1:{}", m.config().port)
}

/// `SlaveWriter`.
fn slave_v0(a: &Agent, u: &Usage) -> Json {
    json!({
        "id": a.id,
        "hostname": a.hostname,
        "port": a.port,
        "attributes": attributes_v0(&a.attributes),
        "pid": agent_pid(a),
        "registered_time": a.registered_time,
        "resources": resources_v0(&a.total),
        "used_resources": resources_v0(&Usage::get(&u.agent_used, &a.id)),
        "offered_resources": resources_v0(&Usage::get(&u.agent_offered, &a.id)),
        "reserved_resources": reserved_v0(&a.total),
        "unreserved_resources": resources_v0(&a.total.unreserved()),
        "active": a.active(),
        "deactivated": false,
        "version": MESOS_VERSION,
        "capabilities": AGENT_CAPABILITIES,
    })
}

/// `json(SlaveInfo)` for `recovered_slaves`.
fn slave_info_v0(a: &Agent) -> Json {
    json!({
        "id": a.id,
        "hostname": a.hostname,
        "port": a.port,
        "attributes": attributes_v0(&a.attributes),
    })
}

/// The framework's capabilities as type names.
pub(super) fn capability_names(f: &Framework) -> Vec<Json> {
    f.info
        .get("capabilities")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("type").cloned())
        .collect()
}

pub(super) fn is_multi_role(f: &Framework) -> bool {
    capability_names(f).iter().any(|c| c == "MULTI_ROLE")
}

/// `FullFrameworkWriter`.
fn framework_v0(m: &Master, f: &Framework, u: &Usage) -> Json {
    let used = Usage::get(&u.framework_used, &f.id);
    let offered = Usage::get(&u.framework_offered, &f.id);
    let mut total = used.clone();
    total.add(&offered);
    let s = |k: &str| {
        f.info
            .get(k)
            .and_then(Json::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut tasks: Vec<&Task> = m.tasks().filter(|t| t.framework == f.id).collect();
    tasks.sort_by(|a, b| a.id.cmp(&b.id));
    let (unreachable, live): (Vec<&Task>, Vec<&Task>) = tasks
        .into_iter()
        .partition(|t| t.state == TaskState::Unreachable);
    let completed: Vec<Json> = m
        .completed_tasks()
        .filter(|t| t.framework == f.id)
        .map(task_v0)
        .collect();
    let offers: Vec<Json> = m
        .offers()
        .filter(|o| o.framework == f.id)
        .map(|o| {
            json!({
                "id": o.id,
                "framework_id": o.framework,
                "allocation_info": {"role": o.role},
                "slave_id": o.agent,
                "resources": resources_v0(&o.resources),
            })
        })
        .collect();
    let mut j = json!({
        "id": f.id,
        "name": s("name"),
        "used_resources": resources_v0(&used),
        "offered_resources": resources_v0(&offered),
        "capabilities": capability_names(f),
        "hostname": s("hostname"),
        "webui_url": s("webui_url"),
        "active": f.stream.is_some(),
        "connected": f.stream.is_some(),
        "recovered": false,
        "user": s("user"),
        "failover_timeout": f.info.get("failover_timeout").and_then(Json::as_f64).unwrap_or(0.0),
        "checkpoint": f.info.get("checkpoint").and_then(Json::as_bool).unwrap_or(false),
        "registered_time": f.registered_time,
        "unregistered_time": 0.0,
        "resources": resources_v0(&total),
        "tasks": live.into_iter().map(task_v0).collect::<Vec<_>>(),
        "unreachable_tasks": unreachable.into_iter().map(task_v0).collect::<Vec<_>>(),
        "completed_tasks": completed,
        "offers": offers,
        "executors": [],
        "offer_constraints": {},
    });
    if let Some(p) = f.info.get("principal") {
        j["principal"] = p.clone();
    }
    if is_multi_role(f) {
        j["roles"] = json!(f.roles);
    } else {
        j["role"] = json!(f.roles.first().map_or("*", String::as_str));
    }
    if let Some(l) = f.info.pointer("/labels/labels") {
        j["labels"] = l.clone();
    }
    j
}

/// `leader_info`: Mesos' `json(MasterInfo)`.
pub(super) fn leader_info_v0(m: &Master) -> Json {
    json!({
        "id": m.id(),
        "pid": master_pid(m),
        "port": m.config().port,
        "hostname": m.config().hostname,
    })
}

fn slaves_fields(m: &Master, u: &Usage) -> (Vec<Json>, Vec<Json>) {
    let slaves = m
        .agents()
        .filter(|a| is_registered(a))
        .map(|a| slave_v0(a, u))
        .collect();
    let recovered = m
        .agents()
        .filter(|a| is_recovered(a))
        .map(slave_info_v0)
        .collect();
    (slaves, recovered)
}

/// `GET /state` and `/master/state.json`.
pub fn state_json(m: &Master, now_unix: f64) -> Json {
    let _ = now_unix;
    let u = Usage::of(m);
    let (slaves, recovered) = slaves_fields(m, &u);
    let count = |p: fn(&Agent) -> bool| m.agents().filter(|a| p(a)).count() as f64;
    json!({
        "version": MESOS_VERSION,
        "build_date": "",
        "build_time": 0.0,
        "build_user": "",
        "start_time": m.start_time(),
        "elected_time": m.start_time(),
        "id": m.id(),
        "pid": master_pid(m),
        "hostname": m.config().hostname,
        "capabilities": MASTER_CAPABILITIES,
        "activated_slaves": count(|a| is_registered(a) && a.active()),
        "deactivated_slaves": count(|a| is_registered(a) && !a.active()),
        "unreachable_slaves": count(|a| !a.reachable),
        "leader": master_pid(m),
        "leader_info": leader_info_v0(m),
        "flags": flags(m),
        "slaves": slaves,
        "recovered_slaves": recovered,
        "frameworks": m.frameworks().map(|f| framework_v0(m, f, &u)).collect::<Vec<_>>(),
        "completed_frameworks": [],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    })
}

/// `GET /slaves` (also `/master/slaves`).
pub fn slaves_json(m: &Master) -> Json {
    let (slaves, recovered) = slaves_fields(m, &Usage::of(m));
    json!({ "slaves": slaves, "recovered_slaves": recovered })
}

/// `GET /master/frameworks` (also `/frameworks`).
pub fn frameworks_json(m: &Master) -> Json {
    let u = Usage::of(m);
    json!({
        "frameworks": m.frameworks().map(|f| framework_v0(m, f, &u)).collect::<Vec<_>>(),
        "completed_frameworks": [],
        "unregistered_frameworks": [],
    })
}

/// Timestamp of a task's first (only) status, for `/tasks`' ordering.
fn first_timestamp(t: &Task) -> Option<f64> {
    t.status
        .as_ref()
        .map(|s| s.get("timestamp").and_then(Json::as_f64).unwrap_or(0.0))
}

/// `GET /tasks` with its defaults: live, unreachable and completed tasks, newest status first,
/// at most 100.
pub fn tasks_json(m: &Master) -> Json {
    let mut tasks: Vec<&Task> = m.tasks().chain(m.completed_tasks()).collect();
    // Mesos' descending comparator: tasks without statuses first, then newest first.
    tasks.sort_by(|a, b| match (first_timestamp(a), first_timestamp(b)) {
        (None, None) => a.id.cmp(&b.id),
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.id.cmp(&b.id)),
    });
    let tasks: Vec<Json> = tasks.into_iter().take(TASK_LIMIT).map(task_v0).collect();
    json!({ "tasks": tasks })
}
