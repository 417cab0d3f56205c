//! Single-object verbs: get, create, update (PUT), patch and delete.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::object::{self, meta_mut, meta_str};
use super::request::{self, Query, Render, Target};
use super::write::{self, Part};
use super::{namespace, patch, service_alloc, AppState};
use crate::error::ApiError;
use crate::{defaults, table, validation};

/// GET one object (or a one-row Table).
pub async fn get(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let render = request::render(headers, query)?;
    let (obj, _) = write::read(state, target).await?;
    Ok(match render {
        Render::Object => request::json(200, &obj, &[]),
        Render::Table(include) => {
            let mut t =
                table::build_table(target.resource, std::slice::from_ref(&obj), include, now());
            if let (Some(meta), Some(rv)) = (meta_mut(&mut t), meta_str(&obj, "resourceVersion")) {
                meta.insert("resourceVersion".into(), json!(rv));
            }
            request::json(200, &t, &[])
        }
    })
}

pub(super) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// POST a new object.
pub async fn create(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let mut obj = request::read_object(headers, body).await?;
    let warnings = object::check_body(resource, &mut obj, query)?;
    let manager = request::field_manager(query, headers);
    create_object(state, target, query, obj, &warnings, Some(&manager)).await
}

/// Creates an already decoded object: names, defaults, validates, stores. `manager`, when given, is
/// recorded as owning every field it set (server-side apply records its own ownership and passes `None`).
pub async fn create_object(
    state: &AppState,
    target: &Target,
    query: &Query,
    mut obj: Value,
    warnings: &[String],
    manager: Option<&str>,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    place_namespace(target, &mut obj)?;
    let name = assign_name(resource.kind, &mut obj)?;
    object::set_type_meta(resource, &mut obj);
    if let Some(manager) = manager {
        crate::fieldmanager::record_update(resource, &json!({}), &mut obj, manager, &object::now());
    }
    defaults::apply(resource, &mut obj);
    defaults::prepare_create(resource, &mut obj);
    stamp_new(&mut obj, resource.name);
    if let Some(ns) = &target.namespace {
        namespace::check_writable(state, resource, &name, ns).await?;
    }
    validation::validate_create(resource, &obj)?;
    let key = resource.key(target.namespace.as_deref(), &name);
    let dry_run = query.dry_run()?;
    if dry_run {
        // kube-apiserver's dry-run storage still refuses a name that is taken.
        let existing = state.storage().get(&key).await;
        if existing
            .map_err(|e| object::storage_error(resource, &name, e))?
            .is_some()
        {
            return Err(ApiError::already_exists(resource.name, &name));
        }
    }
    // Services reserve their cluster IP and node ports before they are stored (a dry run only checks
    // the requested ones).
    let reserved = match resource.name {
        "services" => Some(service_alloc::reserve_create(state, &mut obj, dry_run).await?),
        _ => None,
    };
    if dry_run {
        return Ok(request::json(201, &obj, warnings));
    }
    let kv = match state.storage().create(&key, object::to_bytes(&obj)).await {
        Ok(kv) => kv,
        Err(e) => {
            if let Some(reserved) = reserved {
                reserved.revert(state.storage()).await;
            }
            return Err(object::storage_error(resource, &name, e));
        }
    };
    if let Some(reserved) = reserved {
        reserved.commit(state.storage()).await;
    }
    object::set_resource_version(&mut obj, kv.mod_revision);
    Ok(request::json(201, &obj, warnings))
}

/// A body naming a different object than the URL is a 400, as kube-apiserver.
pub(super) fn check_url_name(target: &Target, obj: &Value) -> Result<(), ApiError> {
    match meta_str(obj, "name") {
        Some(body_name) if body_name != target.name() => Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({})",
            target.name()
        ))),
        _ => Ok(()),
    }
}

/// Puts the URL's namespace into the body (a different one is a 400, as kube-apiserver).
fn place_namespace(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    let body_ns = meta_str(obj, "namespace").map(str::to_string);
    let Some(meta) = meta_mut(obj) else {
        return Err(ApiError::bad_request("metadata must be an object"));
    };
    match (&target.namespace, target.resource.namespaced) {
        (Some(ns), true) => {
            if body_ns.as_ref().is_some_and(|b| b != ns) {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta.insert("namespace".into(), json!(ns));
        }
        _ => {
            meta.remove("namespace");
        }
    }
    Ok(())
}

/// Resolves `metadata.name` (generating one from `generateName`), or 422 when neither is set.
fn assign_name(kind: &str, obj: &mut Value) -> Result<String, ApiError> {
    if let Some(name) = meta_str(obj, "name") {
        return Ok(name.to_string());
    }
    let Some(prefix) = meta_str(obj, "generateName").map(str::to_string) else {
        return Err(ApiError::invalid(
            kind,
            "",
            vec![crate::error::Cause::required(
                "metadata.name",
                "name or generateName is required",
            )],
        ));
    };
    let name = object::generate_name(&prefix);
    if let Some(meta) = meta_mut(obj) {
        meta.insert("name".into(), json!(name));
    }
    Ok(name)
}

/// Server-set metadata of a new object: uid, creationTimestamp, generation; client values discarded.
fn stamp_new(obj: &mut Value, resource: &str) {
    let Some(meta) = meta_mut(obj) else {
        return;
    };
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(object::now()));
    if write::tracks_generation(resource) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
}

/// PUT of the main resource or the status subresource.
pub async fn update_part(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
    part: Part,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let mut obj = request::read_object(headers, body).await?;
    let warnings = object::check_body(resource, &mut obj, query)?;
    check_url_name(target, &obj)?;
    place_namespace(target, &mut obj)?;
    let manager = request::field_manager(query, headers);
    let written = write::update_as(
        state,
        target,
        part,
        query.dry_run()?,
        Some(&manager),
        |_| Ok(obj.clone()),
    )
    .await?;
    Ok(request::json(200, &written, &warnings))
}

/// PATCH with a patch type from Content-Type.
pub async fn patch_part(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
    part: Part,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let kind = patch::PatchType::from_content_type(&request::content_type(headers))?;
    if kind == patch::PatchType::Apply {
        return super::apply::server_side_apply(state, target, query, body, part).await;
    }
    let bytes = request::read_body(body).await?;
    let mut warnings = Vec::new();
    let mode = query.get("fieldValidation");
    let manager = request::field_manager(query, headers);
    let written = write::update_as(
        state,
        target,
        part,
        query.dry_run()?,
        Some(&manager),
        |current| {
            let mut patched = patch::apply(resource, kind, current, &bytes)?;
            warnings = object::field_validation(resource, &mut patched, mode)?;
            // A resourceVersion only counts as a precondition when the patch itself carried one.
            if !patch::sets_resource_version(kind, &bytes) {
                if let Some(meta) = meta_mut(&mut patched) {
                    meta.remove("resourceVersion");
                }
            }
            Ok(patched)
        },
    )
    .await?;
    Ok(request::json(200, &written, &warnings))
}
