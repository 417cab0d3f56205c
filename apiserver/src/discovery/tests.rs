//! Handler tests for discovery, version and health.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

const V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const V2BETA1: &str = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

async fn call(path: &str, accept: Option<&str>) -> (StatusCode, String, String) {
    let mut req = Request::get(path).header("host", "127.0.0.1:6443");
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let res = router()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

async fn call_json(path: &str, accept: Option<&str>) -> (String, Value) {
    let (status, ct, body) = call(path, accept).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    (ct, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn api_lists_v1_with_server_address() {
    let (ct, v) = call_json("/api", Some("application/json")).await;
    assert_eq!(ct, "application/json");
    assert_eq!(v["kind"], "APIVersions");
    assert_eq!(v["versions"], json!(["v1"]));
    assert_eq!(
        v["serverAddressByClientCIDRs"][0],
        json!({"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"})
    );
}

#[tokio::test]
async fn api_v1_lists_every_resource_and_subresource() {
    let (_, v) = call_json("/api/v1", Some("application/vnd.kubernetes.protobuf")).await;
    assert_eq!(v["kind"], "APIResourceList");
    assert_eq!(v["groupVersion"], "v1");
    let resources = v["resources"].as_array().unwrap();
    let find = |n: &str| resources.iter().find(|r| r["name"] == n).unwrap().clone();
    for r in RESOURCES {
        let entry = find(r.name);
        assert_eq!(entry["kind"], r.kind);
        assert_eq!(entry["singularName"], r.singular);
        assert_eq!(entry["namespaced"], r.namespaced);
        assert_eq!(entry["shortNames"], json!(r.short_names));
        for sub in r.subresources {
            find(&format!("{}/{}", r.name, sub));
        }
    }
    assert_eq!(find("pods")["categories"], json!(["all"]));
    assert_eq!(find("pods")["storageVersionHash"], "xPOwRZ+Yhw8=");
    assert_eq!(
        find("pods")["verbs"],
        json!([
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ])
    );
    assert_eq!(
        find("namespaces")["verbs"],
        json!(["create", "delete", "get", "list", "patch", "update", "watch"])
    );
    assert_eq!(
        find("pods/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    assert_eq!(find("pods/status")["kind"], "Pod");
    assert_eq!(find("pods/binding")["kind"], "Binding");
    assert_eq!(find("pods/binding")["verbs"], json!(["create"]));
    assert_eq!(find("pods/log")["verbs"], json!(["get"]));
    assert_eq!(find("namespaces/finalize")["verbs"], json!(["update"]));
    let scale = find("replicationcontrollers/scale");
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["version"], "v1");
    assert_eq!(scale["kind"], "Scale");
}

#[tokio::test]
async fn apis_is_an_empty_group_list() {
    let (_, v) = call_json("/apis", None).await;
    assert_eq!(
        v,
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
    );
}

#[tokio::test]
async fn aggregated_discovery_v2_and_v2beta1() {
    // kubectl 1.33 sends v2 first, then v2beta1, then plain JSON.
    let accept = format!("{V2},{V2BETA1},application/json");
    let (ct, v) = call_json("/api", Some(&accept)).await;
    assert_eq!(ct, V2);
    assert_eq!(v["kind"], "APIGroupDiscoveryList");
    assert_eq!(v["apiVersion"], "apidiscovery.k8s.io/v2");
    let group = &v["items"][0];
    assert_eq!(group["metadata"].get("name"), None);
    let version = &group["versions"][0];
    assert_eq!(version["version"], "v1");
    assert_eq!(version["freshness"], "Current");
    let resources = version["resources"].as_array().unwrap();
    assert_eq!(resources.len(), RESOURCES.len());
    let pods = resources.iter().find(|r| r["resource"] == "pods").unwrap();
    assert_eq!(
        pods["responseKind"],
        json!({"group": "", "version": "v1", "kind": "Pod"})
    );
    assert_eq!(pods["scope"], "Namespaced");
    assert_eq!(pods["singularResource"], "pod");
    assert_eq!(pods["shortNames"], json!(["po"]));
    let subs: Vec<&str> = pods["subresources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["subresource"].as_str().unwrap())
        .collect();
    assert_eq!(subs, ["binding", "log", "status"]);
    let ns = resources
        .iter()
        .find(|r| r["resource"] == "namespaces")
        .unwrap();
    assert_eq!(ns["scope"], "Cluster");

    // kubectl 1.28 only knows v2beta1.
    let accept = format!("{V2BETA1},application/json");
    let (ct, v) = call_json("/apis", Some(&accept)).await;
    assert_eq!(ct, V2BETA1);
    assert_eq!(v["apiVersion"], "apidiscovery.k8s.io/v2beta1");
    assert_eq!(v["items"], json!([]));
}

#[tokio::test]
async fn plain_json_ranked_first_wins() {
    let accept = format!("application/json,{V2}");
    let (ct, v) = call_json("/api", Some(&accept)).await;
    assert_eq!(ct, "application/json");
    assert_eq!(v["kind"], "APIVersions");
}

#[tokio::test]
async fn version_reports_1_33() {
    let (_, v) = call_json("/version", None).await;
    assert_eq!(v["major"], "1");
    assert_eq!(v["minor"], "33");
    assert_eq!(v["gitVersion"], "v1.33.0-kumos");
    assert!(v["platform"].as_str().unwrap().contains('/'));
    assert_eq!(v["compiler"], "gc");
}

#[tokio::test]
async fn health_endpoints() {
    for ep in ["/healthz", "/livez", "/readyz"] {
        let (status, ct, body) = call(ep, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct, "text/plain; charset=utf-8");
        assert_eq!(body, "ok");
    }
    let (_, _, body) = call("/readyz?verbose", None).await;
    assert!(body.starts_with("[+]ping ok\n"));
    assert!(body.ends_with("readyz check passed\n"));
    let (_, _, body) = call("/livez?verbose=true&exclude=etcd", None).await;
    assert!(body.ends_with("livez check passed\n"));
    let (status, _, body) = call("/livez/ping", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let (status, _, _) = call("/healthz/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[test]
fn accept_parsing_tolerates_garbage() {
    let mut h = HeaderMap::new();
    h.insert(header::ACCEPT, HeaderValue::from_static(";;,=,g=;v"));
    assert_eq!(aggregated_version(&h), None);
    h.insert(
        header::ACCEPT,
        HeaderValue::from_static(
            "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        ),
    );
    assert_eq!(aggregated_version(&h), Some("v2"));
}
