//! `dryRun=All` on every write verb: the answer is what a real write would return, nothing is persisted,
//! and the store's own refusals (a taken name) still apply, as kube-apiserver's dry-run storage does.

use serde_json::json;

use super::tests::{api, pod, PODS};

#[tokio::test]
async fn dry_run_writes_answer_without_persisting() {
    let api = api().await;
    let dry = |path: &str| format!("{path}?dryRun=All");

    let (s, obj) = api.call("POST", &dry(PODS), Some(pod("ghost"))).await;
    assert_eq!((s, obj["metadata"]["name"].as_str()), (201, Some("ghost")));
    let (s, _) = api.call("GET", &format!("{PODS}/ghost"), None).await;
    assert_eq!(s, 404, "a dry-run create must not persist");

    let (s, created) = api.call("POST", PODS, Some(pod("web"))).await;
    assert_eq!(s, 201, "{created}");
    let (s, err) = api.call("POST", &dry(PODS), Some(pod("web"))).await;
    assert_eq!((s, err["reason"].as_str()), (409, Some("AlreadyExists")));
    assert_eq!(err["message"], "pods \"web\" already exists");

    let web = format!("{PODS}/web");
    let mut changed = created.clone();
    changed["metadata"]["labels"]["tier"] = json!("front");
    let (s, put) = api.call("PUT", &dry(&web), Some(changed)).await;
    assert_eq!(
        (s, put["metadata"]["labels"]["tier"].as_str()),
        (200, Some("front"))
    );
    let patch = json!({"metadata": {"labels": {"x": "y"}}}).to_string();
    let merge = "application/merge-patch+json";
    let (s, patched, _) = api.send("PATCH", &dry(&web), merge, patch.into()).await;
    assert_eq!(
        (s, patched["metadata"]["labels"]["x"].as_str()),
        (200, Some("y"))
    );
    let (s, _) = api.call("DELETE", &dry(&web), None).await;
    assert_eq!(s, 200);

    let (s, stored) = api.call("GET", &web, None).await;
    assert_eq!(s, 200, "a dry-run delete must not persist");
    assert_eq!(stored["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(
        stored["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    let (s, err) = api
        .call("POST", &format!("{PODS}?dryRun=Some"), Some(pod("x")))
        .await;
    assert_eq!((s, err["reason"].as_str()), (400, Some("BadRequest")));
}
