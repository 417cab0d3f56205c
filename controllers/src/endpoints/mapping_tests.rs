//! Mapping watch events to the Services they concern.

use super::*;
use serde_json::json;

fn obj<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
    serde_json::from_value(v).expect("object")
}

fn mirrors(services: Vec<Service>, endpoints: Vec<Endpoints>) -> Mirrors {
    let (svc_reader, mut svc_writer) = reflector::store::<Service>();
    let (pod_reader, _pod_writer) = reflector::store::<Pod>();
    let (ep_reader, mut ep_writer) = reflector::store::<Endpoints>();
    for s in services {
        svc_writer.apply_watcher_event(&watcher::Event::Apply(s));
    }
    for e in endpoints {
        ep_writer.apply_watcher_event(&watcher::Event::Apply(e));
    }
    Mirrors {
        services: svc_reader,
        pods: pod_reader,
        endpoints: ep_reader,
    }
}

fn service(ns: &str, name: &str, app: &str) -> Service {
    obj(json!({"metadata": {"name": name, "namespace": ns},
               "spec": {"selector": {"app": app}}}))
}

fn pod(labels: serde_json::Value) -> Pod {
    obj(json!({"metadata": {"name": "p", "namespace": "ns1", "uid": "u-p", "labels": labels}}))
}

#[test]
fn a_pod_maps_to_the_services_selecting_it() {
    let m = mirrors(
        vec![
            service("ns1", "web", "web"),
            service("ns1", "db", "db"),
            service("ns2", "web", "web"),
        ],
        vec![],
    );
    assert_eq!(
        services_of_pod(&m, &pod(json!({"app": "web"}))),
        vec![("ns1".to_string(), "web".to_string())]
    );
}

#[test]
fn a_pod_that_left_a_selector_maps_to_the_endpoints_still_listing_it() {
    let listed: Endpoints = obj(json!({
        "metadata": {"name": "old", "namespace": "ns1"},
        "subsets": [{"notReadyAddresses": [{"ip": "127.0.0.1",
            "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns1", "uid": "u-p"}}]}]
    }));
    let m = mirrors(vec![service("ns1", "web", "web")], vec![listed]);
    assert_eq!(
        services_of_pod(&m, &pod(json!({"app": "web"}))),
        vec![
            ("ns1".to_string(), "old".to_string()),
            ("ns1".to_string(), "web".to_string())
        ]
    );
    assert_eq!(
        services_of_pod(&m, &pod(json!({"app": "other"}))),
        vec![("ns1".to_string(), "old".to_string())]
    );
}

#[test]
fn watch_events_map_to_keys_and_boundaries_to_none() {
    let s = service("ns1", "web", "web");
    for ev in [
        watcher::Event::Apply(s.clone()),
        watcher::Event::InitApply(s.clone()),
        watcher::Event::Delete(s.clone()),
    ] {
        assert_eq!(
            keys_of(Ok(ev), |s: &Service| vec![key_of(s)]),
            vec![("ns1".to_string(), "web".to_string())]
        );
    }
    for ev in [watcher::Event::Init, watcher::Event::InitDone] {
        assert!(keys_of(Ok(ev), |s: &Service| vec![key_of(s)]).is_empty());
    }
}
