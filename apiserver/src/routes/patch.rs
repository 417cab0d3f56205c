//! Patch types: JSON patch (RFC 6902), merge patch (RFC 7386) and strategic merge patch. Pure.

use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::resources::ResourceInfo;

/// A PATCH body's type, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

const ACCEPTED: &str =
    "the body of the request was in an unknown format - accepted media types include: \
application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
application/strategic-merge-patch+json";

impl PatchType {
    /// Maps a media type to a patch type; anything else → 415.
    pub fn from_content_type(media: &str) -> Result<PatchType, ApiError> {
        match media {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            _ => Err(ApiError::new(415, "UnsupportedMediaType", ACCEPTED)),
        }
    }
}

/// Applies a patch body to `current`.
pub fn apply(
    resource: &ResourceInfo,
    kind: PatchType,
    current: &Value,
    body: &[u8],
) -> Result<Value, ApiError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    match kind {
        PatchType::Json => json_patch(current, patch),
        PatchType::Merge => {
            require_object(&patch)?;
            Ok(merge_patch(current, &patch))
        }
        PatchType::Strategic => {
            require_object(&patch)?;
            crate::strategic::apply(resource, current, &patch)
        }
        // Routed to `apply` before reaching here.
        PatchType::Apply => Err(ApiError::internal(
            "apply patches are handled by server-side apply",
        )),
    }
}

fn require_object(patch: &Value) -> Result<(), ApiError> {
    if patch.is_object() {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "error decoding patch: json: cannot unmarshal into Go value of type map[string]interface {}",
        ))
    }
}

/// Whether the patch body itself sets `metadata.resourceVersion` (then it is a precondition).
pub fn sets_resource_version(kind: PatchType, body: &[u8]) -> bool {
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    match kind {
        PatchType::Json => patch.as_array().is_some_and(|ops| {
            ops.iter().any(|op| {
                op.get("path").and_then(Value::as_str) == Some("/metadata/resourceVersion")
            })
        }),
        _ => patch
            .pointer("/metadata/resourceVersion")
            .is_some_and(|v| !v.is_null()),
    }
}

/// RFC 7386 merge patch: objects merge recursively, `null` deletes, everything else replaces.
pub fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Some(patch_map) = patch.as_object() else {
        return patch.clone();
    };
    let mut out: Map<String, Value> = target.as_object().cloned().unwrap_or_default();
    for (key, value) in patch_map {
        if value.is_null() {
            out.remove(key);
        } else {
            let merged = merge_patch(out.get(key).unwrap_or(&Value::Null), value);
            out.insert(key.clone(), merged);
        }
    }
    Value::Object(out)
}

/// RFC 6902 JSON patch; a failed operation (including `test`) → 422 as kube-apiserver.
fn json_patch(current: &Value, patch: Value) -> Result<Value, ApiError> {
    let ops: json_patch::Patch = serde_json::from_value(patch)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let mut doc = current.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| {
        ApiError::new(
            422,
            "Invalid",
            format!("the server rejected our request due to an error in our request: {e}"),
        )
    })?;
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7386() {
        let target = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let patch = json!({"a": "z", "c": {"f": null}, "l": [3]});
        assert_eq!(
            merge_patch(&target, &patch),
            json!({"a": "z", "c": {"d": "e"}, "l": [3]})
        );
    }

    #[test]
    fn json_patch_applies_and_failed_tests_are_422() {
        let doc = json!({"metadata": {"labels": {"a": "1"}}});
        let ok = json_patch(
            &doc,
            json!([{"op": "add", "path": "/metadata/labels/b", "value": "2"}]),
        )
        .unwrap();
        assert_eq!(ok, json!({"metadata": {"labels": {"a": "1", "b": "2"}}}));
        let err = json_patch(
            &doc,
            json!([{"op": "test", "path": "/metadata/labels/a", "value": "9"}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn only_patches_that_name_a_resource_version_pin_it() {
        assert!(sets_resource_version(
            PatchType::Merge,
            br#"{"metadata":{"resourceVersion":"5"}}"#
        ));
        assert!(!sets_resource_version(PatchType::Merge, br#"{"spec":{}}"#));
        assert!(sets_resource_version(
            PatchType::Json,
            br#"[{"op":"replace","path":"/metadata/resourceVersion","value":"5"}]"#
        ));
        assert_eq!(
            PatchType::from_content_type("application/cbor-patch")
                .unwrap_err()
                .code,
            415
        );
    }
}
