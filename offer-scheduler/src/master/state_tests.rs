//! Shapes of the v0 state endpoints and the v1 operator API.

use super::operator::{operator_call, OperatorReply};
use super::state::{frameworks_json, metrics_json, slaves_json, state_json, tasks_json};
use super::{Config, Master, Now};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value as Json};
use std::time::Instant;

fn now() -> Now {
    Now {
        instant: Instant::now(),
        unix: 1_700_000_000.0,
    }
}

/// A master with one agent (4 cpus, 1024 mem, ports, rack attribute) and one framework.
fn setup() -> (Master, String, String, Now) {
    let t = now();
    let mut m = Master::new(Config::default(), "m1".into(), t);
    let agent = json!({"type": "SUBSCRIBE", "subscribe": {"agent_info": {
        "hostname": "h", "port": 5051,
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 32000}]}},
        ],
        "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}],
    }}});
    let aid = m.agent_subscribe(&agent, "agent-stream", t).unwrap();
    let fw =
        json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}});
    let fid = m.subscribe(&fw, "fw-stream", t).unwrap();
    m.take_effects();
    (m, aid, fid, t)
}

/// Offers everything and launches a 1-cpu task `t1` from the offer.
fn launch(m: &mut Master, aid: &str, fid: &str, t: Now) {
    m.allocate(t, &mut StdRng::seed_from_u64(1));
    let oid = m.offers().next().unwrap().id.clone();
    let accept = json!({"offer_ids": [{"value": oid}], "operations": [{"type": "LAUNCH", "launch": {
        "task_infos": [{"name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": aid},
            "command": {"value": "true"},
            "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}]}]}}]});
    m.accept(fid, &accept, t);
}

fn call(m: &mut Master, c: Json) -> Result<OperatorReply, (u16, String)> {
    operator_call(m, &c, now())
}

fn body(m: &mut Master, c: Json) -> Json {
    match call(m, c) {
        Ok(OperatorReply::Json(j)) => j,
        other => panic!("expected a JSON reply, got {other:?}"),
    }
}

#[test]
fn state_json_shapes() {
    let (m, aid, fid, t) = setup();
    let s = state_json(&m, t.unix + 5.0);
    assert_eq!(s["version"], "1.11.0");
    assert_eq!(s["id"], "m1");
    assert_eq!(s["pid"], "master@127.0.0.1:5050");
    assert_eq!(s["leader"], "master@127.0.0.1:5050");
    assert_eq!(s["leader_info"]["hostname"], "127.0.0.1");
    assert_eq!(s["activated_slaves"], json!(1.0));
    assert_eq!(s["deactivated_slaves"], json!(0.0));
    assert_eq!(s["flags"]["agent_ping_timeout"], "15secs");
    assert_eq!(s["flags"]["agent_reregister_timeout"], "10mins");
    let slave = &s["slaves"][0];
    assert_eq!(slave["id"], json!(aid));
    assert_eq!(slave["pid"], "slave(1)@h:5051");
    assert_eq!(
        slave["resources"],
        json!({"cpus": 4.0, "disk": 0.0, "gpus": 0.0, "mem": 1024.0, "ports": "[31000-32000]"})
    );
    assert_eq!(slave["used_resources"]["cpus"], json!(0.0));
    assert_eq!(slave["reserved_resources"], json!({}));
    assert_eq!(slave["attributes"], json!({"rack": "r1"}));
    assert_eq!(slave["active"], true);
    let f = &s["frameworks"][0];
    assert_eq!(f["id"], json!(fid));
    assert_eq!(f["role"], "*");
    assert!(f.get("roles").is_none());
    assert_eq!(
        (f["active"].clone(), f["connected"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(f["tasks"], json!([]));
    for k in [
        "completed_frameworks",
        "orphan_tasks",
        "unregistered_frameworks",
    ] {
        assert_eq!(s[k], json!([]), "{k}");
    }
    assert_eq!(slaves_json(&m)["recovered_slaves"], json!([]));
    assert_eq!(frameworks_json(&m)["frameworks"][0]["name"], "n");
}

#[test]
fn tasks_offers_and_metrics() {
    let (mut m, aid, fid, t) = setup();
    m.allocate(t, &mut StdRng::seed_from_u64(1));
    let s = state_json(&m, t.unix);
    assert_eq!(s["slaves"][0]["offered_resources"]["cpus"], json!(4.0));
    let offer = &s["frameworks"][0]["offers"][0];
    assert_eq!(offer["slave_id"], json!(aid));
    assert_eq!(offer["resources"]["ports"], "[31000-32000]");
    let oid = offer["id"].as_str().unwrap().to_string();
    m.decline(&fid, &[oid], Some(&json!({"refuse_seconds": 0})), t);
    launch(
        &mut m,
        &aid,
        &fid,
        t.after(std::time::Duration::from_secs(1)),
    );
    let s = state_json(&m, t.unix);
    let task = &s["frameworks"][0]["tasks"][0];
    assert_eq!(task["id"], "t1");
    assert_eq!(task["state"], "TASK_STAGING");
    assert_eq!(task["slave_id"], json!(aid));
    assert_eq!(task["framework_id"], json!(fid));
    assert_eq!(task["executor_id"], "");
    assert_eq!(task["role"], "*");
    assert_eq!(task["resources"]["cpus"], json!(1.0));
    assert_eq!(task["statuses"], json!([]));
    assert_eq!(s["slaves"][0]["used_resources"]["cpus"], json!(1.0));
    assert_eq!(s["frameworks"][0]["used_resources"]["cpus"], json!(1.0));
    assert_eq!(tasks_json(&m)["tasks"][0]["id"], "t1");
    let x = metrics_json(&m, t.unix + 10.0);
    assert_eq!(x["master/elected"], json!(1.0));
    assert_eq!(x["master/uptime_secs"], json!(10.0));
    assert_eq!(x["master/slaves_active"], json!(1.0));
    assert_eq!(x["master/frameworks_connected"], json!(1.0));
    assert_eq!(x["master/tasks_staging"], json!(1.0));
    assert_eq!(x["master/cpus_total"], json!(4.0));
    assert_eq!(x["master/cpus_used"], json!(1.0));
    assert_eq!(x["master/mem_total"], json!(1024.0));
    // The rest of the offer was declined by the accept: no offers left.
    assert_eq!(x["master/outstanding_offers"], json!(0.0));

    let tasks = body(&mut m, json!({"type": "GET_TASKS"}));
    let t1 = &tasks["get_tasks"]["tasks"][0];
    assert_eq!(t1["task_id"], json!({"value": "t1"}));
    assert_eq!(t1["agent_id"], json!({"value": aid}));
    assert_eq!(t1["resources"][0]["allocation_info"], json!({"role": "*"}));
    assert_eq!(tasks["get_tasks"]["completed_tasks"], json!([]));
}

#[test]
fn operator_reads() {
    let (mut m, aid, fid, _) = setup();
    assert_eq!(
        body(&mut m, json!({"type": "GET_HEALTH"})),
        json!({"type": "GET_HEALTH", "get_health": {"healthy": true}})
    );
    let v = body(&mut m, json!({"type": "GET_VERSION"}));
    assert_eq!(v["get_version"]["version_info"]["version"], "1.11.0");
    let master = body(&mut m, json!({"type": "GET_MASTER"}));
    assert_eq!(master["get_master"]["master_info"]["id"], "m1");
    assert_eq!(master["get_master"]["start_time"], json!(1_700_000_000.0));
    let agents = body(&mut m, json!({"type": "GET_AGENTS"}));
    let a = &agents["get_agents"]["agents"][0];
    assert_eq!(a["agent_info"]["id"], json!({"value": aid}));
    assert_eq!(a["agent_info"]["hostname"], "h");
    assert_eq!(a["active"], true);
    assert_eq!(
        a["registered_time"],
        json!({"nanoseconds": 1_700_000_000_000_000_000i64})
    );
    assert_eq!(a["total_resources"][0]["name"], "cpus");
    assert!(a.get("allocated_resources").is_none());
    assert_eq!(agents["get_agents"]["recovered_agents"], json!([]));
    let fws = body(&mut m, json!({"type": "GET_FRAMEWORKS"}));
    let f = &fws["get_frameworks"]["frameworks"][0];
    assert_eq!(f["framework_info"]["id"], json!({"value": fid}));
    assert_eq!(f["framework_info"]["user"], "u");
    assert_eq!(f["connected"], true);
    let st = body(&mut m, json!({"type": "GET_STATE"}));
    for k in ["get_tasks", "get_executors", "get_frameworks", "get_agents"] {
        assert!(st["get_state"][k].is_object(), "{k}");
    }
    let roles = body(&mut m, json!({"type": "GET_ROLES"}));
    assert_eq!(
        roles["get_roles"]["roles"][0],
        json!({"name": "*", "weight": 1.0, "frameworks": [{"value": fid}]})
    );
    let metrics = body(&mut m, json!({"type": "GET_METRICS", "get_metrics": {}}));
    assert!(metrics["get_metrics"]["metrics"]
        .as_array()
        .unwrap()
        .contains(&json!({"name": "master/elected", "value": 1.0})));
}

#[test]
fn operator_errors() {
    let (mut m, ..) = setup();
    let expect_type = (
        400,
        "Failed to validate master::Call: Expecting 'type' to be present".to_string(),
    );
    assert_eq!(
        call(&mut m, json!({"type": "NO_SUCH_CALL"})),
        Err(expect_type.clone())
    );
    assert_eq!(call(&mut m, json!({})), Err(expect_type));
    assert_eq!(
        call(&mut m, json!({"type": "UNKNOWN"})),
        Err((501, String::new()))
    );
    assert_eq!(
        call(&mut m, json!({"type": "UPDATE_WEIGHTS"})),
        Err((
            400,
            "Failed to validate master::Call: Expecting 'update_weights' to be present".into()
        ))
    );
    assert_eq!(
        call(&mut m, json!({"type": "GET_METRICS"})).unwrap_err().0,
        400
    );
}

#[test]
fn weights_and_quota() {
    let (mut m, ..) = setup();
    let w = json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"weight": 2.5, "role": "r"}]}});
    assert_eq!(call(&mut m, w), Ok(OperatorReply::Ok));
    assert_eq!(
        body(&mut m, json!({"type": "GET_WEIGHTS"})),
        json!({"type": "GET_WEIGHTS", "get_weights": {"weight_infos": [{"weight": 2.5, "role": "r"}]}})
    );
    let bad = json!({"type": "UPDATE_WEIGHTS", "update_weights": {"weight_infos": [{"weight": 0, "role": "r"}]}});
    assert_eq!(call(&mut m, bad).unwrap_err().0, 400);

    let set = |cpus: f64| {
        json!({"type": "SET_QUOTA", "set_quota": {"quota_request": {"role": "r",
            "guarantee": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}}]}}})
    };
    assert_eq!(call(&mut m, set(8.0)).unwrap_err().0, 409);
    assert_eq!(call(&mut m, set(2.0)), Ok(OperatorReply::Ok));
    assert_eq!(
        call(&mut m, set(1.0)),
        Err((
            400,
            "Failed to validate set quota request: Cannot set quota for role 'r' which already has quota".into()
        ))
    );
    let q = body(&mut m, json!({"type": "GET_QUOTA"}));
    assert_eq!(
        q["get_quota"]["status"]["configs"][0],
        json!({"role": "r", "guarantees": {"cpus": {"value": 2.0}}, "limits": {"cpus": {"value": 2.0}}})
    );
    assert_eq!(
        q["get_quota"]["status"]["infos"][0]["guarantee"][0],
        json!({"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}})
    );
    let update = json!({"type": "UPDATE_QUOTA", "update_quota": {"quota_configs": [
        {"role": "s", "guarantees": {"cpus": {"value": 1}}, "limits": {"cpus": {"value": 3}}}]}});
    assert_eq!(call(&mut m, update), Ok(OperatorReply::Ok));
    assert_eq!(m.quotas().len(), 2);
    let remove = json!({"type": "REMOVE_QUOTA", "remove_quota": {"role": "r"}});
    assert_eq!(call(&mut m, remove.clone()), Ok(OperatorReply::Ok));
    assert_eq!(call(&mut m, remove).unwrap_err().0, 400);
    let roles = body(&mut m, json!({"type": "GET_ROLES"}));
    let names: Vec<&str> = roles["get_roles"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["*", "r", "s"]);
}

#[test]
fn reserve_and_unreserve() {
    let (mut m, aid, ..) = setup();
    let res = |cpus: f64, kind: &str| {
        json!([{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus},
            "reservations": [{"type": kind, "role": "r", "principal": "p"}]}])
    };
    let reserve = |r: Json| json!({"type": "RESERVE_RESOURCES", "reserve_resources": {"agent_id": {"value": aid}, "resources": r}});
    let unreserve = |r: Json| json!({"type": "UNRESERVE_RESOURCES", "unreserve_resources": {"agent_id": {"value": aid}, "resources": r}});
    // Offers are rescinded to make room.
    m.allocate(now(), &mut StdRng::seed_from_u64(1));
    assert_eq!(m.offers().count(), 1);
    assert_eq!(
        call(&mut m, reserve(res(2.0, "DYNAMIC"))),
        Ok(OperatorReply::Accepted)
    );
    assert_eq!(m.offers().count(), 0);
    let s = state_json(&m, 0.0);
    assert_eq!(
        s["slaves"][0]["reserved_resources"]["r"]["cpus"],
        json!(2.0)
    );
    assert_eq!(s["slaves"][0]["unreserved_resources"]["cpus"], json!(2.0));
    assert_eq!(s["slaves"][0]["resources"]["cpus"], json!(4.0));
    assert_eq!(
        call(&mut m, reserve(res(3.0, "DYNAMIC"))).unwrap_err().0,
        409
    );
    let err = call(&mut m, reserve(res(1.0, "STATIC"))).unwrap_err();
    assert_eq!(err.0, 400);
    assert!(
        err.1.starts_with("Invalid RESERVE operation on agent "),
        "{}",
        err.1
    );
    let mut other = reserve(res(1.0, "DYNAMIC"));
    other["reserve_resources"]["agent_id"]["value"] = json!("nope");
    assert_eq!(
        call(&mut m, other),
        Err((400, "No agent found with specified ID".into()))
    );
    assert_eq!(
        call(&mut m, unreserve(res(2.0, "DYNAMIC"))),
        Ok(OperatorReply::Accepted)
    );
    assert_eq!(
        call(&mut m, unreserve(res(2.0, "DYNAMIC"))).unwrap_err().0,
        409
    );
    let s = state_json(&m, 0.0);
    assert_eq!(s["slaves"][0]["reserved_resources"], json!({}));
}
