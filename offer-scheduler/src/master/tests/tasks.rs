//! RECONCILE and KILL.

use super::*;

fn assert_reconciliation(status: &Json, tid: &str, state: &str) {
    assert_eq!(str_at(status, "/task_id/value"), tid);
    assert_eq!(status["state"], state, "{status}");
    assert_eq!(status["reason"], "REASON_RECONCILIATION");
    assert_eq!(status["source"], "SOURCE_MASTER");
    assert!(status.get("uuid").is_none(), "no acknowledgement: {status}");
}

#[test]
fn implicit_reconciliation_reports_latest_state_of_every_task() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.advance_secs(6.0);
    let offers = h.offers("s1");
    h.accept(
        &fid,
        launch(&[offer_id(&offers[0])], vec![task("t2", &aid, 1.0, 128.0)]),
    );
    // Another framework's tasks are not reported.
    let other = h.subscribe_info("s2", fw_info(&["b"], &[]));
    h.m.reconcile(&fid, &[], h.now);
    let fx = h.take();
    let st = fx.statuses("s1");
    assert_eq!(st.len(), 2);
    assert_reconciliation(&st[0], "t1", "TASK_RUNNING");
    assert_reconciliation(&st[1], "t2", "TASK_STAGING");
    for s in &st {
        assert_eq!(str_at(s, "/agent_id/value"), aid);
    }
    h.m.reconcile(&other, &[], h.now);
    assert!(h.take().statuses("s2").is_empty());
}

#[test]
fn explicit_reconciliation() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.take();
    let tasks = [
        json!({"task_id": {"value": "t1"}}),
        json!({"task_id": {"value": "ghost"}}),
        json!({"task_id": {"value": "ghost2"}, "agent_id": {"value": aid}}),
        json!({"task_id": {"value": "ghost3"}, "agent_id": {"value": "no-agent"}}),
    ];
    h.m.reconcile(&fid, &tasks, h.now);
    let st = h.take().statuses("s1");
    assert_eq!(st.len(), 4);
    assert_reconciliation(&st[0], "t1", "TASK_RUNNING");
    assert_reconciliation(&st[1], "ghost", "TASK_LOST");
    assert_reconciliation(&st[2], "ghost2", "TASK_LOST");
    assert_eq!(str_at(&st[2], "/agent_id/value"), aid);
    assert_reconciliation(&st[3], "ghost3", "TASK_LOST");
}

#[test]
fn explicit_reconciliation_for_partition_aware_framework() {
    let mut h = H::new();
    let fid = h.subscribe_info("s1", fw_info(&["a"], &["PARTITION_AWARE"]));
    let aid = h.agent("a1");
    let gone = h.agent("a2");
    h.m.stream_closed("a2", h.now);
    h.advance_alive(80.0, &[&aid]);
    h.take();
    let tasks = [
        json!({"task_id": {"value": "x"}}),
        json!({"task_id": {"value": "y"}, "agent_id": {"value": aid}}),
        json!({"task_id": {"value": "z"}, "agent_id": {"value": gone}}),
    ];
    h.m.reconcile(&fid, &tasks, h.now);
    let st = h.take().statuses("s1");
    assert_eq!(st.len(), 3);
    assert_reconciliation(&st[0], "x", "TASK_UNKNOWN");
    assert_reconciliation(&st[1], "y", "TASK_GONE");
    assert_reconciliation(&st[2], "z", "TASK_UNREACHABLE");
}

#[test]
fn kill_running_task_is_forwarded_to_agent() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.take();
    h.m.kill(
        &fid,
        &json!({"task_id": {"value": "t1"}, "agent_id": {"value": aid}}),
        h.now,
    );
    let fx = h.take();
    let k = fx.one("a1", "KILL");
    assert_eq!(str_at(&k, "/kill/task_id/value"), "t1");
    assert_eq!(str_at(&k, "/kill/framework_id/value"), fid);
    assert!(fx.is_empty_for("s1"));
    // The task stays until the agent reports it killed.
    assert!(h.task(&fid, "t1").is_some());
    let fx = h.update(&aid, &fid, "t1", "TASK_KILLED", Some("a2lsbA=="));
    assert_eq!(fx.statuses("s1")[0]["state"], "TASK_KILLED");
    h.ack(&fid, &aid, "t1", "a2lsbA==");
    assert!(h.task(&fid, "t1").is_none());
    assert_eq!(
        h.m.completed_tasks().map(|t| t.state).collect::<Vec<_>>(),
        vec![TaskState::Killed]
    );
}

#[test]
fn kill_unknown_task_answers_with_reconciliation() {
    let mut h = H::new();
    let (fid, _aid, _offer) = h.offered_setup();
    h.m.kill(&fid, &json!({"task_id": {"value": "nope"}}), h.now);
    let fx = h.take();
    assert!(fx.of("a1", "KILL").is_empty());
    let st = fx.statuses("s1");
    assert_eq!(st.len(), 1);
    assert_reconciliation(&st[0], "nope", "TASK_LOST");
}

#[test]
fn acknowledge_with_stale_uuid_keeps_terminal_task() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    h.take();
    // Acknowledging with a stale uuid after a terminal update does not retire the task.
    h.update(&aid, &fid, "t1", "TASK_FAILED", Some("ZmFpbA=="));
    let fx = h.ack(&fid, &aid, "t1", "c3RhbGU=");
    assert_eq!(
        fx.one("a1", "ACKNOWLEDGE")["acknowledge"]["uuid"],
        "c3RhbGU="
    );
    assert!(h.task(&fid, "t1").is_some());
    h.ack(&fid, &aid, "t1", "ZmFpbA==");
    assert!(h.task(&fid, "t1").is_none());
}

#[test]
fn a_resent_update_is_forwarded_again_but_not_recorded_again() {
    let mut h = H::new();
    let (fid, aid) = h.running_setup();
    let persists = |fx: &Fx| {
        fx.0.iter()
            .filter(|e| matches!(e, Effect::Persist { .. }))
            .count()
    };
    let first = h.update(&aid, &fid, "t1", "TASK_FAILED", Some("dXVpZC1mYWls"));
    assert_eq!(first.statuses("s1").len(), 1);
    assert_eq!(persists(&first), 1);
    // The agent had no acknowledgement yet and sends the same update again.
    let again = h.update(&aid, &fid, "t1", "TASK_FAILED", Some("dXVpZC1mYWls"));
    assert_eq!(again.statuses("s1").len(), 1, "forwarded again");
    assert_eq!(persists(&again), 0, "nothing new to record");
}
