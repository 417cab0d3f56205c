//! Offers, ACCEPT (LAUNCH and its failures), DECLINE filters, SUPPRESS / REVIVE.

use super::*;

#[test]
fn agent_subscribe_answers_subscribed_with_agent_id() {
    let mut h = H::new();
    let aid = h.agent("a1");
    let fx = h.take();
    let e = fx.one("a1", "SUBSCRIBED");
    assert_eq!(str_at(&e, "/subscribed/agent_id/value"), aid);
    assert_eq!(fx.to("a1").len(), 1);
    let agents: Vec<_> = h.m.agents().collect();
    assert_eq!(agents.len(), 1);
    assert!(agents[0].active());
    assert_eq!(agents[0].total.scalar("cpus").as_f64(), 4.0);
}

#[test]
fn one_offers_event_with_allocation_info() {
    let mut h = H::new();
    let fid = h.subscribe("s1");
    let aid = h.agent("a1");
    h.take();
    let fx = h.cycle();
    let events = fx.of("s1", "OFFERS");
    assert_eq!(events.len(), 1);
    let offers = fx.offers("s1");
    assert_eq!(offers.len(), 1);
    let o = &offers[0];
    assert_eq!(str_at(o, "/framework_id/value"), fid);
    assert_eq!(str_at(o, "/agent_id/value"), aid);
    assert_eq!(o["hostname"], "h");
    assert_eq!(o["allocation_info"]["role"], "a");
    let resources = o["resources"].as_array().cloned().unwrap_or_default();
    assert_eq!(resources.len(), 2);
    for r in &resources {
        assert_eq!(r["allocation_info"]["role"], "a", "{r}");
    }
    assert_eq!(scalar_of(&o["resources"], "cpus"), 4.0);
    assert_eq!(scalar_of(&o["resources"], "mem"), 4096.0);
    assert_eq!(h.m.offers().count(), 1);
    // Outstanding offers are not offered twice.
    assert!(h.offers("s1").is_empty());
}

#[test]
fn launch_update_acknowledge_complete() {
    let mut h = H::new();
    let (fid, aid, offer) = h.offered_setup();
    let fx = h.accept(
        &fid,
        launch(&[offer_id(&offer)], vec![task("t1", &aid, 1.0, 128.0)]),
    );
    let l = fx.one("a1", "LAUNCH");
    assert_eq!(str_at(&l, "/launch/framework_id/value"), fid);
    assert_eq!(l["launch"]["role"], "a");
    assert_eq!(str_at(&l, "/launch/task/task_id/value"), "t1");
    assert_eq!(str_at(&l, "/launch/task/agent_id/value"), aid);
    assert_eq!(l["launch"]["task"]["command"]["value"], "sleep 1000");
    assert_eq!(scalar_of(&l["launch"]["task"]["resources"], "cpus"), 1.0);
    assert_eq!(
        l["launch"]["task"]["resources"][0]["allocation_info"]["role"],
        "a"
    );
    assert_eq!(
        str_at(&l, "/launch/framework_info/id/value"),
        fid,
        "the agent needs the framework's info"
    );
    assert!(fx.is_empty_for("s1"), "a valid launch sends no update");
    assert_eq!(
        h.task(&fid, "t1").map(|t| t.state),
        Some(TaskState::Staging)
    );
    assert_eq!(h.m.offers().count(), 0);

    // The unused cpus:3;mem:3968 are filtered for 5 s; afterwards only they come back.
    assert!(h.offers("s1").is_empty());
    h.advance_secs(6.0);
    let offers = h.offers("s1");
    assert_eq!(offers.len(), 1);
    assert_eq!(offered(&offers, "cpus"), 3.0);
    assert_eq!(offered(&offers, "mem"), 3968.0);
    h.m.decline(
        &fid,
        &[offer_id(&offers[0])],
        Some(&json!({"refuse_seconds": 0})),
        h.now,
    );

    let fx = h.update(&aid, &fid, "t1", "TASK_RUNNING", Some("dXVpZC0x"));
    let st = fx.statuses("s1");
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["state"], "TASK_RUNNING");
    assert_eq!(st[0]["uuid"], "dXVpZC0x");
    assert_eq!(str_at(&st[0], "/agent_id/value"), aid);
    assert_eq!(str_at(&st[0], "/task_id/value"), "t1");
    assert_eq!(st[0]["source"], "SOURCE_EXECUTOR");
    assert_eq!(
        h.task(&fid, "t1").map(|t| t.state),
        Some(TaskState::Running)
    );

    let fx = h.ack(&fid, &aid, "t1", "dXVpZC0x");
    let a = fx.one("a1", "ACKNOWLEDGE");
    assert_eq!(a["acknowledge"]["uuid"], "dXVpZC0x");
    assert_eq!(str_at(&a, "/acknowledge/task_id/value"), "t1");
    assert_eq!(str_at(&a, "/acknowledge/framework_id/value"), fid);
    assert!(h.task(&fid, "t1").is_some());

    let fx = h.update(&aid, &fid, "t1", "TASK_FINISHED", Some("dXVpZC0y"));
    assert_eq!(fx.statuses("s1")[0]["state"], "TASK_FINISHED");
    // Mesos recovers a task's resources on its terminal update, before the acknowledgement.
    let offers = h.offers("s1");
    assert_eq!(offered(&offers, "cpus"), 4.0);
    assert!(h.task(&fid, "t1").is_some(), "kept until acknowledged");
    assert_eq!(h.m.completed_tasks().count(), 0);

    // Acknowledging the terminal update retires the task.
    let fx = h.ack(&fid, &aid, "t1", "dXVpZC0y");
    assert_eq!(
        fx.one("a1", "ACKNOWLEDGE")["acknowledge"]["uuid"],
        "dXVpZC0y"
    );
    assert!(h.task(&fid, "t1").is_none());
    let done: Vec<_> = h.m.completed_tasks().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, "t1");
    assert_eq!(done[0].state, TaskState::Finished);
    h.m.decline(
        &fid,
        &[offer_id(&offers[0])],
        Some(&json!({"refuse_seconds": 0})),
        h.now,
    );
    assert_eq!(offered(&h.offers("s1"), "cpus"), 4.0);
}

#[test]
fn update_for_unknown_task_is_acknowledged_by_the_master() {
    let mut h = H::new();
    let (fid, aid, _offer) = h.offered_setup();
    let fx = h.update(&aid, &fid, "ghost", "TASK_RUNNING", Some("dXVpZA=="));
    assert!(fx.is_empty_for("s1"));
    let a = fx.one("a1", "ACKNOWLEDGE");
    assert_eq!(a["acknowledge"]["uuid"], "dXVpZA==");
    assert_eq!(str_at(&a, "/acknowledge/task_id/value"), "ghost");
}

fn assert_invalid_offer(status: &Json, tid: &str, state: &str) {
    assert_eq!(status["state"], state);
    assert_eq!(status["reason"], "REASON_INVALID_OFFERS");
    assert_eq!(status["source"], "SOURCE_MASTER");
    assert_eq!(str_at(status, "/task_id/value"), tid);
    assert!(
        status["uuid"].is_string(),
        "needs an acknowledgement: {status}"
    );
}

#[test]
fn accept_unknown_or_used_offer_loses_task() {
    let mut h = H::new();
    let (fid, aid, offer) = h.offered_setup();
    let fx = h.accept(
        &fid,
        launch(
            &["no-such-offer".into()],
            vec![task("t0", &aid, 1.0, 128.0)],
        ),
    );
    assert_invalid_offer(
        &fx.one("s1", "UPDATE")["update"]["status"],
        "t0",
        "TASK_LOST",
    );
    assert!(fx.of("a1", "LAUNCH").is_empty());
    assert!(h.task(&fid, "t0").is_none());

    let oid = offer_id(&offer);
    h.accept(
        &fid,
        launch(
            std::slice::from_ref(&oid),
            vec![task("t1", &aid, 1.0, 128.0)],
        ),
    );
    let fx = h.accept(&fid, launch(&[oid], vec![task("t2", &aid, 1.0, 128.0)]));
    assert_invalid_offer(
        &fx.one("s1", "UPDATE")["update"]["status"],
        "t2",
        "TASK_LOST",
    );
    assert!(fx.of("a1", "LAUNCH").is_empty());
    assert!(h.task(&fid, "t2").is_none());
    assert!(h.task(&fid, "t1").is_some());
}

#[test]
fn accept_offer_of_another_framework_loses_task() {
    let mut h = H::new();
    let (_fid, aid, offer) = h.offered_setup();
    let other = h.subscribe_info("s2", fw_info(&["b"], &[]));
    let fx = h.accept(
        &other,
        launch(&[offer_id(&offer)], vec![task("t1", &aid, 1.0, 128.0)]),
    );
    assert_invalid_offer(
        &fx.one("s2", "UPDATE")["update"]["status"],
        "t1",
        "TASK_LOST",
    );
    assert!(fx.of("a1", "LAUNCH").is_empty());
    assert_eq!(h.m.offers().count(), 1, "the owner's offer stays");
}

#[test]
fn accept_invalid_offer_drops_task_of_partition_aware_framework() {
    let mut h = H::new();
    let fid = h.subscribe_info("s1", fw_info(&["a"], &["PARTITION_AWARE"]));
    let aid = h.agent("a1");
    h.take();
    let fx = h.accept(
        &fid,
        launch(&["gone".into()], vec![task("t1", &aid, 1.0, 128.0)]),
    );
    assert_invalid_offer(
        &fx.one("s1", "UPDATE")["update"]["status"],
        "t1",
        "TASK_DROPPED",
    );
}

#[test]
fn task_larger_than_offer_is_task_error() {
    let mut h = H::new();
    let (fid, aid, offer) = h.offered_setup();
    let fx = h.accept(
        &fid,
        launch(
            &[offer_id(&offer)],
            vec![task("big", &aid, 5.0, 128.0), task("ok", &aid, 1.0, 128.0)],
        ),
    );
    let st = fx.statuses("s1");
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["state"], "TASK_ERROR");
    assert_eq!(st[0]["reason"], "REASON_TASK_INVALID");
    assert_eq!(st[0]["source"], "SOURCE_MASTER");
    assert_eq!(str_at(&st[0], "/task_id/value"), "big");
    assert_eq!(str_at(&st[0], "/agent_id/value"), aid);
    assert!(st[0]["uuid"].is_string());
    assert!(h.task(&fid, "big").is_none());
    // The next task of the same ACCEPT still launches from what is left.
    let l = fx.one("a1", "LAUNCH");
    assert_eq!(str_at(&l, "/launch/task/task_id/value"), "ok");
}

#[test]
fn invalid_task_infos_are_task_error() {
    let mut h = H::new();
    let (fid, aid, offer) = h.offered_setup();
    let mut no_command = task("nocmd", &aid, 1.0, 1.0);
    if let Some(m) = no_command.as_object_mut() {
        m.remove("command");
    }
    let wrong_agent = task("wrong", "other-agent", 1.0, 1.0);
    let fx = h.accept(
        &fid,
        launch(&[offer_id(&offer)], vec![no_command, wrong_agent]),
    );
    let st = fx.statuses("s1");
    assert_eq!(st.len(), 2);
    for s in &st {
        assert_eq!(s["state"], "TASK_ERROR");
        assert_eq!(s["reason"], "REASON_TASK_INVALID");
    }
    assert!(fx.of("a1", "LAUNCH").is_empty());
    assert_eq!(h.m.tasks().count(), 0);
}

#[test]
fn duplicate_task_id_is_task_error() {
    let mut h = H::new();
    let (fid, aid, offer) = h.offered_setup();
    let fx = h.accept(
        &fid,
        launch(
            &[offer_id(&offer)],
            vec![task("t1", &aid, 1.0, 1.0), task("t1", &aid, 1.0, 1.0)],
        ),
    );
    assert_eq!(fx.of("a1", "LAUNCH").len(), 1);
    let st = fx.statuses("s1");
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["state"], "TASK_ERROR");
    assert_eq!(st[0]["reason"], "REASON_TASK_INVALID");
}

#[test]
fn unused_accept_resources_are_filtered_for_refuse_seconds() {
    let mut h = H::new();
    let (fid, aid, offer) = h.offered_setup();
    h.accept(
        &fid,
        launch(&[offer_id(&offer)], vec![task("t1", &aid, 1.0, 128.0)]),
    );
    assert!(h.offers("s1").is_empty());
    h.advance_secs(4.9);
    assert!(h.offers("s1").is_empty());
    h.advance_secs(0.1);
    let offers = h.offers("s1");
    assert_eq!(offered(&offers, "cpus"), 3.0);

    // An explicit refuse_seconds on the ACCEPT is honoured.
    let mut body = launch(&[offer_id(&offers[0])], vec![task("t2", &aid, 1.0, 128.0)]);
    body["filters"] = json!({"refuse_seconds": 30});
    h.accept(&fid, body);
    h.advance_secs(29.0);
    assert!(h.offers("s1").is_empty());
    h.advance_secs(1.0);
    assert_eq!(offered(&h.offers("s1"), "cpus"), 2.0);
}

#[test]
fn unused_resources_are_offered_to_another_framework_at_once() {
    let mut h = H::new();
    let (fid, aid, offer) = h.offered_setup();
    h.accept(
        &fid,
        launch(&[offer_id(&offer)], vec![task("t1", &aid, 1.0, 128.0)]),
    );
    h.subscribe_info("s2", fw_info(&["b"], &[]));
    let fx = h.cycle();
    assert!(fx.offers("s1").is_empty());
    assert_eq!(offered(&fx.offers("s2"), "cpus"), 3.0);
}

#[test]
fn decline_filters_for_refuse_seconds() {
    let mut h = H::new();
    let (fid, _aid, offer) = h.offered_setup();
    h.m.decline(
        &fid,
        &[offer_id(&offer)],
        Some(&json!({"refuse_seconds": 10})),
        h.now,
    );
    assert_eq!(h.m.offers().count(), 0);
    assert!(h.offers("s1").is_empty());
    h.advance_secs(5.0);
    assert!(h.offers("s1").is_empty());
    h.advance_secs(6.0);
    assert_eq!(offered(&h.offers("s1"), "cpus"), 4.0);
}

#[test]
fn decline_without_filters_uses_five_seconds() {
    let mut h = H::new();
    let (fid, _aid, offer) = h.offered_setup();
    h.m.decline(&fid, &[offer_id(&offer)], None, h.now);
    h.advance_secs(4.0);
    assert!(h.offers("s1").is_empty());
    h.advance_secs(1.0);
    assert_eq!(h.offers("s1").len(), 1);
}

#[test]
fn decline_with_zero_refuse_seconds_reoffers_at_once() {
    let mut h = H::new();
    let (fid, _aid, offer) = h.offered_setup();
    h.m.decline(
        &fid,
        &[offer_id(&offer)],
        Some(&json!({"refuse_seconds": 0})),
        h.now,
    );
    let offers = h.offers("s1");
    assert_eq!(offers.len(), 1);
    assert_ne!(offer_id(&offers[0]), offer_id(&offer), "a fresh offer id");
}

#[test]
fn decline_of_another_frameworks_offer_is_ignored() {
    let mut h = H::new();
    let (_fid, _aid, offer) = h.offered_setup();
    let other = h.subscribe_info("s2", fw_info(&["b"], &[]));
    h.m.decline(&other, &[offer_id(&offer)], None, h.now);
    assert_eq!(h.m.offers().count(), 1);
}

#[test]
fn revive_clears_decline_filter() {
    let mut h = H::new();
    let (fid, _aid, offer) = h.offered_setup();
    h.m.decline(
        &fid,
        &[offer_id(&offer)],
        Some(&json!({"refuse_seconds": 1000})),
        h.now,
    );
    assert!(h.offers("s1").is_empty());
    h.m.revive(&fid, &[]);
    assert_eq!(offered(&h.offers("s1"), "cpus"), 4.0);
}

#[test]
fn suppress_stops_offers_and_revive_resumes() {
    let mut h = H::new();
    let (fid, _aid, offer) = h.offered_setup();
    h.m.suppress(&fid, &[]);
    h.m.decline(
        &fid,
        &[offer_id(&offer)],
        Some(&json!({"refuse_seconds": 0})),
        h.now,
    );
    assert!(h.offers("s1").is_empty());
    h.advance_secs(60.0);
    assert!(h.offers("s1").is_empty());
    h.m.revive(&fid, &[]);
    assert_eq!(h.offers("s1").len(), 1);
}

#[test]
fn suppress_one_role_keeps_offering_the_other() {
    let mut h = H::new();
    let fid = h.subscribe_info("s1", fw_info(&["a", "b"], &[]));
    h.m.suppress(&fid, &["a".to_string()]);
    h.agent("a1");
    let offers = h.offers("s1");
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0]["allocation_info"]["role"], "b");
}

#[test]
fn offer_timeout_rescinds() {
    let mut h = H::with(Config {
        offer_timeout: Some(Duration::from_secs(30)),
        ..Config::default()
    });
    let (_fid, _aid, offer) = h.offered_setup();
    h.advance_secs(29.0);
    assert!(h.take().rescinded("s1").is_empty());
    h.advance_secs(1.0);
    let fx = h.take();
    assert_eq!(fx.rescinded("s1"), vec![offer_id(&offer)]);
    assert_eq!(h.m.offers().count(), 0);
    // Rescinded resources are not filtered.
    assert_eq!(h.offers("s1").len(), 1);
}

#[test]
fn no_offer_timeout_by_default() {
    let mut h = H::new();
    let (_fid, aid, _offer) = h.offered_setup();
    h.advance_alive(3600.0, &[&aid]);
    assert!(h.take().rescinded("s1").is_empty());
    assert_eq!(h.m.offers().count(), 1);
}
