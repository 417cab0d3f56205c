//! Handler and document tests for the OpenAPI endpoints.

use super::*;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn call(path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = router()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

fn core_doc() -> Value {
    serde_json::from_slice(&docs().entries[1].1.bytes).unwrap()
}

#[tokio::test]
async fn index_links_hashed_documents() {
    let (status, headers, body) = call("/openapi/v3", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let index: Value = serde_json::from_slice(&body).unwrap();
    let url = index["paths"]["api/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap();
    assert!(url.starts_with("/openapi/v3/api/v1?hash="));
    assert!(index["paths"]["api"].is_object());
    assert!(index["paths"]["apis"].is_object());

    let (status, headers, body) = call(url, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "public, immutable");
    let etag = headers["etag"].to_str().unwrap().to_string();
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["openapi"], "3.0.0");

    let (status, _, body) = call(url, &[("if-none-match", &etag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());

    let (status, headers, _) = call("/openapi/v3/api/v1?hash=stale", &[]).await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(headers["location"], url);

    let (status, headers, _) = call("/openapi/v3/api/v1", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["cache-control"], "no-cache, private");
}

#[tokio::test]
async fn unknown_documents_are_404() {
    for path in ["/swagger.json", "/openapi/v3/apis/apps/v1"] {
        let (status, _, body) = call(path, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["reason"], "NotFound");
    }
}

#[test]
fn schemas_are_kube_named_tagged_and_resolvable() {
    let doc = core_doc();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for r in crate::resources::RESOURCES {
        for kind in [r.kind.to_string(), r.list_kind()] {
            let s = &schemas[&format!("io.k8s.api.core.v1.{kind}")];
            assert_eq!(
                s["x-kubernetes-group-version-kind"],
                json!([{"group": "", "kind": kind, "version": "v1"}])
            );
        }
    }
    assert_eq!(
        schemas["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"][0]["group"],
        "autoscaling"
    );
    assert!(schemas.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    // Every reference points at a schema of this document.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"").skip(1) {
        let target = piece.split('"').next().unwrap();
        let name = target.strip_prefix("#/components/schemas/").unwrap();
        assert!(schemas.contains_key(name), "dangling {target}");
    }
}

#[test]
fn field_docs_and_list_extensions_come_through() {
    let doc = core_doc();
    let containers =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert!(containers["description"]
        .as_str()
        .unwrap()
        .starts_with("List of containers"));
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    let image =
        &doc["components"]["schemas"]["io.k8s.api.core.v1.Container"]["properties"]["image"];
    assert!(image["description"]
        .as_str()
        .unwrap()
        .contains("Container image name"));
    // $ref siblings are folded into allOf, as kube publishes them.
    let spec = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"]["properties"]["spec"];
    assert_eq!(
        spec["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.PodSpec"
    );
    assert!(spec["description"].is_string());
}

#[test]
fn paths_carry_kube_operation_ids_and_patch_metadata() {
    let doc = core_doc();
    let paths = &doc["paths"];
    let coll = &paths["/api/v1/namespaces/{namespace}/pods"];
    assert_eq!(coll["get"]["operationId"], "listCoreV1NamespacedPod");
    assert_eq!(coll["post"]["operationId"], "createCoreV1NamespacedPod");
    assert_eq!(
        coll["delete"]["operationId"],
        "deleteCoreV1CollectionNamespacedPod"
    );
    let one = &paths["/api/v1/namespaces/{namespace}/pods/{name}"];
    assert_eq!(one["get"]["operationId"], "readCoreV1NamespacedPod");
    assert_eq!(one["put"]["operationId"], "replaceCoreV1NamespacedPod");
    assert_eq!(one["delete"]["operationId"], "deleteCoreV1NamespacedPod");
    let patch = &one["patch"];
    assert_eq!(patch["operationId"], "patchCoreV1NamespacedPod");
    assert_eq!(
        patch["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "Pod", "version": "v1"})
    );
    let names: Vec<&str> = patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["dryRun", "fieldManager", "fieldValidation", "force"]
    );
    for ct in [
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    ] {
        assert!(patch["requestBody"]["content"][ct].is_object(), "{ct}");
    }
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/status"]["patch"]["operationId"],
        "patchCoreV1NamespacedPodStatus"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"]["operationId"],
        "createCoreV1NamespacedPodBinding"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/log"]["get"]["operationId"],
        "readCoreV1NamespacedPodLog"
    );
    let scale = &paths["/api/v1/namespaces/{namespace}/replicationcontrollers/{name}/scale"];
    assert_eq!(
        scale["patch"]["operationId"],
        "patchCoreV1NamespacedReplicationControllerScale"
    );
    assert_eq!(
        scale["get"]["x-kubernetes-group-version-kind"]["kind"],
        "Scale"
    );
    assert_eq!(
        paths["/api/v1/pods"]["get"]["operationId"],
        "listCoreV1PodForAllNamespaces"
    );
    assert_eq!(
        paths["/api/v1/nodes"]["get"]["operationId"],
        "listCoreV1Node"
    );
    assert_eq!(
        paths["/api/v1/nodes/{name}"]["patch"]["operationId"],
        "patchCoreV1Node"
    );
    assert!(paths["/api/v1/namespaces"]["delete"].is_null());
    assert_eq!(
        paths["/api/v1/namespaces/{name}/finalize"]["put"]["operationId"],
        "replaceCoreV1NamespaceFinalize"
    );
    assert_eq!(
        paths["/api/v1/watch/namespaces/{namespace}/pods/{name}"]["get"]["operationId"],
        "watchCoreV1NamespacedPod"
    );
    assert_eq!(
        paths["/api/v1/watch/nodes"]["get"]["x-kubernetes-action"],
        "watchlist"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/endpoints"]["get"]["operationId"],
        "listCoreV1NamespacedEndpoints"
    );
}

#[test]
fn hash_param_is_read_from_the_query() {
    assert_eq!(hash_param(Some("a=1&hash=XY")), Some("XY".into()));
    assert_eq!(hash_param(Some("hash")), None);
    assert_eq!(hash_param(None), None);
}
