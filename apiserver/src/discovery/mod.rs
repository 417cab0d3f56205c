//! Discovery: `/api`, `/api/v1`, `/apis` (plain and aggregated v2/v2beta1), `/version`, health endpoints.
//!
//! Documents are derived from `resources::RESOURCES`; `health` holds the `/healthz`-style endpoints.

mod health;

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{json, Map, Value};

use crate::resources::{ResourceInfo, RESOURCES};

/// The aggregated-discovery group of the `Accept`/`Content-Type` media type parameters.
const AGGREGATED_GROUP: &str = "apidiscovery.k8s.io";

/// Routes for discovery, version and health (`/healthz`, `/livez`, `/readyz`). Stateless.
pub fn router() -> axum::Router {
    axum::Router::new()
        .route("/api", get(api))
        .route("/api/", get(api))
        .route("/api/v1", get(api_v1))
        .route("/api/v1/", get(api_v1))
        .route("/apis", get(apis))
        .route("/apis/", get(apis))
        .route("/version", get(version))
        .route("/version/", get(version))
        .merge(health::router())
}

/// Which aggregated discovery version (`v2`, `v2beta1`) the client asked for, if any.
///
/// Entries are taken in the client's order; the first one we can serve wins. A protobuf aggregated
/// request is answered in JSON, which clients accept because they decode by the response Content-Type.
pub fn aggregated_version(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    for entry in accept.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut group = None;
        let mut version = None;
        let mut as_kind = None;
        for param in parts {
            if let Some((k, v)) = param.split_once('=') {
                let v = v.trim().trim_matches('"');
                match k.trim() {
                    "g" => group = Some(v),
                    "v" => version = Some(v),
                    "as" => as_kind = Some(v),
                    _ => {}
                }
            }
        }
        if group == Some(AGGREGATED_GROUP) && as_kind == Some("APIGroupDiscoveryList") {
            match version {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => continue,
            }
        }
        // A plain JSON (or protobuf, or wildcard) entry ranked before any aggregated one: legacy.
        if matches!(
            media.as_str(),
            "application/json" | "application/vnd.kubernetes.protobuf" | "*/*" | "application/*"
        ) {
            return None;
        }
    }
    None
}

/// A JSON response with `Content-Type: application/json`.
fn json_response(body: &Value) -> Response {
    let mut res = body.to_string().into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// An aggregated discovery response with the exact media type the client negotiated.
fn aggregated_response(version: &str, items: Vec<Value>) -> Response {
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("{AGGREGATED_GROUP}/{version}"),
        "metadata": {},
        "items": items,
    });
    let mut res = body.to_string().into_response();
    let content_type =
        format!("application/json;g={AGGREGATED_GROUP};v={version};as=APIGroupDiscoveryList");
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    res.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    res
}

async fn api(headers: HeaderMap) -> Response {
    if let Some(version) = aggregated_version(&headers) {
        return aggregated_response(version, vec![core_group_discovery()]);
    }
    json_response(&api_versions(
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ))
}

async fn api_v1() -> Response {
    json_response(&core_resource_list())
}

async fn apis(headers: HeaderMap) -> Response {
    if let Some(version) = aggregated_version(&headers) {
        return aggregated_response(version, Vec::new());
    }
    json_response(&json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}))
}

async fn version() -> Response {
    json_response(&version_info())
}

/// The `/api` APIVersions document; `host` (the request's Host header) becomes the server address.
pub fn api_versions(host: Option<&str>) -> Value {
    let mut doc = json!({"kind": "APIVersions", "versions": ["v1"]});
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        doc["serverAddressByClientCIDRs"] =
            json!([{"clientCIDR": "0.0.0.0/0", "serverAddress": host}]);
    }
    doc
}

/// Verbs discovery reports for a top-level resource (namespaces have no `deletecollection`, as in kube).
fn resource_verbs(r: &ResourceInfo) -> Vec<&'static str> {
    r.verbs()
        .iter()
        .copied()
        .filter(|v| !(r.name == "namespaces" && *v == "deletecollection"))
        .collect()
}

/// How a subresource is described: `(group, version, kind, verbs)`.
fn subresource_shape(
    r: &ResourceInfo,
    sub: &str,
) -> (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
) {
    match sub {
        "status" => ("", "v1", r.kind, &["get", "patch", "update"]),
        "binding" => ("", "v1", "Binding", &["create"]),
        "log" => ("", "v1", "Pod", &["get"]),
        "scale" => ("autoscaling", "v1", "Scale", &["get", "patch", "update"]),
        "finalize" => ("", "v1", r.kind, &["update"]),
        "eviction" => ("policy", "v1", "Eviction", &["create"]),
        _ => ("", "v1", r.kind, &["get"]),
    }
}

/// kube's `storageVersionHash`: base64 of the first 8 bytes of sha256("<group>/<version>/<kind>").
///
/// Precomputed for our fixed set of kinds (all stored as core/v1) rather than pulling in a hash crate.
fn storage_version_hash(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "ConfigMap" => "qFsyl6wFWjQ=",
        "Endpoints" => "fWeeMqaN/OA=",
        "Event" => "r2yiGXH7wu8=",
        "Namespace" => "Q3oi5N2YM8M=",
        "Node" => "XwShjMxG9Fs=",
        "Pod" => "xPOwRZ+Yhw8=",
        "ReplicationController" => "Jond2If31h0=",
        "Service" => "0/CO1lhkEBI=",
        _ => return None,
    })
}

/// The `/api/v1` APIResourceList: every resource and `resource/subresource`.
pub fn core_resource_list() -> Value {
    let mut resources = Vec::new();
    for r in RESOURCES {
        let mut entry = json!({
            "name": r.name,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": resource_verbs(r),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        if let Some(hash) = storage_version_hash(r.kind) {
            entry["storageVersionHash"] = json!(hash);
        }
        resources.push(entry);
        for sub in r.subresources {
            let (group, version, kind, verbs) = subresource_shape(r, sub);
            let mut entry = Map::new();
            entry.insert("name".into(), json!(format!("{}/{}", r.name, sub)));
            entry.insert("singularName".into(), json!(""));
            entry.insert("namespaced".into(), json!(r.namespaced));
            if !group.is_empty() {
                entry.insert("group".into(), json!(group));
                entry.insert("version".into(), json!(version));
            }
            entry.insert("kind".into(), json!(kind));
            entry.insert("verbs".into(), json!(verbs));
            resources.push(Value::Object(entry));
        }
    }
    json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": resources})
}

/// The core group's entry of an aggregated APIGroupDiscoveryList (empty group name, version v1).
pub fn core_group_discovery() -> Value {
    let resources: Vec<Value> = RESOURCES
        .iter()
        .map(|r| {
            let mut entry = json!({
                "resource": r.name,
                "responseKind": {"group": "", "version": "v1", "kind": r.kind},
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular,
                "verbs": resource_verbs(r),
            });
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                entry["categories"] = json!(r.categories);
            }
            if !r.subresources.is_empty() {
                let subs: Vec<Value> = r
                    .subresources
                    .iter()
                    .map(|sub| {
                        let (group, version, kind, verbs) = subresource_shape(r, sub);
                        json!({
                            "subresource": sub,
                            "responseKind": {"group": group, "version": version, "kind": kind},
                            "verbs": verbs,
                        })
                    })
                    .collect();
                entry["subresources"] = json!(subs);
            }
            entry
        })
        .collect();
    json!({
        "metadata": {"creationTimestamp": null},
        "versions": [{"version": "v1", "resources": resources, "freshness": "Current"}],
    })
}

/// The `/version` document: Kubernetes 1.33 as built by Kumos.
pub fn version_info() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.0-kumos",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, arch),
    })
}

#[cfg(test)]
mod tests;
