use super::*;
use serde_json::json;

const NO_PODS: &[Pod] = &[];

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).expect("service")
}

fn web_svc() -> Service {
    svc(json!({
        "metadata": {"name": "web", "namespace": "ns1", "labels": {"app": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "targetPort": 9100, "protocol": "TCP"}
        ]}
    }))
}

fn pod(name: &str, ready: Option<bool>, host_port: Option<i32>) -> Pod {
    let mut port = json!({"name": "http", "containerPort": 8080, "protocol": "TCP"});
    if let Some(hp) = host_port {
        port["hostPort"] = json!(hp);
    }
    let mut p = json!({
        "metadata": {"name": name, "namespace": "ns1", "uid": format!("uid-{name}"),
                     "labels": {"app": "web", "tier": "x"}},
        "spec": {"nodeName": "agent-0", "containers": [{"name": "c", "image": "i", "ports": [port]}]},
        "status": {"phase": "Running"}
    });
    if let Some(r) = ready {
        p["status"]["podIP"] = json!("127.0.0.1");
        p["status"]["conditions"] =
            json!([{"type": "Ready", "status": if r { "True" } else { "False" }}]);
    }
    serde_json::from_value(p).expect("pod")
}

fn flat(ep: &Endpoints) -> (Vec<String>, Vec<String>) {
    let names = |l: &Option<Vec<EndpointAddress>>| -> Vec<String> {
        l.iter()
            .flatten()
            .filter_map(|a| a.target_ref.as_ref()?.name.clone())
            .collect()
    };
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for s in ep.subsets.iter().flatten() {
        ready.extend(names(&s.addresses));
        not_ready.extend(names(&s.not_ready_addresses));
    }
    (ready, not_ready)
}

#[test]
fn ready_and_not_ready_pods_with_named_port_and_host_port() {
    let pods = [
        pod("a", Some(true), Some(31001)),
        pod("b", Some(false), Some(31001)),
    ];
    let ep = desired_endpoints(&web_svc(), &pods).expect("selector service");
    assert_eq!(ep.metadata.name.as_deref(), Some("web"));
    assert_eq!(ep.metadata.namespace.as_deref(), Some("ns1"));
    assert!(is_managed(&ep));
    let subsets = ep.subsets.as_ref().expect("one subset");
    assert_eq!(subsets.len(), 1);
    let s = &subsets[0];
    let ports = s.ports.as_ref().expect("ports");
    assert_eq!(ports[0].name.as_deref(), Some("http"));
    assert_eq!(ports[0].port, 31001, "named port resolved to its hostPort");
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(ports[1].name.as_deref(), Some("metrics"));
    assert_eq!(ports[1].port, 9100, "numeric targetPort without hostPort");
    let a = &s.addresses.as_ref().expect("ready")[0];
    assert_eq!(a.ip, "127.0.0.1");
    assert_eq!(a.node_name.as_deref(), Some("agent-0"));
    let t = a.target_ref.as_ref().expect("targetRef");
    assert_eq!(t.kind.as_deref(), Some("Pod"));
    assert_eq!(t.name.as_deref(), Some("a"));
    assert_eq!(t.namespace.as_deref(), Some("ns1"));
    assert_eq!(t.uid.as_deref(), Some("uid-a"));
    assert_eq!(flat(&ep), (vec!["a".into()], vec!["b".into()]));
}

#[test]
fn host_port_assigned_by_the_framework_is_published() {
    let mut p = pod("a", Some(true), None);
    p.metadata.annotations = Some(
        [(
            HOST_PORTS_ANNOTATION.to_string(),
            r#"{"8080": 31007}"#.to_string(),
        )]
        .into_iter()
        .collect(),
    );
    let ep = desired_endpoints(&web_svc(), &[p]).expect("ep");
    let ports = ep.subsets.expect("subsets")[0]
        .ports
        .clone()
        .expect("ports");
    assert_eq!(
        ports[0].port, 31007,
        "the host port the framework gave 8080"
    );
    assert_eq!(ports[1].port, 9100, "9100 got none: the container port");
}

#[test]
fn named_port_without_host_port_uses_container_port() {
    let ep = desired_endpoints(&web_svc(), &[pod("a", Some(true), None)]).expect("ep");
    let ports = ep.subsets.expect("subsets")[0]
        .ports
        .clone()
        .expect("ports");
    assert_eq!(ports[0].port, 8080);
}

#[test]
fn pods_on_different_host_ports_get_their_own_subsets() {
    let pods = [
        pod("a", Some(true), Some(31001)),
        pod("b", Some(true), Some(31002)),
    ];
    let ep = desired_endpoints(&web_svc(), &pods).expect("ep");
    let subsets = ep.subsets.clone().expect("subsets");
    assert_eq!(subsets.len(), 2);
    assert_eq!(subsets[0].ports.as_ref().expect("p")[0].port, 31001);
    assert_eq!(subsets[1].ports.as_ref().expect("p")[0].port, 31002);
    assert_eq!(flat(&ep).0, vec!["a", "b"]);
}

#[test]
fn skips_pods_without_ip_terminating_terminal_or_unselected() {
    let no_ip = pod("noip", None, None);
    let mut terminating = pod("term", Some(true), None);
    terminating.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
        ));
    let mut failed = pod("failed", Some(true), None);
    if let Some(s) = failed.status.as_mut() {
        s.phase = Some("Failed".into());
    }
    let mut other = pod("other", Some(true), None);
    other.metadata.labels = Some(BTreeMap::from([("app".into(), "db".into())]));
    let mut elsewhere = pod("elsewhere", Some(true), None);
    elsewhere.metadata.namespace = Some("ns2".into());
    let pods = [no_ip, terminating, failed, other, elsewhere];
    let ep = desired_endpoints(&web_svc(), &pods).expect("ep");
    assert_eq!(
        ep.subsets, None,
        "an empty Endpoints still exists for the service"
    );
}

#[test]
fn unresolvable_named_port_drops_the_pod_but_not_others() {
    let s = svc(json!({
        "metadata": {"name": "web", "namespace": "ns1"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "nope"}]}
    }));
    assert_eq!(
        desired_endpoints(&s, &[pod("a", Some(true), None)])
            .expect("ep")
            .subsets,
        None
    );
}

#[test]
fn publish_not_ready_addresses_puts_every_pod_in_addresses() {
    let mut s = web_svc();
    if let Some(spec) = s.spec.as_mut() {
        spec.publish_not_ready_addresses = Some(true);
    }
    let ep = desired_endpoints(&s, &[pod("b", Some(false), None)]).expect("ep");
    assert_eq!(flat(&ep), (vec!["b".into()], vec![]));
}

#[test]
fn headless_service_without_ports_lists_addresses_without_ports() {
    let s = svc(json!({
        "metadata": {"name": "web", "namespace": "ns1"},
        "spec": {"selector": {"app": "web"}, "clusterIP": "None"}
    }));
    let ep = desired_endpoints(&s, &[pod("a", Some(true), None)]).expect("ep");
    let labels = ep.metadata.labels.clone().expect("labels");
    assert_eq!(labels.get(HEADLESS_LABEL).map(String::as_str), Some(""));
    let subset = &ep.subsets.expect("subsets")[0];
    assert_eq!(subset.ports, None);
    assert_eq!(subset.addresses.as_ref().map(Vec::len), Some(1));
}

#[test]
fn services_without_selector_are_left_alone() {
    let s = svc(json!({"metadata": {"name": "ext", "namespace": "ns1"},
                       "spec": {"ports": [{"port": 80}]}}));
    assert_eq!(desired_endpoints(&s, &[pod("a", Some(true), None)]), None);
    let manual: Endpoints =
        serde_json::from_value(json!({"metadata": {"name": "ext", "namespace": "ns1"}}))
            .expect("ep");
    assert_eq!(plan(Some(&s), Some(&manual), NO_PODS), Action::Nothing);
    let empty_selector = svc(json!({"metadata": {"name": "e", "namespace": "ns1"},
                                    "spec": {"selector": {}}}));
    assert_eq!(desired_endpoints(&empty_selector, NO_PODS), None);
}

#[test]
fn plan_creates_then_updates_only_on_change() {
    let s = web_svc();
    let pods = [pod("a", Some(true), None)];
    let Action::Create(mut created) = plan(Some(&s), None, &pods) else {
        panic!("expected create");
    };
    created.metadata.resource_version = Some("7".into());
    assert_eq!(plan(Some(&s), Some(&created), &pods), Action::Nothing);

    let changed = [pod("a", Some(false), None)];
    let Action::Replace(replaced) = plan(Some(&s), Some(&created), &changed) else {
        panic!("expected replace");
    };
    assert_eq!(replaced.metadata.resource_version.as_deref(), Some("7"));
    assert_eq!(flat(&replaced), (vec![], vec!["a".into()]));

    // Somebody else's Endpoints for a selector service are taken over.
    let mut foreign = created.clone();
    foreign.metadata.annotations = None;
    assert!(matches!(
        plan(Some(&s), Some(&foreign), &pods),
        Action::Replace(_)
    ));
}

#[test]
fn plan_deletes_only_our_endpoints_of_missing_services() {
    let Action::Create(ours) = plan(Some(&web_svc()), None, NO_PODS) else {
        panic!("expected create");
    };
    assert_eq!(plan(None, Some(&ours), NO_PODS), Action::Delete);
    let mut foreign = ours;
    foreign.metadata.annotations = None;
    assert_eq!(plan(None, Some(&foreign), NO_PODS), Action::Nothing);
    assert_eq!(plan(None, None, NO_PODS), Action::Nothing);
}

#[test]
fn selects_needs_every_selector_label_and_the_same_namespace() {
    let s = web_svc();
    assert!(selects(&s, &pod("a", None, None)));
    let mut p = pod("a", None, None);
    p.metadata.labels = None;
    assert!(!selects(&s, &p));
}
