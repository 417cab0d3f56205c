//! Decoding of `application/vnd.kubernetes.protobuf` request bodies (the `k8s\0` envelope) into JSON. Pure.
//!
//! The body is the magic `k8s\0` followed by a `runtime.Unknown` message whose `raw` bytes are the object
//! in protobuf form; [`decode`] renders that object exactly as Go's `encoding/json` would (see `json`),
//! driven by the message schemas in `schema.txt` (see `schema`) over a small wire reader (see `wire`).

mod json;
mod schema;
pub(crate) mod wire;

use crate::error::ApiError;
use json::DecodeError;
use serde_json::{Map, Value};
use wire::{Fields, WireValue};

/// The media type of Kubernetes protobuf bodies (the `Content-Type` kubectl ≥1.32 sends on `create <kind>`).
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The four bytes every Kubernetes protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// The `(apiVersion, kind)` pairs we decode; the kind is also the name of its schema message.
const KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("v1", "Pod"),
    ("v1", "ReplicationController"),
    ("v1", "Endpoints"),
    ("v1", "Event"),
    ("v1", "Node"),
    ("v1", "Binding"),
    ("v1", "Secret"),
    ("v1", "ServiceAccount"),
    ("v1", "ResourceQuota"),
    ("v1", "LimitRange"),
    ("v1", "PersistentVolume"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "PodTemplate"),
    ("v1", "DeleteOptions"),
    ("meta.k8s.io/v1", "DeleteOptions"),
];

/// The `runtime.Unknown` envelope fields we use.
#[derive(Debug, Default)]
struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

fn bad(err: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(err.to_string())
}

fn bytes_of<'a>(value: WireValue<'a>, field: &'static str) -> Result<&'a [u8], DecodeError> {
    match value {
        WireValue::Bytes(b) => Ok(b),
        other => Err(DecodeError::WrongWireType {
            field,
            wire_type: other.wire_type(),
        }),
    }
}

fn text(value: WireValue<'_>, field: &'static str) -> Result<String, DecodeError> {
    bytes_of(value, field).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Reads `runtime.Unknown{typeMeta=1{apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4}`.
fn envelope(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let mut env = Envelope::default();
    for item in Fields::new(bytes) {
        match item? {
            (1, v) => {
                for item in Fields::new(bytes_of(v, "typeMeta")?) {
                    match item? {
                        (1, v) => env.api_version = text(v, "apiVersion")?,
                        (2, v) => env.kind = text(v, "kind")?,
                        _ => {}
                    }
                }
            }
            (2, v) => env.raw = bytes_of(v, "raw")?,
            (3, v) => env.content_encoding = text(v, "contentEncoding")?,
            // Only checked for well-formedness: `raw` is always protobuf on this path.
            (4, v) => {
                bytes_of(v, "contentType")?;
            }
            _ => {}
        }
    }
    Ok(env)
}

/// Decodes a protobuf request body into the equivalent JSON object (with `kind`/`apiVersion` from the
/// envelope). Unknown kinds → 415 UnsupportedMediaType; malformed bytes → 400 BadRequest.
// The signature is the module's fixed public interface; `ApiError` is large but built only on failure.
#[allow(clippy::result_large_err)]
pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let rest = body.strip_prefix(MAGIC).ok_or_else(|| {
        bad("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")
    })?;
    let env = envelope(rest).map_err(bad)?;
    if env.kind.is_empty() {
        return Err(bad("Object 'Kind' is missing in protobuf envelope"));
    }
    if !env.content_encoding.is_empty() {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "unsupported protobuf content encoding {:?}",
                env.content_encoding
            ),
        ));
    }
    let Some(&(_, message)) = KINDS
        .iter()
        .find(|(version, kind)| *version == env.api_version && *kind == env.kind)
    else {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "no kind {:?} is registered for version {:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
                env.kind, env.api_version
            ),
        ));
    };
    let schema = schema::schema().map_err(ApiError::internal)?;
    let fields = json::message(schema, message, env.raw, 0).map_err(bad)?;
    // TypeMeta comes first in every Kubernetes struct (`kind`, then `apiVersion`).
    let mut object = Map::new();
    object.insert("kind".into(), Value::String(env.kind));
    if !env.api_version.is_empty() {
        object.insert("apiVersion".into(), Value::String(env.api_version));
    }
    object.extend(fields);
    Ok(Value::Object(object))
}

#[cfg(test)]
mod encode;
#[cfg(test)]
mod tests;
