//! selector (placeholder: owned by its work package).
