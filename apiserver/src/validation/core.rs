//! Validation of replication controllers, config maps, namespaces, endpoints and events.

use super::meta::{annotations, kube_finalizer_name, labels};
use super::names::{config_map_key, dns1123_label, dns1123_subdomain, port_num, qualified_name};
use super::pod::pod_spec;
use super::{arr_at, go_map, obj_at, path, q, str_at, FieldError};
use crate::selector::LabelSelector;
use serde_json::Value;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn non_negative(v: &Value, key: &str, field: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = v.get(key).and_then(Value::as_i64).filter(|n| *n < 0) {
        errs.push(FieldError::invalid(
            field,
            n,
            "must be greater than or equal to 0",
        ));
    }
}

/// `ValidateReplicationController`.
pub(crate) fn replication_controller(object: &Value) -> Vec<FieldError> {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let mut errs = Vec::new();
    non_negative(spec, "minReadySeconds", "spec.minReadySeconds", &mut errs);
    let selector = obj_at(spec, "selector");
    if selector.is_none_or(|s| s.is_empty()) {
        errs.push(FieldError::required("spec.selector", ""));
    }
    non_negative(spec, "replicas", "spec.replicas", &mut errs);
    let Some(template) = spec.get("template").filter(|t| t.is_object()) else {
        errs.push(FieldError::required("spec.template", ""));
        return errs;
    };
    let template_meta = template.get("metadata").unwrap_or(&Value::Null);
    let template_labels = obj_at(template_meta, "labels");
    if let Some(selector) = selector.filter(|s| !s.is_empty()) {
        if !LabelSelector::from_map(selector).matches_labels(template_labels) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                go_map(template_labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    errs.extend(labels(template_labels, "spec.template.labels"));
    errs.extend(annotations(
        obj_at(template_meta, "annotations"),
        "spec.template.annotations",
    ));
    let template_spec = template.get("spec").unwrap_or(&Value::Null);
    errs.extend(pod_spec(template_spec, "spec.template.spec"));
    let restart = str_at(template_spec, "restartPolicy");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            restart,
            &["Always"],
        ));
    }
    if template_spec
        .get("activeDeadlineSeconds")
        .is_some_and(|a| !a.is_null())
    {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
    errs
}

/// `ValidateConfigMap`: keys, no key in both `data` and `binaryData`, total size.
pub(crate) fn config_map(object: &Value) -> Vec<FieldError> {
    const MAX_SIZE: usize = 1024 * 1024;
    let mut errs = Vec::new();
    let data = obj_at(object, "data");
    let binary = obj_at(object, "binaryData");
    let mut total = 0;
    for (key, value) in data.into_iter().flatten() {
        let field = format!("data[{key}]");
        for msg in config_map_key(key) {
            errs.push(FieldError::invalid(&field, q(key), &msg));
        }
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(
                &field,
                q(key),
                "duplicate of key present in binaryData",
            ));
        }
        total += value.as_str().map_or(0, str::len);
    }
    for (key, value) in binary.into_iter().flatten() {
        let field = format!("binaryData[{key}]");
        for msg in config_map_key(key) {
            errs.push(FieldError::invalid(&field, q(key), &msg));
        }
        // base64 text: 3 bytes per 4 characters.
        total += value.as_str().map_or(0, |s| s.len() / 4 * 3);
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long("", MAX_SIZE));
    }
    errs
}

/// `ValidateConfigMapUpdate`: an immutable config map keeps its data and its immutability.
pub(crate) fn config_map_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.get("immutable") != Some(&Value::Bool(true)) {
        return errs;
    }
    if new.get("immutable") != Some(&Value::Bool(true)) {
        errs.push(FieldError::forbidden(
            "immutable",
            "field is immutable when `immutable` is set",
        ));
    }
    for key in ["data", "binaryData"] {
        let norm = |v: &Value| obj_at(v, key).filter(|m| !m.is_empty()).cloned();
        if norm(new) != norm(old) {
            errs.push(FieldError::forbidden(
                key,
                "field is immutable when `immutable` is set",
            ));
        }
    }
    errs
}

/// `ValidateNamespace`: spec finalizers must be standard or fully qualified.
pub(crate) fn namespace(object: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = object.get("spec").unwrap_or(&Value::Null);
    for f in arr_at(spec, "finalizers") {
        let f = f.as_str().unwrap_or_default();
        for msg in qualified_name(f) {
            errs.push(FieldError::invalid("spec.finalizers", q(f), &msg));
        }
        errs.extend(kube_finalizer_name(f, "spec.finalizers"));
    }
    errs
}

/// `ValidateEndpoints`: ports and addresses of each subset.
pub(crate) fn endpoints(object: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, subset) in arr_at(object, "subsets").iter().enumerate() {
        let base = format!("subsets[{i}]");
        for key in ["addresses", "notReadyAddresses"] {
            for (j, addr) in arr_at(subset, key).iter().enumerate() {
                let ip = str_at(addr, "ip");
                if ip.parse::<std::net::IpAddr>().is_err() {
                    errs.push(FieldError::invalid(
                        &format!("{base}.{key}[{j}].ip"),
                        q(ip),
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ));
                }
            }
        }
        let ports = arr_at(subset, "ports");
        for (j, port) in ports.iter().enumerate() {
            let idx = format!("{base}.ports[{j}]");
            let name = str_at(port, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(&path(&idx, "name"), ""));
            } else if !name.is_empty() {
                for msg in dns1123_label(name) {
                    errs.push(FieldError::invalid(&path(&idx, "name"), q(name), &msg));
                }
            }
            let number = port.get("port").and_then(Value::as_i64).unwrap_or(0);
            for msg in port_num(number) {
                errs.push(FieldError::invalid(&path(&idx, "port"), number, &msg));
            }
            let protocol = str_at(port, "protocol");
            if protocol.is_empty() {
                errs.push(FieldError::required(&path(&idx, "protocol"), ""));
            } else if !PROTOCOLS.contains(&protocol) {
                errs.push(FieldError::not_supported(
                    &path(&idx, "protocol"),
                    protocol,
                    PROTOCOLS,
                ));
            }
        }
    }
    errs
}

/// `legacyValidateEvent` for core/v1: old-style events (no `eventTime`) must agree on namespaces; new-style
/// events need their reporting fields, within the length limits.
pub(crate) fn event(object: &Value) -> Vec<FieldError> {
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let involved = object
        .pointer("/involvedObject/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            q(involved),
            "does not match event.namespace",
        )
    };
    let mut errs = Vec::new();
    if object.get("eventTime").is_none_or(Value::is_null) {
        let ok = if involved.is_empty() {
            namespace.is_empty() || namespace == "default"
        } else {
            namespace == involved
        };
        if !ok {
            errs.push(mismatch());
        }
    } else {
        if involved.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = str_at(object, "reportingComponent");
        if controller.is_empty() {
            errs.push(FieldError::required("reportingComponent", ""));
        }
        for msg in qualified_name(controller) {
            errs.push(FieldError::invalid(
                "reportingComponent",
                q(controller),
                &msg,
            ));
        }
        for (key, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
            let v = str_at(object, key);
            if v.is_empty() {
                errs.push(FieldError::required(key, ""));
            }
            if v.len() > limit {
                errs.push(FieldError::invalid(
                    key,
                    q(""),
                    &format!("can have at most {limit} characters"),
                ));
            }
        }
        if str_at(object, "message").len() > 1024 {
            errs.push(FieldError::invalid(
                "message",
                q(""),
                "can have at most 1024 characters",
            ));
        }
    }
    for msg in dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid("namespace", q(namespace), &msg));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter()
            .map(|e| format!("{}: {}", e.field, e.body))
            .collect()
    }

    fn rc(selector: Value, labels: Value, replicas: i64) -> Value {
        json!({"metadata": {"name": "r"}, "spec": {"replicas": replicas, "selector": selector,
            "template": {"metadata": {"labels": labels}, "spec": {"restartPolicy": "Always",
                "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": "i",
                "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}]}}}})
    }

    #[test]
    fn rc_rules() {
        assert!(
            replication_controller(&rc(json!({"app": "a"}), json!({"app": "a", "x": "y"}), 1))
                .is_empty()
        );
        assert_eq!(
            msgs(replication_controller(&rc(json!({"app": "b"}), json!({"app": "a"}), -1))),
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`",
            ]
        );
        let mut never = rc(json!({"app": "a"}), json!({"app": "a"}), 1);
        never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            msgs(replication_controller(&never)),
            vec!["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]
        );
        assert_eq!(
            msgs(replication_controller(
                &json!({"spec": {"selector": {"a": "b"}}})
            )),
            vec!["spec.template: Required value"]
        );
    }

    #[test]
    fn config_map_rules() {
        assert_eq!(
            msgs(config_map(&json!({"data": {"a b": "x", "k": "v"}, "binaryData": {"k": "AA=="}}))),
            vec![
                "data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                "data[k]: Invalid value: \"k\": duplicate of key present in binaryData",
            ]
        );
        let old = json!({"immutable": true, "data": {"a": "1"}});
        assert!(config_map_update(&old, &old).is_empty());
        assert_eq!(
            msgs(config_map_update(&json!({"data": {"a": "2"}}), &old)),
            vec![
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
    }

    #[test]
    fn namespace_endpoints_and_events() {
        assert!(
            namespace(&json!({"spec": {"finalizers": ["kubernetes", "example.com/x"]}})).is_empty()
        );
        assert_eq!(
            msgs(namespace(&json!({"spec": {"finalizers": ["custom"]}}))),
            vec!["spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"]
        );
        assert_eq!(
            msgs(endpoints(&json!({"subsets": [{"addresses": [{"ip": "x"}], "ports": [{"port": 80, "protocol": "TCP"}]}]}))),
            vec!["subsets[0].addresses[0].ip: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]
        );
        assert!(event(
            &json!({"metadata": {"namespace": "a"}, "involvedObject": {"namespace": "a"}})
        )
        .is_empty());
        assert_eq!(
            msgs(event(
                &json!({"metadata": {"namespace": "a"}, "involvedObject": {"namespace": "b"}})
            )),
            vec!["involvedObject.namespace: Invalid value: \"b\": does not match event.namespace"]
        );
        assert_eq!(
            msgs(event(
                &json!({"metadata": {"namespace": "a"}, "eventTime": "2024-01-01T00:00:00.000000Z",
                "involvedObject": {"namespace": "a"}, "reportingComponent": "kubelet", "reason": "Started"})
            )),
            vec![
                "reportingInstance: Required value",
                "action: Required value"
            ]
        );
    }
}
