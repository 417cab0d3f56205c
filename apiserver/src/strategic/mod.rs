//! Strategic merge patch, as kube-apiserver applies `application/strategic-merge-patch+json` (and as
//! `kubectl apply` computes it). Pure. Lists merge by their patch merge key and strategy, which come from the
//! same OpenAPI schema the server publishes (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`),
//! so what clients read and what the server does cannot drift apart. Lists without a strategy are replaced.
//!
//! Directives: `$patch: replace | delete | merge` (maps and list items), `$retainKeys`,
//! `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`, and `null` to delete a field.

pub(crate) mod schema;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use schema::Node;

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder/";
const DELETE_PRIMITIVE: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to `original`.
pub fn apply(resource: &ResourceInfo, original: &Value, patch: &Value) -> Result<Value, ApiError> {
    let Some(patch) = patch.as_object() else {
        return Err(ApiError::bad_request(
            "strategic merge patch must be a JSON object",
        ));
    };
    let node = Node::kind(resource.kind);
    let empty = Map::new();
    let original = original.as_object().unwrap_or(&empty);
    match merge_map(original, patch, &node)? {
        Some(map) => Ok(Value::Object(map)),
        None => Err(ApiError::bad_request(
            "the patch deletes the whole object ($patch: delete at the top level)",
        )),
    }
}

fn directive_value(patch: &Map<String, Value>) -> Result<Option<&str>, ApiError> {
    match patch.get(PATCH) {
        None => Ok(None),
        Some(Value::String(s)) if matches!(s.as_str(), "replace" | "delete" | "merge") => {
            Ok(Some(s))
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "Unknown patch type: {other}"
        ))),
    }
}

/// Merges a patch map into an original map; `None` means the patch deletes the map (`$patch: delete`).
fn merge_map(
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
    node: &Node,
) -> Result<Option<Map<String, Value>>, ApiError> {
    match directive_value(patch)? {
        Some("delete") => return Ok(None),
        Some("replace") => return Ok(Some(strip_directives(patch, node)?)),
        _ => {}
    }
    let mut result = original.clone();
    for (key, value) in patch {
        if key.starts_with('$') {
            continue;
        }
        let child = node.field(key);
        if value.is_null() {
            result.remove(key);
            continue;
        }
        let merged = match (result.get(key), value) {
            (Some(Value::Object(orig)), Value::Object(p)) => {
                merge_map(orig, p, &child)?.map(Value::Object)
            }
            (None, Value::Object(p)) => merge_map(&Map::new(), p, &child)?.map(Value::Object),
            (orig, Value::Array(items)) if child.merges() => {
                let orig = orig.and_then(Value::as_array).cloned().unwrap_or_default();
                Some(Value::Array(merge_list(&orig, items, &child)?))
            }
            (_, Value::Array(items)) => Some(Value::Array(
                items
                    .iter()
                    .map(|i| strip_value(i, &child.item()))
                    .collect::<Result<_, _>>()?,
            )),
            _ => Some(value.clone()),
        };
        match merged {
            Some(v) => result.insert(key.clone(), v),
            None => result.remove(key),
        };
    }
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(DELETE_PRIMITIVE) {
            let remove = value.as_array().cloned().unwrap_or_default();
            if let Some(Value::Array(items)) = result.get_mut(list) {
                items.retain(|i| !remove.contains(i));
            }
        }
    }
    for (key, value) in patch {
        if let Some(list) = key.strip_prefix(SET_ORDER) {
            let order = value.as_array().cloned().unwrap_or_default();
            let merge_key = node.field(list).merge_key().map(str::to_string);
            if let Some(Value::Array(items)) = result.get_mut(list) {
                reorder(items, &order, merge_key.as_deref());
            }
        }
    }
    if let Some(retain) = patch.get(RETAIN_KEYS) {
        let keep: Vec<&str> = retain
            .as_array()
            .ok_or_else(|| ApiError::bad_request("$retainKeys must be a list of field names"))?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        result.retain(|k, _| keep.contains(&k.as_str()));
    }
    Ok(Some(result))
}

/// The patch's own content without directives (for replaced or newly added values).
fn strip_directives(
    patch: &Map<String, Value>,
    node: &Node,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = Map::new();
    for (k, v) in patch {
        if k.starts_with('$') || v.is_null() {
            continue;
        }
        out.insert(k.clone(), strip_value(v, &node.field(k))?);
    }
    Ok(out)
}

fn strip_value(value: &Value, node: &Node) -> Result<Value, ApiError> {
    Ok(match value {
        Value::Object(map) => match merge_map(&Map::new(), map, node)? {
            Some(m) => Value::Object(m),
            None => Value::Null,
        },
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| !is_directive_item(i))
                .map(|i| strip_value(i, &node.item()))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn is_directive_item(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|m| m.contains_key(PATCH) && m.len() == 1)
}

/// Merges a patch list into an original list with a `merge` strategy.
fn merge_list(original: &[Value], patch: &[Value], node: &Node) -> Result<Vec<Value>, ApiError> {
    let item_node = node.item();
    if patch
        .iter()
        .any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"))
    {
        return patch
            .iter()
            .filter(|i| !is_directive_item(i))
            .map(|i| strip_value(i, &item_node))
            .collect();
    }
    let Some(key) = node.merge_key() else {
        // A set of primitives: union, keeping the original order.
        let mut out = original.to_vec();
        for item in patch {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        return Ok(out);
    };
    // The patch's items (merged with their originals) in patch order, and the originals the patch does not
    // mention in their order; `None` marks an item the patch deleted.
    let mut from_patch: Vec<Value> = Vec::new();
    let mut touched: Vec<Value> = Vec::new();
    for item in patch {
        let Some(map) = item.as_object() else {
            return Err(ApiError::bad_request(format!(
                "merging a list by key {key:?} needs objects, got {item}"
            )));
        };
        let id = map.get(key).cloned().unwrap_or(Value::Null);
        let directive = directive_value(map)?;
        touched.push(id.clone());
        let existing = from_patch
            .iter()
            .position(|o| o.get(key) == Some(&id))
            .map(|i| from_patch.remove(i))
            .or_else(|| original.iter().find(|o| o.get(key) == Some(&id)).cloned());
        if directive == Some("delete") {
            continue;
        }
        let merged = match existing {
            Some(orig) => {
                let orig = orig.as_object().cloned().unwrap_or_default();
                merge_map(&orig, map, &item_node)?.map(Value::Object)
            }
            None => Some(Value::Object(strip_directives(map, &item_node)?)),
        };
        if let Some(m) = merged {
            from_patch.push(m);
        }
    }
    let server_only: Vec<Value> = original
        .iter()
        .filter(|o| !touched.contains(o.get(key).unwrap_or(&Value::Null)))
        .cloned()
        .collect();
    Ok(merge_in_server_order(
        from_patch,
        server_only,
        original,
        key,
    ))
}

/// Interleaves the patch's items with the untouched original items as kube-apiserver does: two items both
/// known to the original keep the original order; an item new to the list goes ahead of the remaining
/// originals (so a patch adding one container puts it first, as the Kubernetes docs show).
fn merge_in_server_order(
    left: Vec<Value>,
    right: Vec<Value>,
    original: &[Value],
    key: &str,
) -> Vec<Value> {
    let index = |v: &Value| original.iter().position(|o| o.get(key) == v.get(key));
    let mut out = Vec::with_capacity(left.len() + right.len());
    let (mut left, mut right) = (left.into_iter().peekable(), right.into_iter().peekable());
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => match (index(l), index(r)) {
                (Some(li), Some(ri)) => li < ri,
                _ => true,
            },
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

/// Orders `items` as `$setElementOrder` lists them; items it does not name keep their relative order after.
fn reorder(items: &mut Vec<Value>, order: &[Value], merge_key: Option<&str>) {
    let identity = |item: &Value| -> Value {
        match merge_key {
            Some(k) => item.get(k).cloned().unwrap_or(Value::Null),
            None => item.clone(),
        }
    };
    let wanted: Vec<Value> = order
        .iter()
        .map(|o| match merge_key {
            Some(k) => o.get(k).cloned().unwrap_or(Value::Null),
            None => o.clone(),
        })
        .collect();
    let mut ordered = Vec::with_capacity(items.len());
    for id in &wanted {
        if let Some(pos) = items.iter().position(|i| &identity(i) == id) {
            ordered.push(items.remove(pos));
        }
    }
    ordered.append(items);
    *items = ordered;
}
