//! SUBSCRIBE, failover, TEARDOWN, disconnection and call authorization.

use super::*;

#[test]
fn subscribed_is_first_event_with_id_heartbeat_and_master_info() {
    let mut h = H::new();
    let fid = h.subscribe("s1");
    let fx = h.take();
    let events = fx.to("s1");
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["type"], "SUBSCRIBED");
    assert_eq!(str_at(e, "/subscribed/framework_id/value"), fid);
    assert_eq!(
        e["subscribed"]["heartbeat_interval_seconds"].as_f64(),
        Some(15.0)
    );
    assert_eq!(str_at(e, "/subscribed/master_info/version"), MESOS_VERSION);
    assert_eq!(str_at(e, "/subscribed/master_info/id"), "m");
    let fw: Vec<_> = h.m.frameworks().collect();
    assert_eq!(fw.len(), 1);
    assert_eq!(fw[0].roles, vec!["a".to_string()]);
    assert_eq!(fw[0].stream.as_deref(), Some("s1"));
    assert_eq!(str_at(&fw[0].info, "/id/value"), fid);
}

#[test]
fn subscribe_without_user_or_name_is_invalid() {
    let mut h = H::new();
    for missing in ["user", "name"] {
        let mut info = fw_info(&["a"], &[]);
        if let Some(m) = info.as_object_mut() {
            m.remove(missing);
        }
        let err = h.m.subscribe(&subscribe_call(info), "s1", h.now);
        match err {
            Err(SubscribeError::Invalid(msg)) => assert!(msg.contains(missing), "{msg}"),
            other => panic!("expected Invalid for missing {missing}: {other:?}"),
        }
    }
    let err = h.m.subscribe(&json!({"type": "SUBSCRIBE"}), "s1", h.now);
    assert!(matches!(err, Err(SubscribeError::Invalid(_))));
    assert_eq!(h.m.frameworks().count(), 0);
    assert!(h.take().is_empty_for("s1"));
}

#[test]
fn framework_id_must_match_framework_info_id() {
    let mut h = H::new();
    let mut info = fw_info(&["a"], &[]);
    info["id"] = json!({"value": "m-0001"});
    let mut call = subscribe_call(info);
    call["framework_id"] = json!({"value": "m-0002"});
    let err = h.m.subscribe(&call, "s1", h.now);
    assert!(matches!(err, Err(SubscribeError::Invalid(_))), "{err:?}");
    // Mesos compares the two ids as (possibly unset) fields: one without the other differs too.
    let mut call = subscribe_call(fw_info(&["a"], &[]));
    call["framework_id"] = json!({"value": "m-0002"});
    let err = h.m.subscribe(&call, "s1", h.now);
    assert!(matches!(err, Err(SubscribeError::Invalid(_))), "{err:?}");
    assert_eq!(h.m.frameworks().count(), 0);
}

#[test]
fn single_role_framework_uses_role_field() {
    let mut h = H::new();
    let info = json!({"user": "u", "name": "n", "role": "web"});
    h.subscribe_info("s1", info);
    let fw: Vec<_> = h.m.frameworks().collect();
    assert_eq!(fw[0].roles, vec!["web".to_string()]);
    let mut h = H::new();
    h.subscribe_info("s1", json!({"user": "u", "name": "n"}));
    let fw: Vec<_> = h.m.frameworks().collect();
    assert_eq!(fw[0].roles, vec!["*".to_string()]);
}

#[test]
fn resubscribe_on_new_stream_fails_over_and_keeps_tasks() {
    let mut h = H::new();
    let (fid, _aid) = h.running_setup();
    h.take();
    let mut info = fw_info(&["a"], &[]);
    info["id"] = proto::id(&fid);
    let again = h.subscribe_info("s2", info);
    assert_eq!(again, fid);
    let fx = h.take();
    let errors = fx.of("s1", "ERROR");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["error"]["message"], "Framework failed over");
    assert!(fx.closed("s1"));
    assert!(!fx.closed("s2"));
    let s2 = fx.to("s2");
    assert_eq!(s2[0]["type"], "SUBSCRIBED");
    assert_eq!(str_at(&s2[0], "/subscribed/framework_id/value"), fid);
    assert!(fx.of("a1", "SHUTDOWN_FRAMEWORK").is_empty());
    assert!(h.task(&fid, "t1").is_some());
    assert_eq!(h.m.frameworks().count(), 1);
    // Calls now need the new stream id.
    assert_eq!(h.m.authorize_call(&fid, Some("s2")), Ok(()));
    assert_eq!(
        h.m.authorize_call(&fid, Some("s1")).map_err(|e| e.0),
        Err(403)
    );
    // The old stream closing later changes nothing.
    h.m.stream_closed("s1", h.now);
    h.advance_secs(1.0);
    assert!(h.task(&fid, "t1").is_some());
    assert_eq!(h.m.authorize_call(&fid, Some("s2")), Ok(()));
}

#[test]
fn failover_takes_back_offers_of_the_old_connection() {
    // Mesos' _failoverFramework removes the framework's outstanding offers and recovers their
    // resources: the new scheduler instance cannot know the old offer ids.
    let mut h = H::new();
    let (fid, _aid, _offer) = h.offered_setup();
    let mut info = fw_info(&["a"], &[]);
    info["id"] = proto::id(&fid);
    h.subscribe_info("s2", info);
    h.take();
    assert_eq!(h.m.offers().count(), 0);
    let offers = h.offers("s2");
    assert_eq!(offers.len(), 1);
    assert_eq!(offered(&offers, "cpus"), 4.0);
}

#[test]
fn teardown_kills_tasks_and_forbids_resubscription() {
    let mut h = H::new();
    let (fid, _aid) = h.running_setup();
    h.take();
    h.m.teardown(&fid, h.now);
    let fx = h.take();
    assert!(fx.closed("s1"));
    let shutdown = fx.one("a1", "SHUTDOWN_FRAMEWORK");
    assert_eq!(
        str_at(&shutdown, "/shutdown_framework/framework_id/value"),
        fid
    );
    assert_eq!(h.m.tasks().count(), 0);
    let done: Vec<_> = h.m.completed_tasks().collect();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, "t1");
    assert_eq!(done[0].state, TaskState::Killed);
    assert_eq!(h.m.frameworks().count(), 0);
    assert_eq!(
        h.m.authorize_call(&fid, Some("s1")).map_err(|e| e.0),
        Err(400)
    );
    let mut info = fw_info(&["a"], &[]);
    info["id"] = proto::id(&fid);
    let err = h.m.subscribe(&subscribe_call(info), "s3", h.now);
    assert_eq!(err, Err(SubscribeError::Removed));
    // The agent's resources are free again.
    let offers = h.offers("s1");
    assert!(offers.is_empty());
    assert_eq!(h.m.offers().count(), 0);
}

#[test]
fn authorize_call_codes() {
    let mut h = H::new();
    let mut info = fw_info(&["a"], &[]);
    info["failover_timeout"] = json!(100.0);
    let fid = h.subscribe_info("s1", info);
    assert_eq!(h.m.authorize_call(&fid, Some("s1")), Ok(()));
    let unknown = h.m.authorize_call("nope", Some("s1"));
    assert_eq!(unknown, Err((400, "Framework cannot be found".to_string())));
    let (code, msg) = h.m.authorize_call(&fid, None).unwrap_err();
    assert_eq!(code, 400);
    assert!(msg.contains("Mesos-Stream-Id"), "{msg}");
    let (code, msg) = h.m.authorize_call(&fid, Some("other")).unwrap_err();
    assert_eq!(code, 403);
    assert!(msg.contains("'other'") && msg.contains(&fid), "{msg}");
    h.m.stream_closed("s1", h.now);
    assert_eq!(
        h.m.authorize_call(&fid, Some("s1")),
        Err((403, "Framework is not subscribed".to_string()))
    );
}

#[test]
fn disconnect_with_zero_failover_timeout_kills_tasks_on_next_tick() {
    let mut h = H::new();
    let (fid, _aid) = h.running_setup();
    h.take();
    h.m.stream_closed("s1", h.now);
    let fx = h.take();
    assert!(fx.of("a1", "SHUTDOWN_FRAMEWORK").is_empty());
    assert!(h.task(&fid, "t1").is_some());
    h.advance(Duration::ZERO);
    let fx = h.take();
    let shutdown = fx.one("a1", "SHUTDOWN_FRAMEWORK");
    assert_eq!(
        str_at(&shutdown, "/shutdown_framework/framework_id/value"),
        fid
    );
    assert_eq!(h.m.tasks().count(), 0);
    assert_eq!(h.m.frameworks().count(), 0);
}

#[test]
fn resubscribe_within_failover_timeout_keeps_tasks() {
    let mut h = H::new();
    let fid = h.subscribe_info("s1", {
        let mut i = fw_info(&["a"], &[]);
        i["failover_timeout"] = json!(100);
        i
    });
    let aid = h.agent("a1");
    let offers = h.offers("s1");
    h.accept(
        &fid,
        launch(&[offer_id(&offers[0])], vec![task("t1", &aid, 1.0, 128.0)]),
    );
    h.m.stream_closed("s1", h.now);
    h.advance_alive(60.0, &[&aid]);
    // Disconnected: nothing is offered to it.
    assert!(h.cycle().offers("s1").is_empty());
    let mut info = fw_info(&["a"], &[]);
    info["id"] = proto::id(&fid);
    info["failover_timeout"] = json!(100);
    h.subscribe_info("s2", info);
    h.advance_alive(200.0, &[&aid]);
    let fx = h.take();
    assert!(fx.of("a1", "SHUTDOWN_FRAMEWORK").is_empty());
    assert!(h.task(&fid, "t1").is_some());
    assert_eq!(h.m.frameworks().count(), 1);
}

#[test]
fn disconnect_past_failover_timeout_removes_framework() {
    let mut h = H::new();
    let mut info = fw_info(&["a"], &[]);
    info["failover_timeout"] = json!(100);
    let fid = h.subscribe_info("s1", info);
    h.m.stream_closed("s1", h.now);
    h.advance_secs(99.0);
    assert_eq!(h.m.frameworks().count(), 1);
    h.advance_secs(1.0);
    assert_eq!(h.m.frameworks().count(), 0);
    let mut info = fw_info(&["a"], &[]);
    info["id"] = proto::id(&fid);
    let err = h.m.subscribe(&subscribe_call(info), "s2", h.now);
    assert_eq!(err, Err(SubscribeError::Removed));
}

#[test]
fn subscribe_with_suppressed_roles() {
    let mut h = H::new();
    let call = json!({"type": "SUBSCRIBE", "subscribe": {
        "framework_info": fw_info(&["a", "b"], &[]),
        "suppressed_roles": ["a"],
    }});
    let fid = h.m.subscribe(&call, "s1", h.now).unwrap();
    h.agent("a1");
    let offers = h.offers("s1");
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0]["allocation_info"]["role"], "b");
    h.m.suppress(&fid, &["b".to_string()]);
    h.m.decline(
        &fid,
        &[offer_id(&offers[0])],
        Some(&json!({"refuse_seconds": 0})),
        h.now,
    );
    assert!(h.offers("s1").is_empty());
    h.m.revive(&fid, &["a".to_string()]);
    let offers = h.offers("s1");
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0]["allocation_info"]["role"], "a");
}
