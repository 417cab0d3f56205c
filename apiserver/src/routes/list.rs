//! Collection verbs: list (selectors, `limit`/`continue` at one revision, resourceVersion semantics,
//! Tables), watch (delegated to the watch cache) and deletecollection.

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Value};

use super::object::{self, meta_mut, meta_str};
use super::request::{self, Query, Render, Target};
use super::AppState;
use crate::error::ApiError;
use crate::selector::{FieldSelector, LabelSelector};
use crate::storage::{Revision, StorageError};
use crate::{table, watch};

/// Keys read from the store per round trip while filling a page.
const PAGE: usize = 500;

/// A parsed list request.
struct ListOptions {
    label: LabelSelector,
    field: FieldSelector,
    limit: usize,
    /// The revision to read at (0 = latest).
    revision: Revision,
    /// The key to start from (continue tokens).
    start: Option<String>,
}

/// The `continue` token: kube's shape, base64url of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key>"}`
/// where `start` is relative to the resource prefix.
fn encode_continue(revision: Revision, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if value.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad());
    }
    let rv = value.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = value.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rv, start.to_string()))
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. \
You can start a new list without the continue parameter, or use the continue token in this response to \
retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - \
objects that were created, modified, or deleted between the time the first chunk was returned and now may \
show up in the list.";

fn parse_options(target: &Target, query: &Query) -> Result<ListOptions, ApiError> {
    let label = LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?;
    let field = FieldSelector::parse(
        target.resource,
        query.get("fieldSelector").unwrap_or_default(),
    )?;
    let limit = query.int("limit")?.unwrap_or(0).max(0) as usize;
    let mut opts = ListOptions {
        label,
        field,
        limit,
        revision: 0,
        start: None,
    };
    if let Some(token) = query.get("continue") {
        if query.get("resourceVersion").is_some_and(|rv| rv != "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (rv, start) = decode_continue(token)?;
        opts.revision = rv;
        opts.start = Some(format!("{}{start}", target.resource.key_prefix()));
        return Ok(opts);
    }
    let rv = match query.get("resourceVersion") {
        None | Some("0") => return Ok(opts),
        Some(rv) => rv
            .parse::<Revision>()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))?,
    };
    match query.get("resourceVersionMatch") {
        Some("Exact") => opts.revision = rv,
        Some("NotOlderThan") | None => {
            // Served at the latest revision, which is never older than `rv`; a future rv is refused below.
            if query.get("resourceVersionMatch").is_none() && opts.limit > 0 {
                opts.revision = rv;
            }
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            )))
        }
    }
    Ok(opts)
}

/// GET a collection.
pub async fn list(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let render = request::render(headers, query)?;
    let opts = parse_options(target, query)?;
    if let Some(rv) = query
        .get("resourceVersion")
        .and_then(|rv| rv.parse::<Revision>().ok())
    {
        let current = state
            .storage()
            .current_revision()
            .await
            .map_err(ApiError::internal)?;
        if rv > current {
            return Err(ApiError::new(
                504,
                "Timeout",
                format!("Too large resource version: {rv}, current: {current}"),
            ));
        }
    }
    let continuing = opts.start.is_some();
    let from_cache = query.get("resourceVersion") == Some("0") && opts.limit == 0 && !continuing;
    let (revision, items, next) = if from_cache {
        // resourceVersion=0 means "any version": serve it from the watch cache, as kube-apiserver does.
        let (revision, objects) = state
            .cache(target.resource)?
            .snapshot(target.namespace.as_deref())
            .await;
        let items = objects
            .iter()
            .filter(|o| opts.label.matches(o.skeleton()) && opts.field.matches(o.skeleton()))
            .map(|o| o.object())
            .collect();
        (revision, items, None)
    } else {
        read_page(state, target, &opts).await.map_err(|e| match e {
            StorageError::Compacted { .. } if continuing => ApiError::expired(CONTINUE_EXPIRED),
            e => object::storage_error(target.resource, "", e),
        })?
    };
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(key) = next {
        let relative = key
            .strip_prefix(&target.resource.key_prefix())
            .unwrap_or(&key);
        metadata["continue"] = json!(encode_continue(revision, relative));
    }
    let body = match render {
        Render::Object => json!({
            "kind": target.resource.list_kind(),
            "apiVersion": "v1",
            "metadata": metadata,
            "items": items.into_iter().map(strip_type_meta).collect::<Vec<_>>(),
        }),
        Render::Table(include) => {
            let mut t = table::build_table(target.resource, &items, include, super::crud::now());
            t["metadata"] = metadata;
            t
        }
    };
    Ok(request::json(200, &body, &[]))
}

/// List items carry no kind/apiVersion on the wire, as kube-apiserver sends them.
fn strip_type_meta(mut obj: Value) -> Value {
    if let Some(map) = obj.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    obj
}

/// Reads matching objects at one revision until `limit` of them are found. Returns the revision, the items
/// and the key to continue from when more remain.
async fn read_page(
    state: &AppState,
    target: &Target,
    opts: &ListOptions,
) -> Result<(Revision, Vec<Value>, Option<String>), StorageError> {
    let prefix = target.prefix();
    let mut revision = opts.revision;
    let mut start = opts.start.clone();
    let mut items = Vec::new();
    loop {
        let want = if opts.limit == 0 {
            0
        } else {
            PAGE.max(opts.limit)
        };
        let page = state
            .storage()
            .list(&prefix, start.as_deref(), want, revision)
            .await?;
        revision = page.revision;
        let mut last_key = None;
        for kv in &page.items {
            last_key = Some(kv.key.clone());
            let Ok(obj) = object::from_kv(target.resource, kv) else {
                continue;
            };
            if opts.label.matches(&obj) && opts.field.matches(&obj) {
                items.push(obj);
                if opts.limit > 0 && items.len() == opts.limit {
                    let more = page.more
                        || kv.key != page.items.last().map(|k| k.key.clone()).unwrap_or_default();
                    let next = more.then(|| format!("{}\u{0}", kv.key));
                    return Ok((revision, items, next));
                }
            }
        }
        match (page.more, last_key) {
            (true, Some(key)) => start = Some(format!("{key}\u{0}")),
            _ => return Ok((revision, items, None)),
        }
    }
}

/// GET with `watch=true` (or the `/watch/` prefix): hand over to the resource's watch cache.
pub fn watch(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let mut field_text = query.get("fieldSelector").unwrap_or_default().to_string();
    if let Some(name) = &target.name {
        // A watch on one object is a watch on the collection narrowed to its name.
        let pin = format!("metadata.name={name}");
        field_text = if field_text.is_empty() {
            pin
        } else {
            format!("{field_text},{pin}")
        };
    }
    let req = watch::WatchRequest {
        resource_version: query.get("resourceVersion").map(str::to_string),
        resource_version_match: query.get("resourceVersionMatch").map(str::to_string),
        namespace: target.namespace.clone(),
        label: LabelSelector::parse(query.get("labelSelector").unwrap_or_default())?,
        field: FieldSelector::parse(resource, &field_text)?,
        allow_bookmarks: query.flag("allowWatchBookmarks"),
        timeout: query
            .int("timeoutSeconds")?
            .map(|s| Duration::from_secs(s.max(0) as u64)),
        send_initial_events: query.get("sendInitialEvents").map(|v| v == "true"),
    };
    let transform: Option<watch::Transform> = match request::render(headers, query)? {
        Render::Object => None,
        Render::Table(include) => Some(Arc::new(move |obj: &Value| {
            if obj.get("kind").and_then(Value::as_str) == Some("Status") {
                return obj.clone();
            }
            let mut t = table::build_table(
                resource,
                std::slice::from_ref(obj),
                include,
                super::crud::now(),
            );
            if let (Some(meta), Some(rv)) = (meta_mut(&mut t), meta_str(obj, "resourceVersion")) {
                meta.insert("resourceVersion".into(), json!(rv));
            }
            t
        })),
    };
    watch::serve(state.cache(resource)?, req, transform)
}

/// DELETE a collection: deletes every matching object and returns them as a list.
pub async fn delete_collection(
    state: &AppState,
    target: &Target,
    query: &Query,
) -> Result<Response, ApiError> {
    let mut opts = parse_options(target, query)?;
    opts.limit = 0;
    let dry_run = query.dry_run()?;
    let (revision, items, _) = read_page(state, target, &opts)
        .await
        .map_err(|e| object::storage_error(target.resource, "", e))?;
    let mut deleted = Vec::new();
    for obj in items {
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let ns = meta_str(&obj, "namespace").map(str::to_string);
        let key = target.resource.key(ns.as_deref(), &name);
        if !dry_run {
            match state.storage().delete(&key, None).await {
                Ok(_) if target.resource.name == "services" => {
                    super::service_alloc::release(state.storage(), &obj).await;
                }
                Ok(_) | Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(object::storage_error(target.resource, &name, e)),
            }
        }
        deleted.push(strip_type_meta(obj));
    }
    let body = json!({
        "kind": target.resource.list_kind(),
        "apiVersion": "v1",
        "metadata": {"resourceVersion": revision.to_string()},
        "items": deleted,
    });
    Ok(request::json(200, &body, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = encode_continue(42, "default/web\u{0}");
        assert_eq!(
            decode_continue(&token).unwrap(),
            (42, "default/web\u{0}".to_string())
        );
        assert_eq!(decode_continue("!!!").unwrap_err().code, 400);
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"../secrets/"}"#);
        assert_eq!(decode_continue(&forged).unwrap_err().code, 400);
    }
}
