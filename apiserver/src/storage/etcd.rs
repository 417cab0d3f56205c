//! The etcd v3 backend (placeholder: owned by the storage work package).
