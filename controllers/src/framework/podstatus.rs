//! Task statuses → pod status (pure): phase, conditions, containerStatuses, as the kubelet
//! reports them.

use serde_json::{json, Value as Json};

/// What the framework knows about one container's task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerTask {
    /// Container name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Latest `TASK_*` state (none before the first update).
    pub state: Option<String>,
    /// Latest status message.
    pub message: String,
    /// Exit code, when it exited.
    pub exit_code: Option<i64>,
    /// RFC 3339 start time.
    pub started_at: Option<String>,
    /// RFC 3339 finish time.
    pub finished_at: Option<String>,
    /// Container id (`process://…`, `docker://…`).
    pub container_id: String,
    /// Restarts.
    pub restart_count: i64,
    /// Whether the agent reports the container ready (readiness probe passed); `None`
    /// before any report, then a running task counts as ready.
    pub ready: Option<bool>,
    /// Whether the agent reports the container's process running (false while a
    /// restart is pending, the task staying `TASK_RUNNING`).
    pub process_running: Option<bool>,
}

impl ContainerTask {
    /// Fills the fields from a Mesos `TaskStatus` (the agent's `kumos.io/containers` label
    /// carries the container detail).
    pub fn apply_status(&mut self, status: &Json) {
        self.state = status
            .get("state")
            .and_then(Json::as_str)
            .map(str::to_string);
        self.message = status
            .get("message")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let detail = status
            .pointer("/labels/labels")
            .and_then(Json::as_array)
            .and_then(|l| l.iter().find(|l| l["key"] == "kumos.io/containers"))
            .and_then(|l| l["value"].as_str())
            .and_then(|v| serde_json::from_str::<Json>(v).ok())
            .and_then(|v| v.get(0).cloned());
        if let Some(d) = detail {
            self.exit_code = d.get("exit_code").and_then(Json::as_i64).or(self.exit_code);
            let signal = d.get("signal").and_then(Json::as_i64);
            if self.exit_code.is_none() {
                self.exit_code = signal.map(|s| 128 + s);
            }
            self.started_at = d
                .get("started_at")
                .and_then(Json::as_str)
                .map(str::to_string)
                .or(self.started_at.take());
            self.finished_at = d
                .get("finished_at")
                .and_then(Json::as_str)
                .map(str::to_string)
                .or(self.finished_at.take());
            if let Some(id) = d
                .get("container_id")
                .and_then(Json::as_str)
                .filter(|s| !s.is_empty())
            {
                self.container_id = id.to_string();
            }
            self.restart_count = d
                .get("restart_count")
                .and_then(Json::as_i64)
                .unwrap_or(self.restart_count);
            self.ready = d.get("ready").and_then(Json::as_bool);
            self.process_running = d.get("running").and_then(Json::as_bool);
        }
    }

    /// Running and, as far as the agent reported, ready.
    fn is_ready(&self) -> bool {
        self.running() && self.process_running != Some(false) && self.ready.unwrap_or(true)
    }

    fn running(&self) -> bool {
        self.state.as_deref() == Some("TASK_RUNNING")
    }

    fn lost(&self) -> bool {
        matches!(
            self.state.as_deref(),
            Some("TASK_LOST" | "TASK_GONE" | "TASK_UNREACHABLE" | "TASK_DROPPED")
        )
    }

    fn terminated(&self) -> bool {
        matches!(
            self.state.as_deref(),
            Some("TASK_FINISHED" | "TASK_FAILED" | "TASK_KILLED" | "TASK_ERROR")
        ) || self.lost()
    }

    fn succeeded(&self) -> bool {
        self.state.as_deref() == Some("TASK_FINISHED")
    }

    fn status_json(&self) -> Json {
        let state = if self.running() && self.process_running == Some(false) {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": self.message}})
        } else if self.running() {
            json!({"running": {"startedAt": self.started_at}})
        } else if self.terminated() {
            let code = self
                .exit_code
                .unwrap_or(if self.succeeded() { 0 } else { 1 });
            let reason = if self.lost() {
                "ContainerStatusUnknown"
            } else if code == 0 {
                "Completed"
            } else {
                "Error"
            };
            json!({"terminated": {"exitCode": code, "reason": reason, "message": self.message,
                   "startedAt": self.started_at, "finishedAt": self.finished_at, "containerID": self.container_id}})
        } else if self.state.as_deref() == Some("TASK_STAGING")
            || self.state.is_none()
            || self.state.as_deref() == Some("TASK_STARTING")
        {
            json!({"waiting": {"reason": "ContainerCreating"}})
        } else {
            json!({"waiting": {"reason": "ContainerCreating", "message": self.message}})
        };
        let mut s = json!({
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.is_ready(),
            "started": self.running(),
            "restartCount": self.restart_count,
            "state": state,
        });
        if !self.container_id.is_empty() {
            s["containerID"] = json!(self.container_id);
        }
        s
    }
}

/// The pod phase and, for a lost pod, its reason.
pub fn phase(containers: &[ContainerTask]) -> (&'static str, Option<&'static str>) {
    if containers.iter().any(ContainerTask::lost) {
        return ("Failed", Some("NodeLost"));
    }
    if !containers.is_empty() && containers.iter().all(ContainerTask::terminated) {
        return if containers.iter().all(ContainerTask::succeeded) {
            ("Succeeded", None)
        } else {
            ("Failed", None)
        };
    }
    if containers.iter().any(ContainerTask::running) {
        return ("Running", None);
    }
    ("Pending", None)
}

/// The `status` of a bound pod whose containers run as `containers`.
pub fn pod_status(
    containers: &[ContainerTask],
    host_ip: &str,
    start_time: &str,
    now: &str,
    node: &str,
) -> Json {
    let (phase, reason) = phase(containers);
    let all_ready = !containers.is_empty() && containers.iter().all(ContainerTask::is_ready);
    let cond = |t: &str, ok: bool| {
        let mut c = json!({"type": t, "status": if ok { "True" } else { "False" }, "lastProbeTime": null, "lastTransitionTime": now});
        if !ok && (t == "Ready" || t == "ContainersReady") {
            c["reason"] = json!("ContainersNotReady");
            let waiting: Vec<&str> = containers
                .iter()
                .filter(|c| !c.is_ready())
                .map(|c| c.name.as_str())
                .collect();
            c["message"] = json!(format!(
                "containers with unready status: [{}]",
                waiting.join(" ")
            ));
        }
        c
    };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            cond("Initialized", true),
            cond("Ready", all_ready),
            cond("ContainersReady", all_ready),
            cond("PodScheduled", true),
        ],
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": host_ip,
        "podIPs": [{"ip": host_ip}],
        "startTime": start_time,
        "containerStatuses": containers.iter().map(ContainerTask::status_json).collect::<Vec<_>>(),
        "qosClass": "BestEffort",
    });
    if let Some(r) = reason {
        status["reason"] = json!(r);
        status["message"] = json!(format!(
            "Node {node} which was running the pod is unresponsive"
        ));
    } else {
        status["reason"] = Json::Null;
        status["message"] = Json::Null;
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str, state: Option<&str>, exit: Option<i64>) -> ContainerTask {
        ContainerTask {
            name: name.into(),
            image: "busybox".into(),
            state: state.map(str::to_string),
            exit_code: exit,
            ..Default::default()
        }
    }

    #[test]
    fn phases() {
        assert_eq!(phase(&[c("a", None, None)]).0, "Pending");
        assert_eq!(
            phase(&[
                c("a", Some("TASK_RUNNING"), None),
                c("b", Some("TASK_STARTING"), None)
            ])
            .0,
            "Running"
        );
        assert_eq!(
            phase(&[c("a", Some("TASK_FINISHED"), Some(0))]).0,
            "Succeeded"
        );
        assert_eq!(
            phase(&[
                c("a", Some("TASK_FINISHED"), Some(0)),
                c("b", Some("TASK_FAILED"), Some(1))
            ])
            .0,
            "Failed"
        );
        assert_eq!(
            phase(&[
                c("a", Some("TASK_RUNNING"), None),
                c("b", Some("TASK_LOST"), None)
            ]),
            ("Failed", Some("NodeLost"))
        );
    }

    #[test]
    fn ready_conditions_and_container_states() {
        let s = pod_status(
            &[c("a", Some("TASK_RUNNING"), None)],
            "127.0.0.1",
            "t0",
            "t1",
            "n",
        );
        assert_eq!(s["conditions"][1]["type"], "Ready");
        assert_eq!(s["conditions"][1]["status"], "True");
        assert!(s["containerStatuses"][0]["state"]["running"].is_object());
        let s = pod_status(
            &[
                c("a", Some("TASK_FAILED"), Some(3)),
                c("b", Some("TASK_STAGING"), None),
            ],
            "127.0.0.1",
            "t0",
            "t1",
            "n",
        );
        assert_eq!(s["phase"], "Pending");
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(
            s["conditions"][1]["message"],
            "containers with unready status: [a b]"
        );
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Error"
        );
        assert_eq!(
            s["containerStatuses"][1]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
    }

    #[test]
    fn container_detail_from_the_agent_label() {
        let mut t = c("a", None, None);
        let detail = json!([{"exit_code": null, "signal": 9, "container_id": "process://x", "started_at": "s", "finished_at": "f", "restart_count": 0}]);
        t.apply_status(&json!({"state": "TASK_KILLED", "message": "Task killed",
            "labels": {"labels": [{"key": "kumos.io/containers", "value": detail.to_string()}]}}));
        assert_eq!(t.exit_code, Some(137));
        assert_eq!(t.container_id, "process://x");
    }

    #[test]
    fn readiness_and_restarts_from_the_agent_label() {
        let update = |running: bool, ready: bool, restarts: i64| {
            let detail = json!([{"running": running, "ready": ready, "restart_count": restarts}]);
            json!({"state": "TASK_RUNNING", "message": "m",
                "labels": {"labels": [{"key": "kumos.io/containers", "value": detail.to_string()}]}})
        };
        let mut t = c("a", None, None);
        t.apply_status(&update(true, false, 0));
        let s = pod_status(std::slice::from_ref(&t), "h", "t0", "t1", "n");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(s["containerStatuses"][0]["ready"], false);
        t.apply_status(&update(true, true, 2));
        let s = pod_status(std::slice::from_ref(&t), "h", "t0", "t1", "n");
        assert_eq!(s["conditions"][1]["status"], "True");
        assert_eq!(s["containerStatuses"][0]["restartCount"], 2);
        t.apply_status(&update(false, false, 2));
        let s = pod_status(std::slice::from_ref(&t), "h", "t0", "t1", "n");
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
    }
}
