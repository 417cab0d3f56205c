//! Read-only state endpoints (`/state`, `/slaves`, `/master/frameworks`, `/tasks`,
//! `/metrics/snapshot`) and the operator API (`POST /api/v1` and `/api/v1/operator`).

use super::{error, json_response, parse_call};
use crate::master::operator::{operator_call, OperatorReply};
use crate::master::{state, Master};
use crate::service::MasterHandle;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value as Json;

fn view(h: &MasterHandle, f: impl FnOnce(&mut Master, f64) -> Json) -> Response {
    let body = h.apply(|m, now| f(m, now.unix));
    json_response(StatusCode::OK, &body)
}

async fn operator(State(h): State<MasterHandle>, headers: HeaderMap, body: Bytes) -> Response {
    let call = match parse_call(&headers, &body, "master::Call") {
        Ok(c) => c,
        Err((code, msg)) => return error(code, msg),
    };
    match h.apply(|m, now| operator_call(m, &call, now)) {
        Ok(OperatorReply::Json(j)) => json_response(StatusCode::OK, &j),
        Ok(OperatorReply::Ok) => StatusCode::OK.into_response(),
        Ok(OperatorReply::Accepted) => {
            h.trigger_allocation();
            StatusCode::ACCEPTED.into_response()
        }
        Err((code, msg)) => error(code, msg),
    }
}

/// The routes.
pub(super) fn routes() -> Router<MasterHandle> {
    let state = get(|State(h): State<MasterHandle>| async move {
        view(&h, |m, now| state::state_json(m, now))
    });
    let slaves =
        get(|State(h): State<MasterHandle>| async move { view(&h, |m, _| state::slaves_json(m)) });
    let frameworks = get(|State(h): State<MasterHandle>| async move {
        view(&h, |m, _| state::frameworks_json(m))
    });
    let tasks =
        get(|State(h): State<MasterHandle>| async move { view(&h, |m, _| state::tasks_json(m)) });
    let metrics = get(|State(h): State<MasterHandle>| async move {
        view(&h, |m, now| state::metrics_json(m, now))
    });
    Router::new()
        .route("/state", state.clone())
        .route("/state.json", state.clone())
        .route("/master/state", state.clone())
        .route("/master/state.json", state)
        .route("/slaves", slaves.clone())
        .route("/master/slaves", slaves)
        .route("/frameworks", frameworks.clone())
        .route("/master/frameworks", frameworks)
        .route("/tasks", tasks.clone())
        .route("/master/tasks", tasks)
        .route("/metrics/snapshot", metrics)
        .route("/api/v1", post(operator))
        .route("/api/v1/operator", post(operator))
}
