//! serve (placeholder: owned by its work package).
