//! table (placeholder: owned by its work package).
