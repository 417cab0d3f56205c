//! GET `pods/{name}/log`: the pod's container log, proxied from the agent running it (the
//! agent's kubelet-style `/containerLogs/{namespace}/{pod}/{container}`), streamed through.

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::request::{Query, Target};
use super::{write, AppState};
use crate::agents::AgentError;
use crate::error::{ApiError, Cause};

/// Container names of one kind (`containers`, `initContainers`, `ephemeralContainers`).
fn names<'a>(pod: &'a Value, field: &str) -> Vec<&'a str> {
    pod.pointer(&format!("/spec/{field}"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect()
}

/// Go's `%s` of a `[]string`: `[a b]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

/// The container to read, as kube-apiserver picks it: the one asked for (it must exist), or
/// the pod's only container.
pub(super) fn choose_container<'a>(
    pod: &'a Value,
    name: &str,
    asked: Option<&'a str>,
) -> Result<&'a str, ApiError> {
    let (main, init, ephemeral) = (
        names(pod, "containers"),
        names(pod, "initContainers"),
        names(pod, "ephemeralContainers"),
    );
    match asked {
        Some(c) if main.contains(&c) || init.contains(&c) || ephemeral.contains(&c) => Ok(c),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if main.len() == 1 => Ok(main[0]),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: {}",
                go_list(&main)
            );
            if !init.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: {}",
                    go_list(&init)
                ));
            }
            if !ephemeral.is_empty() {
                msg.push_str(&format!(
                    " or one of the ephemeral containers: {}",
                    go_list(&ephemeral)
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// The agent's query string for the request's `PodLogOptions`, validated as kube does.
pub(super) fn agent_query(query: &Query, name: &str, uid: &str) -> Result<String, ApiError> {
    let mut causes = Vec::new();
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for flag in ["follow", "timestamps", "previous"] {
        if query.flag(flag) {
            pairs.push((flag, "true".into()));
        }
    }
    if let Some(n) = query.int("tailLines")? {
        if n < 0 {
            causes.push(Cause::invalid(
                "tailLines",
                &n.to_string(),
                "must be greater than or equal to 0",
            ));
        }
        pairs.push(("tailLines", n.to_string()));
    }
    if let Some(n) = query.int("sinceSeconds")? {
        if n < 1 {
            causes.push(Cause::invalid(
                "sinceSeconds",
                &n.to_string(),
                "must be greater than 0",
            ));
        }
        pairs.push(("sinceSeconds", n.to_string()));
    }
    if let Some(t) = query.get("sinceTime") {
        if query.get("sinceSeconds").is_some() {
            causes.push(Cause {
                reason: "FieldValueForbidden".into(),
                message: "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
                    .into(),
                field: "".into(),
            });
        }
        let parsed = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339);
        if parsed.is_err() {
            return Err(ApiError::bad_request(format!(
                "parsing time \"{t}\" as \"2006-01-02T15:04:05Z07:00\": cannot parse"
            )));
        }
        pairs.push(("sinceTime", t.to_string()));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("PodLogOptions", name, causes));
    }
    if !uid.is_empty() {
        pairs.push(("podUID", uid.to_string()));
    }
    serde_urlencoded::to_string(&pairs).map_err(ApiError::internal)
}

/// `container "c" in pod "p" is waiting to start: <reason>`.
fn waiting(container: &str, pod: &str, reason: &str) -> ApiError {
    ApiError::bad_request(format!(
        "container \"{container}\" in pod \"{pod}\" is waiting to start: {reason}"
    ))
}

/// The waiting reason the pod's status reports for `container`, if it is waiting.
fn waiting_reason<'a>(pod: &'a Value, container: &str) -> Option<&'a str> {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|f| pod.pointer(&format!("/status/{f}"))?.as_array())
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container))?
        .pointer("/state/waiting")
        .map(|w| {
            w.get("reason")
                .and_then(Value::as_str)
                .unwrap_or("ContainerCreating")
        })
}

/// Maps an agent failure to the Status kube-apiserver answers for a kubelet's.
fn agent_error(e: AgentError, name: &str) -> ApiError {
    match e {
        AgentError::Status { status: 400, body } => ApiError::bad_request(body),
        AgentError::Status { status: 404, body } => ApiError {
            details: Some(json!({"name": name, "kind": "pods/log"})),
            ..ApiError::new(404, "NotFound", body)
        },
        AgentError::Status { status, body } if status == 401 || status == 403 => {
            ApiError::internal(format!(
                "the agent refused the API server ({status}): {body}"
            ))
        }
        other => ApiError::internal(other),
    }
}

/// GET pods/{name}/log.
pub(super) async fn log(
    state: &AppState,
    target: &Target,
    query: &Query,
) -> Result<Response, ApiError> {
    let (pod, _) = write::read(state, target).await?;
    let name = target.name();
    let container = choose_container(&pod, name, query.get("container"))?;
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let params = agent_query(query, name, uid)?;
    let Some(node_name) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return Err(waiting(container, name, "ContainerCreating"));
    };
    let node = match Target::parse(&format!("nodes/{node_name}")) {
        Ok(t) => write::read(state, &t).await.ok().map(|(n, _)| n),
        Err(_) => None,
    };
    let agents = state.agents();
    let endpoint = agents
        .endpoint(node_name, node.as_ref())
        .await
        .map_err(|e| agent_error(e, name))?;
    let namespace = target.namespace.as_deref().unwrap_or("default");
    let path = format!("/containerLogs/{namespace}/{name}/{container}?{params}");
    match agents.get(&endpoint, &path).await {
        Ok(resp) => Ok((
            [(header::CONTENT_TYPE, "text/plain")],
            Body::new(resp.into_body()),
        )
            .into_response()),
        Err(AgentError::Status { status: 404, .. })
            if waiting_reason(&pod, container).is_some() =>
        {
            let reason = waiting_reason(&pod, container).unwrap_or("ContainerCreating");
            Err(waiting(container, name, reason))
        }
        Err(e) => Err(agent_error(e, name)),
    }
}
