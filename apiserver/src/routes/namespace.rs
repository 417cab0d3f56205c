//! Namespace lifecycle: the default namespaces, the "namespace must exist and not be terminating" admission
//! check, and termination (Terminating → contents deleted → namespace removed). Until the namespace
//! controller lands (controllers issue), termination runs inline: the DELETE empties the namespace, and the
//! removal of the last finalizer inside a terminating namespace removes the namespace.

use serde_json::{json, Value};

use super::object::{self, meta_mut};
use super::request::Target;
use super::write;
use super::AppState;
use crate::error::ApiError;
use crate::resources::{by_name, ResourceInfo, RESOURCES};
use crate::storage::{Storage, StorageError};
use crate::{defaults, validation};

/// Namespaces every cluster starts with.
pub const DEFAULT_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Namespaces that may never be deleted.
const UNDELETABLE: &[&str] = &["default", "kube-system", "kube-public"];

fn namespaces() -> &'static ResourceInfo {
    by_name("namespaces").expect("namespaces is in the resource table")
}

/// Creates the default namespaces that are missing.
pub async fn ensure_defaults(storage: &dyn Storage) -> Result<(), ApiError> {
    let resource = namespaces();
    for name in DEFAULT_NAMESPACES {
        let mut ns = json!({"metadata": {"name": name}});
        object::set_type_meta(resource, &mut ns);
        defaults::apply(resource, &mut ns);
        defaults::prepare_create(resource, &mut ns);
        if let Some(meta) = meta_mut(&mut ns) {
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(object::now()));
        }
        validation::validate_create(resource, &ns)?;
        match storage
            .create(&resource.key(None, name), object::to_bytes(&ns))
            .await
        {
            Ok(_) | Err(StorageError::AlreadyExists(_)) => {}
            Err(e) => return Err(object::storage_error(resource, name, e)),
        }
    }
    Ok(())
}

/// NamespaceLifecycle admission: 404 when `namespace` is missing, 403 when it is terminating.
pub async fn check_writable(
    state: &AppState,
    resource: &ResourceInfo,
    name: &str,
    namespace: &str,
) -> Result<(), ApiError> {
    let key = namespaces().key(None, namespace);
    let kv = state
        .storage()
        .get(&key)
        .await
        .map_err(|e| object::storage_error(namespaces(), namespace, e))?
        .ok_or_else(|| ApiError::not_found("namespaces", namespace))?;
    let ns: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
    if ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating") {
        return Err(ApiError::forbidden(
            resource.name,
            name,
            &format!("unable to create new content in namespace {namespace} because it is being terminated"),
        ));
    }
    Ok(())
}

/// DELETE of a namespace: mark it Terminating, delete everything inside, then remove it. Returns the
/// Terminating namespace, as kube-apiserver does.
pub async fn terminate(
    state: &AppState,
    target: &Target,
    current: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let name = target.name();
    if UNDELETABLE.contains(&name) {
        return Err(ApiError::forbidden(
            "namespaces",
            name,
            "this namespace may not be deleted",
        ));
    }
    if dry_run {
        return Ok(current);
    }
    let written = write::modify(state, target, false, |ns| {
        if let Some(meta) = meta_mut(ns) {
            meta.entry("deletionTimestamp")
                .or_insert(json!(object::now()));
        }
        ns["status"]["phase"] = json!("Terminating");
        Ok(())
    })
    .await?;
    if empty(state, name).await? == 0 {
        remove(state, name).await?;
    }
    Ok(written)
}

/// Deletes what a terminating namespace still holds. Objects with finalizers are marked for deletion and
/// stay until their finalizers are removed; returns how many objects remain.
async fn empty(state: &AppState, namespace: &str) -> Result<usize, ApiError> {
    let mut remaining = 0;
    for resource in RESOURCES.iter().filter(|r| r.namespaced) {
        let page = state
            .storage()
            .list(&resource.namespace_prefix(namespace), None, 0, 0)
            .await
            .map_err(|e| object::storage_error(resource, "", e))?;
        for kv in page.items {
            let Ok(mut obj) = resource.decode(&kv.value, kv.mod_revision) else {
                continue;
            };
            let held = obj
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if held {
                remaining += 1;
                if obj.pointer("/metadata/deletionTimestamp").is_none() {
                    if let Some(meta) = meta_mut(&mut obj) {
                        meta.insert("deletionTimestamp".into(), json!(object::now()));
                        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
                    }
                    // A concurrent write wins; the object is still counted and revisited later.
                    let _ = state
                        .storage()
                        .update(&kv.key, object::to_bytes(&obj), kv.mod_revision)
                        .await;
                }
                continue;
            }
            match state.storage().delete(&kv.key, None).await {
                Ok(deleted) if resource.name == "services" => {
                    if let Ok(svc) = serde_json::from_slice::<Value>(&deleted.prev.value) {
                        super::service_alloc::release(state.storage(), &svc).await;
                    }
                }
                Ok(_) | Err(StorageError::NotFound(_)) => {}
                Err(e) => return Err(object::storage_error(resource, "", e)),
            }
        }
    }
    Ok(remaining)
}

async fn remove(state: &AppState, namespace: &str) -> Result<(), ApiError> {
    match state
        .storage()
        .delete(&namespaces().key(None, namespace), None)
        .await
    {
        Ok(_) | Err(StorageError::NotFound(_)) => Ok(()),
        Err(e) => Err(object::storage_error(namespaces(), namespace, e)),
    }
}

/// After an object in `namespace` is finally deleted: a terminating namespace that is now empty goes away.
pub async fn finish_if_empty(state: &AppState, namespace: &str) -> Result<(), ApiError> {
    let Some(kv) = state
        .storage()
        .get(&namespaces().key(None, namespace))
        .await
        .map_err(|e| object::storage_error(namespaces(), namespace, e))?
    else {
        return Ok(());
    };
    let ns: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
    if ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
        && empty(state, namespace).await? == 0
    {
        remove(state, namespace).await?;
    }
    Ok(())
}
