//! Pod and pod-spec validation (`ValidatePodSpec`: volumes, restart/DNS policy, scheduling fields,
//! tolerations); containers live in `container`, update rules in `pod_update`.

use super::container;
use super::meta::labels;
use super::names::{dns1123_label, dns1123_subdomain, label_value, qualified_name};
use super::{arr_at, obj_at, path, q, str_at, FieldError};
use serde_json::Value;
use std::collections::HashSet;

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const TOLERATION_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const MAX_INT32: i64 = i32::MAX as i64;

/// `ValidatePodCreate`'s spec part.
pub(crate) fn pod(object: &Value) -> Vec<FieldError> {
    let spec = object.get("spec").unwrap_or(&Value::Null);
    let mut errs = pod_spec(spec, "spec");
    // Pod-only checks (not applied to templates, for backwards compatibility).
    for key in ["containers", "initContainers"] {
        for (i, c) in arr_at(spec, key).iter().enumerate() {
            let image = str_at(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    &format!("spec.{key}[{i}].image"),
                    q(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodSpec` for the spec at `base` (`spec` or `spec.template.spec`).
pub(crate) fn pod_spec(spec: &Value, base: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec
        .get("terminationGracePeriodSeconds")
        .is_none_or(Value::is_null)
    {
        errs.push(FieldError::required(
            &path(base, "terminationGracePeriodSeconds"),
            "",
        ));
    }
    let volumes = volumes(spec, base, &mut errs);
    container::containers(spec, base, &volumes, &mut errs);
    if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
        for (i, c) in arr_at(spec, "containers").iter().enumerate() {
            for (j, p) in arr_at(c, "ports").iter().enumerate() {
                let host = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                let container = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
                // Templates may leave hostPort unset; it is defaulted when the pod is created.
                if (base == "spec" || host != 0) && host != container {
                    errs.push(FieldError::invalid(
                        &format!("{}[{i}].ports[{j}].hostPort", path(base, "containers")),
                        host,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    let restart = str_at(spec, "restartPolicy");
    if restart.is_empty() {
        errs.push(FieldError::required(&path(base, "restartPolicy"), ""));
    } else if !RESTART_POLICIES.contains(&restart) {
        errs.push(FieldError::not_supported(
            &path(base, "restartPolicy"),
            restart,
            RESTART_POLICIES,
        ));
    }
    let dns = str_at(spec, "dnsPolicy");
    if dns.is_empty() {
        errs.push(FieldError::required(&path(base, "dnsPolicy"), ""));
    } else if !DNS_POLICIES.contains(&dns) {
        errs.push(FieldError::not_supported(
            &path(base, "dnsPolicy"),
            dns,
            DNS_POLICIES,
        ));
    }
    errs.extend(labels(
        obj_at(spec, "nodeSelector"),
        &path(base, "nodeSelector"),
    ));
    for key in ["serviceAccountName", "nodeName"] {
        let v = str_at(spec, key);
        if !v.is_empty() {
            for msg in dns1123_subdomain(v) {
                errs.push(FieldError::invalid(&path(base, key), q(v), &msg));
            }
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = str_at(spec, key);
        if !v.is_empty() {
            for msg in dns1123_label(v) {
                errs.push(FieldError::invalid(&path(base, key), q(v), &msg));
            }
        }
    }
    if let Some(ads) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        if !(1..=MAX_INT32).contains(&ads) {
            errs.push(FieldError::invalid(
                &path(base, "activeDeadlineSeconds"),
                ads,
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for (i, t) in arr_at(spec, "tolerations").iter().enumerate() {
        toleration(t, &format!("{}[{i}]", path(base, "tolerations")), &mut errs);
    }
    errs
}

fn volumes(spec: &Value, base: &str, errs: &mut Vec<FieldError>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in arr_at(spec, "volumes").iter().enumerate() {
        let field = format!("{}[{i}].name", path(base, "volumes"));
        let name = str_at(v, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&field, ""));
            continue;
        }
        for msg in dns1123_label(name) {
            errs.push(FieldError::invalid(&field, q(name), &msg));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(&field, q(name)));
        }
    }
    names
}

fn toleration(t: &Value, base: &str, errs: &mut Vec<FieldError>) {
    let key = str_at(t, "key");
    if !key.is_empty() {
        for msg in qualified_name(key) {
            errs.push(FieldError::invalid(&path(base, "key"), q(key), &msg));
        }
    }
    let operator = str_at(t, "operator");
    let value = str_at(t, "value");
    if key.is_empty() && operator != "Exists" {
        errs.push(FieldError::invalid(
            &path(base, "operator"),
            q(operator),
            "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
        ));
    }
    match operator {
        "" | "Equal" => {
            let msgs = label_value(value);
            if !msgs.is_empty() {
                errs.push(FieldError::invalid(
                    &path(base, "operator"),
                    q(value),
                    &msgs.join(";"),
                ));
            }
        }
        "Exists" => {
            if !value.is_empty() {
                errs.push(FieldError::invalid(
                    &path(base, "operator"),
                    q(value),
                    "value must be empty when `operator` is 'Exists'",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path(base, "operator"),
            other,
            &["Equal", "Exists"],
        )),
    }
    let effect = str_at(t, "effect");
    if t.get("tolerationSeconds").is_some_and(|s| !s.is_null()) && effect != "NoExecute" {
        errs.push(FieldError::invalid(
            &path(base, "effect"),
            q(effect),
            "effect must be 'NoExecute' when `tolerationSeconds` is set",
        ));
    }
    if !effect.is_empty() && !TOLERATION_EFFECTS.contains(&effect) {
        errs.push(FieldError::not_supported(
            &path(base, "effect"),
            effect,
            TOLERATION_EFFECTS,
        ));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    /// `field: message` of each error (shared with the pod update tests).
    pub(in crate::validation) fn msgs(errs: Vec<FieldError>) -> Vec<String> {
        errs.into_iter()
            .map(|e| format!("{}: {}", e.field, e.body))
            .collect()
    }

    /// A pod that passes validation (shared with the pod update tests).
    pub(in crate::validation) fn valid_pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": "nginx",
            "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
            "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}]}]}})
    }

    #[test]
    fn valid_pod_passes() {
        assert!(pod(&valid_pod()).is_empty());
    }

    #[test]
    fn required_fields() {
        assert_eq!(
            msgs(pod(
                &json!({"spec": {"restartPolicy": "Always", "dnsPolicy": "Default",
                "terminationGracePeriodSeconds": 30}})
            )),
            vec!["spec.containers: Required value"]
        );
        let mut p = valid_pod();
        p["spec"]["containers"][0]["image"] = json!("");
        p["spec"]["containers"][0]["name"] = json!("");
        assert_eq!(
            msgs(pod(&p)),
            vec![
                "spec.containers[0].name: Required value",
                "spec.containers[0].image: Required value"
            ]
        );
    }

    #[test]
    fn enums_and_ports() {
        let mut p = valid_pod();
        p["spec"]["restartPolicy"] = json!("Sometimes");
        p["spec"]["containers"][0]["ports"] = json!([{"containerPort": 70000, "protocol": "tcp"}]);
        p["spec"]["containers"][0]["imagePullPolicy"] = json!("Maybe");
        assert_eq!(
            msgs(pod(&p)),
            vec![
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[0].protocol: Unsupported value: \"tcp\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].imagePullPolicy: Unsupported value: \"Maybe\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ]
        );
    }

    #[test]
    fn duplicate_names_and_mounts() {
        let mut p = valid_pod();
        let c = p["spec"]["containers"][0].clone();
        p["spec"]["containers"] = json!([c.clone(), c]);
        p["spec"]["containers"][1]["volumeMounts"] = json!([{"name": "v", "mountPath": "/x"}]);
        assert_eq!(
            msgs(pod(&p)),
            vec![
                "spec.containers[1].volumeMounts[0].name: Not found: \"v\"",
                "spec.containers[1].name: Duplicate value: \"c\"",
            ]
        );
    }

    #[test]
    fn tolerations() {
        let mut p = valid_pod();
        p["spec"]["tolerations"] = json!([{"operator": "Equal", "value": "x"},
            {"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]);
        let m = msgs(pod(&p));
        assert_eq!(m[0], "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"");
        assert_eq!(m[1], "spec.tolerations[1].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set");
    }
}
