//! DELETE semantics: graceful pod deletion and propagation to dependents.

use serde_json::{json, Value};

use super::tests::{api, pod, PODS};

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
