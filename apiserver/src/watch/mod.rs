//! TEMPORARY interface stub (replaced by the watch package on merge).
#![allow(missing_docs, dead_code)]
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::resources::ResourceInfo;
use crate::selector::{FieldSelector, LabelSelector};
use crate::storage::{Revision, Storage, StorageError};

pub struct WatchCache;
impl WatchCache {
    pub async fn start(
        _storage: Arc<dyn Storage>,
        _resource: &'static ResourceInfo,
        _config: CacheConfig,
        _shutdown: CancellationToken,
    ) -> Result<Arc<WatchCache>, StorageError> {
        Ok(Arc::new(WatchCache))
    }
    pub async fn snapshot(&self, _namespace: Option<&str>) -> (Revision, Vec<Value>) {
        (0, Vec::new())
    }
}
#[derive(Debug, Clone, Default)]
pub struct CacheConfig {
    pub history: usize,
    pub bookmark_interval: Duration,
}
pub struct WatchRequest {
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub namespace: Option<String>,
    pub label: LabelSelector,
    pub field: FieldSelector,
    pub allow_bookmarks: bool,
    pub timeout: Option<Duration>,
    pub send_initial_events: Option<bool>,
}
pub type Transform = Arc<dyn Fn(&Value) -> Value + Send + Sync>;
pub fn serve(
    _cache: Arc<WatchCache>,
    _req: WatchRequest,
    _transform: Option<Transform>,
) -> Result<axum::response::Response, ApiError> {
    Err(ApiError::method_not_allowed())
}
