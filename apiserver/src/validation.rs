//! validation (placeholder: owned by its work package).
