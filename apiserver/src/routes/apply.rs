//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): create the object when it is missing,
//! otherwise merge the configuration under field ownership, with conflicts between managers.

use axum::body::Body;
use axum::response::Response;
use serde_json::{json, Value};

use super::object::{self, meta_mut, meta_str};
use super::request::{self, Query, Target};
use super::write::{self, Part};
use super::{crud, AppState};
use crate::error::ApiError;
use crate::fieldmanager;

/// Handles an apply patch.
pub async fn server_side_apply(
    state: &AppState,
    target: &Target,
    query: &Query,
    body: Body,
    part: Part,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let manager = query
        .get("fieldManager")
        .ok_or_else(|| ApiError::bad_request("fieldManager is required for apply requests"))?
        .to_string();
    let force = query.flag("force");
    let bytes = request::read_body(body).await?;
    let mut config: Value = serde_yaml::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the configuration must be an object",
        ));
    }
    let warnings = object::check_body(resource, &mut config, query)?;
    crud::check_url_name(target, &config)?;
    if let Some(meta) = meta_mut(&mut config) {
        meta.insert("name".into(), json!(target.name()));
        if let Some(ns) = &target.namespace {
            meta.insert("namespace".into(), json!(ns));
        }
    }
    let now = object::now();
    match write::read(state, target).await {
        Err(err) if err.code == 404 && part == Part::Main => {
            let created =
                fieldmanager::apply(resource, &json!({}), &config, &manager, force, &now)?;
            crud::create_object(state, target, query, created, &warnings, None).await
        }
        Err(err) => Err(err),
        Ok(_) => {
            let pinned = meta_str(&config, "resourceVersion").map(str::to_string);
            let written = write::update(state, target, part, query.dry_run()?, |live| {
                let mut merged =
                    fieldmanager::apply(resource, live, &config, &manager, force, &now)?;
                // The configuration's resourceVersion, if any, is a precondition; otherwise none.
                if let Some(meta) = meta_mut(&mut merged) {
                    match &pinned {
                        Some(rv) => meta.insert("resourceVersion".into(), json!(rv)),
                        None => meta.remove("resourceVersion"),
                    };
                }
                Ok(merged)
            })
            .await?;
            Ok(request::json(200, &written, &warnings))
        }
    }
}
