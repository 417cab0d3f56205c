//! Task status: updates from agents forwarded to frameworks, acknowledgements forwarded back,
//! KILL, and explicit/implicit reconciliation answered as Mesos does.

use super::proto::{event, id, id_of, update_event, MasterStatus, TaskState};
use super::{Master, Now, TaskKey};
use serde_json::{json, Value as Json};

impl Master {
    /// An agent's UPDATE: records the task's new state and forwards the status (with its uuid)
    /// to the framework. Updates for tasks the master no longer knows are acknowledged at once so
    /// the agent stops retrying.
    pub fn agent_update(&mut self, aid: &str, update: &Json, now: Now) {
        self.agent_heartbeat(aid, now);
        let Some(status) = update.get("status") else {
            return;
        };
        let (Some(fid), Some(tid)) = (id_of(update, "framework_id"), id_of(status, "task_id"))
        else {
            return;
        };
        let uuid = status
            .get("uuid")
            .and_then(Json::as_str)
            .map(str::to_string);
        let Some(state) = status
            .get("state")
            .and_then(Json::as_str)
            .and_then(TaskState::parse)
        else {
            return;
        };
        let key = (fid.clone(), tid.clone());
        let mut status = status.clone();
        status["agent_id"] = id(aid);
        if status.get("source").is_none() {
            status["source"] = json!("SOURCE_EXECUTOR");
        }
        match self.tasks.get_mut(&key) {
            Some(task) if task.agent == aid => {
                // An agent re-sends an update until it is acknowledged: a retry changes nothing
                // to record, but is forwarded again (the framework acknowledges it again).
                let retry = task.state == state
                    && uuid.is_some()
                    && task
                        .status
                        .as_ref()
                        .and_then(|s| s.get("uuid"))
                        .and_then(Json::as_str)
                        == uuid.as_deref();
                task.state = state;
                task.status = Some(status.clone());
                if !retry {
                    self.persist_task(&key);
                }
                if self
                    .frameworks
                    .get(&fid)
                    .is_some_and(|f| f.stream.is_some())
                {
                    self.tell_framework(&fid, update_event(status));
                }
            }
            _ => {
                if let Some(u) = uuid {
                    self.tell_agent(
                        aid,
                        event(
                            "ACKNOWLEDGE",
                            json!({"framework_id": id(&fid), "task_id": id(&tid), "uuid": u}),
                        ),
                    );
                }
            }
        }
    }

    /// ACKNOWLEDGE from a framework: forwarded to the agent; a terminal task leaves the master
    /// once its terminal update is acknowledged. Returns true when a task left (its agent may
    /// have something new to offer); acknowledging anything else changes no offer.
    pub fn acknowledge(&mut self, fid: &str, ack: &Json, now: Now) -> bool {
        let (Some(tid), Some(uuid)) = (
            id_of(ack, "task_id"),
            ack.get("uuid").and_then(Json::as_str).map(str::to_string),
        ) else {
            return false;
        };
        let key = (fid.to_string(), tid.clone());
        let Some(task) = self.tasks.get(&key) else {
            return false;
        };
        let agent = task.agent.clone();
        let state = task.state;
        let acked_terminal = task.state.is_terminal()
            && task
                .status
                .as_ref()
                .and_then(|s| s.get("uuid"))
                .and_then(Json::as_str)
                == Some(uuid.as_str());
        self.tell_agent(
            &agent,
            event(
                "ACKNOWLEDGE",
                json!({"framework_id": id(fid), "task_id": id(&tid), "uuid": uuid}),
            ),
        );
        if acked_terminal {
            self.complete_task(&key, state, now);
        }
        acked_terminal
    }

    /// Moves a task to the completed list, releasing its resources.
    pub(super) fn complete_task(&mut self, key: &TaskKey, state: TaskState, _now: Now) {
        let Some(mut task) = self.tasks.remove(key) else {
            return;
        };
        task.state = state;
        if let Some(a) = self.agents.get_mut(&task.agent) {
            a.tasks.remove(key);
        }
        self.effects.push(super::Effect::Persist {
            key: super::recovery::task_key(key),
            value: None,
        });
        self.completed.push_back(task);
        while self.completed.len() > super::COMPLETED_KEPT {
            self.completed.pop_front();
        }
    }

    /// KILL: forwarded to the task's agent; an unknown task is answered by reconciliation.
    pub fn kill(&mut self, fid: &str, kill: &Json, now: Now) {
        let Some(tid) = id_of(kill, "task_id") else {
            return;
        };
        let key = (fid.to_string(), tid.clone());
        match self.tasks.get(&key) {
            Some(task) if !task.state.is_terminal() => {
                let agent = task.agent.clone();
                let mut body = json!({"framework_id": id(fid), "task_id": id(&tid)});
                if let Some(p) = kill.get("kill_policy") {
                    body["kill_policy"] = p.clone();
                } else if let Some(p) = task.info.get("kill_policy") {
                    body["kill_policy"] = p.clone();
                }
                self.tell_agent(&agent, event("KILL", body));
            }
            Some(_) => {}
            None => {
                let entry = json!({"task_id": id(&tid), "agent_id": kill.get("agent_id")});
                self.reconcile(fid, &[entry], now);
            }
        }
    }

    /// SHUTDOWN of an executor: kills the tasks it runs.
    pub fn shutdown_executor(&mut self, fid: &str, executor_id: &str, now: Now) {
        let tids: Vec<String> = self
            .tasks
            .values()
            .filter(|t| t.framework == fid && t.executor.as_deref() == Some(executor_id))
            .map(|t| t.id.clone())
            .collect();
        for tid in tids {
            self.kill(fid, &json!({"task_id": id(&tid)}), now);
        }
    }

    /// RECONCILE: the latest known state of each named task (all tasks when none are named), from
    /// SOURCE_MASTER with REASON_RECONCILIATION and no uuid; unknown tasks as Mesos answers them.
    pub fn reconcile(&mut self, fid: &str, tasks: &[Json], now: Now) {
        let pa = self.frameworks.get(fid).is_some_and(|f| f.partition_aware);
        let mut answers = Vec::new();
        if tasks.is_empty() {
            let mut mine: Vec<_> = self.tasks.values().filter(|t| t.framework == fid).collect();
            mine.sort_by(|a, b| a.id.cmp(&b.id));
            answers.extend(mine.into_iter().map(|t| self.latest(t, now)));
        }
        for entry in tasks {
            let Some(tid) = id_of(entry, "task_id") else {
                continue;
            };
            let agent = id_of(entry, "agent_id");
            if let Some(t) = self.tasks.get(&(fid.to_string(), tid.clone())) {
                answers.push(self.latest(t, now));
                continue;
            }
            let (state, message) = match agent.as_deref().map(|a| self.agents.get(a)) {
                // The agent is still recovering: Mesos stays silent until it re-registers.
                Some(Some(a)) if a.reregister_deadline.is_some() => continue,
                Some(Some(a)) if a.reachable => (
                    if pa { TaskState::Gone } else { TaskState::Lost },
                    "Reconciliation: Task is unknown to the agent",
                ),
                Some(Some(_)) => (
                    if pa {
                        TaskState::Unreachable
                    } else {
                        TaskState::Lost
                    },
                    "Reconciliation: Task is unreachable",
                ),
                _ => (
                    if pa {
                        TaskState::Unknown
                    } else {
                        TaskState::Lost
                    },
                    "Reconciliation: Task is unknown",
                ),
            };
            answers.push(
                MasterStatus {
                    task_id: &tid,
                    agent_id: agent.as_deref(),
                    state,
                    reason: "REASON_RECONCILIATION",
                    message: message.into(),
                    uuid: None,
                }
                .to_json(now.unix),
            );
        }
        for status in answers {
            self.tell_framework(fid, update_event(status));
        }
    }

    fn latest(&self, t: &super::Task, now: Now) -> Json {
        let mut s = t.status.clone().unwrap_or_else(|| json!({}));
        s["task_id"] = id(&t.id);
        s["agent_id"] = id(&t.agent);
        s["state"] = json!(t.state.as_str());
        s["source"] = json!("SOURCE_MASTER");
        s["reason"] = json!("REASON_RECONCILIATION");
        s["message"] = json!("Reconciliation: Latest task state");
        s["timestamp"] = json!(now.unix);
        if let Some(m) = s.as_object_mut() {
            m.remove("uuid");
        }
        s
    }
}
