//! Agent disconnection, ping timeouts, unreachable agents and their re-registration.

use super::*;

#[test]
fn agent_stream_closed_rescinds_its_offers() {
    let mut h = H::new();
    let (_fid, aid, offer) = h.offered_setup();
    let other = h.agent("a2");
    let fx = h.cycle();
    let second = fx.offers("s1");
    assert_eq!(second.len(), 1);
    assert_eq!(str_at(&second[0], "/agent_id/value"), other);

    h.m.stream_closed("a1", h.now);
    let fx = h.take();
    assert_eq!(fx.rescinded("s1"), vec![offer_id(&offer)]);
    let r = fx.one("s1", "RESCIND");
    assert_eq!(str_at(&r, "/rescind/offer_id/value"), offer_id(&offer));
    assert!(fx.of("s1", "FAILURE").is_empty(), "not yet unreachable");
    let a = h.m.agents().find(|a| a.id == aid).map(|a| a.active());
    assert_eq!(a, Some(false));
    assert_eq!(h.m.offers().count(), 1, "the other agent's offer stays");
    // A disconnected agent is not offered.
    assert!(h.offers("s1").is_empty());
}

#[test]
fn ping_timeout_loses_tasks_and_sends_failure() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.m.stream_closed("a1", h.now);
    h.take();
    // 15 s × 5 pings.
    h.advance_secs(74.0);
    let fx = h.take();
    assert!(fx.of("s1", "FAILURE").is_empty());
    assert!(h.task(&fid, "t1").is_some());
    h.advance_secs(1.0);
    let fx = h.take();
    let f = fx.one("s1", "FAILURE");
    assert_eq!(str_at(&f, "/failure/agent_id/value"), aid);
    let st = fx.statuses("s1");
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["state"], "TASK_LOST");
    assert_eq!(st[0]["reason"], "REASON_SLAVE_REMOVED");
    assert_eq!(st[0]["source"], "SOURCE_MASTER");
    assert_eq!(str_at(&st[0], "/task_id/value"), "t1");
    assert_eq!(str_at(&st[0], "/agent_id/value"), aid);
    assert!(st[0]["uuid"].is_string());
    assert!(h.task(&fid, "t1").is_none());
    let done: Vec<_> = h.m.completed_tasks().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].state, TaskState::Lost);
    let agent = h.m.agents().find(|a| a.id == aid).map(|a| a.reachable);
    assert_eq!(agent, Some(false));
    // Only once.
    h.advance_secs(100.0);
    assert!(h.take().of("s1", "FAILURE").is_empty());
}

#[test]
fn connected_agent_without_messages_also_times_out() {
    let mut h = H::new();
    let (_fid, _aid, offer) = h.offered_setup();
    h.advance_secs(75.0);
    let fx = h.take();
    assert!(
        fx.closed("a1"),
        "the master ends the stream of an unreachable agent"
    );
    assert_eq!(fx.rescinded("s1"), vec![offer_id(&offer)]);
    assert_eq!(fx.of("s1", "FAILURE").len(), 1);
}

#[test]
fn ping_timeout_makes_tasks_of_partition_aware_framework_unreachable() {
    let mut h = H::new();
    let fid = h.subscribe_info("s1", fw_info(&["a"], &["PARTITION_AWARE"]));
    let aid = h.agent("a1");
    let offers = h.offers("s1");
    h.accept(
        &fid,
        launch(&[offer_id(&offers[0])], vec![task("t1", &aid, 1.0, 128.0)]),
    );
    h.update(&aid, &fid, "t1", "TASK_RUNNING", Some("cnVu"));
    h.m.stream_closed("a1", h.now);
    h.advance_secs(75.0);
    let fx = h.take();
    assert_eq!(fx.of("s1", "FAILURE").len(), 1);
    let st = fx.statuses("s1");
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["state"], "TASK_UNREACHABLE");
    assert_eq!(st[0]["reason"], "REASON_SLAVE_REMOVED");
    assert_eq!(st[0]["source"], "SOURCE_MASTER");
    assert!(st[0]["uuid"].is_string());
    assert_eq!(
        h.task(&fid, "t1").map(|t| t.state),
        Some(TaskState::Unreachable)
    );

    // The agent comes back with the task: it is running again, nothing is killed.
    let call = agent_call(
        Some(&aid),
        4.0,
        4096.0,
        json!([{"framework_id": {"value": fid}, "task_id": {"value": "t1"}, "state": "TASK_RUNNING"}]),
    );
    h.m.agent_subscribe(&call, "a2", h.now).unwrap();
    let fx = h.take();
    assert_eq!(
        fx.one("a2", "SUBSCRIBED")["subscribed"]["agent_id"]["value"],
        aid.as_str()
    );
    assert!(fx.of("a2", "KILL").is_empty());
    assert_eq!(
        h.task(&fid, "t1").map(|t| t.state),
        Some(TaskState::Running)
    );
}

#[test]
fn unreachable_agent_reregistering_kills_tasks_of_non_partition_aware_framework() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.m.stream_closed("a1", h.now);
    h.advance_secs(75.0);
    h.take();
    let call = agent_call(
        Some(&aid),
        4.0,
        4096.0,
        json!([{"framework_id": {"value": fid}, "task_id": {"value": "t1"}, "state": "TASK_RUNNING"}]),
    );
    h.m.agent_subscribe(&call, "a2", h.now).unwrap();
    let fx = h.take();
    let k = fx.one("a2", "KILL");
    assert_eq!(str_at(&k, "/kill/task_id/value"), "t1");
    assert_eq!(str_at(&k, "/kill/framework_id/value"), fid);
    assert!(h.task(&fid, "t1").is_none());
    let agent = h.m.agents().find(|a| a.id == aid).map(|a| a.active());
    assert_eq!(agent, Some(true));
}

#[test]
fn heartbeats_keep_agent_reachable() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.take();
    h.advance_alive(600.0, &[&aid]);
    let fx = h.take();
    assert!(fx.of("s1", "FAILURE").is_empty());
    assert!(fx.statuses("s1").is_empty());
    assert!(h.task(&fid, "t1").is_some());
    let agent = h.m.agents().find(|a| a.id == aid).map(|a| a.reachable);
    assert_eq!(agent, Some(true));
    // Status updates count as heartbeats too.
    for _ in 0..10 {
        h.advance_secs(60.0);
        h.update(&aid, &fid, "t1", "TASK_RUNNING", None);
    }
    assert!(h.take().of("s1", "FAILURE").is_empty());
    assert!(h.task(&fid, "t1").is_some());
}

#[test]
fn agent_reconnecting_on_new_stream_replaces_old_one() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.take();
    let call = agent_call(
        Some(&aid),
        4.0,
        4096.0,
        json!([{"framework_id": {"value": fid}, "task_id": {"value": "t1"}, "state": "TASK_RUNNING"}]),
    );
    h.m.agent_subscribe(&call, "a2", h.now).unwrap();
    let fx = h.take();
    assert!(fx.closed("a1"));
    assert_eq!(fx.of("a2", "SUBSCRIBED").len(), 1);
    assert!(fx.statuses("s1").is_empty());
    assert!(h.task(&fid, "t1").is_some());
    assert_eq!(h.m.authorize_agent(&aid, Some("a2")), Ok(()));
    assert_eq!(
        h.m.authorize_agent(&aid, Some("a1")).map_err(|e| e.0),
        Err(403)
    );
    assert_eq!(
        h.m.authorize_agent("nope", Some("a2")).map_err(|e| e.0),
        Err(404)
    );
    // The old stream closing later does not disconnect the agent.
    h.m.stream_closed("a1", h.now);
    let agent = h.m.agents().find(|a| a.id == aid).map(|a| a.active());
    assert_eq!(agent, Some(true));
}

#[test]
fn task_of_framework_removed_while_agent_was_away_is_killed_on_reregistration() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.m.stream_closed("a1", h.now);
    h.m.teardown(&fid, h.now);
    let fx = h.take();
    assert!(
        fx.of("a1", "SHUTDOWN_FRAMEWORK").is_empty(),
        "the agent is away"
    );
    let call = agent_call(
        Some(&aid),
        4.0,
        4096.0,
        json!([{"framework_id": {"value": fid}, "task_id": {"value": "t1"}, "state": "TASK_RUNNING"}]),
    );
    h.m.agent_subscribe(&call, "a2", h.now).unwrap();
    let fx = h.take();
    let k = fx.one("a2", "KILL");
    assert_eq!(str_at(&k, "/kill/task_id/value"), "t1");
    assert_eq!(h.m.tasks().count(), 0);
}

#[test]
fn reregistering_agent_reports_unknown_task_of_known_framework() {
    let mut h = H::new();
    let fid = h.subscribe("s1");
    let aid = h.agent("a1");
    h.m.stream_closed("a1", h.now);
    let call = agent_call(
        Some(&aid),
        4.0,
        4096.0,
        json!([{
            "framework_id": {"value": fid},
            "task_id": {"value": "adopted"},
            "state": "TASK_RUNNING",
            "role": "a",
            "info": {"name": "x", "resources": [scalar_json("cpus", 2.0), scalar_json("mem", 512.0)]},
        }]),
    );
    h.m.agent_subscribe(&call, "a2", h.now).unwrap();
    let fx = h.take();
    assert!(fx.of("a2", "KILL").is_empty());
    assert_eq!(
        h.task(&fid, "adopted").map(|t| t.state),
        Some(TaskState::Running)
    );
    // Its resources are not offered.
    assert_eq!(offered(&h.offers("s1"), "cpus"), 2.0);
}
