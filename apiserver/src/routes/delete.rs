//! DELETE of one object: DeleteOptions (body or query), preconditions, finalizers, graceful deletion of
//! pods on a node, propagation to dependents (Orphan, Foreground, Background), namespace termination.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};

use super::object::{self, meta_mut, meta_str};
use super::request::{self, Query, Target};
use super::write;
use super::{namespace, service_alloc, AppState};
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::storage::StorageError;

/// DeleteOptions from the body (JSON or protobuf) and the query.
#[derive(Debug, Default)]
struct DeleteOptions {
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
    grace_period: Option<i64>,
    propagation: Option<String>,
}

async fn delete_options(
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> Result<DeleteOptions, ApiError> {
    let bytes = request::read_body(body).await?;
    let mut opts = DeleteOptions {
        dry_run: query.dry_run()?,
        grace_period: query.int("gracePeriodSeconds")?,
        propagation: query.get("propagationPolicy").map(str::to_string),
        ..Default::default()
    };
    if !bytes.is_empty() {
        let body = request::decode_object(headers, &bytes)?;
        let pre = |f: &str| {
            body.pointer(&format!("/preconditions/{f}"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        opts.uid = pre("uid");
        opts.resource_version = pre("resourceVersion");
        if let Some(list) = body.get("dryRun").and_then(Value::as_array) {
            opts.dry_run |= list.iter().any(|v| v == "All");
        }
        if let Some(grace) = body.get("gracePeriodSeconds").and_then(Value::as_i64) {
            opts.grace_period = Some(grace);
        }
        if let Some(policy) = body.get("propagationPolicy").and_then(Value::as_str) {
            opts.propagation = Some(policy.to_string());
        }
        if body.get("orphanDependents") == Some(&Value::Bool(true)) && opts.propagation.is_none() {
            opts.propagation = Some("Orphan".into());
        }
    }
    if let Some(policy) = opts.propagation.as_deref() {
        if !matches!(policy, "Orphan" | "Foreground" | "Background") {
            return Err(ApiError::invalid(
                "DeleteOptions",
                "",
                vec![crate::error::Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "Unsupported value: \"{policy}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    ),
                    field: "propagationPolicy".into(),
                }],
            ));
        }
    }
    Ok(opts)
}

/// DELETE one object. Objects with finalizers get a deletionTimestamp and stay until the finalizers are
/// gone; namespaces are terminated (emptied, then removed).
pub async fn delete(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let resource = target.resource;
    let name = target.name();
    let opts = delete_options(headers, query, body).await?;
    let (obj, revision) = write::read(state, target).await?;
    check_preconditions(resource.name, name, &obj, &opts)?;
    if resource.name == "namespaces" {
        let obj = namespace::terminate(state, target, obj, opts.dry_run).await?;
        return Ok(request::json(200, &obj, &[]));
    }
    let has_finalizers = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let grace = pod_grace_period(resource, &obj, opts.grace_period);
    let foreground = opts.propagation.as_deref() == Some("Foreground");
    if has_finalizers || grace.is_some() || foreground {
        let written = mark_deleting(state, target, &opts, grace, foreground).await?;
        if foreground && !opts.dry_run {
            delete_dependents(state, target, &obj).await?;
        }
        return Ok(request::json(200, &written, &[]));
    }
    if opts.propagation.as_deref() == Some("Orphan") && !opts.dry_run {
        orphan_dependents(state, target, &obj).await?;
    }
    if !opts.dry_run {
        match state.storage().delete(&target.key(), Some(revision)).await {
            Ok(_) => {
                if resource.name == "services" {
                    service_alloc::release(state.storage(), &obj).await;
                }
            }
            Err(StorageError::Conflict { .. }) => {
                return Err(ApiError::conflict(resource.name, name))
            }
            Err(e) => return Err(object::storage_error(resource, name, e)),
        }
    }
    Ok(request::json(200, &deleted_response(resource, &obj), &[]))
}

/// What DELETE answers: the object for pods and services (their registries return it), a success Status
/// with details for the rest.
pub(super) fn deleted_response(resource: &ResourceInfo, obj: &Value) -> Value {
    if matches!(resource.name, "pods" | "services") {
        return obj.clone();
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {
            "name": meta_str(obj, "name").unwrap_or_default(),
            "kind": resource.name,
            "uid": meta_str(obj, "uid").unwrap_or_default(),
        }
    })
}

fn check_preconditions(
    resource: &str,
    name: &str,
    obj: &Value,
    opts: &DeleteOptions,
) -> Result<(), ApiError> {
    let actual_uid = meta_str(obj, "uid").unwrap_or_default();
    if let Some(uid) = &opts.uid {
        if uid != actual_uid {
            return Err(ApiError::conflict_with(
                resource,
                name,
                &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual_uid}"),
            ));
        }
    }
    let actual_rv = meta_str(obj, "resourceVersion").unwrap_or_default();
    if let Some(rv) = &opts.resource_version {
        if rv != actual_rv {
            return Err(ApiError::conflict_with(
                resource,
                name,
                &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual_rv}"),
            ));
        }
    }
    Ok(())
}

/// The grace period of a pod deletion, when it is graceful: pods on a node that have not finished get
/// `deletionTimestamp` + grace and stay until their agent confirms (unscheduled or terminal pods, and a
/// grace period of 0, go at once), as kube-apiserver's pod strategy decides.
fn pod_grace_period(resource: &ResourceInfo, pod: &Value, requested: Option<i64>) -> Option<i64> {
    if resource.name != "pods" {
        return None;
    }
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod.pointer("/status/phase").and_then(Value::as_str);
    let terminal = matches!(phase, Some("Succeeded" | "Failed"));
    let grace = requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30);
    (bound && !terminal && grace > 0).then_some(grace)
}

/// Marks an object as being deleted (deletionTimestamp, grace period, the foregroundDeletion finalizer).
async fn mark_deleting(
    state: &AppState,
    target: &Target,
    opts: &DeleteOptions,
    grace: Option<i64>,
    foreground: bool,
) -> Result<Value, ApiError> {
    write::modify(state, target, opts.dry_run, |obj| {
        let Some(meta) = meta_mut(obj) else {
            return Ok(());
        };
        if !meta.contains_key("deletionTimestamp") {
            let grace = grace.unwrap_or(0);
            let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(grace);
            meta.insert("deletionTimestamp".into(), json!(object::timestamp(at)));
            meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
        }
        if foreground {
            let finalizers = meta.entry("finalizers").or_insert_with(|| json!([]));
            if let Some(list) = finalizers.as_array_mut() {
                if !list.iter().any(|f| f == "foregroundDeletion") {
                    list.push(json!("foregroundDeletion"));
                }
            }
        }
        Ok(())
    })
    .await
}

/// Objects in the same namespace whose ownerReferences name `owner`, as (resource, key, object).
async fn dependents(
    state: &AppState,
    target: &Target,
    owner: &Value,
) -> Result<Vec<(&'static ResourceInfo, String, Value, i64)>, ApiError> {
    let Some(uid) = meta_str(owner, "uid") else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for resource in crate::resources::RESOURCES.iter().filter(|r| r.namespaced) {
        let Some(ns) = target.namespace.as_deref() else {
            break;
        };
        let page = state
            .storage()
            .list(&resource.namespace_prefix(ns), None, 0, 0)
            .await
            .map_err(|e| object::storage_error(resource, "", e))?;
        for kv in page.items {
            let Ok(obj) = resource.decode(&kv.value, kv.mod_revision) else {
                continue;
            };
            let owned = obj
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                });
            if owned {
                found.push((resource, kv.key.clone(), obj, kv.mod_revision));
            }
        }
    }
    Ok(found)
}

/// Orphan: dependents lose their ownerReferences to the deleted owner and stay. A dependent written
/// meanwhile is read again and retried, so none is left pointing at the deleted owner (the garbage
/// collector would take that for a Background deletion).
async fn orphan_dependents(
    state: &AppState,
    target: &Target,
    owner: &Value,
) -> Result<(), ApiError> {
    const ATTEMPTS: usize = 10;
    let uid = meta_str(owner, "uid").unwrap_or_default().to_string();
    for (resource, key, obj, revision) in dependents(state, target, owner).await? {
        let (mut obj, mut revision) = (obj, revision);
        for _ in 0..ATTEMPTS {
            if let Some(refs) = obj
                .pointer_mut("/metadata/ownerReferences")
                .and_then(Value::as_array_mut)
            {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid.as_str()));
            }
            match state
                .storage()
                .update(&key, object::to_bytes(&obj), revision)
                .await
            {
                Ok(_) | Err(StorageError::NotFound(_)) => break,
                Err(StorageError::Conflict { .. }) => {
                    let current = state
                        .storage()
                        .get(&key)
                        .await
                        .map_err(|e| object::storage_error(resource, "", e))?;
                    let Some(kv) = current else { break };
                    let Ok(fresh) = resource.decode(&kv.value, kv.mod_revision) else {
                        break;
                    };
                    (obj, revision) = (fresh, kv.mod_revision);
                }
                Err(e) => return Err(object::storage_error(resource, "", e)),
            }
        }
    }
    Ok(())
}

/// Foreground: dependents are deleted first; the owner (held by `foregroundDeletion`) goes once none remain.
async fn delete_dependents(
    state: &AppState,
    target: &Target,
    owner: &Value,
) -> Result<(), ApiError> {
    for (resource, key, _, _) in dependents(state, target, owner).await? {
        match state.storage().delete(&key, None).await {
            Ok(_) | Err(StorageError::NotFound(_)) => {}
            Err(e) => return Err(object::storage_error(resource, "", e)),
        }
    }
    if dependents(state, target, owner).await?.is_empty() {
        write::modify(state, target, false, |owner| {
            if let Some(list) = owner
                .pointer_mut("/metadata/finalizers")
                .and_then(Value::as_array_mut)
            {
                list.retain(|f| f != "foregroundDeletion");
            }
            Ok(())
        })
        .await?;
    }
    Ok(())
}
