//! Object plumbing between the wire and the store: resourceVersion ↔ mod_revision, type meta checks,
//! `fieldValidation` (strict / warn / ignore with pruning), generated names and storage error mapping.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::storage::{KeyValue, Revision, StorageError};
use crate::validation;

/// Characters kube-apiserver uses for `generateName` suffixes (no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Parses a stored value into an object whose `metadata.resourceVersion` is the key's mod_revision.
pub fn from_kv(resource: &ResourceInfo, kv: &KeyValue) -> Result<Value, ApiError> {
    resource
        .decode(&kv.value, kv.mod_revision)
        .map_err(|e| ApiError::internal(format!("stored {} is corrupt: {e}", kv.key)))
}

/// Serializes an object for the store (resourceVersion lives in the store's revision, not the value).
pub fn to_bytes(obj: &Value) -> Vec<u8> {
    let mut stored = obj.clone();
    if let Some(meta) = meta_mut(&mut stored) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, revision: Revision) {
    if let Some(meta) = meta_mut(obj) {
        meta.insert("resourceVersion".into(), json!(revision.to_string()));
    }
}

/// `metadata` as a mutable map, created when missing.
pub fn meta_mut(obj: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = obj.as_object_mut()?;
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if meta.is_null() {
        *meta = json!({});
    }
    meta.as_object_mut()
}

/// A string field of `metadata`.
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?
        .get(field)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// Fills `kind` and `apiVersion` (bodies may omit them), placing them first as kube does.
pub fn set_type_meta(resource: &ResourceInfo, obj: &mut Value) {
    if let Some(map) = obj.as_object_mut() {
        let rest = std::mem::take(map);
        map.insert("kind".into(), json!(resource.kind));
        map.insert("apiVersion".into(), json!("v1"));
        for (k, v) in rest {
            if k != "kind" && k != "apiVersion" {
                map.insert(k, v);
            }
        }
    }
}

/// Rejects a body whose `kind`/`apiVersion` name a different type than the URL.
pub fn check_type_meta(resource: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    let field = |f: &str| obj.get(f).and_then(Value::as_str).filter(|s| !s.is_empty());
    if let Some(version) = field("apiVersion") {
        if version != "v1" {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({version}) does not match the expected API version (v1)"
            )));
        }
    }
    if let Some(kind) = field("kind") {
        if kind != resource.kind {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                resource.kind
            )));
        }
    }
    Ok(())
}

/// The checks every object body gets: its type meta matches the URL, and `fieldValidation` (from `query`)
/// is applied. Returns the warnings to send.
pub fn check_body(
    resource: &ResourceInfo,
    obj: &mut Value,
    query: &super::request::Query,
) -> Result<Vec<String>, ApiError> {
    check_type_meta(resource, obj)?;
    field_validation(resource, obj, query.get("fieldValidation"))
}

/// Applies `fieldValidation`: Strict → 400 on unknown fields; Warn (the default) → warnings; both Warn and
/// Ignore drop the unknown fields, as the real decoder does. Returns the warnings.
pub fn field_validation(
    resource: &ResourceInfo,
    obj: &mut Value,
    mode: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    let mode = match mode {
        None | Some("Warn") => "Warn",
        Some(m @ ("Strict" | "Ignore")) => m,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}; supported values are Ignore, Warn, Strict"
            )))
        }
    };
    let unknown = validation::unknown_fields(resource, obj);
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    if mode == "Strict" {
        return Err(validation::strict_decoding_error(&unknown));
    }
    for path in &unknown {
        prune(obj, path);
    }
    Ok(match mode {
        "Warn" => validation::unknown_field_warnings(&unknown),
        _ => Vec::new(),
    })
}

/// Removes the field at a path like `spec.containers[0].foo`.
fn prune(obj: &mut Value, path: &str) {
    let mut steps: Vec<Step> = Vec::new();
    for part in path.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            steps.push(Step::Key(name.to_string()));
        }
        for idx in indexes.split(']').filter(|s| s.starts_with('[')) {
            match idx[1..].parse::<usize>() {
                Ok(i) => steps.push(Step::Index(i)),
                Err(_) => steps.push(Step::Key(idx[1..].to_string())),
            }
        }
    }
    let Some((last, parents)) = steps.split_last() else {
        return;
    };
    let mut cur = obj;
    for step in parents {
        let next = match step {
            Step::Key(k) => cur.get_mut(k.as_str()),
            Step::Index(i) => cur.get_mut(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let (Step::Key(k), Some(map)) = (last, cur.as_object_mut()) {
        map.remove(k);
    }
}

enum Step {
    Key(String),
    Index(usize),
}

/// `prefix` + 5 random characters, as kube-apiserver's name generator.
pub fn generate_name(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// A time as kube's metav1.Time (RFC 3339, whole seconds).
pub fn timestamp(at: time::OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The current time as kube's metav1.Time.
pub fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// Maps a storage failure on `resource`/`name` to the Status kube-apiserver returns.
pub fn storage_error(resource: &ResourceInfo, name: &str, err: StorageError) -> ApiError {
    match err {
        StorageError::AlreadyExists(_) => ApiError::already_exists(resource.name, name),
        StorageError::NotFound(_) => ApiError::not_found(resource.name, name),
        StorageError::Conflict { .. } => ApiError::conflict(resource.name, name),
        StorageError::Compacted { requested, .. } => ApiError::expired(format!(
            "The resourceVersion for the provided list is too old. (requested {requested})"
        )),
        StorageError::FutureRevision { requested, current } => ApiError::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        ),
        StorageError::Backend(e) => ApiError::internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_removes_nested_unknown_fields() {
        let mut obj = json!({"spec": {"x": 1, "containers": [{"name": "a", "foo": 2}]}});
        prune(&mut obj, "spec.x");
        prune(&mut obj, "spec.containers[0].foo");
        prune(&mut obj, "spec.missing[3].y");
        assert_eq!(obj, json!({"spec": {"containers": [{"name": "a"}]}}));
    }

    #[test]
    fn generated_names_use_the_kube_alphabet() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name[4..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
    }

    #[test]
    fn type_meta_comes_first_and_mismatches_are_rejected() {
        let pods = crate::resources::by_name("pods").unwrap();
        let mut obj = json!({"metadata": {"name": "a"}});
        set_type_meta(pods, &mut obj);
        let keys: Vec<_> = obj.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["kind", "apiVersion", "metadata"]);
        let err = check_type_meta(pods, &json!({"kind": "Service"})).unwrap_err();
        assert_eq!(err.code, 400);
    }
}
