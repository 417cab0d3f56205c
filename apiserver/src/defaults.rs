//! defaults (placeholder: owned by its work package).
