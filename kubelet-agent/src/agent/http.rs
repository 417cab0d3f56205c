//! The agent's HTTP endpoint: container logs, served the way kubelet serves them.
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}`: a pod container's log, found through
//!   the `kumos.io/*` labels of the task running it (optional `podUID` query parameter: answer
//!   only for that pod).
//! - `GET /tasks/{framework}/{task}/logs`: a plain Mesos task's log (its container `main`).
//!
//! Both take kubelet's query parameters `follow`, `tailLines`, `timestamps`, `sinceSeconds`,
//! `sinceTime` and `previous`, and need `Authorization: Bearer <agent secret>`. Errors are plain
//! text with kubelet's status codes: 401 without the secret, 404 for an unknown pod, container or
//! task, 400 for bad parameters and for a container without (previous) logs.

use super::logindex::{LogIndex, LogTarget, PodContainer};
use super::AgentError;
use crate::logs::{read_logs, LogError, LogOptions};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long open responses (followers) may take to end after shutdown starts.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct HttpState {
    index: LogIndex,
    secret: Arc<str>,
}

/// The endpoint's routes over `index`, accepting requests that carry `secret`.
pub fn router(index: LogIndex, secret: &str) -> Router {
    Router::new()
        .route(
            "/containerLogs/{namespace}/{pod}/{container}",
            get(pod_logs),
        )
        .route("/tasks/{framework}/{task}/logs", get(task_logs))
        .with_state(HttpState {
            index,
            secret: Arc::from(secret),
        })
}

/// A failed request: status and plain-text message.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = format!("{}\n", self.1);
        (
            self.0,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

fn bad_request(msg: impl Into<String>) -> Failure {
    Failure(StatusCode::BAD_REQUEST, msg.into())
}

/// Constant-time comparison of the presented bearer token with the secret.
fn authorize(headers: &HeaderMap, secret: &str) -> Result<(), Failure> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .as_bytes();
    let want = secret.as_bytes();
    let same = presented.len() == want.len()
        && presented
            .iter()
            .zip(want)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if same && !want.is_empty() {
        Ok(())
    } else {
        Err(Failure(StatusCode::UNAUTHORIZED, "Unauthorized".into()))
    }
}

/// Go's `strconv.ParseBool`, as kubelet parses its boolean parameters.
fn parse_bool(name: &str, v: &str) -> Result<bool, Failure> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(bad_request(format!("invalid value {v:?} for {name}"))),
    }
}

/// Kubelet's query parameters as [`LogOptions`], `sinceSeconds` counted back from `now`.
fn log_options(q: &HashMap<String, String>, now: OffsetDateTime) -> Result<LogOptions, Failure> {
    let flag = |name: &str| q.get(name).map_or(Ok(false), |v| parse_bool(name, v));
    let tail_lines = match q.get("tailLines") {
        None => None,
        Some(v) => Some(v.parse::<usize>().map_err(|_| {
            bad_request(format!(
                "tailLines: Invalid value: {v:?}: must be greater than or equal to 0"
            ))
        })?),
    };
    let since = match (q.get("sinceSeconds"), q.get("sinceTime")) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ))
        }
        (Some(secs), None) => {
            let secs = secs.parse::<i64>().ok().filter(|s| *s > 0).ok_or_else(|| {
                bad_request(format!(
                    "sinceSeconds: Invalid value: {secs:?}: must be greater than 0"
                ))
            })?;
            Some(now - time::Duration::seconds(secs))
        }
        (None, Some(t)) => Some(OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
            bad_request(format!(
                "sinceTime: Invalid value: {t:?}: must be an RFC3339 time"
            ))
        })?),
        (None, None) => None,
    };
    Ok(LogOptions {
        follow: flag("follow")?,
        tail_lines,
        since,
        timestamps: flag("timestamps")?,
        previous: flag("previous")?,
    })
}

async fn pod_logs(
    State(s): State<HttpState>,
    Path((namespace, pod, container)): Path<(String, String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    authorize(&headers, &s.secret)?;
    let opts = log_options(&q, OffsetDateTime::now_utc())?;
    let not_available = || {
        Failure(
            StatusCode::NOT_FOUND,
            format!("container \"{container}\" in pod \"{pod}\" is not available"),
        )
    };
    let pc = PodContainer {
        namespace,
        pod: pod.clone(),
        container: container.clone(),
    };
    let target = s.index.pod(&pc).ok_or_else(not_available)?;
    if let Some(uid) = q.get("podUID") {
        if target.pod_uid.as_deref() != Some(uid.as_str()) {
            return Err(not_available());
        }
    }
    serve_logs(target, opts, &container, &pod).await
}

async fn task_logs(
    State(s): State<HttpState>,
    Path((framework, task)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, Failure> {
    authorize(&headers, &s.secret)?;
    let opts = log_options(&q, OffsetDateTime::now_utc())?;
    let target = s.index.task(&(framework, task.clone())).ok_or_else(|| {
        Failure(
            StatusCode::NOT_FOUND,
            format!("task \"{task}\" is not available"),
        )
    })?;
    serve_logs(target, opts, super::logindex::TASK_CONTAINER, &task).await
}

/// Streams the log as `text/plain`, or answers kubelet's errors for missing logs.
async fn serve_logs(
    target: LogTarget,
    opts: LogOptions,
    container: &str,
    pod: &str,
) -> Result<Response, Failure> {
    match read_logs(&target.sandbox, &target.container, opts, target.done).await {
        Ok(stream) => Ok((
            [(header::CONTENT_TYPE, "text/plain")],
            Body::from_stream(stream),
        )
            .into_response()),
        Err(LogError::NotFound(_)) => Err(bad_request(format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        ))),
        Err(LogError::NoPrevious(_)) => Err(bad_request(format!(
            "previous terminated container \"{container}\" in pod \"{pod}\" not found"
        ))),
        Err(e) => Err(Failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// Binds the endpoint (port 0 picks a free port; the listener knows which).
pub async fn bind(ip: IpAddr, port: u16) -> Result<TcpListener, AgentError> {
    let addr = SocketAddr::new(ip, port);
    TcpListener::bind(addr)
        .await
        .map_err(|source| AgentError::Bind { addr, source })
}

/// The running endpoint: one owned task serving until its token is cancelled.
pub struct Server {
    task: JoinHandle<()>,
}

impl Server {
    /// Listens on `cfg.ip` and `cfg.port` (recording the port bound in `cfg.port`, for the
    /// master) and serves a new, empty log index until `token` is cancelled.
    pub async fn start(
        cfg: &mut super::AgentConfig,
        token: CancellationToken,
    ) -> Result<(Server, LogIndex), AgentError> {
        let listener = bind(cfg.ip, cfg.port).await?;
        if let Ok(addr) = listener.local_addr() {
            cfg.port = addr.port();
        }
        let index = LogIndex::default();
        let app = router(index.clone(), &cfg.secret);
        Ok((Server::spawn(listener, app, token), index))
    }

    /// Serves `app` on `listener` until `token` is cancelled.
    pub fn spawn(listener: TcpListener, app: Router, token: CancellationToken) -> Server {
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(token.cancelled_owned())
                .await;
            if let Err(err) = served {
                tracing::warn!(%err, "the agent's HTTP endpoint stopped");
            }
        });
        Server { task }
    }

    /// Waits for the server to drain (bounded), then stops it.
    pub async fn join(mut self) {
        if tokio::time::timeout(DRAIN, &mut self.task).await.is_err() {
            tracing::warn!("agent HTTP responses still open after {DRAIN:?}; closing them");
            self.task.abort();
            let _ = self.task.await;
        }
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
