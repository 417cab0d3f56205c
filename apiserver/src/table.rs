//! Server-side Tables (`meta.k8s.io/v1 Table`) with the columns kubectl shows against a real cluster. Pure.
//! STUB: owned by the `discovery` work package.

use crate::resources::ResourceInfo;
use serde_json::Value;

/// How much of each object a Table row carries (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

/// Builds a Table for `objects` (`now` is for AGE). The caller sets `metadata.resourceVersion`/`continue`.
pub fn build_table(
    _resource: &ResourceInfo,
    _objects: &[Value],
    _include: IncludeObject,
    _now: time::OffsetDateTime,
) -> Value {
    unimplemented!("discovery package")
}
