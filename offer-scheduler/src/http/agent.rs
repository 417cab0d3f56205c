//! The Kumos agent protocol (`POST /api/v1/kumos/agent`), shaped like the scheduler API: an agent
//! SUBSCRIBEs (with its resources, attributes and the tasks it runs) and receives LAUNCH,
//! LAUNCH_GROUP, KILL, ACKNOWLEDGE and SHUTDOWN_FRAMEWORK records; it posts UPDATE and
//! HEARTBEAT calls with its stream id. Every request carries `Authorization: Bearer <secret>`.

use super::{error, parse_call, stream_id, stream_response};
use crate::master::proto::id_of;
use crate::service::MasterHandle;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;

const WHAT: &str = "agent::Call";

fn authorized(h: &MasterHandle, headers: &HeaderMap) -> bool {
    let expected = &h.config().agent_secret;
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The handler.
pub(super) async fn call(
    State(h): State<MasterHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !authorized(&h, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"kumos-agents\"")],
            "Unauthorized: agents must present the master's agent secret",
        )
            .into_response();
    }
    let call = match parse_call(&headers, &body, WHAT) {
        Ok(c) => c,
        Err((code, msg)) => return error(code, msg),
    };
    let kind = call.get("type").and_then(Json::as_str).unwrap_or_default();
    if kind == "SUBSCRIBE" {
        let sid = uuid::Uuid::new_v4().to_string();
        let rx = h.open_stream(&sid);
        return match h.apply(|m, now| m.agent_subscribe(&call, &sid, now)) {
            Ok(_) => {
                h.flush().await;
                h.trigger_allocation();
                stream_response(h, sid, rx, None)
            }
            Err(msg) => {
                drop(rx);
                h.stream_gone(&sid);
                error(400, format!("Failed to validate {WHAT}: {msg}"))
            }
        };
    }
    let Some(aid) = id_of(&call, "agent_id") else {
        return error(
            400,
            format!("Failed to validate {WHAT}: Expecting 'agent_id' to be present"),
        );
    };
    if let Err((code, msg)) = h.apply(|m, _| m.authorize_agent(&aid, stream_id(&headers))) {
        return error(code, msg);
    }
    match kind {
        "UPDATE" => {
            let Some(update) = call.get("update") else {
                return error(
                    400,
                    format!("Failed to validate {WHAT}: Expecting 'update' to be present"),
                );
            };
            let terminal = update
                .pointer("/status/state")
                .and_then(Json::as_str)
                .and_then(crate::master::TaskState::parse)
                .is_some_and(|s| s.is_terminal());
            h.apply(|m, now| m.agent_update(&aid, update, now));
            if terminal {
                h.trigger_allocation();
            }
        }
        "HEARTBEAT" => h.apply(|m, now| m.agent_heartbeat(&aid, now)),
        other => {
            return error(
                400,
                format!("Failed to validate {WHAT}: unknown call type '{other}'"),
            )
        }
    }
    StatusCode::ACCEPTED.into_response()
}
