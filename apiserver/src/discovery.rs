//! Discovery: `/api`, `/api/v1`, `/apis` (plain and aggregated v2/v2beta1), `/version`, health endpoints.
//! STUB: owned by the `discovery` work package.

/// Routes for discovery, version and health (`/healthz`, `/livez`, `/readyz`). Stateless.
pub fn router() -> axum::Router {
    axum::Router::new()
}
