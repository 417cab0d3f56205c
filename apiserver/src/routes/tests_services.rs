//! Service cluster IP and node port allocation through the handlers: small ranges filled to the last
//! value, exact errors, nothing leaked when a later step fails, releases on update and delete, and
//! allocations kept by a fresh server over the same store.

use std::sync::Arc;

use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{router, AppState};
use crate::service_alloc::{IpRange, PortRange, ServiceRanges};
use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use crate::storage::Storage;

const SVCS: &str = "/api/v1/namespaces/default/services";

struct Server {
    app: axum::Router,
    shutdown: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Five cluster IPs (127.50.0.10-14) and three node ports (30100-30102).
async fn server(store: Arc<dyn Storage>) -> Server {
    let shutdown = CancellationToken::new();
    let ranges = ServiceRanges {
        cluster_ip: IpRange::parse("127.50.0.8/29").unwrap(),
        node_port: PortRange::parse("30100-30102").unwrap(),
    };
    let state = AppState::new(store, shutdown.clone())
        .await
        .unwrap()
        .with_service_ranges(ranges);
    Server {
        app: router(state),
        shutdown,
    }
}

impl Server {
    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let ctype = match method {
            "PATCH" => "application/merge-patch+json",
            _ => "application/json",
        };
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ctype)
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn create(&self, svc: Value) -> (u16, Value) {
        self.call("POST", SVCS, Some(svc)).await
    }
}

fn svc(name: &str, ty: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {"type": ty, "selector": {"app": name}, "ports": [{"port": 80}]}})
}

fn store() -> (tempfile::TempDir, Arc<dyn Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedConfig::default()).unwrap();
    (dir, Arc::new(store))
}

async fn keys(store: &dyn Storage, prefix: &str) -> Vec<String> {
    let listed = store.list(prefix, None, 0, 0).await.unwrap();
    listed.items.into_iter().map(|kv| kv.key).collect()
}

#[tokio::test]
async fn ranges_fill_up_and_stay_allocated_across_a_restart() {
    let (_dir, store) = store();
    let api = server(store.clone()).await;
    // A requested node port outside the range is refused, and its cluster IP given back.
    let mut outside = svc("outside", "NodePort");
    outside["spec"]["ports"][0]["nodePort"] = json!(31000);
    let (s, err) = api.create(outside).await;
    assert_eq!(s, 422, "{err}");
    assert_eq!(
        err["message"],
        "Service \"outside\" is invalid: spec.ports[0].nodePort: Invalid value: 31000: provided port is not \
         in the valid range. The range of valid ports is 30100-30102"
    );
    assert!(keys(store.as_ref(), "/registry/serviceips/")
        .await
        .is_empty());

    let mut ports = Vec::new();
    for name in ["np1", "np2", "np3"] {
        let (s, created) = api.create(svc(name, "NodePort")).await;
        assert_eq!(s, 201, "{created}");
        ports.push(created["spec"]["ports"][0]["nodePort"].as_i64().unwrap());
    }
    ports.sort_unstable();
    assert_eq!(ports, vec![30100, 30101, 30102]);
    // Node ports full: 500 as kube-apiserver, and the cluster IP it took first is released.
    let (s, err) = api.create(svc("np4", "NodePort")).await;
    assert_eq!(
        (s, err["reason"].as_str()),
        (500, Some("InternalError")),
        "{err}"
    );
    assert_eq!(
        err["message"],
        "Internal error occurred: failed to allocate a nodePort: range is full"
    );
    assert_eq!(keys(store.as_ref(), "/registry/serviceips/").await.len(), 3);
    let mut taken = svc("taken", "NodePort");
    taken["spec"]["ports"][0]["nodePort"] = json!(30101);
    let (s, err) = api.create(taken).await;
    assert_eq!(s, 422);
    assert_eq!(
        err["message"],
        "Service \"taken\" is invalid: spec.ports[0].nodePort: Invalid value: 30101: provided port is already allocated"
    );

    for name in ["c1", "c2"] {
        assert_eq!(api.create(svc(name, "ClusterIP")).await.0, 201);
    }
    let (s, headless) = api
        .create(json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}))
        .await;
    assert_eq!(
        (s, headless["spec"]["clusterIP"].as_str()),
        (201, Some("None"))
    );
    let (s, err) = api.create(svc("c3", "ClusterIP")).await;
    assert_eq!((s, err["reason"].as_str()), (500, Some("InternalError")));
    assert_eq!(
        err["message"],
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );
    let (_, list) = api.call("GET", SVCS, None).await;
    let held = |list: &Value| -> Vec<(String, Value, Value)> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["metadata"]["name"].as_str().unwrap().to_string(),
                    s["spec"]["clusterIP"].clone(),
                    s["spec"]["ports"][0]["nodePort"].clone(),
                )
            })
            .collect()
    };
    let before = held(&list);
    assert_eq!(before.len(), 6);

    // A new server over the same store keeps the allocations and still refuses.
    drop(api);
    let api = server(store.clone()).await;
    let (_, list) = api.call("GET", SVCS, None).await;
    assert_eq!(held(&list), before);
    assert_eq!(api.create(svc("c3", "ClusterIP")).await.0, 500);

    // NodePort → ClusterIP wipes and releases the node port; back to NodePort reserves one again.
    let np1 = format!("{SVCS}/np1");
    let (s, changed) = api
        .call("PATCH", &np1, Some(json!({"spec": {"type": "ClusterIP"}})))
        .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["spec"]["ports"][0].get("nodePort"), None);
    assert_eq!(
        keys(store.as_ref(), "/registry/servicenodeports/")
            .await
            .len(),
        2
    );
    let (s, back) = api
        .call("PATCH", &np1, Some(json!({"spec": {"type": "NodePort"}})))
        .await;
    assert_eq!(s, 200, "{back}");
    assert!(back["spec"]["ports"][0]["nodePort"].as_i64().is_some());
    assert_eq!(
        keys(store.as_ref(), "/registry/servicenodeports/")
            .await
            .len(),
        3
    );

    // A dry run reserves nothing and, like kube's dry-run allocator, answers with the range's first
    // value even when the range is full.
    let (s, dry) = api
        .call(
            "POST",
            &format!("{SVCS}?dryRun=All"),
            Some(svc("dry", "NodePort")),
        )
        .await;
    assert_eq!(s, 201, "{dry}");
    assert_eq!(dry["spec"]["clusterIP"], "127.50.0.8");
    assert_eq!(dry["spec"]["ports"][0]["nodePort"], 30100);
    assert_eq!(keys(store.as_ref(), "/registry/serviceips/").await.len(), 5);
    // A delete frees the IP for the next create.
    assert_eq!(api.call("DELETE", &format!("{SVCS}/c2"), None).await.0, 200);
    assert_eq!(keys(store.as_ref(), "/registry/serviceips/").await.len(), 4);
    assert_eq!(api.create(svc("c3", "ClusterIP")).await.0, 201);
    // A create that fails in the store (a taken name) gives its reservations back.
    assert_eq!(api.call("DELETE", &format!("{SVCS}/c3"), None).await.0, 200);
    let (s, _) = api.create(svc("np2", "ClusterIP")).await;
    assert_eq!(s, 409);
    assert_eq!(keys(store.as_ref(), "/registry/serviceips/").await.len(), 4);
    // Deleting every service releases everything.
    assert_eq!(api.call("DELETE", SVCS, None).await.0, 200);
    assert!(keys(store.as_ref(), "/registry/serviceips/")
        .await
        .is_empty());
    assert!(keys(store.as_ref(), "/registry/servicenodeports/")
        .await
        .is_empty());
}

#[tokio::test]
async fn local_load_balancers_hold_a_health_check_port_until_they_stop_needing_it() {
    let (_dir, store) = store();
    let api = server(store.clone()).await;
    let mut lb = svc("lb", "LoadBalancer");
    lb["spec"]["externalTrafficPolicy"] = json!("Local");
    let (s, created) = api.create(lb).await;
    assert_eq!(s, 201, "{created}");
    let hc = created["spec"]["healthCheckNodePort"].as_i64().unwrap();
    assert!((30100..=30102).contains(&hc));
    assert_eq!(
        keys(store.as_ref(), "/registry/servicenodeports/")
            .await
            .len(),
        2
    );
    let (s, changed) = api
        .call(
            "PATCH",
            &format!("{SVCS}/lb"),
            Some(json!({"spec": {"externalTrafficPolicy": "Cluster"}})),
        )
        .await;
    assert_eq!(s, 200, "{changed}");
    assert_eq!(changed["spec"].get("healthCheckNodePort"), None);
    assert_eq!(
        keys(store.as_ref(), "/registry/servicenodeports/")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn leaked_reservations_are_repaired() {
    let (_dir, store) = store();
    let api = server(store.clone()).await;
    // What a crash between reserving and storing leaves behind.
    store
        .create("/registry/serviceips/127.50.0.14", b"default/gone".to_vec())
        .await
        .unwrap();
    store
        .create("/registry/servicenodeports/30102", b"default/gone".to_vec())
        .await
        .unwrap();
    let (s, _) = api.create(svc("kept", "NodePort")).await;
    assert_eq!(s, 201);
    let shutdown = CancellationToken::new();
    let state = AppState::new(store.clone(), shutdown.clone())
        .await
        .unwrap();
    let freed = state
        .repair_service_allocations(std::time::Duration::ZERO)
        .await
        .unwrap();
    shutdown.cancel();
    assert_eq!(freed, 2);
    assert_eq!(keys(store.as_ref(), "/registry/serviceips/").await.len(), 1);
    assert_eq!(
        keys(store.as_ref(), "/registry/servicenodeports/")
            .await
            .len(),
        1
    );
}
