//! The CA and serving certificate kept in the data directory (created on first start, reused after).
//! STUB: owned by the `binary` work package.
