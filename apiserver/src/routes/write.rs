//! The one read-modify-write path every update-like verb shares (PUT, PATCH, status, scale, binding,
//! finalize): read the stored object, let the verb compute the new one, keep what the server owns, default,
//! validate, compare-and-swap, and retry on a lost race unless the client pinned a resourceVersion.

use serde_json::{json, Value};

use super::object::{self, meta_mut, meta_str};
use super::request::Target;
use super::{service_alloc, AppState};
use crate::error::ApiError;
use crate::storage::StorageError;
use crate::{defaults, validation};

/// Attempts at a compare-and-swap before giving up with 409 (only when no precondition was given).
const MAX_ATTEMPTS: usize = 5;

/// Which part of the object a write may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything but `status` (the main resource).
    Main,
    /// Only `status` (the `status` subresource).
    Status,
    /// Anything (internal writes: binding, finalize, scale, namespace termination).
    Any,
}

/// Reads the target object, or 404.
pub async fn read(state: &AppState, target: &Target) -> Result<(Value, i64), ApiError> {
    let kv = state
        .storage()
        .get(&target.key())
        .await
        .map_err(|e| object::storage_error(target.resource, target.name(), e))?
        .ok_or_else(|| ApiError::not_found(target.resource.name, target.name()))?;
    Ok((object::from_kv(target.resource, &kv)?, kv.mod_revision))
}

/// Runs `mutate` on the current object and stores the result. A non-empty `metadata.resourceVersion` in the
/// mutated object is a precondition (409 on mismatch); without one, lost races are retried.
pub async fn update(
    state: &AppState,
    target: &Target,
    part: Part,
    dry_run: bool,
    mutate: impl FnMut(&Value) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    update_as(state, target, part, dry_run, None, mutate).await
}

/// A server-side change: `change` edits a copy of the current object in place. Nothing is pinned, so a lost
/// race is retried against the fresh object.
pub async fn modify(
    state: &AppState,
    target: &Target,
    dry_run: bool,
    mut change: impl FnMut(&mut Value) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    update(state, target, Part::Any, dry_run, |cur| {
        let mut next = cur.clone();
        change(&mut next)?;
        if let Some(meta) = meta_mut(&mut next) {
            meta.remove("resourceVersion");
        }
        Ok(next)
    })
    .await
}

/// [`update`] on behalf of a field manager, who takes ownership (an `Update` entry in
/// `metadata.managedFields`) of the fields the write changes.
pub async fn update_as(
    state: &AppState,
    target: &Target,
    part: Part,
    dry_run: bool,
    manager: Option<&str>,
    mut mutate: impl FnMut(&Value) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    let resource = target.resource;
    let name = target.name();
    for _ in 0..MAX_ATTEMPTS {
        let (old, revision) = read(state, target).await?;
        let mut new = mutate(&old)?;
        let pinned = meta_str(&new, "resourceVersion").map(str::to_string);
        if let Some(rv) = &pinned {
            if rv != &revision.to_string() {
                return Err(ApiError::conflict(resource.name, name));
            }
        }
        merge_part(&mut new, &old, part);
        keep_system_metadata(&mut new, &old, resource.name, part);
        object::set_type_meta(resource, &mut new);
        match part {
            Part::Main => {
                defaults::apply(resource, &mut new);
                defaults::prepare_update(resource, &mut new, &old);
                validation::validate_update(resource, &new, &old)?;
            }
            Part::Status => validation::validate_update(resource, &new, &old)?,
            // Server-internal writes (binding, finalize, termination) are trusted.
            Part::Any => {}
        }
        // A service update reserves the node ports (and, leaving ExternalName, the cluster IP) it adds;
        // they are given back unless the object is stored.
        let reserved = match (resource.name, part) {
            ("services", Part::Main) => {
                Some(service_alloc::reserve_update(state, &mut new, &old, dry_run).await?)
            }
            _ => None,
        };
        object::set_resource_version(&mut new, revision);
        if new != old {
            if let Some(manager) = manager {
                crate::fieldmanager::record_update(
                    resource,
                    &old,
                    &mut new,
                    manager,
                    &object::now(),
                );
            }
        }
        if new == old || dry_run {
            if let Some(reserved) = reserved {
                reserved.revert(state.storage()).await;
            }
            return Ok(new);
        }
        let stored = state
            .storage()
            .update(&target.key(), object::to_bytes(&new), revision)
            .await;
        match stored {
            Ok(kv) => {
                if let Some(reserved) = reserved {
                    reserved.commit(state.storage()).await;
                }
                object::set_resource_version(&mut new, kv.mod_revision);
                return finish_if_finalized(state, target, new).await;
            }
            Err(err) => {
                if let Some(reserved) = reserved {
                    reserved.revert(state.storage()).await;
                }
                match err {
                    StorageError::Conflict { .. } if pinned.is_none() => continue,
                    e => return Err(object::storage_error(resource, name, e)),
                }
            }
        }
    }
    Err(ApiError::conflict(resource.name, name))
}

/// Restricts a write to its part: the main resource keeps the stored status, the status subresource keeps
/// everything else (metadata labels/annotations excepted, as kube allows).
fn merge_part(new: &mut Value, old: &Value, part: Part) {
    match part {
        Part::Any => {}
        Part::Main => {
            if let (Some(map), Some(status)) = (new.as_object_mut(), old.get("status")) {
                map.insert("status".into(), status.clone());
            }
        }
        Part::Status => {
            let status = new.get("status").cloned();
            let rv = meta_str(new, "resourceVersion").map(str::to_string);
            *new = old.clone();
            if let Some(map) = new.as_object_mut() {
                match status {
                    Some(s) => map.insert("status".into(), s),
                    None => map.remove("status"),
                };
            }
            if let (Some(meta), Some(rv)) = (meta_mut(new), rv) {
                meta.insert("resourceVersion".into(), json!(rv));
            }
        }
    }
}

/// Carries over what clients cannot change (uid, creationTimestamp, deletion state) and bumps `generation`
/// when the spec changed, as the registry strategies do.
fn keep_system_metadata(new: &mut Value, old: &Value, resource: &str, part: Part) {
    let spec_changed = new.get("spec") != old.get("spec");
    let Some(old_meta) = old.get("metadata").and_then(Value::as_object) else {
        return;
    };
    let Some(meta) = meta_mut(new) else {
        return;
    };
    let owned: &[&str] = match part {
        // Internal writes are the ones that start a deletion.
        Part::Any => &["creationTimestamp"],
        _ => &[
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ],
    };
    for &field in owned {
        match old_meta.get(field) {
            Some(v) => meta.insert(field.into(), v.clone()),
            None => meta.remove(field),
        };
    }
    // A write that leaves managedFields out keeps the recorded ownership (kube does the same).
    if !meta.contains_key("managedFields") {
        if let Some(v) = old_meta.get("managedFields") {
            meta.insert("managedFields".into(), v.clone());
        }
    }
    for field in ["uid", "name", "namespace"] {
        let empty = meta
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty();
        if empty {
            if let Some(v) = old_meta.get(field) {
                meta.insert(field.into(), v.clone());
            }
        }
    }
    if let Some(generation) = old_meta.get("generation").and_then(Value::as_i64) {
        let next = if spec_changed && tracks_generation(resource) {
            generation + 1
        } else {
            generation
        };
        meta.insert("generation".into(), json!(next));
    }
}

/// Resources whose strategies maintain `metadata.generation`.
pub fn tracks_generation(resource: &str) -> bool {
    resource == "replicationcontrollers"
}

/// An object being deleted whose last finalizer was just removed is deleted for real.
async fn finish_if_finalized(
    state: &AppState,
    target: &Target,
    object: Value,
) -> Result<Value, ApiError> {
    // Namespaces finish through termination (emptied first), not through their metadata finalizers alone.
    let deleting =
        meta_str(&object, "deletionTimestamp").is_some() && target.resource.name != "namespaces";
    let finalizers = object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    // A graceful deletion (a pod on a node) ends when its agent deletes it with grace 0, not here.
    let graceful = object
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .is_some_and(|g| g > 0);
    if !deleting || finalizers || graceful {
        return Ok(object);
    }
    let revision = meta_str(&object, "resourceVersion")
        .and_then(|rv| rv.parse().ok())
        .unwrap_or_default();
    match state.storage().delete(&target.key(), Some(revision)).await {
        Ok(_) => {
            if target.resource.name == "services" {
                service_alloc::release(state.storage(), &object).await;
            }
            if let Some(ns) = &target.namespace {
                super::namespace::finish_if_empty(state, ns).await?;
            }
            Ok(object)
        }
        Err(StorageError::NotFound(_)) | Err(StorageError::Conflict { .. }) => Ok(object),
        Err(e) => Err(object::storage_error(target.resource, target.name(), e)),
    }
}
