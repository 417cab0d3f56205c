//! Turning Mesos `TaskInfo`s into containerizer specs, and containerizer events into `TaskStatus`.

use super::probes;
use crate::containerizer::{ContainerSpec, PortMapping, TaskEvent, TaskPhase, TaskSpec};
use serde_json::{json, Value as Json};
use std::path::Path;

fn scalar(resources: &Json, name: &str) -> f64 {
    resources
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r.get("name").and_then(Json::as_str) == Some(name))
        .filter_map(|r| r.pointer("/scalar/value").and_then(Json::as_f64))
        .sum()
}

/// Host ports the task was given (its `ports` ranges), in order.
pub fn host_ports(resources: &Json) -> Vec<u16> {
    offer_scheduler::resources::ports_of(resources)
}

/// The argv of a `CommandInfo`: `sh -c value` when `shell` (the default), else `arguments` (or
/// `[value]`), as the Mesos command executor runs it.
pub fn argv(command: &Json) -> Result<Vec<String>, String> {
    let value = command.get("value").and_then(Json::as_str);
    let shell = command.get("shell").and_then(Json::as_bool).unwrap_or(true);
    if shell {
        let v = value.ok_or("Shell command of task is not specified")?;
        return Ok(vec!["sh".into(), "-c".into(), v.into()]);
    }
    let args: Vec<String> = command
        .get("arguments")
        .and_then(Json::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Json::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    // Mesos: `value` is the executable and `arguments` the whole argv (argv[0] included). With
    // neither, the container runs its image's default command (docker); a process has none.
    Ok(match value {
        Some(v) if args.is_empty() => vec![v.to_string()],
        Some(v) => {
            let mut full = vec![v.to_string()];
            full.extend(args.into_iter().skip(1));
            full
        }
        None => args,
    })
}

/// One single-container task spec for a command task (restart policy and probes from the
/// task's labels, see [`probes`]).
pub fn task_spec(task: &Json, task_id: &str, sandbox: &Path) -> Result<TaskSpec, String> {
    let command = task
        .get("command")
        .ok_or("Task has no CommandInfo (custom executors are not supported)")?;
    let argv = argv(command)?;
    let env: Vec<(String, String)> = command
        .pointer("/environment/variables")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            Some((
                v.get("name")?.as_str()?.to_string(),
                v.get("value")
                    .and_then(Json::as_str)
                    .unwrap_or("")
                    .to_string(),
            ))
        })
        .collect();
    let resources = task.get("resources").cloned().unwrap_or(json!([]));
    let ports = host_ports(&resources)
        .into_iter()
        .map(|p| PortMapping {
            name: None,
            // A pod's container listens on its containerPort (the Docker runtime publishes the
            // host port there); a plain Mesos task listens on the host port itself.
            container_port: probes::container_port_of(task, p).unwrap_or(p),
            host_port: p,
            protocol: "tcp".into(),
        })
        .collect();
    let image = task
        .pointer("/container/docker/image")
        .or_else(|| task.pointer("/container/mesos/image/docker/name"))
        .and_then(Json::as_str)
        .map(str::to_string);
    Ok(TaskSpec {
        task_id: task_id.to_string(),
        containers: vec![ContainerSpec {
            name: "main".into(),
            image,
            argv,
            env,
            working_dir: None,
            ports,
            cpus: scalar(&resources, "cpus"),
            mem_mb: scalar(&resources, "mem"),
            liveness_probe: probes::probe(task, probes::LABEL_LIVENESS)?,
            readiness_probe: probes::probe(task, probes::LABEL_READINESS)?,
        }],
        sandbox: sandbox.to_path_buf(),
        restart_policy: probes::restart_policy(task),
    })
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A `TaskStatus` from the agent (`SOURCE_EXECUTOR`), with a new uuid.
pub fn status(task_id: &str, state: &str, reason: Option<&str>, message: &str) -> Json {
    let mut s = json!({
        "task_id": {"value": task_id},
        "state": state,
        "source": "SOURCE_EXECUTOR",
        "message": message,
        "timestamp": unix_now(),
        "uuid": offer_scheduler::master::proto::new_uuid(),
        "container_status": {
            "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": "127.0.0.1"}]}],
        },
    });
    if let Some(r) = reason {
        s["reason"] = json!(r);
    }
    s
}

/// The status of task `task_id` for a containerizer event.
pub fn status_for_event(task_id: &str, e: &TaskEvent) -> Json {
    let (state, reason) = match e.phase {
        TaskPhase::Starting => ("TASK_STARTING", None),
        TaskPhase::Running => ("TASK_RUNNING", None),
        TaskPhase::Finished => ("TASK_FINISHED", None),
        TaskPhase::Failed => ("TASK_FAILED", Some("REASON_COMMAND_EXECUTOR_FAILED")),
        TaskPhase::Killed => ("TASK_KILLED", None),
    };
    let mut s = status(task_id, state, reason, &e.message);
    if let Some(c) = e.containers.first() {
        s["container_status"]["container_id"] = json!({"value": c.container_id});
    }
    let containers: Vec<Json> = e
        .containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "running": c.running,
                "ready": c.ready,
                "exit_code": c.exit_code,
                "signal": c.signal,
                "restart_count": c.restart_count,
                "container_id": c.container_id,
                "started_at": c.started_at.map(crate::logs::format_timestamp),
                "finished_at": c.finished_at.map(crate::logs::format_timestamp),
            })
        })
        .collect();
    // Kumos-specific detail for the Kubernetes framework (pod containerStatuses).
    s["labels"] = json!({"labels": [{"key": "kumos.io/containers", "value": Json::Array(containers).to_string()}]});
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_argv_as_the_command_executor_runs_it() {
        assert_eq!(
            argv(&json!({"value": "echo hi"})).unwrap(),
            ["sh", "-c", "echo hi"]
        );
        assert_eq!(
            argv(&json!({"value": "/bin/echo", "shell": false, "arguments": ["echo", "a", "b"]}))
                .unwrap(),
            ["/bin/echo", "a", "b"]
        );
        assert!(argv(&json!({"shell": true})).is_err());
        assert!(argv(&json!({"shell": false})).unwrap().is_empty());
    }

    #[test]
    fn ports_from_ranges() {
        let r = json!([{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31001}, {"begin": 31005, "end": 31005}]}}]);
        assert_eq!(host_ports(&r), vec![31000, 31001, 31005]);
    }
}
