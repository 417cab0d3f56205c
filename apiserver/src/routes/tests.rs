//! Handler tests over the embedded store with `tower::ServiceExt::oneshot`.

use axum::body::Body;
use axum::http::{HeaderMap, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{router, AppState};
use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};

pub(super) struct Api {
    app: axum::Router,
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub(super) async fn api() -> Api {
    api_with(|store| store).await
}

/// [`api`] over the embedded store as `wrap` wraps it (to inject storage behaviour).
pub(super) async fn api_with(
    wrap: impl FnOnce(std::sync::Arc<EmbeddedStore>) -> std::sync::Arc<dyn crate::storage::Storage>,
) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedConfig::default()).unwrap();
    let shutdown = CancellationToken::new();
    let state = AppState::new(wrap(std::sync::Arc::new(store)), shutdown.clone())
        .await
        .unwrap();
    Api {
        app: router(state),
        _dir: dir,
        shutdown,
    }
}

impl Api {
    pub(super) async fn send(
        &self,
        method: &str,
        uri: &str,
        ctype: &str,
        body: Vec<u8>,
    ) -> (u16, Value, HeaderMap) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", ctype)
            .body(Body::from(body))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value, headers)
    }

    pub(super) async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let (s, v, _) = self.send(method, uri, "application/json", bytes).await;
        (s, v)
    }
}

pub(super) fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

pub(super) const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn create_get_and_the_exact_errors_kubectl_prints() {
    let api = api().await;
    let (s, created) = api.call("POST", PODS, Some(pod("web"))).await;
    assert_eq!(s, 201, "{created}");
    assert!(created["metadata"]["uid"].is_string());
    assert_eq!(created["spec"]["restartPolicy"], "Always");
    assert_eq!(created["status"]["phase"], "Pending");
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    let (s, got) = api.call("GET", &format!("{PODS}/web"), None).await;
    assert_eq!(
        (s, got["metadata"]["resourceVersion"].as_str()),
        (200, Some(rv.as_str()))
    );

    let (s, err) = api.call("POST", PODS, Some(pod("web"))).await;
    assert_eq!((s, err["reason"].as_str()), (409, Some("AlreadyExists")));
    assert_eq!(err["message"], "pods \"web\" already exists");

    let (s, err) = api.call("GET", &format!("{PODS}/nope"), None).await;
    assert_eq!(
        (s, err["message"].as_str()),
        (404, Some("pods \"nope\" not found"))
    );

    let (s, err) = api.call("POST", PODS, Some(pod("Bad_Name"))).await;
    assert_eq!((s, err["reason"].as_str()), (422, Some("Invalid")));
    assert!(err["message"]
        .as_str()
        .unwrap()
        .starts_with("Pod \"Bad_Name\" is invalid: metadata.name"));
    assert_eq!(err["details"]["causes"][0]["field"], "metadata.name");

    let (s, err) = api
        .call("POST", "/api/v1/namespaces/nope/pods", Some(pod("a")))
        .await;
    assert_eq!(
        (s, err["message"].as_str()),
        (404, Some("namespaces \"nope\" not found"))
    );

    let (s, _) = api.call("GET", "/api/v1/widgets", None).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn generate_name_and_bodies_without_type_meta() {
    let api = api().await;
    let body = json!({"metadata": {"generateName": "cm-"}, "data": {"k": "v"}});
    let (s, cm) = api
        .call("POST", "/api/v1/namespaces/default/configmaps", Some(body))
        .await;
    assert_eq!(s, 201, "{cm}");
    let name = cm["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("cm-") && name.len() == 8);
    assert_eq!(cm["kind"], "ConfigMap");
    let (s, err) = api
        .call(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some(json!({"data": {}})),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(
        err["details"]["causes"][0]["message"],
        "Required value: name or generateName is required"
    );
}

#[tokio::test]
async fn optimistic_concurrency_and_generation() {
    let api = api().await;
    let rc = json!({"metadata": {"name": "rc"},
        "spec": {"replicas": 1, "selector": {"app": "web"},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let rcs = "/api/v1/namespaces/default/replicationcontrollers";
    let (s, created) = api.call("POST", rcs, Some(rc)).await;
    assert_eq!(s, 201, "{created}");
    assert_eq!(created["metadata"]["generation"], 1);
    let mut update = created.clone();
    update["spec"]["replicas"] = json!(3);
    let (s, updated) = api
        .call("PUT", &format!("{rcs}/rc"), Some(update.clone()))
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["metadata"]["generation"], 2);
    let (s, err) = api.call("PUT", &format!("{rcs}/rc"), Some(update)).await;
    assert_eq!(s, 409);
    assert_eq!(
        err["message"],
        "Operation cannot be fulfilled on replicationcontrollers \"rc\": the object has been modified; \
         please apply your changes to the latest version and try again"
    );
    let (s, scale) = api.call("GET", &format!("{rcs}/rc/scale"), None).await;
    assert_eq!((s, &scale["spec"]["replicas"]), (200, &json!(3)));
    assert_eq!(scale["status"]["selector"], "app=web");
    let (s, _) = api
        .call(
            "PUT",
            &format!("{rcs}/rc/scale"),
            Some(json!({"spec": {"replicas": 5}})),
        )
        .await;
    assert_eq!(s, 200);
    let (_, got) = api.call("GET", &format!("{rcs}/rc"), None).await;
    assert_eq!(got["spec"]["replicas"], 5);
}

#[tokio::test]
async fn lists_filter_and_paginate_at_one_revision() {
    let api = api().await;
    for (name, app) in [("a", "web"), ("b", "db"), ("c", "web"), ("d", "web")] {
        let mut p = pod(name);
        p["metadata"]["labels"]["app"] = json!(app);
        assert_eq!(api.call("POST", PODS, Some(p)).await.0, 201);
    }
    let (s, list) = api
        .call(
            "GET",
            &format!("{PODS}?labelSelector=app%20in%20(web)"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["kind"], "PodList");
    let names: Vec<_> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("a"), json!("c"), json!("d")]);

    let (_, page1) = api
        .call(
            "GET",
            &format!("{PODS}?limit=2&labelSelector=app%3Dweb"),
            None,
        )
        .await;
    assert_eq!(page1["items"].as_array().unwrap().len(), 2);
    let token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    // A write between pages does not show up: every page is read at the first page's revision.
    assert_eq!(api.call("POST", PODS, Some(pod("e"))).await.0, 201);
    let (_, page2) = api
        .call(
            "GET",
            &format!("{PODS}?limit=2&labelSelector=app%3Dweb&continue={token}"),
            None,
        )
        .await;
    let names: Vec<_> = page2["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("d")]);
    assert_eq!(
        page2["metadata"]["resourceVersion"],
        page1["metadata"]["resourceVersion"]
    );
    assert!(page2["metadata"].get("continue").is_none());

    let (s, list) = api
        .call(
            "GET",
            &format!("{PODS}?fieldSelector=metadata.name%3Db"),
            None,
        )
        .await;
    assert_eq!((s, list["items"].as_array().unwrap().len()), (200, 1));
    let (s, err) = api
        .call("GET", &format!("{PODS}?fieldSelector=spec.bogus%3Db"), None)
        .await;
    assert_eq!((s, err["reason"].as_str()), (400, Some("BadRequest")));
    let (s, all) = api.call("GET", "/api/v1/pods", None).await;
    assert_eq!((s, all["items"].as_array().unwrap().len()), (200, 5));
    // resourceVersion=0 is served from the watch cache once it has caught up.
    let latest: i64 = all["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    loop {
        let (s, cached) = api
            .call(
                "GET",
                &format!("{PODS}?resourceVersion=0&labelSelector=app%3Dweb"),
                None,
            )
            .await;
        assert_eq!(s, 200);
        let rv: i64 = cached["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        if rv >= latest {
            assert_eq!(cached["items"].as_array().unwrap().len(), 4);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn patches_status_and_field_validation() {
    let api = api().await;
    api.call("POST", PODS, Some(pod("web"))).await;
    let uri = format!("{PODS}/web");
    let merge = br#"{"metadata":{"labels":{"tier":"front"}}}"#.to_vec();
    let (s, patched, _) = api
        .send("PATCH", &uri, "application/merge-patch+json", merge)
        .await;
    assert_eq!(
        (s, &patched["metadata"]["labels"]["tier"]),
        (200, &json!("front"))
    );
    let jp = br#"[{"op":"remove","path":"/metadata/labels/tier"}]"#.to_vec();
    let (s, patched, _) = api
        .send("PATCH", &uri, "application/json-patch+json", jp)
        .await;
    assert_eq!(s, 200);
    assert!(patched["metadata"]["labels"].get("tier").is_none());
    let (s, _, _) = api
        .send("PATCH", &uri, "application/x-unknown-patch", b"{}".to_vec())
        .await;
    assert_eq!(s, 415);

    let mut status = patched.clone();
    status["status"]["phase"] = json!("Running");
    status["spec"]["activeDeadlineSeconds"] = json!(5);
    let (s, updated) = api
        .call("PUT", &format!("{uri}/status"), Some(status))
        .await;
    assert_eq!(s, 200, "{updated}");
    assert_eq!(updated["status"]["phase"], "Running");
    assert!(updated["spec"].get("activeDeadlineSeconds").is_none());

    let mut strict = pod("strict");
    strict["spec"]["bogus"] = json!(1);
    let body = strict.to_string().into_bytes();
    let (s, err, _) = api
        .send(
            "POST",
            &format!("{PODS}?fieldValidation=Strict"),
            "application/json",
            body.clone(),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        err["message"],
        "strict decoding error: unknown field \"spec.bogus\""
    );
    let (s, created, headers) = api.send("POST", PODS, "application/json", body).await;
    assert_eq!(s, 201);
    assert!(created["spec"].get("bogus").is_none());
    assert_eq!(
        headers["warning"],
        "299 - \"unknown field \\\"spec.bogus\\\"\""
    );
}

#[tokio::test]
async fn binding_copies_its_annotations_onto_the_pod() {
    let api = api().await;
    let mut p = pod("web");
    p["metadata"]["annotations"] = json!({"keep": "me"});
    api.call("POST", PODS, Some(p)).await;
    let bind = json!({"kind": "Binding", "apiVersion": "v1",
                      "metadata": {"name": "web", "annotations": {"placed": "31000"}},
                      "target": {"kind": "Node", "name": "n1"}});
    let (s, _) = api
        .call("POST", &format!("{PODS}/web/binding"), Some(bind))
        .await;
    assert_eq!(s, 201);
    let (_, got) = api.call("GET", &format!("{PODS}/web"), None).await;
    assert_eq!(got["spec"]["nodeName"], "n1");
    assert_eq!(
        got["metadata"]["annotations"],
        json!({"keep": "me", "placed": "31000"})
    );
}

#[tokio::test]
async fn binding_delete_and_namespace_termination() {
    let api = api().await;
    api.call("POST", PODS, Some(pod("web"))).await;
    let bind = json!({"kind": "Binding", "apiVersion": "v1", "metadata": {"name": "web"},
                      "target": {"kind": "Node", "name": "n1"}});
    let (s, _) = api
        .call("POST", &format!("{PODS}/web/binding"), Some(bind.clone()))
        .await;
    assert_eq!(s, 201);
    let (s, err) = api
        .call("POST", &format!("{PODS}/web/binding"), Some(bind))
        .await;
    assert_eq!(s, 409);
    assert_eq!(err["message"], "Operation cannot be fulfilled on pods/binding \"web\": pod web is already assigned to node \"n1\"");

    let (s, ns) = api
        .call(
            "POST",
            "/api/v1/namespaces",
            Some(json!({"metadata": {"name": "team"}})),
        )
        .await;
    assert_eq!(s, 201, "{ns}");
    assert_eq!(ns["status"]["phase"], "Active");
    let (s, _) = api
        .call("POST", "/api/v1/namespaces/team/pods", Some(pod("p")))
        .await;
    assert_eq!(s, 201);
    let (s, ns) = api.call("DELETE", "/api/v1/namespaces/team", None).await;
    assert_eq!((s, &ns["status"]["phase"]), (200, &json!("Terminating")));
    assert_eq!(
        api.call("GET", "/api/v1/namespaces/team", None).await.0,
        404
    );
    assert_eq!(
        api.call("GET", "/api/v1/namespaces/team/pods/p", None)
            .await
            .0,
        404
    );
    let (s, err) = api.call("DELETE", "/api/v1/namespaces/default", None).await;
    assert_eq!((s, err["reason"].as_str()), (403, Some("Forbidden")));

    // The pod is bound to a node: without grace 0 it would wait for its agent.
    let (s, _) = api
        .call("DELETE", &format!("{PODS}/web?gracePeriodSeconds=0"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        api.call("DELETE", &format!("{PODS}/web"), None).await.0,
        404
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let api = api().await;
    let cm = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    let cms = "/api/v1/namespaces/default/configmaps";
    api.call("POST", cms, Some(cm)).await;
    let (s, held) = api.call("DELETE", &format!("{cms}/held"), None).await;
    assert_eq!(s, 200);
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(api.call("GET", &format!("{cms}/held"), None).await.0, 200);
    let patch = br#"{"metadata":{"finalizers":null}}"#.to_vec();
    let (s, _, _) = api
        .send(
            "PATCH",
            &format!("{cms}/held"),
            "application/merge-patch+json",
            patch,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(api.call("GET", &format!("{cms}/held"), None).await.0, 404);
}

#[tokio::test]
async fn bodies_tables_and_limits() {
    let api = api().await;
    let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: y\ndata:\n  a: b\n".to_vec();
    let (s, cm, _) = api
        .send(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/yaml",
            yaml,
        )
        .await;
    assert_eq!((s, &cm["data"]["a"]), (201, &json!("b")));
    let (s, _, _) = api
        .send(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "text/plain",
            b"x".to_vec(),
        )
        .await;
    assert_eq!(s, 415);
    let (s, err, _) = api
        .send("POST", PODS, "application/json", b"{not json".to_vec())
        .await;
    assert_eq!((s, err["reason"].as_str()), (400, Some("BadRequest")));
    let huge = vec![b' '; super::request::MAX_BODY_BYTES + 1];
    let (s, _, _) = api.send("POST", PODS, "application/json", huge).await;
    assert_eq!(s, 413);

    api.call("POST", PODS, Some(pod("web"))).await;
    let req = Request::get(PODS)
        .header(
            "accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Body::empty())
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let table: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(table["kind"], "Table");
    let cols: Vec<_> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].clone())
        .collect();
    assert_eq!(
        &cols[..5],
        [
            json!("Name"),
            json!("Ready"),
            json!("Status"),
            json!("Restarts"),
            json!("Age")
        ]
    );
    assert_eq!(table["rows"][0]["cells"][0], "web");
}

#[tokio::test]
async fn services_get_unique_loopback_cluster_ips() {
    let api = api().await;
    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, ip: Option<&str>| {
        let mut s = json!({"metadata": {"name": name}, "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}});
        if let Some(ip) = ip {
            s["spec"]["clusterIP"] = json!(ip);
        }
        s
    };
    let (s, a) = api.call("POST", svcs, Some(svc("a", None))).await;
    assert_eq!(s, 201, "{a}");
    let ip = a["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.parse::<std::net::Ipv4Addr>().unwrap().is_loopback());
    assert_eq!(a["spec"]["clusterIPs"], json!([ip]));
    let (s, err) = api.call("POST", svcs, Some(svc("b", Some(&ip)))).await;
    assert_eq!(s, 422, "{err}");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("provided IP is already allocated"));
    let (s, _) = api
        .call("POST", svcs, Some(svc("c", Some("10.0.0.1"))))
        .await;
    assert_eq!(s, 422);
    let (s, headless) = api.call("POST", svcs, Some(svc("h", Some("None")))).await;
    assert_eq!((s, &headless["spec"]["clusterIP"]), (201, &json!("None")));
    // Deleting the service frees its address for reuse.
    assert_eq!(api.call("DELETE", &format!("{svcs}/a"), None).await.0, 200);
    let (s, _) = api.call("POST", svcs, Some(svc("b", Some(&ip)))).await;
    assert_eq!(s, 201);
}

#[tokio::test]
async fn a_namespace_terminates_only_once_its_finalized_contents_are_gone() {
    let api = api().await;
    api.call(
        "POST",
        "/api/v1/namespaces",
        Some(json!({"metadata": {"name": "team"}})),
    )
    .await;
    let held = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    assert_eq!(
        api.call("POST", "/api/v1/namespaces/team/configmaps", Some(held))
            .await
            .0,
        201
    );
    assert_eq!(
        api.call("POST", "/api/v1/namespaces/team/pods", Some(pod("p")))
            .await
            .0,
        201
    );

    let (s, ns) = api.call("DELETE", "/api/v1/namespaces/team", None).await;
    assert_eq!((s, &ns["status"]["phase"]), (200, &json!("Terminating")));
    let (s, ns) = api.call("GET", "/api/v1/namespaces/team", None).await;
    assert_eq!((s, &ns["status"]["phase"]), (200, &json!("Terminating")));
    assert_eq!(
        api.call("GET", "/api/v1/namespaces/team/pods/p", None)
            .await
            .0,
        404
    );
    let (s, err) = api
        .call("POST", "/api/v1/namespaces/team/pods", Some(pod("late")))
        .await;
    assert_eq!(s, 403);
    assert_eq!(
        err["message"],
        "pods \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );
    let (_, cm) = api
        .call("GET", "/api/v1/namespaces/team/configmaps/held", None)
        .await;
    assert!(cm["metadata"]["deletionTimestamp"].is_string());

    let release = br#"{"metadata":{"finalizers":null}}"#.to_vec();
    let (s, _, _) = api
        .send(
            "PATCH",
            "/api/v1/namespaces/team/configmaps/held",
            "application/merge-patch+json",
            release,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        api.call("GET", "/api/v1/namespaces/team/configmaps/held", None)
            .await
            .0,
        404
    );
    assert_eq!(
        api.call("GET", "/api/v1/namespaces/team", None).await.0,
        404
    );
}
