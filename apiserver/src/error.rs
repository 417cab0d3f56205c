//! `ApiError`: every failure the API returns, rendered as a Kubernetes `Status` with the reason, code and
//! message text kube-apiserver uses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// One entry of `details.causes` (a field-level validation failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, ...
    pub reason: String,
    /// The message shown after the field path, e.g. `Invalid value: "X": ...`.
    pub message: String,
    /// The field path, e.g. `metadata.name`.
    pub field: String,
}

impl Cause {
    /// `FieldValueRequired`: `Required value[: detail]`.
    pub fn required(field: &str, detail: &str) -> Cause {
        let message = match detail {
            "" => "Required value".to_string(),
            d => format!("Required value: {d}"),
        };
        Cause {
            reason: "FieldValueRequired".into(),
            message,
            field: field.into(),
        }
    }

    /// `FieldValueInvalid`: `Invalid value: <value>: <detail>` (`value` already rendered, e.g. quoted).
    pub fn invalid(field: &str, value: &str, detail: &str) -> Cause {
        Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {value}: {detail}"),
            field: field.into(),
        }
    }
}

/// An API failure: HTTP code, `Status.reason`, message and optional details.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `Status.reason` (`NotFound`, `AlreadyExists`, ...).
    pub reason: String,
    /// Human-readable message, exactly as kube-apiserver words it.
    pub message: String,
    /// `Status.details`, when the real server sends them.
    pub details: Option<Value>,
}

fn details(resource: &str, name: &str) -> Option<Value> {
    Some(json!({ "name": name, "kind": resource }))
}

impl ApiError {
    /// A bare error with code, reason and message.
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason.to_string(),
            message: message.into(),
            details: None,
        }
    }

    /// 404 `pods "x" not found`.
    pub fn not_found(resource: &str, name: &str) -> Self {
        ApiError {
            details: details(resource, name),
            ..Self::new(404, "NotFound", format!("{resource} \"{name}\" not found"))
        }
    }

    /// 409 `pods "x" already exists`.
    pub fn already_exists(resource: &str, name: &str) -> Self {
        ApiError {
            details: details(resource, name),
            ..Self::new(
                409,
                "AlreadyExists",
                format!("{resource} \"{name}\" already exists"),
            )
        }
    }

    /// 409 Conflict with kube-apiserver's optimistic-concurrency message.
    pub fn conflict(resource: &str, name: &str) -> Self {
        Self::conflict_with(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 Conflict: `Operation cannot be fulfilled on pods "x": <why>`.
    pub fn conflict_with(resource: &str, name: &str, why: &str) -> Self {
        ApiError {
            details: details(resource, name),
            ..Self::new(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on {resource} \"{name}\": {why}"),
            )
        }
    }

    /// 422 Invalid: `Pod "x" is invalid: <field>: <message>[, ...]` with `details.causes`.
    pub fn invalid(kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let summary = match list.len() {
            1 => list[0].clone(),
            _ => format!("[{}]", list.join(", ")),
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({ "reason": c.reason, "message": c.message, "field": c.field }))
            .collect();
        ApiError {
            details: Some(json!({ "name": name, "kind": kind, "causes": causes })),
            ..Self::new(
                422,
                "Invalid",
                format!("{kind} \"{name}\" is invalid: {summary}"),
            )
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 403 Forbidden: `pods "x" is forbidden: <why>`.
    pub fn forbidden(resource: &str, name: &str, why: &str) -> Self {
        ApiError {
            details: details(resource, name),
            ..Self::new(
                403,
                "Forbidden",
                format!("{resource} \"{name}\" is forbidden: {why}"),
            )
        }
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 410 Expired (a compacted resourceVersion or continue token).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// 415 UnsupportedMediaType for a request body we cannot decode.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})"
            ),
        )
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "the request entity is too large",
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, axum::Json(self.status())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_kube_apiserver() {
        assert_eq!(
            ApiError::not_found("pods", "x").message,
            "pods \"x\" not found"
        );
        assert_eq!(
            ApiError::conflict("pods", "x").message,
            "Operation cannot be fulfilled on pods \"x\": the object has been modified; please apply your \
             changes to the latest version and try again"
        );
        let invalid = ApiError::invalid(
            "Pod",
            "X",
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"X\"".into(),
                field: "metadata.name".into(),
            }],
        );
        assert_eq!(
            invalid.message,
            "Pod \"X\" is invalid: metadata.name: Invalid value: \"X\""
        );
        assert_eq!(
            invalid.status()["details"]["causes"][0]["field"],
            "metadata.name"
        );
    }
}
