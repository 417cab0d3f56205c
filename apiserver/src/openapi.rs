//! openapi (placeholder: owned by its work package).
