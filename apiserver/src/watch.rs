//! Watch caches (one storage watch per resource) and serving watch requests as NDJSON.
//! STUB: owned by the `watch` work package.
