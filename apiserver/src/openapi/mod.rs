//! OpenAPI v3 (`/openapi/v3`, `/openapi/v3/api/v1`) built from k8s-openapi's schemas, and `/openapi/v2`
//! (Swagger 2.0 JSON or gnostic protobuf, see [`v2`]) derived from it.
//!
//! Documents are built once on first use and served with kube's caching protocol: the index links each
//! group-version with `?hash=`, hashed URLs are immutable, stale hashes redirect, and `ETag` /
//! `If-None-Match` give 304s.

mod params;
mod paths;
mod schemas;
pub mod v2;

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use axum::extract::{Path, RawQuery};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use serde_json::{json, Value};

use crate::error::ApiError;

/// One served document: its JSON bytes and content hash.
struct Doc {
    bytes: Vec<u8>,
    hash: String,
}

impl Doc {
    fn new(value: &Value) -> Self {
        Self::from_bytes(value.to_string().into_bytes())
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let first = hasher.finish();
        // A second, differently seeded pass widens the hash so collisions stay theoretical.
        "kumos".hash(&mut hasher);
        let hash = format!("{first:016X}{:016X}", hasher.finish());
        Doc { bytes, hash }
    }
}

/// The group-version documents we serve, keyed by their index path (`api/v1`).
struct Docs {
    entries: Vec<(&'static str, Doc)>,
}

fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(|| Docs {
        entries: vec![
            ("api", Doc::new(&api_doc())),
            ("api/v1", Doc::new(&core_v1_doc())),
            ("apis", Doc::new(&apis_doc())),
        ],
    })
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": "v1.33.0"})
}

fn security_schemes() -> Value {
    json!({"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication",
        "name": "authorization", "in": "header"}})
}

/// The `/openapi/v3/api/v1` document.
pub fn core_v1_doc() -> Value {
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths::build(),
        "components": {"schemas": schemas::build(), "securitySchemes": security_schemes()},
    })
}

/// A small document describing one discovery endpoint (`/api/` or `/apis/`).
fn discovery_doc(
    path: &str,
    operation_id: &str,
    response: &str,
    schemas: serde_json::Map<String, Value>,
) -> Value {
    json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": {path: {"get": {
            "tags": [if path == "/api/" { "core" } else { "apis" }],
            "description": "get available API versions",
            "operationId": operation_id,
            "responses": {
                "200": {"description": "OK", "content": {
                    "application/json": {"schema": {"$ref": schemas::schema_ref(&schemas::meta_name(response))}},
                    "application/yaml": {"schema": {"$ref": schemas::schema_ref(&schemas::meta_name(response))}},
                    "application/vnd.kubernetes.protobuf": {"schema": {"$ref": schemas::schema_ref(&schemas::meta_name(response))}},
                }},
                "401": {"description": "Unauthorized"},
            },
        }}},
        "components": {"schemas": schemas, "securitySchemes": security_schemes()},
    })
}

fn api_doc() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let _ = generator.subschema_for::<meta::APIVersions>();
    discovery_doc(
        "/api/",
        "getCoreAPIVersions",
        "APIVersions",
        generator.take_definitions(true),
    )
}

fn apis_doc() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let _ = generator.subschema_for::<meta::APIGroupList>();
    discovery_doc(
        "/apis/",
        "getAPIVersions",
        "APIGroupList",
        generator.take_definitions(true),
    )
}

/// The `/openapi/v3` index: every group-version document with its hashed URL.
pub fn index() -> Value {
    let paths: serde_json::Map<String, Value> = docs()
        .entries
        .iter()
        .map(|(path, doc)| {
            (
                (*path).to_string(),
                json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash)}),
            )
        })
        .collect();
    json!({ "paths": paths })
}

/// Routes for the OpenAPI documents. Stateless.
pub fn router() -> axum::Router {
    axum::Router::new()
        .route("/openapi/v3", get(serve_index))
        .route("/openapi/v3/", get(serve_index))
        .route("/openapi/v3/{*path}", get(serve_doc))
        .route("/openapi/v2", get(v2::serve))
        .route("/swagger-2.0.0.pb-v1", get(v2::serve))
        .route("/swagger.json", get(not_found))
}

async fn not_found() -> Response {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
    .into_response()
}

fn json_bytes(bytes: Vec<u8>) -> Response {
    let mut res = bytes.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

async fn serve_index() -> Response {
    let mut res = json_bytes(index().to_string().into_bytes());
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    res
}

/// The `hash` parameter of a document URL's query string.
fn hash_param(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("hash="))
        .map(str::to_string)
}

async fn serve_doc(
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let path = path.trim_end_matches('/');
    let Some((_, doc)) = docs().entries.iter().find(|(p, _)| *p == path) else {
        return not_found().await;
    };
    let requested = hash_param(query.as_deref());
    let etag = format!("\"{}\"", doc.hash);
    if let Some(hash) = requested.as_deref() {
        if hash != doc.hash {
            // A stale hash: send the client to the current document, as kube does.
            let location = format!("/openapi/v3/{path}?hash={}", doc.hash);
            let mut res = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                res.headers_mut().insert(header::LOCATION, v);
            }
            return res;
        }
    }
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        json_bytes(doc.bytes.clone())
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let cache = if requested.is_some() {
        "public, immutable"
    } else {
        "no-cache, private"
    };
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    res
}

#[cfg(test)]
mod tests;
