//! Persistence records and recovery after a master restart.

use super::*;

/// A framework "s1" (failover_timeout 100) with tasks t1 (RUNNING) and t2 (STAGING) on agent
/// "a1", role "a" weighted 2: (fid, aid).
fn two_tasks(h: &mut H) -> (String, String) {
    let mut info = fw_info(&["a"], &[]);
    info["failover_timeout"] = json!(100);
    let fid = h.subscribe_info("s1", info);
    let aid = h.agent("a1");
    h.m.update_weights([("a".to_string(), 2.0)]);
    let offers = h.offers("s1");
    h.accept(
        &fid,
        launch(
            &[offer_id(&offers[0])],
            vec![task("t1", &aid, 1.0, 128.0), task("t2", &aid, 1.0, 128.0)],
        ),
    );
    h.update(&aid, &fid, "t1", "TASK_RUNNING", Some("cnVu"));
    h.ack(&fid, &aid, "t1", "cnVu");
    (fid, aid)
}

fn resubscribe(h: &mut H, fid: &str, stream: &str) {
    let mut info = fw_info(&["a"], &[]);
    info["id"] = proto::id(fid);
    info["failover_timeout"] = json!(100);
    h.subscribe_info(stream, info);
}

fn reported(fid: &str, tids: &[&str]) -> Json {
    Json::Array(
        tids.iter()
            .map(|t| {
                json!({"framework_id": {"value": fid}, "task_id": {"value": t}, "state": "TASK_RUNNING"})
            })
            .collect(),
    )
}

#[test]
fn store_records_follow_the_state() {
    let mut h = H::new();
    let (fid, aid) = two_tasks(&mut h);
    h.pull();
    let keys: Vec<&str> = h.store.keys().map(String::as_str).collect();
    let task_key_1 = format!("{STORE_PREFIX}tasks/{fid}/t1");
    assert_eq!(
        keys,
        vec![
            format!("{STORE_PREFIX}agents/{aid}").as_str(),
            format!("{STORE_PREFIX}frameworks/{fid}").as_str(),
            format!("{STORE_PREFIX}info").as_str(),
            task_key_1.as_str(),
            format!("{STORE_PREFIX}tasks/{fid}/t2").as_str(),
        ]
    );
    assert_eq!(h.store[&task_key_1]["state"], "TASK_RUNNING");
    assert_eq!(h.store[&format!("{STORE_PREFIX}info")]["weights"]["a"], 2.0);
    // A retired task's record is deleted.
    h.update(&aid, &fid, "t1", "TASK_FINISHED", Some("ZG9uZQ=="));
    h.ack(&fid, &aid, "t1", "ZG9uZQ==");
    assert!(!h.store.contains_key(&task_key_1));
}

#[test]
fn recover_restores_frameworks_agents_tasks() {
    let mut h = H::new();
    let (fid, aid) = two_tasks(&mut h);
    let mut r = h.restart(Duration::from_secs(10));
    assert_eq!(r.m.id(), "m");
    let fws: Vec<_> = r.m.frameworks().collect();
    assert_eq!(fws.len(), 1);
    assert_eq!(fws[0].id, fid);
    assert_eq!(fws[0].roles, vec!["a".to_string()]);
    assert!(fws[0].stream.is_none(), "waits for re-subscription");
    let agents: Vec<_> = r.m.agents().collect();
    assert_eq!(agents.len(), 1);
    assert_eq!(agents[0].id, aid);
    assert_eq!(agents[0].total.scalar("cpus").as_f64(), 4.0);
    assert_eq!(agents[0].total.scalar("mem").as_f64(), 4096.0);
    assert!(!agents[0].active(), "waits for re-registration");
    let mut tasks: Vec<_> =
        r.m.tasks()
            .map(|t| (t.framework.clone(), t.id.clone(), t.agent.clone(), t.state))
            .collect();
    tasks.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        tasks,
        vec![
            (fid.clone(), "t1".into(), aid.clone(), TaskState::Running),
            (fid.clone(), "t2".into(), aid.clone(), TaskState::Staging),
        ]
    );
    let t1 = r
        .task(&fid, "t1")
        .map(|t| t.resources.scalar("cpus").as_f64());
    assert_eq!(t1, Some(1.0));
    assert_eq!(r.m.weights().get("a"), Some(&2.0));
    // Ids are never reused.
    let new = r.subscribe_info("s9", fw_info(&["b"], &[]));
    assert_ne!(new, fid);
    let new_agent = r.agent("a9");
    assert_ne!(new_agent, aid);
}

#[test]
fn reregistered_agent_keeps_reported_tasks_and_loses_the_others() {
    let mut h = H::new();
    let (fid, aid) = two_tasks(&mut h);
    let mut r = h.restart(Duration::from_secs(10));
    resubscribe(&mut r, &fid, "s2");
    let fx = r.take();
    assert_eq!(
        fx.one("s2", "SUBSCRIBED")["subscribed"]["framework_id"]["value"],
        fid.as_str()
    );
    let call = agent_call(Some(&aid), 4.0, 4096.0, reported(&fid, &["t1"]));
    assert_eq!(r.m.agent_subscribe(&call, "a2", r.now), Ok(aid.clone()));
    let fx = r.take();
    assert_eq!(
        fx.one("a2", "SUBSCRIBED")["subscribed"]["agent_id"]["value"],
        aid.as_str()
    );
    assert!(
        fx.of("a2", "LAUNCH").is_empty(),
        "nothing is launched twice"
    );
    assert!(fx.of("a2", "KILL").is_empty());
    let st = fx.statuses("s2");
    assert_eq!(st.len(), 1);
    assert_eq!(str_at(&st[0], "/task_id/value"), "t2");
    assert_eq!(st[0]["state"], "TASK_LOST");
    assert_eq!(st[0]["reason"], "REASON_SLAVE_REREGISTERED");
    assert_eq!(st[0]["source"], "SOURCE_MASTER");
    assert!(st[0]["uuid"].is_string());
    assert_eq!(
        r.task(&fid, "t1").map(|t| t.state),
        Some(TaskState::Running)
    );
    assert!(r.task(&fid, "t2").is_none());
    // The running task's resources stay allocated.
    let offers = r.offers("s2");
    assert_eq!(offered(&offers, "cpus"), 3.0);
    assert_eq!(offered(&offers, "mem"), 3968.0);
}

#[test]
fn agent_that_never_reregisters_becomes_unreachable() {
    let mut h = H::new();
    let (fid, aid) = two_tasks(&mut h);
    let mut r = h.restart(Duration::from_secs(10));
    resubscribe(&mut r, &fid, "s2");
    r.take();
    // Mesos stays silent about tasks on agents still expected to re-register.
    r.m.reconcile(
        &fid,
        &[json!({"task_id": {"value": "other"}, "agent_id": {"value": aid}})],
        r.now,
    );
    assert!(r.take().statuses("s2").is_empty());
    r.advance_secs(599.0);
    assert!(r.take().of("s2", "FAILURE").is_empty());
    r.advance_secs(1.0);
    let fx = r.take();
    let f = fx.one("s2", "FAILURE");
    assert_eq!(str_at(&f, "/failure/agent_id/value"), aid);
    let mut st = fx.statuses("s2");
    st.sort_by_key(|s| str_at(s, "/task_id/value"));
    assert_eq!(st.len(), 2);
    for (s, tid) in st.iter().zip(["t1", "t2"]) {
        assert_eq!(str_at(s, "/task_id/value"), tid);
        assert_eq!(s["state"], "TASK_LOST");
        assert_eq!(s["reason"], "REASON_SLAVE_REMOVED");
        assert_eq!(s["source"], "SOURCE_MASTER");
    }
    assert_eq!(r.m.tasks().count(), 0);
    let reachable = r.m.agents().find(|a| a.id == aid).map(|a| a.reachable);
    assert_eq!(reachable, Some(false));
}

#[test]
fn unreachable_mark_survives_restart() {
    let mut h = H::new();
    let (fid, aid) = two_tasks(&mut h);
    h.m.stream_closed("a1", h.now);
    h.advance_secs(75.0);
    let mut r = h.restart(Duration::from_secs(1));
    let reachable = r.m.agents().find(|a| a.id == aid).map(|a| a.reachable);
    assert_eq!(reachable, Some(false));
    assert_eq!(r.m.tasks().count(), 0);
    resubscribe(&mut r, &fid, "s2");
    r.advance_secs(700.0);
    // Already unreachable: no second FAILURE.
    assert!(r.take().of("s2", "FAILURE").is_empty());
}

#[test]
fn framework_that_never_resubscribes_is_removed_after_recovery() {
    let mut h = H::new();
    let (fid, aid) = two_tasks(&mut h);
    let mut r = h.restart(Duration::from_secs(10));
    let call = agent_call(Some(&aid), 4.0, 4096.0, reported(&fid, &["t1", "t2"]));
    r.m.agent_subscribe(&call, "a2", r.now).unwrap();
    r.advance_alive(600.0, &[&aid]);
    let fx = r.take();
    assert_eq!(r.m.frameworks().count(), 0);
    assert_eq!(fx.of("a2", "SHUTDOWN_FRAMEWORK").len(), 1);
    assert_eq!(r.m.tasks().count(), 0);
}

#[test]
fn torn_down_framework_stays_removed_after_restart() {
    let mut h = H::new();
    let (fid, _aid) = two_tasks(&mut h);
    h.m.teardown(&fid, h.now);
    let mut r = h.restart(Duration::from_secs(1));
    assert_eq!(r.m.frameworks().count(), 0);
    assert_eq!(r.m.tasks().count(), 0);
    let mut info = fw_info(&["a"], &[]);
    info["id"] = proto::id(&fid);
    let err = r.m.subscribe(&subscribe_call(info), "s2", r.now);
    assert_eq!(err, Err(SubscribeError::Removed));
}

#[test]
fn recover_without_master_record_is_none() {
    let now = Now {
        instant: Instant::now(),
        unix: T0_UNIX,
    };
    assert!(Master::recover(Config::default(), &[], now).is_none());
}
