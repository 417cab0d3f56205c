//! Kumos API server: the Kubernetes core/v1 REST API, backed by etcd or an embedded store.
//!
//! Layout: `storage` (the key-value contract and its backends), `resources` (the static table of what we
//! serve), pure decision modules (`selector`, `validation`, `defaults`, `protobuf`, `table`), the HTTP
//! surface (`routes`, `discovery`, `openapi`, `auth`) and the process shell (`tls`, `serve`).

// `ApiError` carries a Kubernetes Status (strings plus optional details); it travels only on the error
// path, so its size does not matter and boxing every `Result` would only add noise.
#![allow(clippy::result_large_err)]

pub mod agents;
pub mod auth;
pub mod defaults;
pub mod discovery;
pub mod error;
pub mod fieldmanager;
pub mod openapi;
pub mod protobuf;
pub mod resources;
pub mod routes;
pub mod selector;
pub mod serve;
pub mod service_alloc;
pub mod storage;
pub mod strategic;
pub mod table;
pub mod tls;
pub mod validation;
pub mod watch;

/// The whole HTTP surface: discovery, OpenAPI and the REST routes (authentication is layered on by `serve`).
pub fn app(state: routes::AppState) -> axum::Router {
    axum::Router::new()
        .merge(discovery::router())
        .merge(openapi::router())
        .merge(routes::router(state))
}
