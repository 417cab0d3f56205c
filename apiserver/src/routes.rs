//! routes (placeholder: owned by its work package).
