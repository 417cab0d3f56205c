//! Server-side apply: which manager owns which fields (`metadata.managedFields`, FieldsV1), conflicts
//! between managers, and applying a configuration. Pure.
//!
//! Field paths follow the published schema: list-maps (lists with a merge key) are addressed per item by key
//! (`k:{"name":"web"}`), sets of primitives per value (`v:"x"`), and every other list is atomic (owned as
//! a whole), as structured-merge-diff does.

mod fieldset;

#[cfg(test)]
mod tests;

use serde_json::{json, Value};

use crate::error::{ApiError, Cause};
use crate::resources::ResourceInfo;
use crate::strategic::schema::Node;
pub use fieldset::{FieldSet, Path};

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq)]
pub struct Managed {
    /// The field manager.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// When the entry last changed.
    pub time: String,
    /// The fields it owns.
    pub fields: FieldSet,
}

/// Reads `metadata.managedFields`.
pub fn managed_fields(object: &Value) -> Vec<Managed> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            Some(Managed {
                manager: entry.get("manager")?.as_str()?.to_string(),
                operation: entry.get("operation")?.as_str()?.to_string(),
                time: entry
                    .get("time")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                fields: FieldSet::from_fields_v1(entry.get("fieldsV1").unwrap_or(&Value::Null)),
            })
        })
        .collect()
}

fn set_managed_fields(object: &mut Value, entries: &[Managed]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            json!({"manager": e.manager, "operation": e.operation, "apiVersion": "v1",
                   "time": e.time, "fieldsType": "FieldsV1", "fieldsV1": e.fields.to_fields_v1()})
        })
        .collect();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Fields a configuration sets, leaving out identity and server-owned ones.
pub fn fields_of(resource: &ResourceInfo, config: &Value) -> FieldSet {
    let mut set = FieldSet::of(&Node::kind(resource.kind), config);
    set.retain(|p| {
        let first = p.first().map(String::as_str).unwrap_or_default();
        let second = p.get(1).map(String::as_str).unwrap_or_default();
        let server_owned = matches!(first, "f:kind" | "f:apiVersion" | "f:status");
        let identity = first == "f:metadata"
            && matches!(
                second,
                "f:name"
                    | "f:namespace"
                    | "f:resourceVersion"
                    | "f:uid"
                    | "f:generation"
                    | "f:creationTimestamp"
                    | "f:managedFields"
            );
        !server_owned && !identity
    });
    set
}

/// The 409 kube-apiserver answers when an apply would change fields other managers own.
fn conflict_error(resource: &ResourceInfo, name: &str, conflicts: &[(String, Path)]) -> ApiError {
    let causes: Vec<Cause> = conflicts
        .iter()
        .map(|(manager, path)| Cause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with \"{manager}\""),
            field: fieldset::display(path),
        })
        .collect();
    let summary = match conflicts {
        [(manager, path)] => {
            format!(
                "Apply failed with 1 conflict: conflict with \"{manager}\": {}",
                fieldset::display(path)
            )
        }
        _ => {
            let lines: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with \"{m}\": {}", fieldset::display(p)))
                .collect();
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    let mut err = ApiError::conflict(resource.name, name);
    err.message = summary;
    err.details = Some(json!({
        "name": name,
        "kind": resource.name,
        "causes": causes.iter().map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field})).collect::<Vec<_>>(),
    }));
    err
}

/// Applies `config` for `manager` to `live` (an empty object for a create). Conflicts with other managers'
/// fields whose values would change are a 409 unless `force`, which takes them over. Fields the manager
/// applied before but no longer sets are removed when nobody else owns them.
pub fn apply(
    resource: &ResourceInfo,
    live: &Value,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApiError> {
    let name = config
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let wanted = fields_of(resource, config);
    let mut entries = managed_fields(live);
    let previous = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply")
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut conflicts = Vec::new();
    for entry in entries
        .iter()
        .filter(|e| !(e.manager == manager && e.operation == "Apply"))
    {
        for path in wanted.intersection(&entry.fields) {
            if fieldset::get(live, path) != fieldset::get(config, path) {
                conflicts.push((entry.manager.clone(), path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(resource, name, &conflicts));
    }
    for entry in entries.iter_mut() {
        if entry.manager == manager && entry.operation == "Apply" {
            continue;
        }
        for (_, path) in conflicts.iter() {
            entry.fields.remove(path);
        }
    }
    let mut merged = crate::strategic::apply(resource, live, &strip_for_merge(config))?;
    for path in previous.difference(&wanted) {
        let owned_elsewhere = entries
            .iter()
            .any(|e| !(e.manager == manager && e.operation == "Apply") && e.fields.contains(path));
        if !owned_elsewhere {
            fieldset::remove(&mut merged, path);
        }
    }
    entries.retain(|e| !(e.manager == manager && e.operation == "Apply"));
    entries.push(Managed {
        manager: manager.to_string(),
        operation: "Apply".into(),
        time: now.to_string(),
        fields: wanted,
    });
    set_managed_fields(&mut merged, &entries);
    Ok(merged)
}

/// Records an Update by `manager`: it takes ownership of every field whose value the update changed.
pub fn record_update(
    resource: &ResourceInfo,
    old: &Value,
    new: &mut Value,
    manager: &str,
    now: &str,
) {
    let before = fields_of(resource, old);
    let after = fields_of(resource, new);
    let changed: FieldSet = after
        .iter()
        .filter(|p| !before.contains(*p) || fieldset::get(old, p) != fieldset::get(new, p))
        .cloned()
        .collect();
    let mut entries = managed_fields(old);
    for entry in entries.iter_mut() {
        if !(entry.manager == manager && entry.operation == "Update") {
            entry
                .fields
                .retain(|p| !changed.contains(p) && after.contains(p));
        }
    }
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Update")
    {
        Some(mine) => {
            mine.fields.extend(changed.iter().cloned());
            mine.fields.retain(|p| after.contains(p));
            mine.time = now.to_string();
        }
        None if !changed.is_empty() => entries.push(Managed {
            manager: manager.to_string(),
            operation: "Update".into(),
            time: now.to_string(),
            fields: changed,
        }),
        None => {}
    }
    set_managed_fields(new, &entries);
}

/// The configuration as a patch: managedFields are the server's, never the applier's.
fn strip_for_merge(config: &Value) -> Value {
    let mut patch = config.clone();
    if let Some(meta) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("resourceVersion");
    }
    if let Some(map) = patch.as_object_mut() {
        map.remove("status");
    }
    patch
}
