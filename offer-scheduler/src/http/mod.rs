//! The master's HTTP API: the Mesos v1 scheduler API, the operator API and state endpoints, and
//! the Kumos agent protocol.

mod agent;
mod scheduler;
mod standby;
mod state;

pub use standby::standby_response;

use crate::master::MESOS_VERSION;
use crate::service::{Frame, MasterHandle};
use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures::Stream;
use serde_json::{json, Value as Json};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

/// Path of the Kumos agent protocol (agents subscribe and post updates here).
pub const AGENT_PATH: &str = "/api/v1/kumos/agent";

/// The master's router.
pub fn router(handle: MasterHandle) -> Router {
    Router::new()
        .route("/api/v1/scheduler", post(scheduler::call))
        .route(AGENT_PATH, post(agent::call))
        .route("/version", get(version))
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/master/health", get(|| async { StatusCode::OK }))
        .route("/redirect", get(redirect))
        .route("/master/redirect", get(redirect))
        .merge(state::routes())
        .with_state(handle)
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "version": MESOS_VERSION,
            "build_date": "",
            "build_time": 0.0,
            "build_user": "kumos",
            "git_sha": env!("CARGO_PKG_VERSION"),
        }),
    )
}

/// This master is always the leader (no standby masters yet): redirect to itself.
async fn redirect(axum::extract::State(h): axum::extract::State<MasterHandle>) -> Response {
    let cfg = &h.config().master;
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(header::LOCATION, format!("//{}:{}", cfg.hostname, cfg.port))
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A JSON body with a status code.
pub(crate) fn json_response(status: StatusCode, body: &Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A plain-text error as Mesos sends them.
pub(crate) fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

/// Parses a call body: Content-Type must be JSON, the body a JSON object with a `type`.
pub(crate) fn parse_call(
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<Json, (u16, String)> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Err((400, "Expecting 'Content-Type' to be present".into()));
    };
    let ct = ct.to_str().unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime == "application/x-protobuf" {
        return Err((
            415,
            "Kumos speaks the Mesos v1 API in JSON only: use 'Content-Type: application/json'"
                .into(),
        ));
    }
    if mime != "application/json" {
        return Err((
            415,
            "Expecting 'Content-Type' of application/json or application/x-protobuf".into(),
        ));
    }
    let call: Json = serde_json::from_slice(body)
        .map_err(|e| (400, format!("Failed to parse body into JSON: {e}")))?;
    if !call.is_object() {
        return Err((
            400,
            format!("Failed to convert JSON into {what} protobuf: Expecting a JSON object"),
        ));
    }
    match call.get("type").and_then(Json::as_str) {
        Some(_) => Ok(call),
        None => Err((
            400,
            format!("Failed to validate {what}: Expecting 'type' to be present"),
        )),
    }
}

/// The `Mesos-Stream-Id` header.
pub(crate) fn stream_id(headers: &HeaderMap) -> Option<&str> {
    headers.get("mesos-stream-id").and_then(|v| v.to_str().ok())
}

/// A RecordIO response body fed by the master; HEARTBEAT records every `heartbeat` (if any).
/// Dropping it (the client went away) tells the master the stream is gone.
struct EventStream {
    rx: mpsc::UnboundedReceiver<Frame>,
    heartbeat: Option<tokio::time::Interval>,
    handle: MasterHandle,
    id: String,
}

impl Stream for EventStream {
    type Item = Result<Frame, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(frame) = self.rx.poll_recv(cx) {
            return Poll::Ready(frame.map(Ok));
        }
        if let Some(hb) = self.heartbeat.as_mut() {
            if hb.poll_tick(cx).is_ready() {
                let frame = crate::service::recordio(&json!({"type": "HEARTBEAT"}));
                return Poll::Ready(Some(Ok(frame)));
            }
        }
        Poll::Pending
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.handle.stream_gone(&self.id);
    }
}

/// The 200 streaming response for a SUBSCRIBE.
pub(crate) fn stream_response(
    handle: MasterHandle,
    id: String,
    rx: mpsc::UnboundedReceiver<Frame>,
    heartbeat: Option<Duration>,
) -> Response {
    let heartbeat = heartbeat.map(|d| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    let stream = EventStream {
        rx,
        heartbeat,
        handle,
        id: id.clone(),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Mesos-Stream-Id", id)
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
