//! The pod row: kube's READY / STATUS / RESTARTS logic (init containers, sidecars, terminating pods).

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::rows::Printed;
use super::{array_at, int_at, parse_time, since, str_at};

/// Whether an init container is a sidecar (`restartPolicy: Always`).
fn is_restartable_init(spec_init: &[Value], name: &str) -> bool {
    spec_init.iter().any(|c| {
        c.get("name").and_then(Value::as_str) == Some(name)
            && c.get("restartPolicy").and_then(Value::as_str) == Some("Always")
    })
}

fn condition_true(conditions: &[Value], ty: &str) -> bool {
    conditions
        .iter()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

/// Accumulates restart counts and the latest `lastState.terminated.finishedAt`.
#[derive(Default)]
struct Restarts {
    count: i64,
    last: Option<OffsetDateTime>,
}

impl Restarts {
    fn add(&mut self, status: &Value) {
        self.count += int_at(status, "/restartCount");
        if let Some(t) = parse_time(status.pointer("/lastState/terminated/finishedAt")) {
            if self.last.is_none_or(|l| l < t) {
                self.last = Some(t);
            }
        }
    }
}

/// Prints one pod.
pub(super) fn pod(obj: &Value, now: OffsetDateTime) -> Printed {
    let init_specs = array_at(obj, "/spec/initContainers");
    let conditions = array_at(obj, "/status/conditions");
    let phase = str_at(obj, "/status/phase");
    let total = array_at(obj, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| c.get("restartPolicy").and_then(Value::as_str) == Some("Always"))
            .count();
    let mut ready = 0usize;
    let mut reason = match str_at(obj, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    if conditions
        .iter()
        .any(|c| c["type"] == "PodScheduled" && c["reason"] == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let mut restarts = Restarts::default();
    let mut sidecar_restarts = Restarts::default();
    let init_statuses = array_at(obj, "/status/initContainerStatuses");
    let mut initializing = false;
    for (i, c) in init_statuses.iter().enumerate() {
        restarts.add(c);
        let sidecar = is_restartable_init(init_specs, str_at(c, "/name"));
        if sidecar {
            sidecar_restarts.add(c);
        }
        let terminated = c.pointer("/state/terminated");
        let waiting_reason = str_at(c, "/state/waiting/reason");
        if terminated.is_some() && int_at(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = if terminated.is_some() {
            match str_at(c, "/state/terminated/reason") {
                "" => match int_at(c, "/state/terminated/signal") {
                    0 => format!("Init:ExitCode:{}", int_at(c, "/state/terminated/exitCode")),
                    s => format!("Init:Signal:{s}"),
                },
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{}/{}", i, init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(conditions, "Initialized") {
        restarts = sidecar_restarts;
        let mut has_running = false;
        for c in array_at(obj, "/status/containerStatuses").iter().rev() {
            restarts.add(c);
            let waiting = str_at(c, "/state/waiting/reason");
            let terminated = c.pointer("/state/terminated");
            let term_reason = str_at(c, "/state/terminated/reason");
            if !waiting.is_empty() {
                reason = waiting.to_string();
            } else if terminated.is_some() && !term_reason.is_empty() {
                reason = term_reason.to_string();
            } else if terminated.is_some() {
                reason = match int_at(c, "/state/terminated/signal") {
                    0 => format!("ExitCode:{}", int_at(c, "/state/terminated/exitCode")),
                    s => format!("Signal:{s}"),
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(conditions, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
    if deleting && str_at(obj, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match restarts.last {
        Some(last) if restarts.count != 0 => format!(
            "{} ({} ago)",
            restarts.count,
            super::human_duration(super::elapsed_seconds(last, now))
        ),
        _ => restarts.count.to_string(),
    };

    let none = |s: &str| {
        if s.is_empty() {
            "<none>".to_string()
        } else {
            s.to_string()
        }
    };
    let pod_ip = array_at(obj, "/status/podIPs")
        .first()
        .map(|p| str_at(p, "/ip"))
        .unwrap_or("");
    let gates = array_at(obj, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| c["type"] == g["conditionType"])
                    .is_some_and(|c| c["status"] == "True")
            })
            .count();
        format!("{}/{}", true_count, gates.len())
    };
    let cells = vec![
        json!(str_at(obj, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        json!(since(obj.pointer("/metadata/creationTimestamp"), now)),
        json!(none(pod_ip)),
        json!(none(str_at(obj, "/spec/nodeName"))),
        json!(none(str_at(obj, "/status/nominatedNodeName"))),
        json!(gates_cell),
    ];
    let conditions = match phase {
        "Succeeded" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."}]),
        ),
        "Failed" => Some(
            json!([{"type": "Completed", "status": "True", "reason": "Failed",
            "message": "The pod failed."}]),
        ),
        _ => None,
    };
    Printed { cells, conditions }
}
