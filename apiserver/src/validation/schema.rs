//! Schema checks against the k8s-openapi types: unknown fields (for `fieldValidation`) and JSON type
//! mismatches, reported the way kube-apiserver's Go decoder words them.

use super::quantity;
use crate::error::ApiError;
use crate::resources::ResourceInfo;
use k8s_openapi::api::core::v1 as core;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

/// The root JSON schema (with `$defs`) of each served resource's type, generated once.
fn schemas() -> &'static HashMap<&'static str, Value> {
    static SCHEMAS: OnceLock<HashMap<&'static str, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        use schemars::schema_for;
        HashMap::from([
            ("pods", schema_for!(core::Pod).to_value()),
            ("services", schema_for!(core::Service).to_value()),
            (
                "replicationcontrollers",
                schema_for!(core::ReplicationController).to_value(),
            ),
            ("configmaps", schema_for!(core::ConfigMap).to_value()),
            ("namespaces", schema_for!(core::Namespace).to_value()),
            ("nodes", schema_for!(core::Node).to_value()),
            ("endpoints", schema_for!(core::Endpoints).to_value()),
            ("events", schema_for!(core::Event).to_value()),
            ("secrets", schema_for!(core::Secret).to_value()),
        ])
    })
}

/// Follows `$ref`s to the definition; returns the schema and the referenced definition name, if any.
fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> (&'a Value, Option<&'a str>) {
    let mut name = None;
    for _ in 0..32 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let def = reference.rsplit('/').next().unwrap_or_default();
        match root.get("$defs").and_then(|d| d.get(def)) {
            Some(target) => {
                name = Some(def);
                schema = target;
            }
            None => break,
        }
    }
    (schema, name)
}

fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn int_or_string(schema: &Value) -> bool {
    schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
}

/// The Go type name the real decoder would report for a schema (`[]v1.Container`, `int32`, ...).
fn go_type(root: &Value, schema: &Value) -> String {
    let (s, name) = resolve(root, schema);
    if int_or_string(s) {
        return match name.map(short) {
            Some("Quantity") => "resource.Quantity".to_string(),
            _ => "intstr.IntOrString".to_string(),
        };
    }
    if let Some(name) = name.filter(|_| s.get("properties").is_some() || s.get("format").is_some())
    {
        return format!("v1.{}", short(name));
    }
    match s.get("type").and_then(Value::as_str) {
        Some("string") => "string".to_string(),
        Some("boolean") => "bool".to_string(),
        Some("number") => "float64".to_string(),
        Some("integer") => match s.get("format").and_then(Value::as_str) {
            Some("int32") => "int32".to_string(),
            Some("int64") => "int64".to_string(),
            _ => "int".to_string(),
        },
        Some("array") => format!(
            "[]{}",
            s.get("items").map(|i| go_type(root, i)).unwrap_or_default()
        ),
        Some("object") => match s.get("additionalProperties") {
            Some(ap) if ap.is_object() => format!("map[string]{}", go_type(root, ap)),
            _ => "map[string]interface {}".to_string(),
        },
        _ => "interface {}".to_string(),
    }
}

/// Go's name for a JSON value's kind in `cannot unmarshal <kind>` messages.
fn json_kind(v: &Value) -> String {
    match v {
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
        Value::Null => "null".into(),
    }
}

struct Walk<'r> {
    root: &'r Value,
    unknown: Vec<String>,
    type_error: Option<String>,
}

impl Walk<'_> {
    fn mismatch(&mut self, value: String, owner: &str, go_path: &str, schema: &Value) {
        let ty = go_type(self.root, schema);
        self.mismatch_type(value, owner, go_path, &ty);
    }

    fn mismatch_type(&mut self, value: String, owner: &str, go_path: &str, ty: &str) {
        if self.type_error.is_none() {
            self.type_error = Some(if owner.is_empty() {
                format!("json: cannot unmarshal {value} into Go value of type {ty}")
            } else {
                format!("json: cannot unmarshal {value} into Go struct field {owner}.{go_path} of type {ty}")
            });
        }
    }

    /// Checks `value` against `schema`. `owner` is the Go struct holding this field, `go_path` the dotted
    /// field path the decoder reports, `path` the kube-style path for unknown fields.
    fn check(&mut self, value: &Value, schema: &Value, owner: &str, go_path: &str, path: &str) {
        if value.is_null() {
            return;
        }
        let (s, name) = resolve(self.root, schema);
        if int_or_string(s) {
            if name.map(short) == Some("Quantity") {
                // Quantity decodes itself: any value must parse, with the parser's own message.
                let text = match value {
                    Value::String(t) => t.trim().to_string(),
                    other => other.to_string(),
                };
                if let Err(msg) = quantity::parse(&text) {
                    self.type_error.get_or_insert_with(|| msg.to_string());
                }
            } else {
                // IntOrString decodes non-strings into its int32 half; the decoder adds the field context.
                match value {
                    Value::String(_) => {}
                    Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => {}
                    Value::Number(n) => {
                        self.mismatch_type(format!("number {n}"), owner, go_path, "int32")
                    }
                    other => self.mismatch_type(json_kind(other), owner, go_path, "int32"),
                }
            }
            return;
        }
        match s.get("type").and_then(Value::as_str) {
            Some("object") => {
                let Value::Object(map) = value else {
                    return self.mismatch(json_kind(value), owner, go_path, schema);
                };
                if let Some(props) = s.get("properties").and_then(Value::as_object) {
                    let struct_name = name.map(short).unwrap_or(owner);
                    self.properties(map, props, struct_name, go_path, path);
                } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                    for (k, v) in map {
                        let sub = if path.is_empty() {
                            k.clone()
                        } else {
                            format!("{path}.{k}")
                        };
                        self.check(v, ap, owner, go_path, &sub);
                    }
                }
            }
            Some("array") => {
                let Value::Array(items) = value else {
                    return self.mismatch(json_kind(value), owner, go_path, schema);
                };
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item, item_schema, owner, go_path, &format!("{path}[{i}]"));
                    }
                }
            }
            Some("string") if !value.is_string() => {
                self.mismatch(json_kind(value), owner, go_path, schema)
            }
            Some("boolean") if !value.is_boolean() => {
                self.mismatch(json_kind(value), owner, go_path, schema)
            }
            Some("number") if !value.is_number() => {
                self.mismatch(json_kind(value), owner, go_path, schema)
            }
            Some("integer") => {
                let Value::Number(n) = value else {
                    return self.mismatch(json_kind(value), owner, go_path, schema);
                };
                let fits = match (n.as_i64(), s.get("format").and_then(Value::as_str)) {
                    (Some(i), Some("int32")) => i32::try_from(i).is_ok(),
                    (Some(_), _) => true,
                    (None, _) => false,
                };
                if !fits {
                    self.mismatch(format!("number {n}"), owner, go_path, schema);
                }
            }
            _ => {}
        }
    }

    fn properties(
        &mut self,
        map: &Map<String, Value>,
        props: &Map<String, Value>,
        struct_name: &str,
        go_path: &str,
        path: &str,
    ) {
        for (k, v) in map {
            let sub = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match props.get(k) {
                Some(prop) => {
                    let go_sub = if go_path.is_empty() {
                        k.clone()
                    } else {
                        format!("{go_path}.{k}")
                    };
                    self.check(v, prop, struct_name, &go_sub, &sub);
                }
                None => self.unknown.push(sub),
            }
        }
    }
}

fn walk(resource: &ResourceInfo, object: &Value) -> Option<(Vec<String>, Option<String>)> {
    let root = schemas().get(resource.name)?;
    let mut w = Walk {
        root,
        unknown: Vec::new(),
        type_error: None,
    };
    match object {
        Value::Object(map) => {
            let props = root.get("properties").and_then(Value::as_object)?;
            w.properties(map, props, resource.kind, "", "");
        }
        other => {
            w.type_error = Some(format!(
                "json: cannot unmarshal {} into Go value of type v1.{}",
                json_kind(other),
                resource.kind
            ));
        }
    }
    Some((w.unknown, w.type_error))
}

/// The JSON paths (`spec.x`, `spec.containers[0].foo`) of fields the resource's schema does not know, in
/// document order, for `fieldValidation=Strict|Warn`.
pub fn unknown_fields(resource: &ResourceInfo, object: &Value) -> Vec<String> {
    walk(resource, object).map(|(u, _)| u).unwrap_or_default()
}

/// 400 BadRequest when a field holds the wrong JSON type, with the real decoder's message, e.g.
/// `Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field
/// PodSpec.spec.containers of type []v1.Container`.
pub fn check_types(resource: &ResourceInfo, object: &Value) -> Result<(), ApiError> {
    match walk(resource, object) {
        Some((_, Some(err))) => Err(ApiError::bad_request(format!(
            "{kind} in version \"v1\" cannot be handled as a {kind}: {err}",
            kind = resource.kind
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use serde_json::json;

    fn pods() -> &'static ResourceInfo {
        by_name("pods").unwrap()
    }

    #[test]
    fn unknown_fields_are_listed_with_kube_paths() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "foo": 1,
            "metadata": {"name": "p", "labels": {"a": "b"}, "bogus": true},
            "spec": {"x": 1, "containers": [{"name": "c", "image": "i"}, {"name": "d", "foo": {"bar": 1},
                "resources": {"limits": {"cpu": "1"}}, "ports": [{"containerPort": 80, "nope": 1}]}]}});
        assert_eq!(
            unknown_fields(pods(), &pod),
            vec![
                "foo",
                "metadata.bogus",
                "spec.x",
                "spec.containers[1].foo",
                "spec.containers[1].ports[0].nope"
            ]
        );
        let clean = json!({"metadata": {"name": "p", "annotations": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": "A", "value": "1"}]}]},
            "status": {"phase": "Pending"}});
        assert!(unknown_fields(pods(), &clean).is_empty());
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": "http", "extra": 1}]}});
        assert_eq!(
            unknown_fields(by_name("services").unwrap(), &svc),
            vec!["spec.ports[0].extra"]
        );
    }

    #[test]
    fn type_errors_use_the_go_decoder_message() {
        let e = check_types(pods(), &json!({"spec": {"containers": "x"}})).unwrap_err();
        assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
        assert_eq!(
            e.message,
            "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field PodSpec.spec.containers of type []v1.Container"
        );
        let e = check_types(pods(), &json!({"metadata": {"labels": {"a": 1}}})).unwrap_err();
        assert!(e.message.ends_with(
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
        ));
        let e = check_types(pods(), &json!({"spec": {"containers": [{"name": 5}]}})).unwrap_err();
        assert!(
            e.message
                .ends_with("Go struct field Container.spec.containers.name of type string"),
            "{}",
            e.message
        );
        let e = check_types(
            pods(),
            &json!({"spec": {"containers": [{"ports": [{"containerPort": 1.5}]}]}}),
        )
        .unwrap_err();
        assert!(e.message.ends_with(
            "cannot unmarshal number 1.5 into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"
        ));
        let e = check_types(pods(), &json!({"spec": {"hostNetwork": "yes"}})).unwrap_err();
        assert!(e.message.ends_with("PodSpec.spec.hostNetwork of type bool"));
        let e = check_types(pods(), &json!({"spec": 3})).unwrap_err();
        assert!(
            e.message
                .ends_with("Go struct field Pod.spec of type v1.PodSpec"),
            "{}",
            e.message
        );
    }

    #[test]
    fn messages_seen_from_real_clusters() {
        let cases = [
            (json!({"spec": {"containers": [{"command": ["sleep", 1200]}]}}),
                "json: cannot unmarshal number into Go struct field Container.spec.containers.command of type string"),
            (json!({"spec": {"containers": {"name": "x"}}}),
                "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"),
            (json!({"spec": {"containers": [{"env": [{"name": "A", "value": 15}]}]}}),
                "json: cannot unmarshal number into Go struct field EnvVar.spec.containers.env.value of type string"),
            (json!({"spec": {"containers": [{"envFrom": [{"configMapRef": "x"}]}]}}),
                "json: cannot unmarshal string into Go struct field EnvFromSource.spec.containers.envFrom.configMapRef of type v1.ConfigMapEnvSource"),
            (json!({"spec": {"containers": [{"securityContext": {"runAsUser": "0"}}]}}),
                "json: cannot unmarshal string into Go struct field SecurityContext.spec.containers.securityContext.runAsUser of type int64"),
        ];
        for (pod, expected) in cases {
            let e = check_types(pods(), &pod).unwrap_err();
            assert_eq!(
                e.message,
                format!("Pod in version \"v1\" cannot be handled as a Pod: {expected}")
            );
        }
    }

    #[test]
    fn bad_quantities_use_the_parser_message() {
        let pod = json!({"spec": {"containers": [{"resources": {"limits": {"memory": "1KB"}}}]}});
        assert_eq!(
            check_types(pods(), &pod).unwrap_err().message,
            "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        );
    }

    #[test]
    fn flexible_types_and_nulls_are_accepted() {
        let ok = json!({"metadata": {"name": null, "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"containers": [{"resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
                "livenessProbe": {"httpGet": {"port": "http"}}}]}});
        assert_eq!(check_types(pods(), &ok), Ok(()));
        let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}});
        assert_eq!(check_types(by_name("services").unwrap(), &svc), Ok(()));
        let e = check_types(
            by_name("services").unwrap(),
            &json!({"spec": {"ports": [{"targetPort": true}]}}),
        )
        .unwrap_err();
        assert!(
            e.message
                .ends_with("cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32"),
            "{}",
            e.message
        );
    }
}
