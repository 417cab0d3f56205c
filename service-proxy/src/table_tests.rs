use super::*;
use serde_json::json;

fn svc(v: serde_json::Value) -> Service {
    serde_json::from_value(v).unwrap()
}

fn ep(v: serde_json::Value) -> Endpoints {
    serde_json::from_value(v).unwrap()
}

fn web() -> Service {
    svc(json!({
        "metadata": {"namespace": "demo", "name": "web", "uid": "u1"},
        "spec": {"type": "NodePort", "clusterIP": "127.96.0.5", "clusterIPs": ["127.96.0.5"],
                 "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080},
                           {"name": "dns", "port": 53, "protocol": "UDP"}]}
    }))
}

fn web_endpoints(ports: &[u16]) -> Endpoints {
    let subsets: Vec<_> = ports
        .iter()
        .map(|p| {
            json!({"addresses": [{"ip": "127.0.0.1"}],
                   "notReadyAddresses": [{"ip": "127.0.0.9"}],
                   "ports": [{"name": "http", "port": p, "protocol": "TCP"},
                             {"name": "dns", "port": p + 1, "protocol": "UDP"}]})
        })
        .collect();
    ep(json!({"metadata": {"namespace": "demo", "name": "web"}, "subsets": subsets}))
}

fn key(ip: &str, port: u16, protocol: Protocol) -> ListenerKey {
    ListenerKey {
        ip: ip.parse().unwrap(),
        port,
        protocol,
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn cluster_ip_and_node_port_listeners_with_ready_backends_in_order() {
    let s = web();
    let e = web_endpoints(&[31002, 31000]);
    let t = build([&s], [&e], Some("127.0.0.1".parse().unwrap()));
    assert_eq!(
        t.keys().copied().collect::<Vec<_>>(),
        vec![
            key("127.0.0.1", 30080, Protocol::Tcp),
            key("127.96.0.5", 53, Protocol::Udp),
            key("127.96.0.5", 80, Protocol::Tcp),
        ]
    );
    let http = &t[&key("127.96.0.5", 80, Protocol::Tcp)];
    assert_eq!(
        http.backends,
        vec![addr("127.0.0.1:31000"), addr("127.0.0.1:31002")]
    );
    assert!(!http.node_port);
    assert_eq!(http.affinity, Affinity::None);
    assert_eq!(http.describe(), "demo/web:http");
    assert_eq!(http.service.uid.as_deref(), Some("u1"));
    let np = &t[&key("127.0.0.1", 30080, Protocol::Tcp)];
    assert!(np.node_port);
    assert_eq!(np.backends, http.backends);
    let dns = &t[&key("127.96.0.5", 53, Protocol::Udp)];
    assert_eq!(
        dns.backends,
        vec![addr("127.0.0.1:31001"), addr("127.0.0.1:31003")]
    );
}

#[test]
fn no_node_port_listener_without_a_node_address_or_for_cluster_ip_services() {
    let s = web();
    let t = build([&s], [], None);
    assert_eq!(t.len(), 2);
    assert!(t.values().all(|l| l.backends.is_empty() && !l.node_port));
    let mut c = web();
    c.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    let t = build([&c], [], Some("127.0.0.1".parse().unwrap()));
    assert!(t.values().all(|l| !l.node_port));
}

#[test]
fn headless_external_name_and_unallocated_services_get_nothing() {
    let headless = svc(json!({
        "metadata": {"namespace": "demo", "name": "h"},
        "spec": {"clusterIP": "None", "ports": [{"port": 80}]}
    }));
    let external = svc(json!({
        "metadata": {"namespace": "demo", "name": "x"},
        "spec": {"type": "ExternalName", "externalName": "example.com"}
    }));
    let unallocated = svc(json!({
        "metadata": {"namespace": "demo", "name": "u"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30001}]}
    }));
    let t = build(
        [&headless, &external, &unallocated],
        [],
        Some("127.0.0.1".parse().unwrap()),
    );
    assert!(t.is_empty(), "{t:?}");
}

#[test]
fn selectorless_service_uses_its_manual_endpoints_and_unnamed_ports_match() {
    let s = svc(json!({
        "metadata": {"namespace": "demo", "name": "ext"},
        "spec": {"clusterIP": "127.96.0.7", "ports": [{"port": 5432}]}
    }));
    let e = ep(json!({
        "metadata": {"namespace": "demo", "name": "ext"},
        "subsets": [{"addresses": [{"ip": "127.0.0.2"}, {"ip": "127.0.0.1"}], "ports": [{"port": 6000}]}]
    }));
    let t = build([&s], [&e], None);
    let l = &t[&key("127.96.0.7", 5432, Protocol::Tcp)];
    assert_eq!(
        l.backends,
        vec![addr("127.0.0.1:6000"), addr("127.0.0.2:6000")]
    );
    assert_eq!(l.describe(), "demo/ext");
}

#[test]
fn endpoints_of_another_namespace_or_port_name_do_not_count() {
    let s = web();
    let mut e = web_endpoints(&[31000]);
    e.metadata.namespace = Some("other".into());
    let t = build([&s], [&e], None);
    assert!(t.values().all(|l| l.backends.is_empty()));
    let e = ep(json!({
        "metadata": {"namespace": "demo", "name": "web"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "metrics", "port": 9000}]}]
    }));
    let t = build([&s], [&e], None);
    assert!(t.values().all(|l| l.backends.is_empty()));
}

#[test]
fn client_ip_affinity_with_default_and_explicit_timeouts() {
    let mut s = web();
    s.spec.as_mut().unwrap().session_affinity = Some("ClientIP".into());
    let t = build([&s], [], None);
    assert!(t.values().all(|l| l.affinity
        == Affinity::ClientIp {
            timeout: DEFAULT_AFFINITY_TIMEOUT
        }));
    let mut s = web();
    let spec = s.spec.as_mut().unwrap();
    spec.session_affinity = Some("ClientIP".into());
    spec.session_affinity_config =
        Some(serde_json::from_value(json!({"clientIP": {"timeoutSeconds": 60}})).unwrap());
    let t = build([&s], [], None);
    assert!(t.values().all(|l| l.affinity
        == Affinity::ClientIp {
            timeout: Duration::from_secs(60)
        }));
}

#[test]
fn first_service_by_name_wins_a_contested_address() {
    let a = web();
    let mut b = web();
    b.metadata.name = Some("aaa".into());
    let t = build([&a, &b], [], None);
    assert!(t.values().all(|l| l.service.name == "aaa"));
}

#[test]
fn sctp_ports_are_not_proxied() {
    let s = svc(json!({
        "metadata": {"namespace": "demo", "name": "s"},
        "spec": {"clusterIP": "127.96.0.8", "ports": [{"port": 9, "protocol": "SCTP"}]}
    }));
    assert!(build([&s], [], None).is_empty());
}

#[test]
fn diff_starts_stops_and_updates() {
    let s = web();
    let before = build([&s], [&web_endpoints(&[31000])], None);
    assert!(diff(&before, &before).is_empty());
    let after = build([&s], [&web_endpoints(&[31000, 31010])], None);
    let d = diff(&before, &after);
    assert!(d.start.is_empty() && d.stop.is_empty());
    assert_eq!(d.update.len(), 2);

    let mut moved = web();
    moved.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].port = 8080;
    let after = build([&moved], [&web_endpoints(&[31000])], None);
    let d = diff(&before, &after);
    assert_eq!(d.start, vec![key("127.96.0.5", 8080, Protocol::Tcp)]);
    assert_eq!(d.stop, vec![key("127.96.0.5", 80, Protocol::Tcp)]);
    assert!(d.update.is_empty());

    let d = diff(&before, &Table::new());
    assert_eq!(d.stop.len(), 2);
    let d = diff(&Table::new(), &before);
    assert_eq!(d.start.len(), 2);
}
