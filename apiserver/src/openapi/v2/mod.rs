//! `/openapi/v2` (and `/swagger-2.0.0.pb-v1`): the core/v1 document as Swagger 2.0, for kubectl < 1.29.
//!
//! Old kubectl asks for gnostic's protobuf (`openapi.v2.Document`) and decodes nothing else; other clients get
//! the Swagger JSON. Both are derived once from the v3 document, so the two versions never disagree.

mod convert;
mod encode;
mod wire;

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::Doc;

/// The media type kube answers protobuf requests with (Go's `mime` rejects the `@` spelling, so clients
/// that parse the response type need this one).
pub const PROTOBUF_MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The older spelling kubectl still sends in `Accept`; kube answers it with [`PROTOBUF_MEDIA_TYPE`].
pub const PROTOBUF_MEDIA_TYPE_DEPRECATED: &str =
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

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
    protobuf: Vec<u8>,
}

fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(|| {
        let doc = swagger();
        Docs {
            protobuf: encode(&doc),
            json: Doc::new(&doc),
        }
    })
}

/// A representation a client can ask for.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Json,
    Protobuf,
}

/// The subtypes we serve under `application/`, in kube's preference order (JSON first for wildcards).
const ACCEPTED: &[(&str, Format)] = &[
    ("json", Format::Json),
    (
        "com.github.proto-openapi.spec.v2@v1.0+protobuf",
        Format::Protobuf,
    ),
    (
        "com.github.proto-openapi.spec.v2.v1.0+protobuf",
        Format::Protobuf,
    ),
];

/// Negotiates `Accept` as kube does: clauses by descending `q` (more specific first on ties), each tried
/// against [`ACCEPTED`] in order; no header means `*/*`. `None`: nothing acceptable (406).
fn negotiate(accept: Option<&str>) -> Option<Format> {
    let accept = accept.filter(|a| !a.trim().is_empty()).unwrap_or("*/*");
    let mut clauses: Vec<(f64, u8, &str, &str)> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let media = parts.next()?.trim();
            let (ty, sub) = media.split_once('/').unwrap_or((media, "*"));
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f64>().ok())
                .unwrap_or(1.0);
            let specificity = u8::from(ty != "*") + u8::from(sub != "*");
            (q > 0.0).then_some((q, specificity, ty.trim(), sub.trim()))
        })
        .collect();
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    clauses.iter().find_map(|(_, _, ty, sub)| {
        if *ty != "application" && *ty != "*" {
            return None;
        }
        ACCEPTED
            .iter()
            .find(|(accepted, _)| sub == accepted || *sub == "*")
            .map(|(_, format)| *format)
    })
}

/// `GET /openapi/v2`: protobuf or JSON by `Accept` (406 otherwise). Both carry the JSON document's `ETag`,
/// as kube's do; `Vary: Accept` keeps caches apart.
pub(super) async fn serve(headers: HeaderMap) -> Response {
    let docs = docs();
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let (bytes, content_type) = match negotiate(accept) {
        Some(Format::Json) => (&docs.json.bytes, "application/json"),
        Some(Format::Protobuf) => (&docs.protobuf, PROTOBUF_MEDIA_TYPE),
        None => {
            let mut res = StatusCode::NOT_ACCEPTABLE.into_response();
            res.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept"));
            return res;
        }
    };
    let etag = format!("\"{}\"", docs.json.hash);
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut res = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        bytes.clone().into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
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
