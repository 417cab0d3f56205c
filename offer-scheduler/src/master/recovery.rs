//! Persistence: the records the master writes to the store, and recovery from them after a
//! restart (frameworks wait for re-subscription, agents for re-registration, tasks are kept so
//! nothing is launched twice).

use super::proto::{id_of, TaskState};
use super::{Agent, Effect, Framework, Master, Now, Task, STORE_PREFIX};
use crate::quota::Quota;
use crate::resources::{Resources, Scalar};
use serde_json::{json, Map, Value as Json};
use std::collections::{BTreeMap, BTreeSet};

/// Escapes `/` and `%` so ids stay one key segment.
fn seg(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

/// Key of the master's own record (id, id counter, weights, quotas).
pub fn info_key() -> String {
    format!("{STORE_PREFIX}info")
}

/// Key of a framework record.
pub fn framework_key(fid: &str) -> String {
    format!("{STORE_PREFIX}frameworks/{}", seg(fid))
}

/// Key of an agent record.
pub fn agent_key(aid: &str) -> String {
    format!("{STORE_PREFIX}agents/{}", seg(aid))
}

/// Key of a task record.
pub fn task_key(key: &super::TaskKey) -> String {
    format!("{STORE_PREFIX}tasks/{}/{}", seg(&key.0), seg(&key.1))
}

fn amounts_json(m: &BTreeMap<String, Scalar>) -> Json {
    Json::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), json!(v.as_f64())))
            .collect(),
    )
}

fn amounts_from(j: Option<&Json>) -> BTreeMap<String, Scalar> {
    j.and_then(Json::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), Scalar::from_f64(v.as_f64()?)?)))
                .collect()
        })
        .unwrap_or_default()
}

/// A quota as JSON `{guarantee: {name: amount}, limit: {...}}`.
pub fn quota_json(q: &Quota) -> Json {
    json!({"guarantee": amounts_json(&q.guarantee), "limit": amounts_json(&q.limit)})
}

/// Reads [`quota_json`]'s shape.
pub fn quota_from(j: &Json) -> Quota {
    Quota {
        guarantee: amounts_from(j.get("guarantee")),
        limit: amounts_from(j.get("limit")),
    }
}

impl Master {
    pub(super) fn persist_info(&mut self) {
        let quotas: Map<String, Json> = self
            .quotas
            .iter()
            .map(|(r, q)| (r.clone(), quota_json(q)))
            .collect();
        self.effects.push(Effect::Persist {
            key: info_key(),
            value: Some(json!({
                "id": self.id,
                "counter": self.counter,
                "weights": self.weights,
                "quotas": quotas,
                "removed_frameworks": self.removed_frameworks,
            })),
        });
    }

    pub(super) fn persist_framework(&mut self, fid: &str) {
        if let Some(f) = self.frameworks.get(fid) {
            let value = json!({
                "info": f.info,
                "registered_time": f.registered_time,
                "suppressed": f.suppressed,
            });
            self.effects.push(Effect::Persist {
                key: framework_key(fid),
                value: Some(value),
            });
        }
    }

    pub(super) fn persist_agent(&mut self, aid: &str) {
        if let Some(a) = self.agents.get(aid) {
            let value = json!({
                "id": a.id,
                "hostname": a.hostname,
                "port": a.port,
                "resources": a.total.to_json(),
                "attributes": a.attributes,
                "registered_time": a.registered_time,
                "reachable": a.reachable,
            });
            self.effects.push(Effect::Persist {
                key: agent_key(aid),
                value: Some(value),
            });
        }
    }

    pub(super) fn persist_task(&mut self, key: &super::TaskKey) {
        if let Some(t) = self.tasks.get(key) {
            let value = json!({
                "framework": t.framework,
                "id": t.id,
                "agent": t.agent,
                "name": t.name,
                "role": t.role,
                "info": t.info,
                "state": t.state.as_str(),
                "status": t.status,
                "executor": t.executor,
            });
            self.effects.push(Effect::Persist {
                key: task_key(key),
                value: Some(value),
            });
        }
    }

    /// Rebuilds a master from its store records (`(key, value)` under [`STORE_PREFIX`]). Returns
    /// `None` when there is no master record (a fresh cluster).
    pub fn recover(cfg: super::Config, records: &[(String, Json)], now: Now) -> Option<Master> {
        let info = records
            .iter()
            .find(|(k, _)| *k == info_key())
            .map(|(_, v)| v)?;
        let mut m = Master::new(cfg, info.get("id")?.as_str()?.to_string(), now);
        m.counter = info.get("counter").and_then(Json::as_u64).unwrap_or(0);
        m.weights = info
            .get("weights")
            .and_then(Json::as_object)
            .map(|w| {
                w.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        m.quotas = info
            .get("quotas")
            .and_then(Json::as_object)
            .map(|q| q.iter().map(|(k, v)| (k.clone(), quota_from(v))).collect())
            .unwrap_or_default();
        m.removed_frameworks = super::proto::strings(info.get("removed_frameworks"))
            .into_iter()
            .collect();
        for (key, v) in records {
            let Some(rest) = key.strip_prefix(STORE_PREFIX) else {
                continue;
            };
            if rest.starts_with("frameworks/") {
                m.recover_framework(v, now);
            } else if rest.starts_with("agents/") {
                m.recover_agent(v, now);
            }
        }
        for (key, v) in records {
            if key.starts_with(&format!("{STORE_PREFIX}tasks/")) {
                m.recover_task(v);
            }
        }
        Some(m)
    }

    fn recover_framework(&mut self, v: &Json, now: Now) {
        let info = v.get("info").cloned().unwrap_or(Json::Null);
        let Some(fid) = id_of(&info, "id") else {
            return;
        };
        let caps = super::frameworks::capabilities(&info);
        let roles = super::frameworks::roles(&info, &caps);
        let mut fw = Framework {
            id: fid.clone(),
            info,
            roles,
            partition_aware: caps.iter().any(|c| c == "PARTITION_AWARE"),
            gpu_resources: caps.iter().any(|c| c == "GPU_RESOURCES"),
            stream: None,
            failover_deadline: None,
            suppressed: super::proto::strings(v.get("suppressed"))
                .into_iter()
                .collect(),
            registered_time: v
                .get("registered_time")
                .and_then(Json::as_f64)
                .unwrap_or(now.unix),
        };
        // The failover clock restarts with the master: the framework had no master to reach.
        fw.failover_deadline =
            Some(now.instant + fw.failover_timeout().max(self.cfg.agent_reregister_timeout));
        self.frameworks.insert(fid, fw);
    }

    fn recover_agent(&mut self, v: &Json, now: Now) {
        let Some(aid) = v.get("id").and_then(Json::as_str) else {
            return;
        };
        let reachable = v.get("reachable").and_then(Json::as_bool).unwrap_or(true);
        self.agents.insert(
            aid.to_string(),
            Agent {
                id: aid.to_string(),
                hostname: v
                    .get("hostname")
                    .and_then(Json::as_str)
                    .unwrap_or("localhost")
                    .to_string(),
                port: v.get("port").and_then(Json::as_u64).unwrap_or(5051) as u16,
                total: v
                    .get("resources")
                    .and_then(|r| Resources::from_json(r).ok())
                    .unwrap_or_default(),
                attributes: v.get("attributes").cloned().unwrap_or(json!([])),
                registered_time: v
                    .get("registered_time")
                    .and_then(Json::as_f64)
                    .unwrap_or(now.unix),
                stream: None,
                reachable,
                last_seen: now.instant,
                reregister_deadline: reachable
                    .then(|| now.instant + self.cfg.agent_reregister_timeout),
                tasks: BTreeSet::new(),
            },
        );
    }

    fn recover_task(&mut self, v: &Json) {
        let (Some(fid), Some(tid), Some(aid)) = (
            v.get("framework").and_then(Json::as_str),
            v.get("id").and_then(Json::as_str),
            v.get("agent").and_then(Json::as_str),
        ) else {
            return;
        };
        let info = v.get("info").cloned().unwrap_or(Json::Null);
        let key = (fid.to_string(), tid.to_string());
        let task = Task {
            framework: fid.to_string(),
            id: tid.to_string(),
            agent: aid.to_string(),
            name: v
                .get("name")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_string(),
            role: v
                .get("role")
                .and_then(Json::as_str)
                .unwrap_or("*")
                .to_string(),
            resources: info
                .get("resources")
                .and_then(|r| Resources::from_json(r).ok())
                .unwrap_or_default(),
            info,
            state: v
                .get("state")
                .and_then(Json::as_str)
                .and_then(TaskState::parse)
                .unwrap_or(TaskState::Staging),
            status: v.get("status").filter(|s| !s.is_null()).cloned(),
            executor: v.get("executor").and_then(Json::as_str).map(str::to_string),
        };
        if let Some(a) = self.agents.get_mut(aid) {
            a.tasks.insert(key.clone());
        }
        self.tasks.insert(key, task);
    }
}
