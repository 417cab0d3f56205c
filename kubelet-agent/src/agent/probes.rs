//! The restart policy and probes of a task, from the labels the Kubernetes framework puts
//! on its `TaskInfo`s:
//!
//! - `kumos.io/restart-policy`: the pod's `restartPolicy` (`Always`, `OnFailure`,
//!   `Never`); absent (a plain Mesos command task) means `Never`.
//! - `kumos.io/liveness-probe`, `kumos.io/readiness-probe`: the container's probe as
//!   Kubernetes JSON (`exec`, `httpGet`, `tcpSocket`; `grpc` is not supported).
//! - `kumos.io/ports`: the container's ports, `[{"name", "containerPort", "hostPort"}]`,
//!   mapping the container ports a probe names (by number or name) to the host ports
//!   they are published on. A number without a mapping is used as is.

use crate::containerizer::{Probe, ProbeAction, RestartPolicy};
use serde_json::Value as Json;
use std::time::Duration;

/// Label carrying the pod's restart policy.
pub const LABEL_RESTART_POLICY: &str = "kumos.io/restart-policy";
/// Label carrying the container's liveness probe.
pub const LABEL_LIVENESS: &str = "kumos.io/liveness-probe";
/// Label carrying the container's readiness probe.
pub const LABEL_READINESS: &str = "kumos.io/readiness-probe";
/// Label carrying the container's port mappings.
pub const LABEL_PORTS: &str = "kumos.io/ports";

/// The value of a label of a `TaskInfo`.
pub fn label<'a>(task: &'a Json, key: &str) -> Option<&'a str> {
    task.pointer("/labels/labels")?
        .as_array()?
        .iter()
        .find(|l| l.get("key").and_then(Json::as_str) == Some(key))?
        .get("value")?
        .as_str()
}

/// The task's restart policy (`Never` when absent or unknown).
pub fn restart_policy(task: &Json) -> RestartPolicy {
    label(task, LABEL_RESTART_POLICY)
        .and_then(RestartPolicy::parse)
        .unwrap_or_default()
}

/// The container port published on `host_port`, from the `kumos.io/ports` label (a pod's
/// `containerPort`); `None` without a mapping (a plain Mesos task listens on the host port itself).
pub fn container_port_of(task: &Json, host_port: u16) -> Option<u16> {
    let ports: Json = serde_json::from_str(label(task, LABEL_PORTS)?).ok()?;
    ports
        .as_array()?
        .iter()
        .find(|p| p.get("hostPort").and_then(Json::as_u64) == Some(u64::from(host_port)))?
        .get("containerPort")?
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
}

/// The probe in label `key`, its ports resolved to host ports; `Err` for a probe that
/// cannot run.
pub fn probe(task: &Json, key: &str) -> Result<Option<Probe>, String> {
    let Some(text) = label(task, key) else {
        return Ok(None);
    };
    let spec: Json = serde_json::from_str(text).map_err(|e| format!("label {key}: {e}"))?;
    let ports: Json = label(task, LABEL_PORTS)
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or(Json::Null);
    let port = |p: Option<&Json>| -> Result<u16, String> {
        resolve_port(p, &ports).ok_or_else(|| format!("label {key}: unknown port {p:?}"))
    };
    let action = if let Some(exec) = spec.get("exec") {
        let argv: Vec<String> = exec
            .get("command")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(str::to_string)
            .collect();
        if argv.is_empty() {
            return Err(format!("label {key}: exec probe without a command"));
        }
        ProbeAction::Exec(argv)
    } else if let Some(http) = spec.get("httpGet") {
        ProbeAction::HttpGet {
            port: port(http.get("port"))?,
            path: http
                .get("path")
                .and_then(Json::as_str)
                .unwrap_or("/")
                .to_string(),
        }
    } else if let Some(tcp) = spec.get("tcpSocket") {
        ProbeAction::TcpSocket {
            port: port(tcp.get("port"))?,
        }
    } else {
        return Err(format!("label {key}: unsupported probe"));
    };
    let mut probe = Probe::new(action);
    let num = |field: &str| spec.get(field).and_then(Json::as_u64);
    let secs = |v: u64| Duration::from_secs(v.min(86_400));
    let count = |v: u64| u32::try_from(v).unwrap_or(u32::MAX).max(1);
    if let Some(v) = num("initialDelaySeconds") {
        probe.initial_delay = secs(v);
    }
    if let Some(v) = num("periodSeconds") {
        probe.period = secs(v.max(1));
    }
    if let Some(v) = num("timeoutSeconds") {
        probe.timeout = secs(v.max(1));
    }
    if let Some(v) = num("failureThreshold") {
        probe.failure_threshold = count(v);
    }
    if let Some(v) = num("successThreshold") {
        probe.success_threshold = count(v);
    }
    Ok(Some(probe))
}

/// The host port of a probe's `port` (number or name) among the container's `ports`.
fn resolve_port(port: Option<&Json>, ports: &Json) -> Option<u16> {
    let mapped = ports.as_array().into_iter().flatten();
    let host = |p: &Json| p.get("hostPort").and_then(Json::as_u64);
    let found = match port? {
        Json::Number(n) => {
            let n = n.as_u64()?;
            let mut mapped = mapped;
            mapped
                .find(|p| p.get("containerPort").and_then(Json::as_u64) == Some(n))
                .and_then(host)
                .or(Some(n))
        }
        Json::String(s) => match s.parse::<u64>() {
            Ok(n) => return resolve_port(Some(&Json::from(n)), ports),
            Err(_) => {
                let mut mapped = mapped;
                mapped
                    .find(|p| p.get("name").and_then(Json::as_str) == Some(s.as_str()))
                    .and_then(host)
            }
        },
        _ => None,
    };
    found
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(labels: &[(&str, Json)]) -> Json {
        let labels: Vec<Json> = labels
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v.to_string()}))
            .collect();
        json!({"labels": {"labels": labels}})
    }

    #[test]
    fn restart_policy_defaults_to_never() {
        assert_eq!(restart_policy(&json!({})), RestartPolicy::Never);
        let t =
            json!({"labels": {"labels": [{"key": LABEL_RESTART_POLICY, "value": "OnFailure"}]}});
        assert_eq!(restart_policy(&t), RestartPolicy::OnFailure);
    }

    #[test]
    fn container_ports_of_host_ports() {
        let ports = json!([{"name": "http", "containerPort": 8080, "hostPort": 31000}]);
        let t = task(&[(LABEL_PORTS, ports)]);
        assert_eq!(container_port_of(&t, 31000), Some(8080));
        assert_eq!(container_port_of(&t, 31001), None);
        assert_eq!(container_port_of(&json!({}), 31000), None);
    }

    #[test]
    fn probes_with_ports_mapped_to_host_ports() {
        let ports = json!([{"name": "http", "containerPort": 8080, "hostPort": 31000}]);
        let t = task(&[
            (LABEL_PORTS, ports),
            (
                LABEL_LIVENESS,
                json!({"httpGet": {"port": "http", "path": "/healthz"}, "periodSeconds": 2}),
            ),
            (
                LABEL_READINESS,
                json!({"tcpSocket": {"port": 8080}, "failureThreshold": 1}),
            ),
        ]);
        let live = probe(&t, LABEL_LIVENESS).unwrap().unwrap();
        assert_eq!(
            live.action,
            ProbeAction::HttpGet {
                port: 31000,
                path: "/healthz".into()
            }
        );
        assert_eq!(live.period, Duration::from_secs(2));
        assert_eq!(live.failure_threshold, 3);
        let ready = probe(&t, LABEL_READINESS).unwrap().unwrap();
        assert_eq!(ready.action, ProbeAction::TcpSocket { port: 31000 });
        assert_eq!(ready.failure_threshold, 1);
        let t = task(&[(LABEL_LIVENESS, json!({"tcpSocket": {"port": "nope"}}))]);
        assert!(probe(&t, LABEL_LIVENESS).is_err());
        let t = task(&[(
            LABEL_LIVENESS,
            json!({"exec": {"command": ["test", "-f", "x"]}}),
        )]);
        assert_eq!(
            probe(&t, LABEL_LIVENESS).unwrap().unwrap().action,
            ProbeAction::Exec(vec!["test".into(), "-f".into(), "x".into()])
        );
        assert_eq!(probe(&json!({}), LABEL_LIVENESS).unwrap(), None);
    }
}
