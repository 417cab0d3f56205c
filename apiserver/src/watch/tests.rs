//! End-to-end watch tests over the embedded store: read the NDJSON body of `serve`.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::resources::by_name;
use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use crate::storage::Storage;

struct Fixture {
    store: Arc<dyn Storage>,
    cache: Arc<WatchCache>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn fixture(config: CacheConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Storage> =
        Arc::new(EmbeddedStore::open(dir.path(), EmbeddedConfig::default()).unwrap());
    let shutdown = CancellationToken::new();
    let cache = WatchCache::start(
        store.clone(),
        by_name("pods").unwrap(),
        config,
        shutdown.clone(),
    )
    .await
    .unwrap();
    Fixture {
        store,
        cache,
        shutdown,
        _dir: dir,
    }
}

fn pod(name: &str, app: &str) -> Vec<u8> {
    json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": app}}})
        .to_string()
        .into_bytes()
}

fn key(name: &str) -> String {
    format!("/registry/pods/default/{name}")
}

/// Reads `n` events (or fewer if the stream ends first).
async fn events(resp: axum::response::Response, n: usize) -> Vec<Value> {
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < n {
        let Some(Ok(frame)) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            out.push(serde_json::from_slice(&line).unwrap());
        }
    }
    out
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

fn pair(t: &str, n: &str) -> (String, String) {
    (t.to_string(), n.to_string())
}

#[tokio::test]
async fn replays_history_in_order_from_an_old_resource_version() {
    let f = fixture(CacheConfig::default()).await;
    let start = f.store.current_revision().await.unwrap();
    let a = f.store.create(&key("a"), pod("a", "web")).await.unwrap();
    f.store
        .update(&key("a"), pod("a", "db"), a.mod_revision)
        .await
        .unwrap();
    f.store.delete(&key("a"), None).await.unwrap();
    let req = WatchRequest {
        resource_version: Some(start.to_string()),
        timeout: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    // The cache may still be catching up: serve once it has the delete.
    while f.cache.revision() < start + 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = events(serve(f.cache.clone(), req, None).unwrap(), 3).await;
    assert_eq!(
        summary(&got),
        [
            pair("ADDED", "a"),
            pair("MODIFIED", "a"),
            pair("DELETED", "a")
        ]
    );
    let revs: Vec<i64> = got
        .iter()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert_eq!(revs, [start + 1, start + 2, start + 3]);
}

#[tokio::test]
async fn current_state_then_live_changes_with_selector_transitions() {
    let f = fixture(CacheConfig::default()).await;
    f.store.create(&key("a"), pod("a", "web")).await.unwrap();
    f.store.create(&key("b"), pod("b", "db")).await.unwrap();
    while f.cache.revision() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let req = WatchRequest {
        label: crate::selector::LabelSelector::parse("app=web").unwrap(),
        ..Default::default()
    };
    let resp = serve(f.cache.clone(), req, None).unwrap();
    let b = f.store.get(&key("b")).await.unwrap().unwrap();
    f.store
        .update(&key("b"), pod("b", "web"), b.mod_revision)
        .await
        .unwrap();
    let a = f.store.get(&key("a")).await.unwrap().unwrap();
    f.store
        .update(&key("a"), pod("a", "db"), a.mod_revision)
        .await
        .unwrap();
    let got = events(resp, 3).await;
    assert_eq!(
        summary(&got),
        [pair("ADDED", "a"), pair("ADDED", "b"), pair("DELETED", "a")]
    );
}

#[tokio::test]
async fn too_old_resource_versions_get_a_410_error_event() {
    let f = fixture(CacheConfig {
        history: 2,
        ..Default::default()
    })
    .await;
    for name in ["a", "b", "c", "d"] {
        f.store.create(&key(name), pod(name, "web")).await.unwrap();
    }
    while f.cache.revision() < 5 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let req = WatchRequest {
        resource_version: Some("1".into()),
        ..Default::default()
    };
    let got = events(serve(f.cache.clone(), req, None).unwrap(), 2).await;
    assert_eq!(got.len(), 1, "the stream ends after the error");
    assert_eq!(got[0]["type"], "ERROR");
    assert_eq!(got[0]["object"]["code"], 410);
    assert_eq!(got[0]["object"]["reason"], "Expired");
    assert_eq!(
        got[0]["object"]["message"],
        "too old resource version: 1 (3)"
    );
    let bad = WatchRequest {
        resource_version: Some("x".into()),
        ..Default::default()
    };
    assert_eq!(serve(f.cache.clone(), bad, None).unwrap_err().code, 400);
}

#[tokio::test]
async fn bookmarks_initial_events_end_and_timeouts() {
    let config = CacheConfig {
        bookmark_interval: Duration::from_millis(50),
        ..Default::default()
    };
    let f = fixture(config).await;
    f.store.create(&key("a"), pod("a", "web")).await.unwrap();
    while f.cache.revision() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let req = WatchRequest {
        send_initial_events: Some(true),
        resource_version_match: Some("NotOlderThan".into()),
        allow_bookmarks: true,
        ..Default::default()
    };
    let got = events(serve(f.cache.clone(), req, None).unwrap(), 3).await;
    assert_eq!(got[0]["type"], "ADDED");
    assert_eq!(got[1]["type"], "BOOKMARK");
    assert_eq!(
        got[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(got[1]["object"]["metadata"]["resourceVersion"], "2");
    assert_eq!(got[2]["type"], "BOOKMARK", "periodic bookmark");

    let missing_match = WatchRequest {
        send_initial_events: Some(true),
        allow_bookmarks: true,
        ..Default::default()
    };
    assert_eq!(
        serve(f.cache.clone(), missing_match, None)
            .unwrap_err()
            .code,
        422
    );

    let req = WatchRequest {
        timeout: Some(Duration::from_millis(100)),
        ..Default::default()
    };
    let got = events(serve(f.cache.clone(), req, None).unwrap(), 10).await;
    assert_eq!(
        got.len(),
        1,
        "one ADDED, then the stream ends at the timeout"
    );
}
