//! protobuf (placeholder: owned by its work package).
