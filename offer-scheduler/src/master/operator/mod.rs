//! `POST /api/v1/operator` with JSON bodies: Mesos 1.11's `master::Call` handling
//! (`src/master/http.cpp`, `weights_handler.cpp`, `quota_handler.cpp`) answering with
//! `master::Response` JSON. Body parsing stays in the HTTP layer.

mod writes;

use writes::{get_quota, reservation, set_quota, update_quota, update_weights};

use super::offers::resources_json;
use super::proto::{id, id_of};
use super::state;
use super::{Agent, Framework, Master, Now, Task, TaskState, MESOS_VERSION};
use crate::resources::{Resources, Scalar};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};

/// What the HTTP layer answers with.
#[derive(Clone, Debug, PartialEq)]
pub enum OperatorReply {
    /// 200 with this JSON body.
    Json(Json),
    /// 200 with an empty body.
    Ok,
    /// 202 Accepted.
    Accepted,
}

type Reply = Result<OperatorReply, (u16, String)>;

/// Every `master::Call::Type`, with the sub-message validation requires (`""` for none).
const CALL_TYPES: [(&str, &str); 40] = [
    ("UNKNOWN", ""),
    ("GET_HEALTH", ""),
    ("GET_FLAGS", ""),
    ("GET_VERSION", ""),
    ("GET_METRICS", "get_metrics"),
    ("GET_LOGGING_LEVEL", ""),
    ("SET_LOGGING_LEVEL", "set_logging_level"),
    ("LIST_FILES", "list_files"),
    ("READ_FILE", "read_file"),
    ("GET_STATE", ""),
    ("GET_AGENTS", ""),
    ("GET_FRAMEWORKS", ""),
    ("GET_EXECUTORS", ""),
    ("GET_OPERATIONS", ""),
    ("GET_TASKS", ""),
    ("GET_ROLES", ""),
    ("GET_WEIGHTS", ""),
    ("UPDATE_WEIGHTS", "update_weights"),
    ("GET_MASTER", ""),
    ("SUBSCRIBE", ""),
    ("RESERVE_RESOURCES", "reserve_resources"),
    ("UNRESERVE_RESOURCES", "unreserve_resources"),
    ("CREATE_VOLUMES", "create_volumes"),
    ("DESTROY_VOLUMES", "destroy_volumes"),
    ("GROW_VOLUME", "grow_volume"),
    ("SHRINK_VOLUME", "shrink_volume"),
    ("GET_MAINTENANCE_STATUS", ""),
    ("GET_MAINTENANCE_SCHEDULE", ""),
    ("UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule"),
    ("START_MAINTENANCE", "start_maintenance"),
    ("STOP_MAINTENANCE", "stop_maintenance"),
    ("DRAIN_AGENT", "drain_agent"),
    ("DEACTIVATE_AGENT", "deactivate_agent"),
    ("REACTIVATE_AGENT", "reactivate_agent"),
    ("GET_QUOTA", ""),
    ("UPDATE_QUOTA", "update_quota"),
    ("SET_QUOTA", "set_quota"),
    ("REMOVE_QUOTA", "remove_quota"),
    ("TEARDOWN", "teardown"),
    ("MARK_AGENT_GONE", "mark_agent_gone"),
];

fn bad(msg: impl Into<String>) -> (u16, String) {
    (400, msg.into())
}

fn invalid(msg: &str) -> (u16, String) {
    bad(format!("Failed to validate master::Call: {msg}"))
}

fn missing(field: &str) -> (u16, String) {
    bad(format!(
        "Failed to convert JSON into Call protobuf: Missing required fields: {field}"
    ))
}

/// `{"type": T, "<t>": body}`.
fn response(kind: &str, body: Json) -> OperatorReply {
    OperatorReply::Json(json!({ "type": kind, kind.to_ascii_lowercase(): body }))
}

/// A `TimeInfo`.
fn time(secs: f64) -> Json {
    json!({ "nanoseconds": (secs * 1e9) as i64 })
}

/// Inserts a repeated field only when non-empty, as protobuf-to-JSON does.
fn put_list(o: &mut Json, key: &str, list: Vec<Json>) {
    if !list.is_empty() {
        o[key] = Json::Array(list);
    }
}

/// Handles one operator call.
pub fn operator_call(m: &mut Master, call: &Json, now: Now) -> Reply {
    let kind = call.get("type").and_then(Json::as_str);
    let Some(&(kind, sub)) = CALL_TYPES.iter().find(|(t, _)| Some(*t) == kind) else {
        // Unknown enum values are dropped by the JSON conversion, leaving no type.
        return Err(invalid("Expecting 'type' to be present"));
    };
    if !sub.is_empty() && call.get(sub).is_none_or(|s| !s.is_object()) {
        return Err(invalid(&format!("Expecting '{sub}' to be present")));
    }
    let body = call.get(sub).cloned().unwrap_or(Json::Null);
    match kind {
        "GET_HEALTH" => Ok(response(kind, json!({"healthy": true}))),
        "GET_VERSION" => Ok(response(
            kind,
            json!({"version_info": {
                "version": MESOS_VERSION,
                "build_date": "",
                "build_time": 0.0,
                "build_user": "",
            }}),
        )),
        "GET_FLAGS" => {
            let flags: Vec<Json> = state::flags(m)
                .into_iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            Ok(response(kind, json!({ "flags": flags })))
        }
        "GET_METRICS" => {
            let metrics: Vec<Json> = state::metrics_json(m, now.unix)
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect();
            let mut b = json!({});
            put_list(&mut b, "metrics", metrics);
            Ok(response(kind, b))
        }
        "GET_MASTER" => Ok(response(kind, get_master(m))),
        "GET_STATE" => Ok(response(
            kind,
            json!({
                "get_tasks": get_tasks(m),
                "get_executors": {},
                "get_frameworks": get_frameworks(m),
                "get_agents": get_agents(m),
            }),
        )),
        "GET_AGENTS" => Ok(response(kind, get_agents(m))),
        "GET_FRAMEWORKS" => Ok(response(kind, get_frameworks(m))),
        "GET_EXECUTORS" => Ok(response(kind, json!({}))),
        "GET_TASKS" => Ok(response(kind, get_tasks(m))),
        "GET_ROLES" => Ok(response(kind, get_roles(m))),
        "GET_WEIGHTS" => {
            let mut b = json!({});
            let infos = m
                .weights()
                .iter()
                .map(|(r, w)| json!({"weight": w, "role": r}))
                .collect();
            put_list(&mut b, "weight_infos", infos);
            Ok(response(kind, b))
        }
        "UPDATE_WEIGHTS" => update_weights(m, &body),
        "GET_QUOTA" => Ok(response(kind, get_quota(m))),
        "SET_QUOTA" => set_quota(m, &body),
        "UPDATE_QUOTA" => update_quota(m, &body),
        "REMOVE_QUOTA" => {
            let role = body
                .get("role")
                .and_then(Json::as_str)
                .ok_or_else(|| missing("remove_quota.role"))?;
            if !m.quotas().contains_key(role) {
                return Err(bad(format!(
                    "Failed to remove quota: Role '{role}' has no quota set"
                )));
            }
            m.set_quota(role, None);
            Ok(OperatorReply::Ok)
        }
        "RESERVE_RESOURCES" => reservation(m, &body, "reserve_resources", true),
        "UNRESERVE_RESOURCES" => reservation(m, &body, "unreserve_resources", false),
        "TEARDOWN" => {
            let fid =
                id_of(&body, "framework_id").ok_or_else(|| missing("teardown.framework_id"))?;
            if !m.frameworks.contains_key(&fid) {
                return Err(bad("No framework found with specified ID"));
            }
            m.teardown(&fid, now);
            Ok(OperatorReply::Ok)
        }
        // UNKNOWN, SUBSCRIBE (a stream: the HTTP layer's) and what Kumos does not implement.
        _ => Err((501, String::new())),
    }
}

/// `Response.GetMaster`.
fn get_master(m: &Master) -> Json {
    let mut info = m.master_info();
    info["pid"] = json!(state::master_pid(m));
    info["capabilities"] = state::MASTER_CAPABILITIES
        .iter()
        .map(|c| json!({ "type": c }))
        .collect();
    json!({
        "master_info": info,
        "start_time": m.start_time(),
        "elected_time": m.start_time(),
    })
}

/// Resources by allocation role, each entry carrying its `allocation_info`.
fn allocated<'a>(items: impl Iterator<Item = (&'a str, &'a Resources)>) -> Vec<Json> {
    let mut by_role: BTreeMap<&str, Resources> = BTreeMap::new();
    for (role, r) in items {
        by_role.entry(role).or_default().add(r);
    }
    by_role
        .iter()
        .flat_map(|(role, r)| {
            resources_json(r, role)
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn live_tasks<'a>(
    m: &'a Master,
    pred: impl Fn(&Task) -> bool + 'a,
) -> impl Iterator<Item = &'a Task> {
    m.tasks().filter(move |t| !t.state.is_terminal() && pred(t))
}

/// `Response.GetAgents.Agent`.
fn agent_v1(m: &Master, a: &Agent) -> Json {
    let mut info = json!({
        "hostname": a.hostname,
        "port": a.port,
        "id": id(&a.id),
    });
    put_list(
        &mut info,
        "resources",
        a.total.iter().map(|r| r.to_json()).collect(),
    );
    put_list(
        &mut info,
        "attributes",
        a.attributes.as_array().cloned().unwrap_or_default(),
    );
    let mut j = json!({
        "agent_info": info,
        "active": a.active(),
        "deactivated": false,
        "version": MESOS_VERSION,
        "pid": state::agent_pid(a),
        "registered_time": time(a.registered_time),
        "capabilities": state::AGENT_CAPABILITIES.iter().map(|c| json!({"type": c})).collect::<Vec<_>>(),
    });
    put_list(
        &mut j,
        "total_resources",
        a.total.iter().map(|r| r.to_json()).collect(),
    );
    let used =
        allocated(live_tasks(m, |t| t.agent == a.id).map(|t| (t.role.as_str(), &t.resources)));
    put_list(&mut j, "allocated_resources", used);
    let offered = allocated(
        m.offers()
            .filter(|o| o.agent == a.id)
            .map(|o| (o.role.as_str(), &o.resources)),
    );
    put_list(&mut j, "offered_resources", offered);
    j
}

fn get_agents(m: &Master) -> Json {
    let agents: Vec<Json> = m
        .agents()
        .filter(|a| state::is_registered(a))
        .map(|a| agent_v1(m, a))
        .collect();
    let recovered: Vec<Json> = m
        .agents()
        .filter(|a| state::is_recovered(a))
        .map(|a| {
            let mut info = json!({"hostname": a.hostname, "port": a.port, "id": id(&a.id)});
            put_list(
                &mut info,
                "resources",
                a.total.iter().map(|r| r.to_json()).collect(),
            );
            info
        })
        .collect();
    json!({ "agents": agents, "recovered_agents": recovered })
}

/// A v1 `Offer`.
fn offer_v1(m: &Master, o: &super::Offer) -> Json {
    let hostname = m.agents.get(&o.agent).map_or("", |a| a.hostname.as_str());
    json!({
        "id": id(&o.id),
        "framework_id": id(&o.framework),
        "agent_id": id(&o.agent),
        "hostname": hostname,
        "resources": resources_json(&o.resources, &o.role),
        "allocation_info": {"role": o.role},
    })
}

/// `Response.GetFrameworks.Framework`.
fn framework_v1(m: &Master, f: &Framework) -> Json {
    let mut j = json!({
        "framework_info": f.info,
        "active": f.stream.is_some(),
        "connected": f.stream.is_some(),
        "recovered": false,
        "registered_time": time(f.registered_time),
    });
    let offers: Vec<&super::Offer> = m.offers().filter(|o| o.framework == f.id).collect();
    put_list(
        &mut j,
        "offers",
        offers.iter().map(|o| offer_v1(m, o)).collect(),
    );
    let used =
        allocated(live_tasks(m, |t| t.framework == f.id).map(|t| (t.role.as_str(), &t.resources)));
    put_list(&mut j, "allocated_resources", used);
    let offered = allocated(offers.iter().map(|o| (o.role.as_str(), &o.resources)));
    put_list(&mut j, "offered_resources", offered);
    j["offer_constraints"] = json!({});
    j
}

fn get_frameworks(m: &Master) -> Json {
    let frameworks: Vec<Json> = m.frameworks().map(|f| framework_v1(m, f)).collect();
    json!({ "frameworks": frameworks, "completed_frameworks": [] })
}

/// A v1 `Task`.
fn task_v1(t: &Task) -> Json {
    let mut j = json!({
        "name": t.name,
        "task_id": id(&t.id),
        "framework_id": id(&t.framework),
        "agent_id": id(&t.agent),
        "state": t.state.as_str(),
    });
    if let Some(e) = &t.executor {
        j["executor_id"] = id(e);
    }
    put_list(
        &mut j,
        "resources",
        resources_json(&t.resources, &t.role)
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    put_list(&mut j, "statuses", t.status.iter().cloned().collect());
    for k in ["labels", "discovery", "container", "health_check"] {
        if let Some(v) = t.info.get(k) {
            j[k] = v.clone();
        }
    }
    j
}

fn get_tasks(m: &Master) -> Json {
    let mut tasks: Vec<&Task> = m.tasks().collect();
    tasks.sort_by(|a, b| (&a.framework, &a.id).cmp(&(&b.framework, &b.id)));
    let (unreachable, live): (Vec<&Task>, Vec<&Task>) = tasks
        .into_iter()
        .partition(|t| t.state == TaskState::Unreachable);
    json!({
        "tasks": live.into_iter().map(task_v1).collect::<Vec<_>>(),
        "unreachable_tasks": unreachable.into_iter().map(task_v1).collect::<Vec<_>>(),
        "completed_tasks": m.completed_tasks().map(task_v1).collect::<Vec<_>>(),
    })
}

fn scalar_resource(name: &str, v: Scalar) -> Json {
    json!({"name": name, "type": "SCALAR", "scalar": {"value": v.as_f64()}})
}

/// `Response.GetRoles`: roles with frameworks, weights, quotas or reservations.
fn get_roles(m: &Master) -> Json {
    let mut known: BTreeSet<String> = m.frameworks().flat_map(|f| f.roles.clone()).collect();
    known.extend(m.weights().keys().cloned());
    known.extend(m.quotas().keys().cloned());
    for a in m.agents() {
        known.extend(
            a.total
                .iter()
                .filter(|r| r.is_reserved())
                .map(|r| r.role().to_string()),
        );
    }
    let roles: Vec<Json> = known
        .iter()
        .map(|name| {
            let mut held = Resources::new();
            for t in live_tasks(m, |t| &t.role == name) {
                held.add(&t.resources);
            }
            for o in m.offers().filter(|o| &o.role == name) {
                held.add(&o.resources);
            }
            let mut j =
                json!({"name": name, "weight": m.weights().get(name).copied().unwrap_or(1.0)});
            let fws = m
                .frameworks()
                .filter(|f| f.roles.contains(name))
                .map(|f| id(&f.id))
                .collect();
            put_list(&mut j, "frameworks", fws);
            let res = ["cpus", "mem", "disk", "gpus"]
                .into_iter()
                .filter(|r| held.scalar(r).is_positive())
                .map(|r| scalar_resource(r, held.scalar(r)))
                .collect();
            put_list(&mut j, "resources", res);
            j
        })
        .collect();
    let mut b = json!({});
    put_list(&mut b, "roles", roles);
    b
}
