//! Subresources: `status` (pods, rcs, services, namespaces, nodes), `pods/binding`, `pods/log`
//! (proxied to the agent, see `podlog`), `replicationcontrollers/scale` and `namespaces/finalize`.

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use serde_json::{json, Value};

use super::object::{meta_mut, meta_str};
use super::request::{self, Query, Target};
use super::write::{self, Part};
use super::{crud, patch, podlog, AppState};
use crate::error::ApiError;

/// Dispatches a subresource request.
pub async fn handle(
    state: &AppState,
    method: &Method,
    target: &Target,
    sub: &str,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    match (sub, method.clone()) {
        ("status", Method::GET) => crud::get(state, target, query, headers).await,
        ("status", Method::PUT) => {
            crud::update_part(state, target, query, headers, body, Part::Status).await
        }
        ("status", Method::PATCH) => {
            crud::patch_part(state, target, query, headers, body, Part::Status).await
        }
        ("binding", Method::POST) => bind(state, target, query, headers, body).await,
        ("log", Method::GET) => podlog::log(state, target, query).await,
        ("scale", Method::GET) => {
            let (rc, _) = write::read(state, target).await?;
            Ok(request::json(200, &scale_of(&rc), &[]))
        }
        ("scale", Method::PUT | Method::PATCH) => {
            scale(state, target, query, headers, body, method == Method::PATCH).await
        }
        ("finalize", Method::PUT) => finalize(state, target, query, headers, body).await,
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// POST pods/{name}/binding: sets `spec.nodeName` once.
async fn bind(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let binding = request::read_object(headers, body).await?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                target.name(),
                vec![crate::error::Cause::required("target.name", "")],
            )
        })?
        .to_string();
    let annotations = binding
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned();
    let pod = target.name().to_string();
    write::modify(state, target, query.dry_run()?, |pod_obj| {
        if let Some(bound) = pod_obj
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict_with(
                "pods/binding",
                &pod,
                &format!("pod {pod} is already assigned to node \"{bound}\""),
            ));
        }
        pod_obj["spec"]["nodeName"] = json!(node);
        // kube-apiserver copies the Binding's annotations onto the pod (a scheduler records
        // placement details in the same write).
        if let Some(extra) = annotations.as_ref().filter(|a| !a.is_empty()) {
            let meta = &mut pod_obj["metadata"];
            if !meta["annotations"].is_object() {
                meta["annotations"] = json!({});
            }
            if let Some(a) = meta["annotations"].as_object_mut() {
                for (k, v) in extra {
                    a.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(())
    })
    .await?;
    Ok(request::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        &[],
    ))
}

/// The autoscaling/v1 Scale view of a replication controller.
fn scale_of(rc: &Value) -> Value {
    let selector = rc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            pairs.sort();
            pairs.join(",")
        })
        .unwrap_or_default();
    let meta = |f: &str| {
        rc.pointer(&format!("/metadata/{f}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta("name"),
            "namespace": meta("namespace"),
            "uid": meta("uid"),
            "resourceVersion": meta("resourceVersion"),
            "creationTimestamp": meta("creationTimestamp"),
        },
        "spec": {"replicas": rc.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {
            "replicas": rc.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// PUT/PATCH replicationcontrollers/{name}/scale: changes `spec.replicas` only.
async fn scale(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
    is_patch: bool,
) -> Result<Response, ApiError> {
    let kind = if is_patch {
        Some(patch::PatchType::from_content_type(
            &request::content_type(headers),
        )?)
    } else {
        None
    };
    let bytes = request::read_body(body).await?;
    let put_body = match kind {
        None => Some(request::decode_object(headers, &bytes)?),
        Some(_) => None,
    };
    let resource = target.resource;
    let written = write::update(state, target, Part::Main, query.dry_run()?, |rc| {
        let current = scale_of(rc);
        let desired = match (&put_body, kind) {
            (Some(b), _) => b.clone(),
            (None, Some(k)) => patch::apply(resource, k, &current, &bytes)?,
            (None, None) => current.clone(),
        };
        let replicas = desired
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if replicas < 0 {
            return Err(ApiError::invalid(
                "Scale",
                target.name(),
                vec![crate::error::Cause {
                    reason: "FieldValueInvalid".into(),
                    message: format!(
                        "Invalid value: {replicas}: must be greater than or equal to 0"
                    ),
                    field: "spec.replicas".into(),
                }],
            ));
        }
        let mut next = rc.clone();
        next["spec"]["replicas"] = json!(replicas);
        let pinned = meta_str(&desired, "resourceVersion")
            .filter(|rv| Some(*rv) != meta_str(&current, "resourceVersion") || put_body.is_some())
            .map(str::to_string);
        if let Some(meta) = meta_mut(&mut next) {
            match pinned {
                Some(rv) => meta.insert("resourceVersion".into(), json!(rv)),
                None => meta.remove("resourceVersion"),
            };
        }
        Ok(next)
    })
    .await?;
    Ok(request::json(200, &scale_of(&written), &[]))
}

/// PUT namespaces/{name}/finalize: replaces `spec.finalizers` only.
async fn finalize(
    state: &AppState,
    target: &Target,
    query: &Query,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let desired = request::read_object(headers, body).await?;
    let finalizers = desired
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    let written = write::modify(state, target, query.dry_run()?, |ns| {
        ns["spec"]["finalizers"] = finalizers.clone();
        Ok(())
    })
    .await?;
    Ok(request::json(200, &written, &[]))
}
