//! Handler tests for the master's HTTP layer (Mesos v1 scheduler API, operator API, state
//! endpoints and the Kumos agent protocol), driven through the real router and a running
//! `MasterService` backed by an in-memory store.

use axum::body::Body;
use axum::http::{header, Method, Request, Response, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use offer_scheduler::master::Config;
use offer_scheduler::service::{MasterService, MasterStore, ServiceConfig, StoreError};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Failure guard for anything awaited on a stream (never a timing assertion).
const GUARD: Duration = Duration::from_secs(10);
const SECRET: &str = "s3cret";
const SCHEDULER: &str = "/api/v1/scheduler";
const AGENT: &str = "/api/v1/kumos/agent";

#[derive(Default)]
struct MemStore(Mutex<BTreeMap<String, Json>>);

#[async_trait::async_trait]
impl MasterStore for MemStore {
    async fn load(&self) -> Result<Vec<(String, Json)>, StoreError> {
        let m = self.0.lock().map_err(|e| StoreError(e.to_string()))?;
        Ok(m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }

    async fn put(&self, key: &str, value: Option<&Json>) -> Result<(), StoreError> {
        let mut m = self.0.lock().map_err(|e| StoreError(e.to_string()))?;
        match value {
            Some(v) => m.insert(key.to_string(), v.clone()),
            None => m.remove(key),
        };
        Ok(())
    }
}

struct Harness {
    app: Router,
    service: Option<MasterService>,
}

impl Harness {
    async fn new() -> Harness {
        let cfg = ServiceConfig {
            master: Config::default(),
            allocation_interval: Duration::from_millis(50),
            agent_secret: SECRET.into(),
        };
        let store: Arc<dyn MasterStore> = Arc::new(MemStore::default());
        let service = MasterService::start(cfg, store, CancellationToken::new())
            .await
            .expect("master starts");
        let app = offer_scheduler::http::router(service.handle.clone());
        Harness {
            app,
            service: Some(service),
        }
    }

    async fn send(&self, req: Request<Body>) -> Response<Body> {
        self.app.clone().oneshot(req).await.expect("infallible")
    }

    /// POST `body` as JSON to `path` with extra headers.
    async fn post(&self, path: &str, body: &Json, headers: &[(&str, &str)]) -> Response<Body> {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        self.send(b.body(Body::from(body.to_string())).expect("request"))
            .await
    }

    async fn get(&self, path: &str) -> Response<Body> {
        self.send(
            Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request"),
        )
        .await
    }

    /// Subscribes a framework; returns its open stream.
    async fn subscribe(&self, info: Json) -> Stream {
        let resp = self
            .post(
                SCHEDULER,
                &json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}),
                &[],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut s = Stream::new(resp);
        let ev = s.next().await;
        assert_eq!(ev["type"], "SUBSCRIBED", "{ev}");
        s.id = ev["subscribed"]["framework_id"]["value"]
            .as_str()
            .expect("framework_id")
            .to_string();
        s
    }

    /// Subscribes an agent with 4 cpus and 4096 mem; returns its open stream (id = agent id).
    async fn agent(&self, hostname: &str) -> Stream {
        let resp = self
            .post(
                AGENT,
                &json!({"type": "SUBSCRIBE", "subscribe": {"agent_info": {
                    "hostname": hostname,
                    "resources": [
                        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 4.0}},
                        {"name": "mem", "type": "SCALAR", "scalar": {"value": 4096.0}},
                    ],
                }}}),
                &[("authorization", &format!("Bearer {SECRET}"))],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK);
        let mut s = Stream::new(resp);
        let ev = s.next().await;
        assert_eq!(ev["type"], "SUBSCRIBED", "{ev}");
        s.id = ev["subscribed"]["agent_id"]["value"]
            .as_str()
            .expect("agent_id")
            .to_string();
        s
    }

    /// A scheduler call for framework `fid` on `stream` (None = no Mesos-Stream-Id header).
    async fn call(&self, stream: Option<&str>, body: Json) -> Response<Body> {
        match stream {
            Some(sid) => {
                self.post(SCHEDULER, &body, &[("mesos-stream-id", sid)])
                    .await
            }
            None => self.post(SCHEDULER, &body, &[]).await,
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Stop the loops; the runtime goes away with the test anyway.
        if let Some(s) = self.service.take() {
            drop(tokio::spawn(s.shutdown()));
        }
    }
}

/// An open RecordIO event stream.
struct Stream {
    /// Mesos-Stream-Id header.
    stream_id: String,
    /// Framework or agent id from SUBSCRIBED.
    id: String,
    body: Body,
    buf: Vec<u8>,
}

impl Stream {
    fn new(resp: Response<Body>) -> Stream {
        assert_eq!(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        let stream_id = resp
            .headers()
            .get("mesos-stream-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(!stream_id.is_empty(), "Mesos-Stream-Id header");
        Stream {
            stream_id,
            id: String::new(),
            body: resp.into_body(),
            buf: Vec::new(),
        }
    }

    /// The next record's raw JSON text, checking the RecordIO framing.
    async fn next_raw(&mut self) -> String {
        loop {
            if let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let len: usize = std::str::from_utf8(&self.buf[..nl])
                    .expect("utf-8 length")
                    .parse()
                    .expect("decimal record length");
                if self.buf.len() >= nl + 1 + len {
                    let rec: Vec<u8> = self.buf.drain(..nl + 1 + len).skip(nl + 1).collect();
                    let text = String::from_utf8(rec).expect("utf-8 record");
                    assert!(!text.contains('\n'), "record has a newline: {text:?}");
                    return text;
                }
            }
            let frame = tokio::time::timeout(GUARD, self.body.frame())
                .await
                .expect("a record before the guard timeout")
                .expect("stream still open")
                .expect("body error");
            if let Ok(data) = frame.into_data() {
                self.buf.extend_from_slice(&data);
            }
        }
    }

    async fn next(&mut self) -> Json {
        let raw = self.next_raw().await;
        serde_json::from_str(&raw).expect("record is JSON")
    }

    /// Skips records until one of type `kind` (HEARTBEATs and others are skipped).
    async fn next_of(&mut self, kind: &str) -> Json {
        loop {
            let ev = self.next().await;
            if ev["type"] == kind {
                return ev;
            }
        }
    }
}

async fn text(resp: Response<Body>) -> String {
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8 body")
}

async fn json_body(resp: Response<Body>) -> Json {
    let t = text(resp).await;
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
}

fn fw_info() -> Json {
    json!({"user": "u", "name": "n"})
}

async fn assert_error(resp: Response<Body>, status: StatusCode, message: &str) {
    assert_eq!(resp.status(), status);
    assert_eq!(text(resp).await, message);
}

async fn assert_accepted(resp: Response<Body>) {
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(text(resp).await, "");
}

// ---- 1. SUBSCRIBE --------------------------------------------------------------------------

#[tokio::test]
async fn subscribe_streams_recordio_subscribed() {
    let h = Harness::new().await;
    let resp = h
        .post(
            SCHEDULER,
            &json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut s = Stream::new(resp);
    // The first frame of the body is exactly one record: `<len>\n<json>`.
    let frame = tokio::time::timeout(GUARD, s.body.frame())
        .await
        .expect("first frame")
        .expect("open")
        .expect("ok")
        .into_data()
        .expect("data frame");
    let frame = std::str::from_utf8(&frame).expect("utf-8").to_string();
    let (len, rest) = frame.split_once('\n').expect("length line");
    let len: usize = len.parse().expect("decimal length");
    let record = &rest[..len];
    assert_eq!(len, record.len());
    assert!(!record.contains('\n'));
    let ev: Json = serde_json::from_str(record).expect("JSON record");
    assert_eq!(ev["type"], "SUBSCRIBED");
    let fid = ev["subscribed"]["framework_id"]["value"]
        .as_str()
        .expect("framework_id.value");
    assert!(!fid.is_empty());
    assert_eq!(ev["subscribed"]["heartbeat_interval_seconds"], json!(15.0));
}

#[tokio::test]
async fn subscribe_ignores_unknown_fields() {
    let h = Harness::new().await;
    let resp = h
        .post(
            SCHEDULER,
            &json!({"type": "SUBSCRIBE", "no_such_field": 1,
                    "subscribe": {"framework_info": {"user": "u", "name": "n", "extra": "x"}}}),
            &[],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut s = Stream::new(resp);
    assert_eq!(s.next().await["type"], "SUBSCRIBED");
}

// ---- 2. Non-SUBSCRIBE calls ----------------------------------------------------------------

#[tokio::test]
async fn call_without_stream_id_is_400() {
    let h = Harness::new().await;
    let s = h.subscribe(fw_info()).await;
    let resp = h
        .call(
            None,
            json!({"type": "REVIVE", "framework_id": {"value": s.id}}),
        )
        .await;
    assert_error(
        resp,
        StatusCode::BAD_REQUEST,
        "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
    )
    .await;
}

#[tokio::test]
async fn call_with_wrong_stream_id_is_403() {
    let h = Harness::new().await;
    let s = h.subscribe(fw_info()).await;
    let resp = h
        .call(
            Some("not-the-stream"),
            json!({"type": "REVIVE", "framework_id": {"value": s.id}}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let t = text(resp).await;
    assert!(t.starts_with("The stream ID"), "{t}");
}

#[tokio::test]
async fn call_for_unknown_framework_is_400() {
    let h = Harness::new().await;
    let resp = h
        .call(
            Some("x"),
            json!({"type": "REVIVE", "framework_id": {"value": "nope"}}),
        )
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "Framework cannot be found").await;
}

#[tokio::test]
async fn call_without_framework_id_is_400() {
    let h = Harness::new().await;
    let resp = h.call(Some("x"), json!({"type": "REVIVE"})).await;
    assert_error(
        resp,
        StatusCode::BAD_REQUEST,
        "Failed to validate scheduler::Call: Expecting 'framework_id' to be present",
    )
    .await;
}

#[tokio::test]
async fn valid_calls_are_202_with_empty_body() {
    let h = Harness::new().await;
    let s = h.subscribe(fw_info()).await;
    let fid = json!({"value": s.id});
    let calls = [
        json!({"type": "REVIVE", "framework_id": fid}),
        json!({"type": "SUPPRESS", "framework_id": fid}),
        json!({"type": "REVIVE", "framework_id": fid, "revive": {"roles": ["*"]}}),
        json!({"type": "DECLINE", "framework_id": fid,
               "decline": {"offer_ids": [{"value": "no-such-offer"}], "filters": {"refuse_seconds": 1.0}}}),
        json!({"type": "RECONCILE", "framework_id": fid, "reconcile": {"tasks": []}}),
        json!({"type": "KILL", "framework_id": fid, "kill": {"task_id": {"value": "t1"}}}),
    ];
    for c in calls {
        let resp = h.call(Some(&s.stream_id), c.clone()).await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED, "{c}");
        assert_eq!(text(resp).await, "", "{c}");
    }
}

#[tokio::test]
async fn accept_without_accept_is_400() {
    let h = Harness::new().await;
    let s = h.subscribe(fw_info()).await;
    let resp = h
        .call(
            Some(&s.stream_id),
            json!({"type": "ACCEPT", "framework_id": {"value": s.id}}),
        )
        .await;
    assert_error(
        resp,
        StatusCode::BAD_REQUEST,
        "Failed to validate scheduler::Call: Expecting 'accept' to be present",
    )
    .await;
}

// ---- 3. Request validation -----------------------------------------------------------------

fn raw_post(path: &str, content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut b = Request::builder().method(Method::POST).uri(path);
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(Body::from(body.to_string())).expect("request")
}

#[tokio::test]
async fn malformed_json_is_400() {
    let h = Harness::new().await;
    let resp = h
        .send(raw_post(SCHEDULER, Some("application/json"), "{not json"))
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let t = text(resp).await;
    assert!(t.starts_with("Failed to parse body into JSON"), "{t}");
}

#[tokio::test]
async fn body_without_type_is_400() {
    let h = Harness::new().await;
    let resp = h
        .send(raw_post(
            SCHEDULER,
            Some("application/json"),
            r#"{"subscribe":{}}"#,
        ))
        .await;
    assert_error(
        resp,
        StatusCode::BAD_REQUEST,
        "Failed to validate scheduler::Call: Expecting 'type' to be present",
    )
    .await;
}

#[tokio::test]
async fn text_plain_is_415() {
    let h = Harness::new().await;
    let resp = h
        .send(raw_post(
            SCHEDULER,
            Some("text/plain"),
            r#"{"type":"SUBSCRIBE"}"#,
        ))
        .await;
    assert_error(
        resp,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "Expecting 'Content-Type' of application/json or application/x-protobuf",
    )
    .await;
}

#[tokio::test]
async fn protobuf_is_415() {
    let h = Harness::new().await;
    let resp = h
        .send(raw_post(
            SCHEDULER,
            Some("application/x-protobuf"),
            "\u{8}\u{1}",
        ))
        .await;
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn get_scheduler_is_405() {
    let h = Harness::new().await;
    let resp = h.get(SCHEDULER).await;
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn subscribe_with_stream_id_is_400() {
    let h = Harness::new().await;
    let resp = h
        .call(
            Some("some-stream"),
            json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": fw_info()}}),
        )
        .await;
    assert_error(
        resp,
        StatusCode::BAD_REQUEST,
        "Subscribe calls should not include the 'Mesos-Stream-Id' header",
    )
    .await;
}

#[tokio::test]
async fn subscribe_accepting_html_is_406() {
    let h = Harness::new().await;
    let resp = h
        .post(
            SCHEDULER,
            &json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": fw_info()}}),
            &[("accept", "text/html")],
        )
        .await;
    assert_error(
        resp,
        StatusCode::NOT_ACCEPTABLE,
        "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
    )
    .await;
}

#[tokio::test]
async fn subscribe_accepting_any_or_json_succeeds() {
    let h = Harness::new().await;
    for accept in [
        "*/*",
        "application/json",
        "text/html, application/json;q=0.9",
    ] {
        let resp = h
            .post(
                SCHEDULER,
                &json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": fw_info()}}),
                &[("accept", accept)],
            )
            .await;
        assert_eq!(resp.status(), StatusCode::OK, "{accept}");
        assert_eq!(Stream::new(resp).next().await["type"], "SUBSCRIBED");
    }
}

#[tokio::test]
async fn missing_content_type_is_400() {
    let h = Harness::new().await;
    let resp = h
        .send(raw_post(SCHEDULER, None, r#"{"type":"SUBSCRIBE"}"#))
        .await;
    assert_error(
        resp,
        StatusCode::BAD_REQUEST,
        "Expecting 'Content-Type' to be present",
    )
    .await;
}

#[tokio::test]
async fn unknown_fields_in_a_call_are_ignored() {
    let h = Harness::new().await;
    let s = h.subscribe(fw_info()).await;
    let resp = h
        .call(
            Some(&s.stream_id),
            json!({"type": "REVIVE", "framework_id": {"value": s.id, "x": 1}, "bogus": true}),
        )
        .await;
    assert_accepted(resp).await;
}

// ---- 4. Agent protocol ---------------------------------------------------------------------

#[tokio::test]
async fn agent_without_authorization_is_401() {
    let h = Harness::new().await;
    let resp = h
        .post(AGENT, &json!({"type": "SUBSCRIBE", "subscribe": {}}), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn agent_with_wrong_bearer_is_401() {
    let h = Harness::new().await;
    let resp = h
        .post(
            AGENT,
            &json!({"type": "SUBSCRIBE", "subscribe": {}}),
            &[("authorization", "Bearer wrong")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn agent_resources_are_offered_to_a_subscribed_framework() {
    let h = Harness::new().await;
    let mut fw = h.subscribe(fw_info()).await;
    let agent = h.agent("agent-1").await;
    let ev = fw.next_of("OFFERS").await;
    let offers = ev["offers"]["offers"].as_array().expect("offers.offers");
    assert_eq!(offers.len(), 1, "{ev}");
    let o = &offers[0];
    assert_eq!(o["agent_id"]["value"], agent.id.as_str());
    assert_eq!(o["framework_id"]["value"], fw.id.as_str());
    assert_eq!(o["hostname"], "agent-1");
    let scalar = |name: &str| -> f64 {
        o["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter(|r| r["name"] == name)
            .filter_map(|r| r["scalar"]["value"].as_f64())
            .sum()
    };
    assert_eq!(scalar("cpus"), 4.0);
    assert_eq!(scalar("mem"), 4096.0);
}

#[tokio::test]
async fn agent_heartbeat_and_update_stream_checks() {
    let h = Harness::new().await;
    let agent = h.agent("agent-1").await;
    let auth = format!("Bearer {SECRET}");
    let resp = h
        .post(
            AGENT,
            &json!({"type": "HEARTBEAT", "agent_id": {"value": agent.id}}),
            &[
                ("authorization", &auth),
                ("mesos-stream-id", &agent.stream_id),
            ],
        )
        .await;
    assert_accepted(resp).await;
    let resp = h
        .post(
            AGENT,
            &json!({"type": "UPDATE", "agent_id": {"value": agent.id},
                    "update": {"status": {"task_id": {"value": "t"}, "state": "TASK_RUNNING"}}}),
            &[("authorization", &auth), ("mesos-stream-id", "wrong")],
        )
        .await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

// ---- 5. Stream close -----------------------------------------------------------------------

#[tokio::test]
async fn closing_the_stream_deactivates_the_framework() {
    let h = Harness::new().await;
    // A failover timeout keeps the disconnected framework around (0 would remove it at once).
    let s = h
        .subscribe(json!({"user": "u", "name": "n", "failover_timeout": 3600.0}))
        .await;
    let (sid, fid) = (s.stream_id.clone(), s.id.clone());
    drop(s);
    let resp = h
        .call(
            Some(&sid),
            json!({"type": "REVIVE", "framework_id": {"value": fid}}),
        )
        .await;
    assert_error(resp, StatusCode::FORBIDDEN, "Framework is not subscribed").await;
}

// ---- 6. State, version, redirect, operator API ---------------------------------------------

#[tokio::test]
async fn version_is_mesos_1_11() {
    let h = Harness::new().await;
    let resp = h.get("/version").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(json_body(resp).await["version"], "1.11.0");
}

#[tokio::test]
async fn master_redirect_is_307_to_itself() {
    let h = Harness::new().await;
    let resp = h.get("/master/redirect").await;
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        resp.headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("//127.0.0.1:5050")
    );
}

#[tokio::test]
async fn state_endpoints_list_slaves_and_frameworks() {
    let h = Harness::new().await;
    let _fw = h.subscribe(fw_info()).await;
    let _agent = h.agent("agent-1").await;
    for path in ["/state", "/master/state.json"] {
        let resp = h.get(path).await;
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let v = json_body(resp).await;
        assert_eq!(v["slaves"].as_array().map(Vec::len), Some(1), "{path}: {v}");
        assert_eq!(
            v["frameworks"].as_array().map(Vec::len),
            Some(1),
            "{path}: {v}"
        );
    }
}

#[tokio::test]
async fn operator_get_health() {
    let h = Harness::new().await;
    let resp = h
        .post("/api/v1/operator", &json!({"type": "GET_HEALTH"}), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        json_body(resp).await,
        json!({"type": "GET_HEALTH", "get_health": {"healthy": true}})
    );
}

#[tokio::test]
async fn operator_get_version_on_api_v1() {
    let h = Harness::new().await;
    let resp = h
        .post("/api/v1", &json!({"type": "GET_VERSION"}), &[])
        .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let v = json_body(resp).await;
    assert_eq!(v["type"], "GET_VERSION");
    assert_eq!(v["get_version"]["version_info"]["version"], "1.11.0");
}
