//! Request parsing: the URL path into a [`Target`], query parameters, bodies by Content-Type, and the
//! response helpers (JSON with `Warning` headers, Table negotiation).

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;

use crate::error::ApiError;
use crate::resources::{by_name, ResourceInfo};
use crate::table::IncludeObject;

/// kube-apiserver's request body limit (3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What a request path names: a collection, an object, or an object's subresource.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The resource (`pods`).
    pub resource: &'static ResourceInfo,
    /// The namespace in the path, for namespaced resources.
    pub namespace: Option<String>,
    /// The object name; `None` for a collection.
    pub name: Option<String>,
    /// The subresource (`status`, `scale`, ...).
    pub sub: Option<String>,
    /// Whether the legacy `/watch/` prefix was used.
    pub watch: bool,
}

fn path_not_found() -> ApiError {
    ApiError {
        details: Some(serde_json::json!({})),
        ..ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }
}

impl Target {
    /// Parses the path after `/api/v1/`.
    pub fn parse(rest: &str) -> Result<Target, ApiError> {
        let mut segs: Vec<&str> = rest.split('/').collect();
        if segs.last() == Some(&"") {
            segs.pop();
        }
        let watch = segs.first() == Some(&"watch");
        if watch {
            segs.remove(0);
        }
        let owned = |s: Option<&&str>| s.map(|s| s.to_string());
        // `namespaces/{ns}/{resource}/...` for namespaced resources.
        if segs.len() >= 3 && segs[0] == "namespaces" && segs.len() <= 5 {
            if let Some(resource) = by_name(segs[2]).filter(|r| r.namespaced) {
                let target = Target {
                    resource,
                    namespace: Some(segs[1].to_string()),
                    name: owned(segs.get(3)),
                    sub: owned(segs.get(4)),
                    watch,
                };
                return target.checked();
            }
        }
        let resource = segs
            .first()
            .and_then(|s| by_name(s))
            .ok_or_else(path_not_found)?;
        if segs.len() > 3 || (resource.namespaced && segs.len() > 1) {
            return Err(path_not_found());
        }
        Target {
            resource,
            namespace: None,
            name: owned(segs.get(1)),
            sub: owned(segs.get(2)),
            watch,
        }
        .checked()
    }

    fn checked(self) -> Result<Target, ApiError> {
        let bad_name = |n: &Option<String>| n.as_deref().is_some_and(str::is_empty);
        if bad_name(&self.name) || bad_name(&self.namespace) {
            return Err(path_not_found());
        }
        if let Some(sub) = &self.sub {
            if !self.resource.subresources.contains(&sub.as_str()) || self.watch {
                return Err(path_not_found());
            }
        }
        Ok(self)
    }

    /// The object name, or `""` for a collection.
    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    /// The storage key of the named object.
    pub fn key(&self) -> String {
        self.resource.key(self.namespace.as_deref(), self.name())
    }

    /// The storage prefix of the collection (one namespace, or every namespace).
    pub fn prefix(&self) -> String {
        match (&self.namespace, self.resource.namespaced) {
            (Some(ns), true) => self.resource.namespace_prefix(ns),
            _ => self.resource.key_prefix(),
        }
    }
}

/// Query parameters (the last value of a repeated parameter wins, as Go's `Get` would take the first —
/// clients never repeat these).
#[derive(Debug, Clone, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("invalid query: {e}")))?;
        Ok(Query(pairs.into_iter().rev().collect::<HashMap<_, _>>()))
    }

    /// One parameter, when present and non-empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean parameter (`true`/`1`).
    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// An optional integer parameter; malformed → 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid value for {key}: strconv.ParseInt: parsing \"{v}\": invalid syntax"
                    ))
                })
            })
            .transpose()
    }

    /// Whether `dryRun=All` was asked for; other values → 400 as kube-apiserver.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "Invalid dry run value: {other}; supported values are All"
            ))),
        }
    }
}

/// Reads a request body, refusing more than [`MAX_BODY_BYTES`] with 413.
pub async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large()),
        Err(err) => Err(ApiError::bad_request(format!("failed to read body: {err}"))),
    }
}

/// Reads and decodes an object body (see [`read_body`] and [`decode_object`]).
pub async fn read_object(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    decode_object(headers, &read_body(body).await?)
}

/// The media type of the request body (lowercase, parameters dropped; missing = JSON).
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/json".to_string())
}

/// Decodes an object body by Content-Type: JSON, YAML or Kubernetes protobuf.
pub fn decode_object(headers: &HeaderMap, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type(headers);
    let value = match media.as_str() {
        "application/json" | "*/*" => serde_json::from_slice::<Value>(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            serde_yaml::from_slice::<Value>(body)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))?
        }
        crate::protobuf::CONTENT_TYPE => crate::protobuf::decode(body)?,
        other => return Err(ApiError::unsupported_media_type(other)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "couldn't get version/kind; json parse error: expected an object",
        ));
    }
    Ok(value)
}

/// How the client wants objects rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// Plain JSON objects.
    Object,
    /// A `meta.k8s.io/v1` Table.
    Table(IncludeObject),
}

/// Reads `Accept` (and `includeObject`) to decide between objects and Tables.
pub fn render(headers: &HeaderMap, query: &Query) -> Result<Render, ApiError> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !accept.contains("as=Table") {
        return Ok(Render::Object);
    }
    let include = match query.get("includeObject") {
        None => IncludeObject::default(),
        Some(v) => IncludeObject::parse(v).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid value: \"{v}\": must be 'Metadata', 'Object', 'None', or empty"
            ))
        })?,
    };
    Ok(Render::Table(include))
}

/// A JSON response with optional `Warning: 299` headers.
pub fn json(status: u16, value: &Value, warnings: &[String]) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (code, axum::Json(value)).into_response();
    for warning in warnings {
        let text = format!("299 - {}", crate::validation::names::go_quote(warning));
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().append(header::WARNING, v);
        }
    }
    response
}

/// The field manager of a write: the `fieldManager` parameter, else the client's User-Agent up to the first
/// `/` (as kube-apiserver derives it), else `unknown`.
pub fn field_manager(query: &Query, headers: &HeaderMap) -> String {
    if let Some(m) = query.get("fieldManager") {
        return m.to_string();
    }
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|p| !p.is_empty())
        .unwrap_or("unknown")
        .to_string()
}
