//! Handler tests of the agent's log endpoint over a fake sandbox.

use super::*;
use crate::logs::{format_cri_line, log_path, LogStream};
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

const SECRET: &str = "s3cret";

struct Fixture {
    _dir: tempfile::TempDir,
    sandbox: std::path::PathBuf,
    index: LogIndex,
    key: (String, String),
}

fn ts(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).expect("timestamp")
}

/// A pod task `ns/web`, container `app`, with three lines one second apart in run 0.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let sandbox = dir.path().join("sandbox");
    let path = log_path(&sandbox, "main", 0);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let mut text = Vec::new();
    for i in 1..=3 {
        let line = format!("line-{i}");
        text.extend(format_cri_line(ts(i), LogStream::Stdout, line.as_bytes()));
    }
    std::fs::write(&path, text).expect("write log");
    let index = LogIndex::default();
    let key = ("fw-1".to_string(), "uid-1.app".to_string());
    let info = json!({"labels": {"labels": [
        {"key": "kumos.io/pod-uid", "value": "uid-1"},
        {"key": "kumos.io/pod-namespace", "value": "ns"},
        {"key": "kumos.io/pod-name", "value": "web"},
        {"key": "kumos.io/container", "value": "app"},
    ]}});
    index.insert(&key, sandbox.clone(), &info, false);
    Fixture {
        _dir: dir,
        sandbox,
        index,
        key,
    }
}

async fn get(index: &LogIndex, uri: &str, secret: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::get(uri);
    if let Some(s) = secret {
        req = req.header("authorization", format!("Bearer {s}"));
    }
    let resp = router(index.clone(), SECRET)
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn serves_a_pod_containers_log() {
    let f = fixture();
    f.index.finish(&f.key);
    let (status, body) = get(&f.index, "/containerLogs/ns/web/app", Some(SECRET)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "line-1\nline-2\nline-3\n");
    let (_, body) = get(
        &f.index,
        "/containerLogs/ns/web/app?tailLines=1",
        Some(SECRET),
    )
    .await;
    assert_eq!(body, "line-3\n");
    let (_, body) = get(
        &f.index,
        "/containerLogs/ns/web/app?timestamps=true&tailLines=1",
        Some(SECRET),
    )
    .await;
    assert_eq!(body, "2023-11-14T22:13:23.000000000Z line-3\n");
    let (_, body) = get(
        &f.index,
        "/containerLogs/ns/web/app?sinceTime=2023-11-14T22:13:22Z",
        Some(SECRET),
    )
    .await;
    assert_eq!(body, "line-2\nline-3\n");
    let (status, _) = get(
        &f.index,
        "/containerLogs/ns/web/app?podUID=uid-1",
        Some(SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn needs_the_agent_secret() {
    let f = fixture();
    for secret in [None, Some("wrong"), Some("")] {
        let (status, _) = get(&f.index, "/containerLogs/ns/web/app", secret).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{secret:?}");
    }
}

#[tokio::test]
async fn unknown_pods_and_containers_are_not_available() {
    let f = fixture();
    let (status, body) = get(&f.index, "/containerLogs/ns/web/x", Some(SECRET)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body.trim(),
        r#"container "x" in pod "web" is not available"#
    );
    let (status, _) = get(&f.index, "/containerLogs/other/web/app", Some(SECRET)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(
        &f.index,
        "/containerLogs/ns/web/app?podUID=uid-2",
        Some(SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get(&f.index, "/tasks/fw-1/nope/logs", Some(SECRET)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_parameters_and_missing_runs_are_bad_requests() {
    let f = fixture();
    for q in [
        "tailLines=-1",
        "sinceSeconds=0",
        "follow=maybe",
        "sinceTime=yesterday",
        "sinceSeconds=5&sinceTime=2023-11-14T22:13:22Z",
    ] {
        let uri = format!("/containerLogs/ns/web/app?{q}");
        let (status, _) = get(&f.index, &uri, Some(SECRET)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
    }
    let (status, body) = get(
        &f.index,
        "/containerLogs/ns/web/app?previous=true",
        Some(SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body.trim(),
        r#"previous terminated container "app" in pod "web" not found"#
    );
    std::fs::remove_dir_all(f.sandbox.join("logs")).expect("rm logs");
    let (status, body) = get(&f.index, "/containerLogs/ns/web/app", Some(SECRET)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body.contains("is waiting to start: ContainerCreating"),
        "{body}"
    );
}

#[tokio::test]
async fn task_logs_of_plain_mesos_tasks() {
    let f = fixture();
    f.index.finish(&f.key);
    let (status, body) = get(
        &f.index,
        "/tasks/fw-1/uid-1.app/logs?tailLines=2",
        Some(SECRET),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "line-2\nline-3\n");
}

#[tokio::test]
async fn follow_streams_until_the_task_is_terminal() {
    let f = fixture();
    let mut req = Request::get("/containerLogs/ns/web/app?follow=true&tailLines=0");
    req = req.header("authorization", format!("Bearer {SECRET}"));
    let resp = router(f.index.clone(), SECRET)
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body();
    let path = log_path(&f.sandbox, "main", 0);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open log");
    std::io::Write::write_all(
        &mut file,
        &format_cri_line(ts(4), LogStream::Stdout, b"line-4"),
    )
    .expect("append");
    let deadline = Duration::from_secs(30);
    let frame = tokio::time::timeout(deadline, body.frame())
        .await
        .expect("a line in time")
        .expect("a frame")
        .expect("no error");
    assert_eq!(frame.into_data().ok().as_deref(), Some(&b"line-4\n"[..]));
    f.index.finish(&f.key);
    let rest = tokio::time::timeout(deadline, body.collect())
        .await
        .expect("the stream ends once the task is terminal")
        .expect("body");
    assert!(rest.to_bytes().is_empty());
}

#[test]
fn since_seconds_counts_back_from_now() {
    let q: HashMap<String, String> = [("sinceSeconds".to_string(), "10".to_string())].into();
    let opts = log_options(&q, ts(100)).expect("options");
    assert_eq!(opts.since, Some(ts(90)));
    assert!(!opts.follow && !opts.timestamps && !opts.previous);
}
