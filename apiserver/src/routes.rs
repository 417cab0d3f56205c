//! The REST handlers for core/v1 resources. STUB: owned by the `apicore` work package.

use std::sync::Arc;

use crate::storage::Storage;

/// Shared state of the REST handlers.
#[derive(Clone)]
pub struct AppState {
    /// The backing store.
    pub storage: Arc<dyn Storage>,
}

/// The core/v1 REST routes (`/api/v1/...`), state applied.
pub fn router(_state: AppState) -> axum::Router {
    axum::Router::new()
}
