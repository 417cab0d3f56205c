//! discovery (placeholder: owned by its work package).
