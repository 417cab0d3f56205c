//! auth (placeholder: owned by its work package).
