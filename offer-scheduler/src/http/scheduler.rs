//! `POST /api/v1/scheduler`: SUBSCRIBE opens a RecordIO event stream; every other call names its
//! framework, carries the stream id, and is answered 202 Accepted.

use super::{error, parse_call, stream_id, stream_response};
use crate::master::frameworks::SubscribeError;
use crate::master::proto::{event, id_of};
use crate::service::MasterHandle;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value as Json};

const WHAT: &str = "scheduler::Call";

fn missing(field: &str) -> Response {
    error(
        400,
        format!("Failed to validate {WHAT}: Expecting '{field}' to be present"),
    )
}

fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|a| {
        let mime = a.split(';').next().unwrap_or("").trim();
        matches!(
            mime,
            "application/json" | "application/recordio" | "*/*" | "application/*"
        )
    })
}

/// The handler.
pub(super) async fn call(
    State(h): State<MasterHandle>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = match parse_call(&headers, &body, WHAT) {
        Ok(c) => c,
        Err((code, msg)) => return error(code, msg),
    };
    let kind = call.get("type").and_then(Json::as_str).unwrap_or_default();
    if kind == "SUBSCRIBE" {
        return subscribe(h, &headers, &call).await;
    }
    let Some(fid) = id_of(&call, "framework_id") else {
        return missing("framework_id");
    };
    if let Err((code, msg)) = h.apply(|m, _| m.authorize_call(&fid, stream_id(&headers))) {
        return error(code, msg);
    }
    let body_of = |field: &str| call.get(field).cloned();
    let roles = |field: &str| -> Vec<String> {
        call.get(field)
            .and_then(|b| b.get("roles"))
            .and_then(Json::as_array)
            .map(|r| {
                r.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    match kind {
        "TEARDOWN" => {
            h.apply(|m, now| m.teardown(&fid, now));
            h.trigger_allocation();
        }
        "ACCEPT" => {
            let Some(accept) = body_of("accept") else {
                return missing("accept");
            };
            h.apply(|m, now| m.accept(&fid, &accept, now));
        }
        "DECLINE" => {
            let Some(decline) = body_of("decline") else {
                return missing("decline");
            };
            let ids = crate::master::proto::id_list(&decline, "offer_ids");
            h.apply(|m, now| m.decline(&fid, &ids, decline.get("filters"), now));
        }
        "REVIVE" => {
            let r = roles("revive");
            h.apply(|m, _| m.revive(&fid, &r));
            h.trigger_allocation();
        }
        "SUPPRESS" => {
            let r = roles("suppress");
            h.apply(|m, _| m.suppress(&fid, &r));
        }
        "KILL" => {
            let Some(kill) = body_of("kill") else {
                return missing("kill");
            };
            if id_of(&kill, "task_id").is_none() {
                return missing("kill.task_id");
            }
            h.apply(|m, now| m.kill(&fid, &kill, now));
        }
        "SHUTDOWN" => {
            let Some(sd) = body_of("shutdown") else {
                return missing("shutdown");
            };
            let Some(executor) = id_of(&sd, "executor_id") else {
                return missing("shutdown.executor_id");
            };
            h.apply(|m, now| m.shutdown_executor(&fid, &executor, now));
        }
        "ACKNOWLEDGE" => {
            let Some(ack) = body_of("acknowledge") else {
                return missing("acknowledge");
            };
            // Only a task leaving frees anything to offer: an allocation cycle per ACK would
            // rebuild the allocator's snapshot twice per task launched.
            if h.apply(|m, now| m.acknowledge(&fid, &ack, now)) {
                h.trigger_allocation();
            }
        }
        "RECONCILE" => {
            let Some(rec) = body_of("reconcile") else {
                return missing("reconcile");
            };
            let tasks = rec
                .get("tasks")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            h.apply(|m, now| m.reconcile(&fid, &tasks, now));
        }
        "MESSAGE" => {
            if body_of("message").is_none() {
                return missing("message");
            }
            // No executors run framework code here, so there is nobody to deliver it to.
        }
        "REQUEST" => {
            if body_of("request").is_none() {
                return missing("request");
            }
            // Mesos' allocator ignores resource requests too.
        }
        "ACCEPT_INVERSE_OFFERS"
        | "DECLINE_INVERSE_OFFERS"
        | "RECONCILE_OPERATIONS"
        | "ACKNOWLEDGE_OPERATION_STATUS"
        | "UPDATE_FRAMEWORK" => {}
        other => {
            return error(
                400,
                format!("Failed to convert JSON into {WHAT} protobuf: unknown call type '{other}'"),
            )
        }
    }
    StatusCode::ACCEPTED.into_response()
}

async fn subscribe(h: MasterHandle, headers: &HeaderMap, call: &Json) -> Response {
    // Mesos checks 'Accept' before 'Mesos-Stream-Id', with these texts.
    if !accepts_json(headers) {
        return error(
            406,
            "Expecting 'Accept' to allow 'application/x-protobuf' or 'application/json'",
        );
    }
    if stream_id(headers).is_some() {
        return error(
            400,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header",
        );
    }
    let sid = uuid::Uuid::new_v4().to_string();
    let rx = h.open_stream(&sid);
    let heartbeat = h.config().master.heartbeat_interval;
    match h.apply(|m, now| m.subscribe(call, &sid, now)) {
        Ok(_) => {
            h.flush().await;
            h.trigger_allocation();
            stream_response(h, sid, rx, Some(heartbeat))
        }
        Err(SubscribeError::Invalid(msg)) => {
            drop(rx);
            h.stream_gone(&sid);
            error(400, msg)
        }
        Err(SubscribeError::Removed) => {
            // Mesos answers on the stream: one ERROR event, then the stream ends.
            drop(rx);
            h.stream_gone(&sid);
            let frame = crate::service::recordio(&event(
                "ERROR",
                json!({"message": "Framework has been removed"}),
            ));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                [("Mesos-Stream-Id", sid)],
                frame,
            )
                .into_response()
        }
    }
}
