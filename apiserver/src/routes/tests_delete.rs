//! DELETE semantics: graceful pod deletion and propagation to dependents.

use serde_json::{json, Value};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::tests::{api, api_with, pod, PODS};
use crate::storage::embedded::EmbeddedStore;
use crate::storage::{Deleted, KeyValue, Revision, Storage, WatchStream};

const RCS: &str = "/api/v1/namespaces/default/replicationcontrollers";

fn rc() -> Value {
    json!({"metadata": {"name": "rc"},
        "spec": {"replicas": 1, "selector": {"app": "web"},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

fn owned_pod(name: &str, owner_uid: &str) -> Value {
    let mut p = pod(name);
    p["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ReplicationController",
        "name": "rc", "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]);
    p
}

#[tokio::test]
async fn pods_on_a_node_are_deleted_gracefully() {
    let api = api().await;
    api.call("POST", PODS, Some(pod("web"))).await;
    let bind = json!({"target": {"kind": "Node", "name": "n1"}, "metadata": {"name": "web"}});
    assert_eq!(
        api.call("POST", &format!("{PODS}/web/binding"), Some(bind))
            .await
            .0,
        201
    );
    let (s, deleting) = api.call("DELETE", &format!("{PODS}/web"), None).await;
    assert_eq!(s, 200);
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(deleting["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(
        api.call("GET", &format!("{PODS}/web"), None).await.0,
        200,
        "waits for its agent"
    );
    let (s, _) = api
        .call("DELETE", &format!("{PODS}/web?gracePeriodSeconds=0"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        api.call("GET", &format!("{PODS}/web"), None).await.0,
        404,
        "grace 0 deletes at once"
    );
}

#[tokio::test]
async fn propagation_policies_orphan_foreground_and_background() {
    let api = api().await;
    for policy in ["Orphan", "Foreground", "Background"] {
        let (_, owner) = api.call("POST", RCS, Some(rc())).await;
        let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
        assert_eq!(
            api.call("POST", PODS, Some(owned_pod("dep", &uid))).await.0,
            201
        );
        let body =
            json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy});
        let (s, _) = api.call("DELETE", &format!("{RCS}/rc"), Some(body)).await;
        assert_eq!(s, 200, "{policy}");
        assert_eq!(
            api.call("GET", &format!("{RCS}/rc"), None).await.0,
            404,
            "{policy}: owner gone"
        );
        let (s, dep) = api.call("GET", &format!("{PODS}/dep"), None).await;
        match policy {
            "Orphan" => {
                assert_eq!(s, 200);
                assert!(
                    dep["metadata"]
                        .get("ownerReferences")
                        .is_none_or(|r| r == &json!([])),
                    "{dep}"
                );
            }
            "Foreground" => assert_eq!(s, 404, "dependents are deleted first"),
            _ => assert_eq!(
                s, 200,
                "background leaves dependents to the garbage collector"
            ),
        }
        api.call("DELETE", &format!("{PODS}/dep"), None).await;
    }
    let bad = json!({"propagationPolicy": "Sometimes"});
    api.call("POST", RCS, Some(rc())).await;
    let (s, err) = api.call("DELETE", &format!("{RCS}/rc"), Some(bad)).await;
    assert_eq!((s, err["reason"].as_str()), (422, Some("Invalid")));
}

/// The embedded store, where the first update of a pod after `armed` is set races with another
/// writer (which adds the label `touched`), so that update conflicts.
struct RacingStore {
    inner: Arc<EmbeddedStore>,
    armed: Arc<AtomicBool>,
}

#[async_trait]
impl Storage for RacingStore {
    async fn get(&self, key: &str) -> crate::storage::Result<Option<KeyValue>> {
        self.inner.get(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
        revision: Revision,
    ) -> crate::storage::Result<crate::storage::ListResult> {
        self.inner.list(prefix, start, limit, revision).await
    }
    async fn create(&self, key: &str, value: Vec<u8>) -> crate::storage::Result<KeyValue> {
        self.inner.create(key, value).await
    }
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> crate::storage::Result<KeyValue> {
        if key.contains("/pods/") && self.armed.swap(false, Ordering::SeqCst) {
            if let Some(kv) = self.inner.get(key).await? {
                let mut obj: Value = serde_json::from_slice(&kv.value).unwrap();
                obj["metadata"]["labels"]["touched"] = json!("yes");
                let bytes = serde_json::to_vec(&obj).unwrap();
                self.inner.update(key, bytes, kv.mod_revision).await?;
            }
        }
        self.inner.update(key, value, expected).await
    }
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> crate::storage::Result<Deleted> {
        self.inner.delete(key, expected).await
    }
    async fn current_revision(&self) -> crate::storage::Result<Revision> {
        self.inner.current_revision().await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> crate::storage::Result<WatchStream> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> crate::storage::Result<()> {
        self.inner.compact(revision).await
    }
}

#[tokio::test]
async fn orphaning_retries_a_dependent_written_meanwhile() {
    let armed = Arc::new(AtomicBool::new(false));
    let trigger = armed.clone();
    let api = api_with(move |inner| {
        Arc::new(RacingStore {
            inner,
            armed: trigger,
        })
    })
    .await;
    let (_, owner) = api.call("POST", RCS, Some(rc())).await;
    let uid = owner["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(
        api.call("POST", PODS, Some(owned_pod("dep", &uid))).await.0,
        201
    );
    armed.store(true, Ordering::SeqCst);
    let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"});
    assert_eq!(
        api.call("DELETE", &format!("{RCS}/rc"), Some(body)).await.0,
        200
    );
    assert!(!armed.load(Ordering::SeqCst), "the race happened");
    let (s, dep) = api.call("GET", &format!("{PODS}/dep"), None).await;
    assert_eq!(s, 200);
    assert_eq!(dep["metadata"]["labels"]["touched"], "yes", "{dep}");
    assert!(
        dep["metadata"]
            .get("ownerReferences")
            .is_none_or(|r| r == &json!([])),
        "the orphan keeps no reference to the deleted owner: {dep}"
    );
}
