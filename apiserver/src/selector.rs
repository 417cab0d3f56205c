//! Label and field selectors: parsing (`a=b,c in (x,y),!d`) and matching against JSON objects. Pure.
//! STUB: owned by the `validation` work package.

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use serde_json::Value;

/// A parsed label selector (`=`, `==`, `!=`, `in`, `notin`, exists, `!` not-exists).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter; errors are 400 BadRequest with kube-apiserver's text.
    pub fn parse(_s: &str) -> Result<Self, ApiError> {
        unimplemented!("selector package")
    }

    /// Whether an object's `metadata.labels` match.
    pub fn matches(&self, _object: &Value) -> bool {
        unimplemented!("selector package")
    }
}

/// A parsed field selector, checked against the fields a resource supports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter; unsupported field labels → 400 BadRequest.
    pub fn parse(_resource: &ResourceInfo, _s: &str) -> Result<Self, ApiError> {
        unimplemented!("selector package")
    }

    /// Whether an object matches.
    pub fn matches(&self, _object: &Value) -> bool {
        unimplemented!("selector package")
    }

    /// `Some(name)` when the selector pins `metadata.name` to one value (lets a watch/list narrow).
    pub fn exact_name(&self) -> Option<&str> {
        None
    }
}
