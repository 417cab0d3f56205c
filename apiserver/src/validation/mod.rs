//! Validation of core/v1 objects with kube-apiserver's messages and `details.causes`. Pure.
//!
//! Objects are checked in JSON form: first against the k8s-openapi schema (type mismatches are the 400 decode
//! errors the real server returns), then field by field with the v1.33 `ValidateX` rules and texts.

// `ApiError` (the shared error type fixed by the module interfaces) is larger than clippy's threshold;
// boxing it belongs in error.rs, not here.
#![allow(clippy::result_large_err)]

mod container;
mod core;
mod meta;
pub mod names;
mod node;
mod pod;
mod pod_update;
mod quantity;
mod schema;
mod service;

use crate::error::{ApiError, Cause};
use crate::resources::ResourceInfo;
use names::go_quote;
use serde_json::Value;

pub use schema::{check_types, unknown_fields};

/// A field-level validation error (apimachinery's `field.Error`), rendered into a `Status` cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    reason: &'static str,
    field: String,
    body: String,
}

impl FieldError {
    pub(crate) fn new(reason: &'static str, field: &str, body: String) -> Self {
        FieldError {
            reason,
            field: field.to_string(),
            body,
        }
    }

    /// `Required value[: detail]`.
    pub(crate) fn required(field: &str, detail: &str) -> Self {
        Self::new(
            "FieldValueRequired",
            field,
            with_detail("Required value", detail),
        )
    }

    /// `Invalid value: <value>: detail`; `value` is already rendered (see [`q`] and [`go_map`]).
    pub(crate) fn invalid(field: &str, value: impl std::fmt::Display, detail: &str) -> Self {
        Self::new(
            "FieldValueInvalid",
            field,
            with_detail(&format!("Invalid value: {value}"), detail),
        )
    }

    /// `Unsupported value: "x": supported values: "a", "b"`.
    pub(crate) fn not_supported(field: &str, value: &str, valid: &[&str]) -> Self {
        let list: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
        Self::new(
            "FieldValueNotSupported",
            field,
            format!(
                "Unsupported value: {}: supported values: {}",
                go_quote(value),
                list.join(", ")
            ),
        )
    }

    /// `Duplicate value: <value>`.
    pub(crate) fn duplicate(field: &str, value: impl std::fmt::Display) -> Self {
        Self::new(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {value}"),
        )
    }

    /// `Forbidden: detail`.
    pub(crate) fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(
            "FieldValueForbidden",
            field,
            with_detail("Forbidden", detail),
        )
    }

    /// `Too long: must have at most N bytes`.
    pub(crate) fn too_long(field: &str, max: usize) -> Self {
        Self::new(
            "FieldValueTooLong",
            field,
            format!("Too long: must have at most {max} bytes"),
        )
    }

    fn into_cause(self) -> Cause {
        Cause {
            reason: self.reason.to_string(),
            message: self.body,
            field: self.field,
        }
    }
}

fn with_detail(head: &str, detail: &str) -> String {
    if detail.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {detail}")
    }
}

/// A string bad value, rendered as Go's `%q`.
pub(crate) fn q(s: &str) -> String {
    go_quote(s)
}

/// A string map bad value, rendered as Go's `%#v` of `map[string]string` (keys sorted).
pub(crate) fn go_map(map: Option<&serde_json::Map<String, Value>>) -> String {
    let Some(map) = map else {
        return "map[string]string(nil)".to_string();
    };
    let mut entries: Vec<(&String, String)> = map
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect();
    entries.sort();
    let inner: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    format!("map[string]string{{{}}}", inner.join(", "))
}

/// A field path under construction (`spec.containers[0].name`).
pub(crate) fn path(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_string()
    } else {
        format!("{parent}.{child}")
    }
}

/// The string at `v[key]` (Go's zero value `""` when absent or not a string).
pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The object at `v[key]`, if any.
pub(crate) fn obj_at<'a>(v: &'a Value, key: &str) -> Option<&'a serde_json::Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

/// The array at `v[key]` (empty when absent).
pub(crate) fn arr_at<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn result(
    resource: &ResourceInfo,
    object: &Value,
    mut errs: Vec<FieldError>,
) -> Result<(), ApiError> {
    if errs.is_empty() {
        return Ok(());
    }
    // The real server's aggregate drops repeated messages (update paths check metadata twice).
    let mut seen = std::collections::HashSet::new();
    errs.retain(|e| seen.insert((e.field.clone(), e.body.clone())));
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    Err(ApiError::invalid(
        resource.kind,
        name,
        errs.into_iter().map(FieldError::into_cause).collect(),
    ))
}

/// 400 BadRequest for `fieldValidation=Strict`: `strict decoding error: unknown field "a", unknown field "b"`.
pub fn strict_decoding_error(unknown: &[String]) -> ApiError {
    ApiError::bad_request(format!(
        "strict decoding error: {}",
        unknown_field_warnings(unknown).join(", ")
    ))
}

/// The `Warning` header texts for `fieldValidation=Warn`: one `unknown field "path"` per field.
pub fn unknown_field_warnings(unknown: &[String]) -> Vec<String> {
    unknown
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect()
}

/// Validates an object for create (after defaulting; name and namespace already set). 400 BadRequest for
/// values of the wrong JSON type, 422 Invalid for rule violations.
pub fn validate_create(resource: &ResourceInfo, object: &Value) -> Result<(), ApiError> {
    check_types(resource, object)?;
    let mut errs = meta::object_meta(resource, object);
    errs.extend(match resource.name {
        "pods" => pod::pod(object),
        "services" => service::service(object),
        "replicationcontrollers" => core::replication_controller(object),
        "configmaps" => core::config_map(object),
        "namespaces" => core::namespace(object),
        "endpoints" => core::endpoints(object),
        "events" => core::event(object),
        "nodes" => node::node(object),
        _ => Vec::new(),
    });
    result(resource, object, errs)
}

/// Validates an update against the stored object (immutable fields, etc.). 422 Invalid on failure.
/// Run [`crate::defaults::apply`] and [`crate::defaults::prepare_update`] on `new` first, as the real
/// server defaults and restores server-owned fields (status, allocated IPs) before validating.
pub fn validate_update(resource: &ResourceInfo, new: &Value, old: &Value) -> Result<(), ApiError> {
    check_types(resource, new)?;
    // The real update validators check identity fields first, then the update-only rules, then the object.
    let mut errs = meta::object_meta_update(new, old);
    match resource.name {
        "pods" => {
            errs.extend(meta::object_meta(resource, new));
            errs.extend(pod_update::pod_update(new, old));
        }
        "services" => {
            errs.extend(service::service_update(new, old));
            errs.extend(meta::object_meta(resource, new));
            errs.extend(service::service(new));
        }
        "replicationcontrollers" => {
            errs.extend(meta::object_meta(resource, new));
            errs.extend(core::replication_controller(new));
        }
        "configmaps" => {
            errs.extend(core::config_map_update(new, old));
            errs.extend(meta::object_meta(resource, new));
            errs.extend(core::config_map(new));
        }
        "namespaces" => {
            errs.extend(meta::object_meta(resource, new));
            errs.extend(core::namespace(new));
        }
        "endpoints" => {
            errs.extend(meta::object_meta(resource, new));
            errs.extend(core::endpoints(new));
        }
        "events" => {
            errs.extend(meta::object_meta(resource, new));
            errs.extend(core::event(new));
        }
        "nodes" => {
            errs.extend(meta::object_meta(resource, new));
            errs.extend(node::node_update(new, old));
        }
        _ => errs.extend(meta::object_meta(resource, new)),
    }
    result(resource, new, errs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use serde_json::json;

    #[test]
    fn invalid_name_produces_the_kube_status() {
        let pods = by_name("pods").unwrap();
        let mut pod = json!({"metadata": {"name": "Bad_Name", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        crate::defaults::apply(pods, &mut pod);
        let e = validate_create(pods, &pod).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        let cause = &e.status()["details"]["causes"][0];
        assert_eq!(cause["reason"], "FieldValueInvalid");
        assert_eq!(cause["field"], "metadata.name");
    }

    #[test]
    fn valid_objects_pass() {
        let ok = [
            (
                "configmaps",
                json!({"metadata": {"name": "c", "namespace": "d"}, "data": {"a.b": "x"}}),
            ),
            ("namespaces", json!({"metadata": {"name": "dev"}})),
            ("nodes", json!({"metadata": {"name": "node-1.example"}})),
            (
                "endpoints",
                json!({"metadata": {"name": "e", "namespace": "d"}}),
            ),
        ];
        for (resource, obj) in ok {
            assert_eq!(
                validate_create(by_name(resource).unwrap(), &obj),
                Ok(()),
                "{resource}"
            );
        }
    }

    #[test]
    fn strict_decoding_messages() {
        let paths = vec!["spec.x".to_string(), "spec.containers[0].foo".to_string()];
        let e = strict_decoding_error(&paths);
        assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
        assert_eq!(
            e.message,
            "strict decoding error: unknown field \"spec.x\", unknown field \"spec.containers[0].foo\""
        );
        assert_eq!(
            unknown_field_warnings(&paths[..1]),
            vec!["unknown field \"spec.x\""]
        );
    }

    #[test]
    fn go_renderings() {
        let m = json!({"b": "2", "a": "1"});
        assert_eq!(
            go_map(m.as_object()),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
        assert_eq!(
            FieldError::not_supported("spec.type", "X", &["A", "B"]).body,
            "Unsupported value: \"X\": supported values: \"A\", \"B\""
        );
    }
}
