//! Decoding of `application/vnd.kubernetes.protobuf` request bodies (the `k8s\0` envelope) into JSON. Pure.
//! STUB: owned by the `protobuf` work package.

use crate::error::ApiError;
use serde_json::Value;

/// Decodes a protobuf request body into the equivalent JSON object (with `kind`/`apiVersion` from the
/// envelope). Unknown kinds → 415 UnsupportedMediaType; malformed bytes → 400 BadRequest.
pub fn decode(_body: &[u8]) -> Result<Value, ApiError> {
    unimplemented!("protobuf package")
}
