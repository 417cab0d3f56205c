//! `pods/log` against a fake agent and a fake master `/slaves`.

use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{router, AppState};
use crate::agents::AgentAccess;
use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};

const SECRET: &str = "agent-secret";

/// The fake agent echoes `ns/pod/container?query`; container `missing` is unknown to it.
async fn fake_agent(
    Path((ns, pod, c)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {SECRET}")) {
        return (StatusCode::UNAUTHORIZED, "Unauthorized".into());
    }
    if c == "missing" {
        let msg = format!("container \"{c}\" in pod \"{pod}\" is not available\n");
        return (StatusCode::NOT_FOUND, msg);
    }
    (
        StatusCode::OK,
        format!("{ns}/{pod}/{c}?{}\n", q.unwrap_or_default()),
    )
}

struct Env {
    app: axum::Router,
    agent_port: u16,
    _dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An API with a master (serving `/slaves` naming `agent-0`) and that agent, both fakes.
async fn env() -> Env {
    let shutdown = CancellationToken::new();
    let agent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agent_port = agent.local_addr().unwrap().port();
    let app = axum::Router::new().route("/containerLogs/{ns}/{pod}/{c}", get(fake_agent));
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(agent, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
    });
    let master = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let master_url = format!("http://{}", master.local_addr().unwrap());
    let slaves =
        json!({"slaves": [{"hostname": "agent-0.invalid", "port": agent_port, "active": true}]});
    let app = axum::Router::new().route(
        "/slaves",
        get(move || {
            let s = slaves.clone();
            async move { axum::Json(s) }
        }),
    );
    let token = shutdown.clone();
    tokio::spawn(async move {
        let _ = axum::serve(master, app)
            .with_graceful_shutdown(token.cancelled_owned())
            .await;
    });
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), EmbeddedConfig::default()).unwrap();
    let state = AppState::new(std::sync::Arc::new(store), shutdown.clone())
        .await
        .unwrap()
        .with_agent_access(AgentAccess {
            master_url: Some(master_url),
            secret: Some(SECRET.into()),
        });
    Env {
        app: router(state),
        agent_port,
        _dir: dir,
        shutdown,
    }
}

impl Env {
    async fn call(&self, method: &str, uri: &str, body: Option<Value>) -> (u16, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn pod(&self, name: &str, containers: &[&str], node: Option<&str>) -> String {
        let cs: Vec<Value> = containers
            .iter()
            .map(|c| json!({"name": c, "image": "busybox"}))
            .collect();
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                             "spec": {"containers": cs}});
        if let Some(n) = node {
            pod["spec"]["nodeName"] = json!(n);
        }
        let (s, body) = self.call("POST", PODS, Some(pod)).await;
        assert_eq!(s, 201, "{body}");
        let created: Value = serde_json::from_str(&body).unwrap();
        created["metadata"]["uid"].as_str().unwrap().to_string()
    }
}

const PODS: &str = "/api/v1/namespaces/default/pods";

fn message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn proxies_to_the_agent_found_through_the_master() {
    let env = env().await;
    let uid = env.pod("web", &["app"], Some("agent-0.invalid")).await;
    let (s, body) = env
        .call(
            "GET",
            &format!("{PODS}/web/log?follow=true&tailLines=1&timestamps=true&sinceSeconds=10"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body,
        format!(
            "default/web/app?follow=true&timestamps=true&tailLines=1&sinceSeconds=10&podUID={uid}\n"
        )
    );
}

#[tokio::test]
async fn a_nodes_address_and_kubelet_port_win() {
    let env = env().await;
    env.pod("web", &["app"], Some("n1")).await;
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": env.agent_port}}}});
    let (s, body) = env.call("POST", "/api/v1/nodes", Some(node)).await;
    assert_eq!(s, 201, "{body}");
    let (s, body) = env
        .call("GET", &format!("{PODS}/web/log?container=app"), None)
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.starts_with("default/web/app?podUID="), "{body}");
}

#[tokio::test]
async fn container_choice_as_kube() {
    let env = env().await;
    env.pod("two", &["a", "b"], Some("agent-0.invalid")).await;
    let (s, body) = env.call("GET", &format!("{PODS}/two/log"), None).await;
    assert_eq!(s, 400);
    assert_eq!(
        message(&body),
        "a container name must be specified for pod two, choose one of: [a b]"
    );
    let (s, body) = env
        .call("GET", &format!("{PODS}/two/log?container=x"), None)
        .await;
    assert_eq!(s, 400);
    assert_eq!(message(&body), "container x is not valid for pod two");
    let (s, body) = env.call("GET", &format!("{PODS}/nope/log"), None).await;
    assert_eq!(s, 404);
    assert_eq!(message(&body), "pods \"nope\" not found");
}

#[tokio::test]
async fn unscheduled_pods_and_agent_errors() {
    let env = env().await;
    env.pod("pending", &["app"], None).await;
    let (s, body) = env.call("GET", &format!("{PODS}/pending/log"), None).await;
    assert_eq!(s, 400);
    assert_eq!(
        message(&body),
        "container \"app\" in pod \"pending\" is waiting to start: ContainerCreating"
    );
    env.pod("gone", &["missing"], Some("agent-0.invalid")).await;
    let (s, body) = env.call("GET", &format!("{PODS}/gone/log"), None).await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(
        message(&body),
        "container \"missing\" in pod \"gone\" is not available"
    );
    env.pod("lost", &["app"], Some("no-such-agent")).await;
    let (s, _) = env.call("GET", &format!("{PODS}/lost/log"), None).await;
    assert_eq!(s, 500);
    let (s, body) = env
        .call("GET", &format!("{PODS}/pending/log?tailLines=-1"), None)
        .await;
    assert_eq!(s, 422, "{body}");
}
