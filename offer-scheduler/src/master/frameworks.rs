//! Framework lifecycle: SUBSCRIBE (new, re-subscribe, failover), disconnection, failover timeout,
//! TEARDOWN.

use super::proto::{event, id, id_of};
use super::{Effect, Framework, Master, Now, StreamOwner};
use serde_json::{json, Value as Json};

/// Why a SUBSCRIBE was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubscribeError {
    /// The call is malformed (HTTP 400 with this text).
    #[error("{0}")]
    Invalid(String),
    /// The framework was torn down; Mesos answers with an ERROR event on the stream.
    #[error("Framework has been removed")]
    Removed,
}

/// The capability names of a `FrameworkInfo`.
pub(super) fn capabilities(info: &Json) -> Vec<String> {
    info.get("capabilities")
        .and_then(Json::as_array)
        .map(|caps| {
            caps.iter()
                .filter_map(|c| c.get("type").and_then(Json::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The roles of a `FrameworkInfo`: `roles` with MULTI_ROLE, else `role` (default `*`).
pub(super) fn roles(info: &Json, caps: &[String]) -> Vec<String> {
    if caps.iter().any(|c| c == "MULTI_ROLE") && info.get("roles").is_some_and(Json::is_array) {
        return super::proto::strings(info.get("roles"));
    }
    vec![info
        .get("role")
        .and_then(Json::as_str)
        .unwrap_or("*")
        .to_string()]
}

fn required_string(info: &Json, field: &str) -> Result<(), SubscribeError> {
    match info.get(field) {
        Some(Json::String(_)) => Ok(()),
        _ => Err(SubscribeError::Invalid(format!(
            "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info.{field}"
        ))),
    }
}

impl Master {
    /// SUBSCRIBE on a new stream; returns the framework id. The SUBSCRIBED event is the first
    /// effect addressed to `stream`.
    pub fn subscribe(
        &mut self,
        call: &Json,
        stream: &str,
        now: Now,
    ) -> Result<String, SubscribeError> {
        let sub = call.get("subscribe").ok_or_else(|| {
            SubscribeError::Invalid(
                "Failed to validate scheduler::Call: Expecting 'subscribe' to be present".into(),
            )
        })?;
        let mut info = sub
            .get("framework_info")
            .filter(|i| i.is_object())
            .cloned()
            .ok_or_else(|| {
                SubscribeError::Invalid(
                    "Failed to convert JSON into Call protobuf: Missing required fields: subscribe.framework_info".into(),
                )
            })?;
        required_string(&info, "user")?;
        required_string(&info, "name")?;
        let call_id = id_of(call, "framework_id");
        let info_id = id_of(&info, "id");
        // Both are optional fields Mesos compares as a whole: one set without the other differs.
        if call_id != info_id {
            return Err(SubscribeError::Invalid(
                "Failed to validate scheduler::Call: 'framework_id' differs from 'subscribe.framework_info.id'"
                    .into(),
            ));
        }
        let caps = capabilities(&info);
        let roles = roles(&info, &caps);
        if let Some(fid) = &info_id {
            if self.removed_frameworks.contains(fid) {
                return Err(SubscribeError::Removed);
            }
        }
        let fid = match info_id {
            Some(f) => f,
            None => self.new_id(""),
        };
        info["id"] = id(&fid);
        let suppressed = super::proto::strings(sub.get("suppressed_roles"))
            .into_iter()
            .collect();
        let old_stream = self.frameworks.get(&fid).and_then(|f| f.stream.clone());
        if let Some(old) = old_stream.filter(|o| o != stream) {
            // A second SUBSCRIBE with the same id: the newer connection wins (scheduler failover).
            self.send(
                Some(&old),
                event("ERROR", json!({"message": "Framework failed over"})),
            );
            self.effects.push(Effect::Close {
                stream: old.clone(),
            });
            self.streams.remove(&old);
        }
        // Mesos' _failoverFramework: the outstanding offers go back to the allocator (the new
        // scheduler instance cannot know their ids), so they are offered again.
        if self.frameworks.contains_key(&fid) {
            self.remove_offers(|o| o.framework == fid, false);
        }
        let fw = self
            .frameworks
            .entry(fid.clone())
            .or_insert_with(|| Framework {
                id: fid.clone(),
                info: Json::Null,
                roles: Vec::new(),
                partition_aware: false,
                gpu_resources: false,
                stream: None,
                failover_deadline: None,
                suppressed: Default::default(),
                registered_time: now.unix,
            });
        fw.partition_aware = caps.iter().any(|c| c == "PARTITION_AWARE");
        fw.gpu_resources = caps.iter().any(|c| c == "GPU_RESOURCES");
        fw.info = info;
        fw.roles = roles;
        fw.stream = Some(stream.to_string());
        fw.failover_deadline = None;
        fw.suppressed = suppressed;
        self.streams
            .insert(stream.to_string(), StreamOwner::Framework(fid.clone()));
        let subscribed = event(
            "SUBSCRIBED",
            json!({
                "framework_id": id(&fid),
                "heartbeat_interval_seconds": self.cfg.heartbeat_interval.as_secs_f64(),
                "master_info": self.master_info(),
            }),
        );
        self.send(Some(&stream.to_string()), subscribed);
        self.persist_framework(&fid);
        Ok(fid)
    }

    /// The framework's stream ended: stop offering to it, take back its offers, start the
    /// failover timer (its tasks keep running until the timer fires).
    pub(super) fn framework_disconnected(&mut self, fid: &str, stream: &str, now: Now) {
        let Some(fw) = self.frameworks.get_mut(fid) else {
            return;
        };
        if fw.stream.as_deref() != Some(stream) {
            return;
        }
        fw.stream = None;
        fw.failover_deadline = Some(now.instant + fw.failover_timeout());
        self.remove_offers(|o| o.framework == fid, false);
    }

    pub(super) fn expire_frameworks(&mut self, now: Now) {
        let expired: Vec<String> = self
            .frameworks
            .values()
            .filter(|f| f.failover_deadline.is_some_and(|d| d <= now.instant))
            .map(|f| f.id.clone())
            .collect();
        for fid in expired {
            self.remove_framework(&fid, now);
        }
    }

    /// TEARDOWN: kill every task of the framework and forget it; its stream ends.
    pub fn teardown(&mut self, fid: &str, now: Now) {
        if let Some(stream) = self.frameworks.get(fid).and_then(|f| f.stream.clone()) {
            self.effects.push(Effect::Close {
                stream: stream.clone(),
            });
            self.streams.remove(&stream);
        }
        self.remove_framework(fid, now);
    }

    fn remove_framework(&mut self, fid: &str, now: Now) {
        let Some(fw) = self.frameworks.remove(fid) else {
            return;
        };
        self.removed_frameworks.insert(fid.to_string());
        // The removed set lives in the info record: write it now, not at the next id allocation.
        self.persist_info();
        self.filters.remove_framework(fid);
        self.remove_offers(|o| o.framework == fid, false);
        let keys: Vec<_> = self
            .tasks
            .keys()
            .filter(|(f, _)| f == fid)
            .cloned()
            .collect();
        let mut agents = std::collections::BTreeSet::new();
        for key in keys {
            if let Some(t) = self.tasks.get(&key) {
                agents.insert(t.agent.clone());
            }
            self.complete_task(&key, super::TaskState::Killed, now);
        }
        for agent in agents {
            self.tell_agent(
                &agent,
                event("SHUTDOWN_FRAMEWORK", json!({"framework_id": id(&fw.id)})),
            );
        }
        self.effects.push(Effect::Persist {
            key: super::recovery::framework_key(fid),
            value: None,
        });
    }

    /// Looks up a subscribed framework for a non-SUBSCRIBE call and checks its stream id, with
    /// Mesos' status codes and messages: `Err((400|403, text))`.
    pub fn authorize_call(&self, fid: &str, stream: Option<&str>) -> Result<(), (u16, String)> {
        let Some(fw) = self.frameworks.get(fid) else {
            return Err((400, "Framework cannot be found".into()));
        };
        let Some(current) = &fw.stream else {
            return Err((403, "Framework is not subscribed".into()));
        };
        let Some(stream) = stream else {
            return Err((
                400,
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header".into(),
            ));
        };
        if stream != current {
            return Err((
                403,
                format!(
                    "The stream ID '{stream}' included in this request didn't match the stream ID currently associated with framework ID {fid}"
                ),
            ));
        }
        Ok(())
    }

    /// REVIVE: clear filters and un-suppress the roles (all when empty).
    pub fn revive(&mut self, fid: &str, roles: &[String]) {
        self.filters.revive(fid, roles);
        if let Some(fw) = self.frameworks.get_mut(fid) {
            if roles.is_empty() {
                fw.suppressed.clear();
            } else {
                fw.suppressed.retain(|r| !roles.contains(r));
            }
        }
    }

    /// SUPPRESS: no offers for the roles (all subscribed roles when empty).
    pub fn suppress(&mut self, fid: &str, roles: &[String]) {
        if let Some(fw) = self.frameworks.get_mut(fid) {
            let roles = if roles.is_empty() {
                fw.roles.clone()
            } else {
                roles.to_vec()
            };
            fw.suppressed.extend(roles);
        }
    }
}
