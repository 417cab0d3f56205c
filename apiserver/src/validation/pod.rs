//! Pod and pod-spec validation (`ValidatePodSpec`, containers, ports, tolerations) and pod update rules.

use super::meta::labels;
use super::names::{
    dns1123_label, dns1123_subdomain, label_value, port_name, port_num, qualified_name,
};
use super::{arr_at, obj_at, path, q, str_at, FieldError};
use serde_json::{Map, Value};
use std::collections::HashSet;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
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
    let mut names = HashSet::new();
    let containers = arr_at(spec, "containers");
    if containers.is_empty() {
        errs.push(FieldError::required(&path(base, "containers"), ""));
    }
    // Regular containers first: init containers then collide with their names, as in the real server.
    for key in ["containers", "initContainers"] {
        for (i, c) in arr_at(spec, key).iter().enumerate() {
            container(
                c,
                &format!("{}[{i}]", path(base, key)),
                &volumes,
                &mut names,
                &mut errs,
            );
        }
    }
    if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
        for (i, c) in arr_at(spec, "containers").iter().enumerate() {
            for (j, p) in arr_at(c, "ports").iter().enumerate() {
                let host = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
                let container = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
                if host != container {
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

fn container(
    c: &Value,
    base: &str,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
    errs: &mut Vec<FieldError>,
) {
    let name = str_at(c, "name");
    let name_field = path(base, "name");
    if name.is_empty() {
        errs.push(FieldError::required(&name_field, ""));
    } else {
        for msg in dns1123_label(name) {
            errs.push(FieldError::invalid(&name_field, q(name), &msg));
        }
    }
    if str_at(c, "image").is_empty() {
        errs.push(FieldError::required(&path(base, "image"), ""));
    }
    let policy = str_at(c, "terminationMessagePolicy");
    if policy.is_empty() {
        errs.push(FieldError::required(
            &path(base, "terminationMessagePolicy"),
            "",
        ));
    } else if !TERMINATION_MESSAGE_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            &path(base, "terminationMessagePolicy"),
            policy,
            TERMINATION_MESSAGE_POLICIES,
        ));
    }
    ports(c, base, errs);
    for (i, env) in arr_at(c, "env").iter().enumerate() {
        let field = format!("{}[{i}].name", path(base, "env"));
        let n = str_at(env, "name");
        if n.is_empty() {
            errs.push(FieldError::required(&field, ""));
        } else if n
            .chars()
            .any(|ch| !ch.is_ascii() || ch.is_ascii_control() || ch == '=')
        {
            errs.push(FieldError::invalid(
                &field,
                q(n),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
    for (i, m) in arr_at(c, "volumeMounts").iter().enumerate() {
        let mount = format!("{}[{i}]", path(base, "volumeMounts"));
        let n = str_at(m, "name");
        if n.is_empty() {
            errs.push(FieldError::required(&path(&mount, "name"), ""));
        } else if !volumes.contains(n) {
            errs.push(FieldError::new(
                "FieldValueNotFound",
                &path(&mount, "name"),
                format!("Not found: {}", q(n)),
            ));
        }
        if str_at(m, "mountPath").is_empty() {
            errs.push(FieldError::required(&path(&mount, "mountPath"), ""));
        }
    }
    let pull = str_at(c, "imagePullPolicy");
    if pull.is_empty() {
        errs.push(FieldError::required(&path(base, "imagePullPolicy"), ""));
    } else if !PULL_POLICIES.contains(&pull) {
        errs.push(FieldError::not_supported(
            &path(base, "imagePullPolicy"),
            pull,
            PULL_POLICIES,
        ));
    }
    if !name.is_empty() && !names.insert(name.to_string()) {
        errs.push(FieldError::duplicate(&name_field, q(name)));
    }
}

fn ports(c: &Value, base: &str, errs: &mut Vec<FieldError>) {
    let mut names = HashSet::new();
    for (i, p) in arr_at(c, "ports").iter().enumerate() {
        let idx = format!("{}[{i}]", path(base, "ports"));
        let name = str_at(p, "name");
        if !name.is_empty() {
            for msg in port_name(name) {
                errs.push(FieldError::invalid(&path(&idx, "name"), q(name), &msg));
            }
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(&path(&idx, "name"), q(name)));
            }
        }
        let container_port = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
        if container_port == 0 {
            errs.push(FieldError::required(&path(&idx, "containerPort"), ""));
        } else {
            for msg in port_num(container_port) {
                errs.push(FieldError::invalid(
                    &path(&idx, "containerPort"),
                    container_port,
                    &msg,
                ));
            }
        }
        let host_port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
        if host_port != 0 {
            for msg in port_num(host_port) {
                errs.push(FieldError::invalid(
                    &path(&idx, "hostPort"),
                    host_port,
                    &msg,
                ));
            }
        }
        let protocol = str_at(p, "protocol");
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

const UPDATABLE: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`: the new pod must be valid and its spec may change only in the updatable fields.
pub(crate) fn pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = pod(new);
    let (Some(new_spec), Some(old_spec)) = (obj_at(new, "spec"), obj_at(old, "spec")) else {
        return errs;
    };
    let (new_v, old_v) = (&new["spec"], &old["spec"]);
    if arr_at(new_v, "containers").len() != arr_at(old_v, "containers").len() {
        errs.push(FieldError::forbidden(
            "spec.containers",
            "pod updates may not add or remove containers",
        ));
        return errs;
    }
    if arr_at(new_v, "initContainers").len() != arr_at(old_v, "initContainers").len() {
        errs.push(FieldError::forbidden(
            "spec.initContainers",
            "pod updates may not add or remove containers",
        ));
        return errs;
    }
    let new_ads = new_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    let old_ads = old_spec
        .get("activeDeadlineSeconds")
        .and_then(Value::as_i64);
    match (new_ads, old_ads) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be between 0 and 2147483647, inclusive",
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            "null",
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Existing tolerations may only gain siblings.
    let new_tolerations = arr_at(new_v, "tolerations");
    for old_t in arr_at(old_v, "tolerations") {
        let same = |t: &&Value| {
            ["key", "operator", "value", "effect"]
                .iter()
                .all(|k| str_at(t, k) == str_at(old_t, k))
        };
        if !new_tolerations.iter().any(|t| same(&t)) {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    // Undo the allowed changes; anything left differing is forbidden.
    let mut munged = new_spec.clone();
    for key in ["containers", "initContainers"] {
        if let Some(list) = munged.get_mut(key).and_then(Value::as_array_mut) {
            for (i, c) in list.iter_mut().enumerate() {
                if let (Some(c), Some(image)) = (c.as_object_mut(), old_v[key][i].get("image")) {
                    c.insert("image".into(), image.clone());
                }
            }
        }
    }
    for key in ["activeDeadlineSeconds", "tolerations"] {
        restore(&mut munged, old_spec, key);
    }
    let old_grace = old_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    let new_grace = new_spec
        .get("terminationGracePeriodSeconds")
        .and_then(Value::as_i64);
    if matches!((old_grace, new_grace), (Some(o), Some(1)) if o < 0) {
        restore(&mut munged, old_spec, "terminationGracePeriodSeconds");
    }
    if &munged != old_spec {
        errs.push(FieldError::forbidden(
            "spec",
            &format!(
                "pod updates may not change fields other than {UPDATABLE}\n{}",
                diff(old_spec, &munged)
            ),
        ));
    }
    errs
}

fn restore(target: &mut Map<String, Value>, from: &Map<String, Value>, key: &str) {
    match from.get(key) {
        Some(v) => target.insert(key.to_string(), v.clone()),
        None => target.remove(key),
    };
}

/// A compact rendering of the differing spec fields, in the spirit of the real server's `cmp.Diff`.
fn diff(old: &Map<String, Value>, new: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (o, n) = (old.get(k), new.get(k));
        if o == n {
            continue;
        }
        let field = {
            let mut c = k.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        };
        if let Some(o) = o {
            out.push_str(&format!("- \t{field}: {o},\n"));
        }
        if let Some(n) = n {
            out.push_str(&format!("+ \t{field}: {n},\n"));
        }
    }
    out.push_str("  }\n");
    out
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

    fn valid_pod() -> Value {
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

    #[test]
    fn updates_may_change_only_images_and_deadlines() {
        let old = valid_pod();
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("nginx:2");
        new["metadata"]["labels"] = json!({"a": "b"});
        assert!(pod_update(&new, &old).is_empty());
        new["spec"]["nodeName"] = json!("n1");
        let errs = pod_update(&new, &old);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "spec");
        assert!(errs[0].body.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n  core.PodSpec{\n"));
        assert!(errs[0].body.contains("+ \tNodeName: \"n1\","));
        let mut more = old.clone();
        let c = more["spec"]["containers"][0].clone();
        more["spec"]["containers"] = json!([c.clone(), {"name": "d", "image": "x", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"}]);
        assert_eq!(
            msgs(pod_update(&more, &old)),
            vec!["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
        let mut deadline = old.clone();
        deadline["spec"]["activeDeadlineSeconds"] = json!(10);
        assert!(pod_update(&deadline, &old).is_empty());
        let mut later = deadline.clone();
        later["spec"]["activeDeadlineSeconds"] = json!(20);
        assert_eq!(
            msgs(pod_update(&later, &deadline)),
            vec!["spec.activeDeadlineSeconds: Invalid value: 20: must be less than or equal to previous value"]
        );
    }
}
