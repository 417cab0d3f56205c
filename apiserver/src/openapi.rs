//! OpenAPI v3 (`/openapi/v3`, `/openapi/v3/api/v1`) built from k8s-openapi's schemas; `/openapi/v2` is 404.
//! STUB: owned by the `discovery` work package.

/// Routes for the OpenAPI documents. Stateless.
pub fn router() -> axum::Router {
    axum::Router::new()
}
