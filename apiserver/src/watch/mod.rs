//! Watch: one [`WatchCache`] per resource follows a single storage watch and fans events out to every
//! client watch; [`serve`] turns a [`WatchRequest`] into kube-apiserver's newline-delimited JSON stream.
//!
//! Layout: `cache` (state, the event ring, the follower task), `cached` (one object version: wire JSON
//! plus what selectors read), `filter` (pure selection with kube's
//! transition rules), `stream` (the per-client state machine and the HTTP response).

mod cache;
mod cached;
mod filter;
mod stream;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::selector::{FieldSelector, LabelSelector};

pub use cache::{CacheConfig, WatchCache};
pub use cached::Cached;
pub use stream::serve;

/// A client watch request, parsed from the query.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    /// `resourceVersion`: unset or "0" = current state first; N = every change after N.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// Only objects in this namespace.
    pub namespace: Option<String>,
    /// `labelSelector`.
    pub label: LabelSelector,
    /// `fieldSelector`.
    pub field: FieldSelector,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
}

/// Turns each event object into what goes on the wire (identity, or a one-row Table for `kubectl get -w`).
pub type Transform = Arc<dyn Fn(&Value) -> Value + Send + Sync>;
