use super::*;

fn agent(host: &str, active: bool) -> Agent {
    Agent {
        id: format!("id-{host}"),
        hostname: host.into(),
        active,
        cpus: 4.0,
        mem_mb: 2048.5,
        disk_mb: 10240.0,
        attributes: vec![
            ("rack".into(), "r1".into()),
            ("kubernetes.io/os".into(), "windows".into()),
            ("bad key!".into(), "x".into()),
            ("zone".into(), "not a valid value".into()),
        ],
    }
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).expect("valid timestamp")
}

fn node_with(status: NodeStatus) -> Node {
    Node {
        status: Some(status),
        ..new_node("agent-0", &agent("agent-0", true))
    }
}

#[test]
fn node_names_are_lowercase_dns_names() {
    assert_eq!(node_name("Agent-0").as_deref(), Some("agent-0"));
    assert_eq!(node_name("a.b.c").as_deref(), Some("a.b.c"));
    assert_eq!(node_name("bad_host"), None);
    assert_eq!(node_name("-x"), None);
    assert_eq!(node_name(""), None);
}

#[test]
fn active_agent_wins_a_shared_hostname() {
    let agents = [
        agent("h", false),
        agent("h", true),
        agent("h", false),
        agent("x_y", true),
    ];
    let by = agents_by_node(&agents);
    assert_eq!(by.len(), 1);
    assert!(by["h"].active);
}

#[test]
fn labels_hold_valid_attributes_and_the_standard_labels() {
    let labels = node_labels("agent-0", &agent("agent-0", true));
    let expect: BTreeMap<String, String> = [
        ("kubernetes.io/arch", "amd64"),
        ("kubernetes.io/hostname", "agent-0"),
        ("kubernetes.io/os", "linux"),
        ("rack", "r1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(labels, expect);
}

#[test]
fn new_node_carries_the_agent_id_and_metadata_patch_only_on_change() {
    let a = agent("agent-0", true);
    let mut node = new_node("agent-0", &a);
    assert_eq!(managed_agent_id(&node), Some("id-agent-0"));
    assert_eq!(metadata_patch(&node, &a), None);

    let mut moved = a.clone();
    moved.id = "new-id".into();
    moved.attributes = vec![("rack".into(), "r2".into())];
    let patch = metadata_patch(&node, &moved).expect("changed");
    assert_eq!(
        patch["metadata"]["labels"],
        serde_json::json!({"rack": "r2"})
    );
    assert_eq!(
        patch["metadata"]["annotations"][AGENT_ID_ANNOTATION],
        "new-id"
    );

    // Labels somebody else added are kept.
    if let Some(l) = node.metadata.labels.as_mut() {
        l.insert("extra".into(), "1".into());
    }
    assert_eq!(metadata_patch(&node, &a), None);
}

#[test]
fn status_of_an_active_agent() {
    let (status, transition) = agent_status("agent-0", &agent("agent-0", true), None, at(0));
    assert_eq!(transition, Transition::BecameReady);
    let cap = status.capacity.clone().expect("capacity");
    assert_eq!(cap["cpu"].0, "4");
    assert_eq!(cap["memory"].0, "2048Mi");
    assert_eq!(cap["ephemeral-storage"].0, "10240Mi");
    assert_eq!(cap["pods"].0, "110");
    assert_eq!(status.allocatable, status.capacity);
    let addrs = status.addresses.clone().expect("addresses");
    assert_eq!(
        (addrs[0].type_.as_str(), addrs[0].address.as_str()),
        ("InternalIP", "127.0.0.1")
    );
    assert_eq!(
        (addrs[1].type_.as_str(), addrs[1].address.as_str()),
        ("Hostname", "agent-0")
    );
    let info = status.node_info.clone().expect("nodeInfo");
    assert_eq!(info.kubelet_version, KUBELET_VERSION);
    assert_eq!(info.container_runtime_version, RUNTIME_VERSION);
    assert_eq!(
        (info.operating_system.as_str(), info.architecture.as_str()),
        ("linux", "amd64")
    );
    let ready = &status.conditions.expect("conditions")[0];
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("True", Some("KubeletReady"))
    );
    assert_eq!(ready.message.as_deref(), Some("kumos agent is active"));
}

#[test]
fn heartbeat_moves_each_poll_and_transition_only_on_change() {
    let a = agent("agent-0", true);
    let (s0, _) = agent_status("agent-0", &a, None, at(0));
    let c0 = s0.conditions.clone().expect("c")[0].clone();
    let (s1, t1) = agent_status("agent-0", &a, Some(&c0), at(5));
    let c1 = &s1.conditions.expect("c")[0];
    assert_eq!(t1, Transition::None);
    assert_eq!(c1.last_heartbeat_time, Some(Time(at(5))));
    assert_eq!(c1.last_transition_time, Some(Time(at(0))));

    // The agent disconnects: Unknown, heartbeat kept, transition now.
    let inactive = Agent { active: false, ..a };
    let (s2, t2) = agent_status("agent-0", &inactive, Some(c1), at(10));
    let c2 = &s2.conditions.expect("c")[0];
    assert_eq!(t2, Transition::BecameNotReady);
    assert_eq!(c2.status, "Unknown");
    assert_eq!(c2.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        c2.message.as_deref(),
        Some("Kumos agent stopped posting status")
    );
    assert_eq!(c2.last_heartbeat_time, Some(Time(at(5))));
    assert_eq!(c2.last_transition_time, Some(Time(at(10))));
}

#[test]
fn lost_agents_turn_unknown_and_are_evicted_after_the_timeout() {
    let (status, _) = agent_status("agent-0", &agent("agent-0", true), None, at(0));
    let node = node_with(status);
    let timeout = Duration::from_secs(300);
    assert!(
        !should_evict(&node, at(10_000), timeout),
        "ready nodes stay"
    );

    let (lost, transition) = lost_status(&node, at(100));
    assert_eq!(transition, Transition::BecameNotReady);
    assert_eq!(
        lost.capacity, None,
        "a lost node's status only changes Ready"
    );
    let node = node_with(lost);
    assert!(!should_evict(&node, at(399), timeout));
    assert!(should_evict(&node, at(400), timeout));

    let (again, transition) = lost_status(&node, at(500));
    assert_eq!(transition, Transition::None);
    let c = &again.conditions.expect("c")[0];
    assert_eq!(c.last_transition_time, Some(Time(at(100))));
}

#[test]
fn nodes_without_conditions_are_not_evicted() {
    assert!(!should_evict(
        &new_node("n", &agent("n", true)),
        at(0),
        Duration::ZERO
    ));
}

#[test]
fn cpu_quantities() {
    assert_eq!(cpu_quantity(2.0).0, "2");
    assert_eq!(cpu_quantity(2.5).0, "2500m");
    assert_eq!(cpu_quantity(-1.0).0, "0");
    assert_eq!(mebibytes(512.9).0, "512Mi");
}

#[test]
fn unchanged_status_is_rewritten_only_when_the_heartbeat_is_stale() {
    let a = agent("agent-0", true);
    let (s0, _) = agent_status("agent-0", &a, None, at(0));
    assert!(status_write_due(None, &s0, at(0)), "no status yet");
    let c0 = ready_condition(&node_with(s0.clone())).cloned();
    let (s1, _) = agent_status("agent-0", &a, c0.as_ref(), at(5));
    assert!(
        !status_write_due(Some(&s0), &s1, at(5)),
        "only the heartbeat moved"
    );
    let (s2, _) = agent_status("agent-0", &a, c0.as_ref(), at(60));
    assert!(
        status_write_due(Some(&s0), &s2, at(60)),
        "heartbeat a minute old"
    );
    let inactive = agent("agent-0", false);
    let (s3, _) = agent_status("agent-0", &inactive, c0.as_ref(), at(5));
    assert!(status_write_due(Some(&s0), &s3, at(5)), "Ready changed");
    let mut bigger = a.clone();
    bigger.cpus = 8.0;
    let (s4, _) = agent_status("agent-0", &bigger, c0.as_ref(), at(5));
    assert!(status_write_due(Some(&s0), &s4, at(5)), "capacity changed");
}
