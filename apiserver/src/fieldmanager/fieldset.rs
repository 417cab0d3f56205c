//! Sets of field paths, in structured-merge-diff's FieldsV1 vocabulary: `f:<field>`, `k:<key json>` for
//! list-map items, `v:<value json>` for set members, and `.` for an item itself.

use std::collections::BTreeSet;
use std::ops::{Deref, DerefMut};

use serde_json::{Map, Value};

use crate::strategic::schema::Node;

/// One field path.
pub type Path = Vec<String>;

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

impl Deref for FieldSet {
    type Target = BTreeSet<Path>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for FieldSet {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl FromIterator<Path> for FieldSet {
    fn from_iter<I: IntoIterator<Item = Path>>(iter: I) -> Self {
        FieldSet(iter.into_iter().collect())
    }
}

impl FieldSet {
    /// The leaf fields `value` sets, walking `node`'s schema for list semantics.
    pub fn of(node: &Node, value: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        walk(node, value, &mut Vec::new(), &mut set);
        set
    }

    /// Parses a `fieldsV1` object.
    pub fn from_fields_v1(value: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        fn visit(map: &Map<String, Value>, prefix: &mut Path, set: &mut FieldSet) {
            for (k, v) in map {
                prefix.push(k.clone());
                match v.as_object() {
                    Some(children) if !children.is_empty() => visit(children, prefix, set),
                    _ => {
                        set.insert(prefix.clone());
                    }
                }
                prefix.pop();
            }
        }
        if let Some(map) = value.as_object() {
            visit(map, &mut Vec::new(), &mut set);
        }
        set
    }

    /// Renders the set as a `fieldsV1` object.
    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in self.iter() {
            let mut cur = &mut root;
            for step in path {
                let next = cur
                    .entry(step.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let Some(map) = next.as_object_mut() else {
                    break;
                };
                cur = map;
            }
        }
        Value::Object(root)
    }
}

fn walk(node: &Node, value: &Value, prefix: &mut Path, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                prefix.push(format!("f:{k}"));
                walk(&node.field(k), v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) if node.merges() => match node.merge_key() {
            Some(key) => {
                let item_node = node.item();
                for item in items {
                    let id =
                        serde_json::json!({ key: item.get(key).cloned().unwrap_or(Value::Null) });
                    prefix.push(format!("k:{id}"));
                    prefix.push(".".into());
                    out.insert(prefix.clone());
                    prefix.pop();
                    if let Some(map) = item.as_object() {
                        for (k, v) in map.iter().filter(|(k, _)| k.as_str() != key) {
                            prefix.push(format!("f:{k}"));
                            walk(&item_node.field(k), v, prefix, out);
                            prefix.pop();
                        }
                    }
                    prefix.pop();
                }
            }
            None => {
                for item in items {
                    prefix.push(format!("v:{item}"));
                    out.insert(prefix.clone());
                    prefix.pop();
                }
            }
        },
        _ => {
            if !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
}

fn key_matches(item: &Value, key: &Value) -> bool {
    key.as_object()
        .is_some_and(|k| k.iter().all(|(name, v)| item.get(name) == Some(v)))
}

/// Stands for "the item exists" at a `.` path: an item's own presence never differs between two objects
/// that both have it (its fields are compared one by one).
static PRESENT: Value = Value::Bool(true);

/// The value at `path` (`.` → [`PRESENT`] when the item exists).
pub fn get<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = value;
    for step in path {
        if step == "." {
            return Some(&PRESENT);
        }
        cur = if let Some(field) = step.strip_prefix("f:") {
            cur.get(field)?
        } else if let Some(key) = step.strip_prefix("k:") {
            let key: Value = serde_json::from_str(key).ok()?;
            cur.as_array()?.iter().find(|i| key_matches(i, &key))?
        } else if let Some(member) = step.strip_prefix("v:") {
            let member: Value = serde_json::from_str(member).ok()?;
            cur.as_array()?.iter().find(|i| **i == member)?
        } else {
            return None;
        };
    }
    Some(cur)
}

/// Removes the field at `path` from `value` (an item path ending in `.` removes the item).
pub fn remove(value: &mut Value, path: &[String]) {
    let path = match path.last().map(String::as_str) {
        Some(".") => &path[..path.len() - 1],
        _ => path,
    };
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = value;
    for step in parents {
        let next = if let Some(field) = step.strip_prefix("f:") {
            cur.get_mut(field)
        } else if let Some(key) = step.strip_prefix("k:") {
            let Ok(key) = serde_json::from_str::<Value>(key) else {
                return;
            };
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| key_matches(i, &key)))
        } else {
            None
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = cur.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(key) = last.strip_prefix("k:") {
        if let (Ok(key), Some(items)) = (serde_json::from_str::<Value>(key), cur.as_array_mut()) {
            items.retain(|i| !key_matches(i, &key));
        }
    } else if let Some(member) = last.strip_prefix("v:") {
        if let (Ok(member), Some(items)) =
            (serde_json::from_str::<Value>(member), cur.as_array_mut())
        {
            items.retain(|i| *i != member);
        }
    }
}

/// kube's rendering of a path in conflict messages: `.spec.containers[name="web"].image`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for step in path {
        if let Some(field) = step.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = step.strip_prefix("k:") {
            let parts: Vec<String> = serde_json::from_str::<Map<String, Value>>(key)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(member) = step.strip_prefix("v:") {
            out.push_str(&format!("[={member}]"));
        }
    }
    out
}
