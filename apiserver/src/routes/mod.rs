//! The core/v1 REST surface. One catch-all route parses `/api/v1/...` into a [`Target`], then [`dispatch`]
//! picks the verb handler. Handlers are thin: object rules live in `defaults`, `validation`, `selector`,
//! `table`, `watch`; the write path shared by every update-like verb lives in [`write`].

mod apply;
mod crud;
mod delete;
mod list;
mod namespace;
mod object;
mod patch;
mod podlog;
mod request;
mod service_alloc;
mod subresource;
mod write;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_delete;
#[cfg(test)]
mod tests_dry_run;
#[cfg(test)]
mod tests_podlog;
#[cfg(test)]
mod tests_services;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::agents::{AgentAccess, AgentClient};
use crate::error::ApiError;
use crate::resources::{ResourceInfo, RESOURCES};
use crate::service_alloc::ServiceRanges;
use crate::storage::Storage;
use crate::watch::{CacheConfig, WatchCache};

pub use request::{Query, Target};
use write::Part;

/// Shared state of the REST handlers: the store and one watch cache per resource.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    storage: Arc<dyn Storage>,
    caches: HashMap<&'static str, Arc<WatchCache>>,
    agents: AgentClient,
    service_ranges: ServiceRanges,
}

impl AppState {
    /// Creates the default namespaces (idempotently) and starts one watch cache per resource; the caches'
    /// tasks stop when `shutdown` is cancelled.
    pub async fn new(
        storage: Arc<dyn Storage>,
        shutdown: CancellationToken,
    ) -> Result<AppState, ApiError> {
        Self::with_cache_config(storage, CacheConfig::default(), shutdown).await
    }

    /// [`AppState::new`] with explicit watch-cache settings (tests use short bookmark intervals).
    pub async fn with_cache_config(
        storage: Arc<dyn Storage>,
        config: CacheConfig,
        shutdown: CancellationToken,
    ) -> Result<AppState, ApiError> {
        namespace::ensure_defaults(storage.as_ref()).await?;
        let mut caches = HashMap::new();
        for resource in RESOURCES {
            let cache = WatchCache::start(
                storage.clone(),
                resource,
                config.clone(),
                shutdown.child_token(),
            )
            .await
            .map_err(ApiError::internal)?;
            caches.insert(resource.name, cache);
        }
        Ok(AppState {
            inner: Arc::new(Inner {
                storage,
                caches,
                agents: AgentClient::new(AgentAccess::default()),
                service_ranges: ServiceRanges::default(),
            }),
        })
    }

    /// This state, reaching agents (for `pods/log`) with `access`.
    pub fn with_agent_access(self, access: AgentAccess) -> AppState {
        let mut inner = Inner::clone(&self.inner);
        inner.agents = AgentClient::new(access);
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// This state, allocating service cluster IPs and node ports from `ranges`.
    pub fn with_service_ranges(self, ranges: ServiceRanges) -> AppState {
        let mut inner = Inner::clone(&self.inner);
        inner.service_ranges = ranges;
        AppState {
            inner: Arc::new(inner),
        }
    }

    /// Frees service cluster IPs and node ports that no stored service holds (left by a crash between
    /// reserving and storing), checking twice `pause` apart; how many were freed.
    pub async fn repair_service_allocations(
        &self,
        pause: std::time::Duration,
    ) -> Result<usize, crate::storage::StorageError> {
        service_alloc::repair(self.storage(), pause).await
    }

    /// The ranges services take their cluster IPs and node ports from.
    pub fn service_ranges(&self) -> ServiceRanges {
        self.inner.service_ranges
    }

    /// The client for agents.
    pub fn agents(&self) -> &AgentClient {
        &self.inner.agents
    }

    /// The backing store.
    pub fn storage(&self) -> &dyn Storage {
        self.inner.storage.as_ref()
    }

    fn cache(&self, resource: &ResourceInfo) -> Result<Arc<WatchCache>, ApiError> {
        self.inner
            .caches
            .get(resource.name)
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("no watch cache for {}", resource.name)))
    }
}

/// The core/v1 REST routes (`/api/v1/...`), state applied.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/{*rest}", any(handle))
        .with_state(state)
}

async fn handle(
    State(state): State<AppState>,
    method: Method,
    Path(rest): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let target = Target::parse(&rest)?;
        let query = Query::parse(query.as_deref())?;
        dispatch(&state, &method, &target, &query, &headers, body).await
    };
    match result.await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn dispatch(
    state: &AppState,
    method: &Method,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let watch = target.watch || query.flag("watch");
    if let Some(sub) = target.sub.as_deref() {
        return subresource::handle(state, method, target, sub, query, headers, body).await;
    }
    let collection = target.name.is_none();
    let needs_namespace = target.resource.namespaced && target.namespace.is_none();
    match (method.clone(), collection) {
        (Method::GET, _) if watch => list::watch(state, target, query, headers),
        (Method::GET, true) => list::list(state, target, query, headers).await,
        (Method::GET, false) => crud::get(state, target, query, headers).await,
        (Method::POST, true) if !needs_namespace => {
            crud::create(state, target, query, headers, body).await
        }
        (Method::DELETE, true) if !needs_namespace => {
            list::delete_collection(state, target, query).await
        }
        (Method::PUT, false) => {
            crud::update_part(state, target, query, headers, body, Part::Main).await
        }
        (Method::PATCH, false) => {
            crud::patch_part(state, target, query, headers, body, Part::Main).await
        }
        (Method::DELETE, false) => delete::delete(state, target, query, headers, body).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}
