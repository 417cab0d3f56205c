//! Container validation (`validateContainers`, `validateInitContainers`, `validateContainerCommon`): names,
//! images, ports, env, volume mounts, pull policy, probes and host-port conflicts.

use super::names::{dns1123_label, port_name, port_num};
use super::quantity;
use super::{arr_at, path, q, str_at, FieldError};
use serde_json::Value;
use std::collections::HashSet;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
const HANDLERS: &[&str] = &["exec", "httpGet", "tcpSocket", "grpc", "sleep"];

/// Validates `containers` then `initContainers` of the pod spec at `base`.
pub(crate) fn containers(
    spec: &Value,
    base: &str,
    volumes: &HashSet<String>,
    errs: &mut Vec<FieldError>,
) {
    let list = arr_at(spec, "containers");
    let field = path(base, "containers");
    if list.is_empty() {
        errs.push(FieldError::required(&field, ""));
    } else {
        let mut names = HashSet::new();
        for (i, c) in list.iter().enumerate() {
            let idx = format!("{field}[{i}]");
            common(c, &idx, volumes, errs);
            let name = str_at(c, "name");
            if !names.insert(name.to_string()) {
                errs.push(FieldError::duplicate(&path(&idx, "name"), q(name)));
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                self::probe(c, probe, &idx, errs);
            }
            if c.get("restartPolicy").is_some_and(|r| !r.is_null()) {
                errs.push(FieldError::forbidden(
                    &path(&idx, "restartPolicy"),
                    "may not be set for non-init containers",
                ));
            }
        }
        host_port_conflicts(list, &field, errs);
    }
    // Init containers collide with regular container names, and their probes need restartPolicy=Always.
    let mut names: HashSet<String> = list.iter().map(|c| str_at(c, "name").to_string()).collect();
    let field = path(base, "initContainers");
    for (i, c) in arr_at(spec, "initContainers").iter().enumerate() {
        let idx = format!("{field}[{i}]");
        common(c, &idx, volumes, errs);
        let restart = str_at(c, "restartPolicy");
        if !restart.is_empty() && restart != "Always" {
            errs.push(FieldError::not_supported(
                &path(&idx, "restartPolicy"),
                restart,
                &["Always"],
            ));
        }
        let name = str_at(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(&path(&idx, "name"), q(name)));
        } else if !name.is_empty() {
            names.insert(name.to_string());
        }
        host_port_conflicts(std::slice::from_ref(c), &field, errs);
        for key in [
            "lifecycle",
            "livenessProbe",
            "readinessProbe",
            "startupProbe",
        ] {
            if restart == "Always" {
                if key != "lifecycle" {
                    probe(c, key, &idx, errs);
                }
            } else if c.get(key).is_some_and(|v| !v.is_null()) {
                errs.push(FieldError::forbidden(
                    &path(&idx, key),
                    "may not be set for init containers without restartPolicy=Always",
                ));
            }
        }
    }
}

/// `validateContainerCommon`.
fn common(c: &Value, base: &str, volumes: &HashSet<String>, errs: &mut Vec<FieldError>) {
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
    let policy_field = path(base, "terminationMessagePolicy");
    if policy.is_empty() {
        errs.push(FieldError::required(&policy_field, ""));
    } else if !TERMINATION_MESSAGE_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            &policy_field,
            policy,
            TERMINATION_MESSAGE_POLICIES,
        ));
    }
    ports(c, base, errs);
    env(c, base, errs);
    mounts(c, base, volumes, errs);
    let pull = str_at(c, "imagePullPolicy");
    let pull_field = path(base, "imagePullPolicy");
    if pull.is_empty() {
        errs.push(FieldError::required(&pull_field, ""));
    } else if !PULL_POLICIES.contains(&pull) {
        errs.push(FieldError::not_supported(&pull_field, pull, PULL_POLICIES));
    }
    quantity::container_resources(c, base, errs);
}

/// `validateContainerPorts`.
fn ports(c: &Value, base: &str, errs: &mut Vec<FieldError>) {
    let mut names = HashSet::new();
    for (i, p) in arr_at(c, "ports").iter().enumerate() {
        let idx = format!("{}[{i}]", path(base, "ports"));
        let name = str_at(p, "name");
        if !name.is_empty() {
            let msgs = port_name(name);
            for msg in &msgs {
                errs.push(FieldError::invalid(&path(&idx, "name"), q(name), msg));
            }
            if msgs.is_empty() && !names.insert(name.to_string()) {
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

/// `ValidateEnv` with the relaxed (v1.33 default) name rule.
fn env(c: &Value, base: &str, errs: &mut Vec<FieldError>) {
    for (i, e) in arr_at(c, "env").iter().enumerate() {
        let field = format!("{}[{i}].name", path(base, "env"));
        let name = str_at(e, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&field, ""));
            errs.push(FieldError::invalid(
                &field,
                q(name),
                "environment variable name must be non-empty",
            ));
        } else if name
            .chars()
            .any(|ch| !ch.is_ascii() || ch.is_ascii_control() || ch == '=')
        {
            errs.push(FieldError::invalid(
                &field,
                q(name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
}

/// `ValidateVolumeMounts`.
fn mounts(c: &Value, base: &str, volumes: &HashSet<String>, errs: &mut Vec<FieldError>) {
    let mut mount_points = HashSet::new();
    for (i, m) in arr_at(c, "volumeMounts").iter().enumerate() {
        let idx = format!("{}[{i}]", path(base, "volumeMounts"));
        let name = str_at(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(&path(&idx, "name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(FieldError::new(
                "FieldValueNotFound",
                &path(&idx, "name"),
                format!("Not found: {}", q(name)),
            ));
        }
        let mount_path = str_at(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(&path(&idx, "mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(FieldError::invalid(
                &path(&idx, "mountPath"),
                q(mount_path),
                "must be unique",
            ));
        }
    }
}

/// `validateProbe` plus the liveness/startup `successThreshold` rule.
fn probe(c: &Value, key: &str, base: &str, errs: &mut Vec<FieldError>) {
    let Some(p) = c.get(key).filter(|p| p.is_object()) else {
        return;
    };
    let base = path(base, key);
    let mut handlers = 0;
    for handler in HANDLERS {
        let Some(h) = p.get(*handler).filter(|h| !h.is_null()) else {
            continue;
        };
        // Probes cannot sleep; the real server ignores that field here.
        if *handler == "sleep" {
            continue;
        }
        let field = path(&base, handler);
        if handlers > 0 {
            errs.push(FieldError::forbidden(
                &field,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        handlers += 1;
        match *handler {
            "exec" if arr_at(h, "command").is_empty() => {
                errs.push(FieldError::required(&path(&field, "command"), ""))
            }
            "httpGet" => {
                if str_at(h, "path").is_empty() {
                    errs.push(FieldError::required(&path(&field, "path"), ""));
                }
                port_num_or_name(h.get("port"), &path(&field, "port"), errs);
                let scheme = str_at(h, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(FieldError::not_supported(
                        &path(&field, "scheme"),
                        scheme,
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" | "grpc" => port_num_or_name(h.get("port"), &path(&field, "port"), errs),
            _ => {}
        }
    }
    if handlers == 0 {
        errs.push(FieldError::required(&base, "must specify a handler type"));
    }
    for k in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        if let Some(n) = p.get(k).and_then(Value::as_i64).filter(|n| *n < 0) {
            errs.push(FieldError::invalid(
                &path(&base, k),
                n,
                "must be greater than or equal to 0",
            ));
        }
    }
    let success = p
        .get("successThreshold")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if key != "readinessProbe" && success != 1 {
        errs.push(FieldError::invalid(
            &path(&base, "successThreshold"),
            success,
            "must be 1",
        ));
    }
}

/// `ValidatePortNumOrName` for an int-or-string port.
pub(crate) fn port_num_or_name(port: Option<&Value>, field: &str, errs: &mut Vec<FieldError>) {
    match port {
        Some(Value::String(s)) => {
            for msg in port_name(s) {
                errs.push(FieldError::invalid(field, q(s), &msg));
            }
        }
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            for msg in port_num(n) {
                errs.push(FieldError::invalid(field, n, &msg));
            }
        }
    }
}

/// `checkHostPortConflicts`: a protocol/hostIP/hostPort triple may be used once.
fn host_port_conflicts(list: &[Value], base: &str, errs: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (i, c) in list.iter().enumerate() {
        for (j, p) in arr_at(c, "ports").iter().enumerate() {
            let port = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
            if port == 0 {
                continue;
            }
            let key = format!("{}/{}/{port}", str_at(p, "protocol"), str_at(p, "hostIP"));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &format!("{base}[{i}].ports[{j}].hostPort"),
                    q(&key),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msgs(spec: Value) -> Vec<String> {
        let mut errs = Vec::new();
        let volumes = HashSet::from(["data".to_string()]);
        containers(&spec, "spec", &volumes, &mut errs);
        errs.into_iter()
            .map(|e| format!("{}: {}", e.field, e.body))
            .collect()
    }

    fn c(extra: Value) -> Value {
        let mut base = json!({"name": "c", "image": "i", "imagePullPolicy": "Always",
            "terminationMessagePolicy": "File"});
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        base
    }

    #[test]
    fn required_and_duplicates() {
        assert_eq!(msgs(json!({})), vec!["spec.containers: Required value"]);
        assert_eq!(
            msgs(json!({"containers": [c(json!({"name": "", "image": ""}))]})),
            vec![
                "spec.containers[0].name: Required value",
                "spec.containers[0].image: Required value"
            ]
        );
        assert_eq!(
            msgs(
                json!({"containers": [c(json!({})), c(json!({}))], "initContainers": [c(json!({}))]})
            ),
            vec![
                "spec.containers[1].name: Duplicate value: \"c\"",
                "spec.initContainers[0].name: Duplicate value: \"c\""
            ]
        );
    }

    #[test]
    fn ports_env_and_mounts() {
        let m = msgs(json!({"containers": [c(json!({
            "ports": [{"containerPort": 80, "protocol": "TCP", "hostPort": 80},
                      {"containerPort": 81, "protocol": "TCP", "hostPort": 80}],
            "env": [{"name": "A=B"}],
            "volumeMounts": [{"name": "data", "mountPath": "/d"}, {"name": "nope", "mountPath": "/d"}]}))]}));
        assert_eq!(
            m,
            vec![
                "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
                "spec.containers[0].volumeMounts[1].name: Not found: \"nope\"",
                "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique",
                "spec.containers[0].ports[1].hostPort: Duplicate value: \"TCP//80\"",
            ]
        );
    }

    #[test]
    fn probes() {
        let m = msgs(json!({"containers": [c(json!({
            "livenessProbe": {"successThreshold": 2, "httpGet": {"path": "/", "port": 0, "scheme": "HTTP"}},
            "readinessProbe": {"successThreshold": 1}}))]}));
        assert_eq!(
            m,
            vec![
                "spec.containers[0].livenessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].readinessProbe: Required value: must specify a handler type",
            ]
        );
        let init = msgs(json!({"containers": [c(json!({}))],
            "initContainers": [c(json!({"name": "i", "livenessProbe": {"exec": {"command": ["x"]}}}))]}));
        assert_eq!(
            init,
            vec!["spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"]
        );
    }
}
