//! `/openapi/v2` (and `/swagger-2.0.0.pb-v1`): the core/v1 document as Swagger 2.0, for kubectl < 1.29.
//!
//! Old kubectl asks for gnostic's protobuf (`openapi.v2.Document`) and decodes nothing else; other clients get
//! the Swagger JSON. Both are derived once from the v3 document, so the two versions never disagree.

mod convert;
mod encode;

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Doc;

/// The media type of gnostic's protobuf encoding, as kubectl requests it.
pub const PROTOBUF_MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The core/v1 document as Swagger 2.0 JSON.
pub fn swagger() -> Value {
    convert::swagger(&super::core_v1_doc())
}

/// Encodes a Swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf.
pub fn encode(swagger: &Value) -> Vec<u8> {
    encode::document(swagger)
}

/// The two served representations, built on first use.
struct Docs {
    json: Doc,
    protobuf: Doc,
}

fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(|| {
        let doc = swagger();
        Docs {
            protobuf: Doc::from_bytes(encode(&doc)),
            json: Doc::new(&doc),
        }
    })
}

/// Whether the `Accept` header asks for the protobuf document (either spelling kube accepts).
fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .any(|t| {
            t == PROTOBUF_MEDIA_TYPE
                || t == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        })
}

/// `GET /openapi/v2`: protobuf or JSON by `Accept`, with an `ETag` per representation.
pub(super) async fn serve(headers: HeaderMap) -> Response {
    let docs = docs();
    let (doc, content_type) = if wants_protobuf(&headers) {
        (&docs.protobuf, PROTOBUF_MEDIA_TYPE)
    } else {
        (&docs.json, "application/json")
    };
    let etag = format!("\"{}\"", doc.hash);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut res = doc.bytes.clone().into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        res
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    res
}

#[cfg(test)]
mod tests;
