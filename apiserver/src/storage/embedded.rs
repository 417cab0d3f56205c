//! The embedded durable store (placeholder: owned by the storage work package).
