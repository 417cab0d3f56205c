//! Agent lifecycle: SUBSCRIBE (register / re-register with its tasks), heartbeats, disconnection
//! and the ping timeout that marks an agent unreachable.

use super::proto::{event, id, id_of, MasterStatus, TaskState};
use super::{Agent, Effect, Master, Now, StreamOwner, Task};
use crate::resources::Resources;
use serde_json::{json, Value as Json};
use std::collections::BTreeSet;

impl Master {
    /// An agent subscribed on `stream`: registers it (new id) or re-registers it (known id),
    /// reconciling the tasks it reports against the master's. Returns the agent id.
    pub fn agent_subscribe(
        &mut self,
        call: &Json,
        stream: &str,
        now: Now,
    ) -> Result<String, String> {
        let sub = call
            .get("subscribe")
            .ok_or("Expecting 'subscribe' to be present")?;
        let info = sub
            .get("agent_info")
            .ok_or("Expecting 'subscribe.agent_info' to be present")?;
        let hostname = info
            .get("hostname")
            .and_then(Json::as_str)
            .unwrap_or("localhost")
            .to_string();
        let port = info.get("port").and_then(Json::as_u64).unwrap_or(5051) as u16;
        let resources = match info.get("resources") {
            Some(r) => Resources::from_json(r).map_err(|e| format!("Invalid resources: {e}"))?,
            None => Resources::new(),
        };
        let attributes = info.get("attributes").cloned().unwrap_or(json!([]));
        let aid = match id_of(info, "id") {
            Some(a) => a,
            None => self.new_id("S"),
        };
        let was_unreachable = self.agents.get(&aid).is_some_and(|a| !a.reachable);
        if let Some(old) = self.agents.get(&aid).and_then(|a| a.stream.clone()) {
            if old != stream {
                self.effects.push(Effect::Close {
                    stream: old.clone(),
                });
                self.streams.remove(&old);
            }
        }
        let agent = self.agents.entry(aid.clone()).or_insert_with(|| Agent {
            id: aid.clone(),
            hostname: hostname.clone(),
            port,
            total: resources.clone(),
            attributes: attributes.clone(),
            registered_time: now.unix,
            stream: None,
            reachable: true,
            last_seen: now.instant,
            reregister_deadline: None,
            tasks: BTreeSet::new(),
        });
        agent.hostname = hostname;
        agent.port = port;
        agent.attributes = attributes;
        if agent.total.unreserved().is_empty() && agent.total.is_empty() {
            agent.total = resources;
        }
        agent.stream = Some(stream.to_string());
        agent.reachable = true;
        agent.last_seen = now.instant;
        agent.reregister_deadline = None;
        self.streams
            .insert(stream.to_string(), StreamOwner::Agent(aid.clone()));
        let reported = sub
            .get("tasks")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        self.send(
            Some(&stream.to_string()),
            event(
                "SUBSCRIBED",
                json!({
                    "agent_id": id(&aid),
                    "heartbeat_interval_seconds": self.cfg.agent_ping_timeout.as_secs_f64(),
                }),
            ),
        );
        self.reconcile_agent_tasks(&aid, &reported, was_unreachable, now);
        self.persist_agent(&aid);
        Ok(aid)
    }

    /// Tasks the master has on the agent but the agent does not report are gone; tasks the agent
    /// reports that the master does not know are adopted (or killed, when their framework is
    /// gone or was told they were lost).
    fn reconcile_agent_tasks(
        &mut self,
        aid: &str,
        reported: &[Json],
        was_unreachable: bool,
        now: Now,
    ) {
        let mut seen = BTreeSet::new();
        for t in reported {
            let (Some(fid), Some(tid)) = (id_of(t, "framework_id"), id_of(t, "task_id")) else {
                continue;
            };
            let state = t
                .get("state")
                .and_then(Json::as_str)
                .and_then(TaskState::parse)
                .unwrap_or(TaskState::Running);
            let key = (fid.clone(), tid.clone());
            seen.insert(key.clone());
            let partition_aware = self.frameworks.get(&fid).map(|f| f.partition_aware);
            let known = self.tasks.contains_key(&key);
            let lost_already = was_unreachable && partition_aware != Some(true);
            if (!known && lost_already)
                || (partition_aware.is_none() && self.removed_frameworks.contains(&fid))
            {
                self.tell_agent(
                    aid,
                    event(
                        "KILL",
                        json!({"framework_id": id(&fid), "task_id": id(&tid)}),
                    ),
                );
                continue;
            }
            if !known {
                let info = t.get("info").cloned().unwrap_or(Json::Null);
                let resources = info
                    .get("resources")
                    .and_then(|r| Resources::from_json(r).ok())
                    .unwrap_or_default();
                let role = t
                    .get("role")
                    .and_then(Json::as_str)
                    .unwrap_or("*")
                    .to_string();
                self.tasks.insert(
                    key.clone(),
                    Task {
                        framework: fid,
                        id: tid,
                        agent: aid.to_string(),
                        name: info
                            .get("name")
                            .and_then(Json::as_str)
                            .unwrap_or("")
                            .to_string(),
                        role,
                        resources,
                        info,
                        state,
                        status: t.get("status").cloned(),
                        executor: id_of(t, "executor_id"),
                    },
                );
                if let Some(a) = self.agents.get_mut(aid) {
                    a.tasks.insert(key.clone());
                }
                self.persist_task(&key);
            } else if let Some(task) = self.tasks.get_mut(&key) {
                if task.state == TaskState::Unreachable {
                    task.state = state;
                }
            }
        }
        let missing: Vec<_> = self
            .agents
            .get(aid)
            .map(|a| {
                a.tasks
                    .iter()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for key in missing {
            let pa = self
                .frameworks
                .get(&key.0)
                .is_some_and(|f| f.partition_aware);
            let state = if pa { TaskState::Gone } else { TaskState::Lost };
            self.master_update(
                &key,
                state,
                "REASON_SLAVE_REREGISTERED",
                "Task was not found on the re-registered agent".into(),
                now,
            );
        }
    }

    /// A message from the agent proves it is alive.
    pub fn agent_heartbeat(&mut self, aid: &str, now: Now) {
        if let Some(a) = self.agents.get_mut(aid) {
            a.last_seen = now.instant;
        }
    }

    /// Checks the caller of an agent call owns the agent's current stream.
    pub fn authorize_agent(&self, aid: &str, stream: Option<&str>) -> Result<(), (u16, String)> {
        match self.agents.get(aid) {
            None => Err((404, format!("Unknown agent {aid}"))),
            Some(a) if a.stream.as_deref() != stream || stream.is_none() => Err((
                403,
                format!("The stream ID does not match the current stream of agent {aid}"),
            )),
            Some(_) => Ok(()),
        }
    }

    pub(super) fn agent_disconnected(&mut self, aid: &str, stream: &str) {
        let Some(a) = self.agents.get_mut(aid) else {
            return;
        };
        if a.stream.as_deref() != Some(stream) {
            return;
        }
        a.stream = None;
        self.remove_offers(|o| o.agent == aid, true);
    }

    pub(super) fn check_agents(&mut self, now: Now) {
        let limit = self.cfg.agent_ping_timeout * self.cfg.max_agent_ping_timeouts;
        let dead: Vec<String> = self
            .agents
            .values()
            .filter(|a| a.reachable)
            .filter(|a| {
                a.reregister_deadline
                    .map_or(now.instant >= a.last_seen + limit, |d| now.instant >= d)
            })
            .map(|a| a.id.clone())
            .collect();
        for aid in dead {
            self.mark_unreachable(&aid, now);
        }
    }

    /// The agent stopped answering: its offers are rescinded, its tasks are LOST (UNREACHABLE for
    /// partition-aware frameworks) and every framework gets a FAILURE event.
    pub fn mark_unreachable(&mut self, aid: &str, now: Now) {
        let Some(a) = self.agents.get_mut(aid) else {
            return;
        };
        a.reachable = false;
        a.reregister_deadline = None;
        if let Some(stream) = a.stream.take() {
            self.streams.remove(&stream);
            self.effects.push(Effect::Close { stream });
        }
        let tasks: Vec<_> = a.tasks.iter().cloned().collect();
        self.remove_offers(|o| o.agent == aid, true);
        for key in tasks {
            let pa = self
                .frameworks
                .get(&key.0)
                .is_some_and(|f| f.partition_aware);
            let state = if pa {
                TaskState::Unreachable
            } else {
                TaskState::Lost
            };
            self.master_update(
                &key,
                state,
                "REASON_SLAVE_REMOVED",
                "Agent is unreachable".into(),
                now,
            );
        }
        let streams: Vec<String> = self
            .frameworks
            .values()
            .filter_map(|f| f.stream.clone())
            .collect();
        for s in streams {
            self.send(Some(&s), event("FAILURE", json!({"agent_id": id(aid)})));
        }
        self.persist_agent(aid);
    }

    /// A status update generated by the master (agent lost, re-registration): forwarded with a
    /// uuid; non-partition-aware frameworks' tasks leave the master.
    pub(super) fn master_update(
        &mut self,
        key: &super::TaskKey,
        state: TaskState,
        reason: &str,
        message: String,
        now: Now,
    ) {
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        if task.state.is_terminal() {
            return;
        }
        let status = MasterStatus {
            task_id: &key.1,
            agent_id: Some(&task.agent),
            state,
            reason,
            message,
            uuid: Some(super::proto::new_uuid()),
        }
        .to_json(now.unix);
        self.tell_framework(&key.0, super::proto::update_event(status.clone()));
        if state.is_terminal() {
            self.complete_task(key, state, now);
        } else if let Some(t) = self.tasks.get_mut(key) {
            t.state = state;
            t.status = Some(status);
            self.persist_task(key);
        }
    }
}
