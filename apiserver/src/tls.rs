//! tls (placeholder: owned by its work package).
