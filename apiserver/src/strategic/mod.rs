//! TEMPORARY stand-in until the strategic merge patch package lands: merge-patch semantics.
use serde_json::Value;

use crate::error::ApiError;
use crate::resources::ResourceInfo;

/// Applies a strategic merge patch (stand-in: RFC 7386 merge).
pub fn apply(_resource: &ResourceInfo, original: &Value, patch: &Value) -> Result<Value, ApiError> {
    Ok(crate::routes::merge_patch_for_stub(original, patch))
}
