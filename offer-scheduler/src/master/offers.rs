//! Offers: one allocation cycle turned into OFFERS events, RESCIND, DECLINE and ACCEPT with its
//! operations (LAUNCH, LAUNCH_GROUP, RESERVE, UNRESERVE).

use super::proto::{event, id, id_of, MasterStatus, TaskState};
use super::{Master, Now, Offer, Task};
use crate::allocator::{self, Allocation, Snapshot};
use crate::resources::{Reservation, Resource, Resources};
use rand::Rng;
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

/// Resources as offer JSON: each entry carries the offer's `allocation_info`.
pub fn resources_json(r: &Resources, role: &str) -> Json {
    Json::Array(
        r.iter()
            .map(|res| {
                let mut j = res.to_json();
                j["allocation_info"] = json!({ "role": role });
                j
            })
            .collect(),
    )
}

impl Master {
    fn snapshot(&mut self) -> Snapshot {
        let mut agents = Vec::with_capacity(self.agents.len());
        for a in self.agents.values() {
            // One allocation per (framework, role) on the agent: the allocator only sums them, and a
            // cycle then costs per agent and group, not per task.
            let mut groups: BTreeMap<(&str, &str), Resources> = BTreeMap::new();
            for key in &a.tasks {
                if let Some(t) = self.tasks.get(key).filter(|t| !t.state.is_terminal()) {
                    groups
                        .entry((t.framework.as_str(), t.role.as_str()))
                        .or_default()
                        .add(&t.resources);
                }
            }
            let allocations: Vec<Allocation> = groups
                .into_iter()
                .map(|((framework, role), resources)| Allocation {
                    framework: framework.to_string(),
                    role: role.to_string(),
                    resources,
                })
                .collect();
            agents.push(allocator::Agent {
                id: a.id.clone(),
                total: a.total.clone(),
                allocations,
                active: a.active(),
            });
        }
        let mut by_agent: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, a) in agents.iter().enumerate() {
            by_agent.insert(&a.id, i);
        }
        let mut extra: Vec<(usize, Allocation)> = Vec::new();
        for o in self.offers.values() {
            if let Some(&i) = by_agent.get(o.agent.as_str()) {
                extra.push((
                    i,
                    Allocation {
                        framework: o.framework.clone(),
                        role: o.role.clone(),
                        resources: o.resources.clone(),
                    },
                ));
            }
        }
        for (i, alloc) in extra {
            agents[i].allocations.push(alloc);
        }
        let frameworks = self
            .frameworks
            .values()
            .map(|f| allocator::Framework {
                id: f.id.clone(),
                roles: f.roles.clone(),
                suppressed_roles: f.suppressed.clone(),
                capabilities: allocator::Capabilities {
                    gpu_resources: f.gpu_resources,
                    reservation_refinement: false,
                },
                active: f.stream.is_some(),
            })
            .collect();
        Snapshot {
            agents,
            frameworks,
            weights: self.weights.clone(),
            quotas: self.quotas.clone(),
            filters: std::mem::take(&mut self.filters),
        }
    }

    /// One allocation cycle: offers go out as one OFFERS event per framework. Returns how many
    /// offers were made.
    pub fn allocate(&mut self, now: Now, rng: &mut impl Rng) -> usize {
        let mut snap = self.snapshot();
        let offers = allocator::allocate_with(&snap, &self.cfg.allocator, now.instant, rng);
        self.filters = std::mem::take(&mut snap.filters);
        let mut per_framework: BTreeMap<String, Vec<Json>> = BTreeMap::new();
        let count = offers.len();
        for o in offers {
            self.offer_seq += 1;
            let oid = format!("{}-O{}", self.boot, self.offer_seq);
            let Some(agent) = self.agents.get(&o.agent) else {
                continue;
            };
            let json = json!({
                "id": id(&oid),
                "framework_id": id(&o.framework),
                "agent_id": id(&o.agent),
                "hostname": agent.hostname,
                "url": {
                    "scheme": "http",
                    "address": {"hostname": agent.hostname, "ip": "127.0.0.1", "port": agent.port},
                    "path": "/slave(1)",
                },
                "resources": resources_json(&o.resources, &o.role),
                "attributes": agent.attributes,
                "allocation_info": {"role": o.role},
            });
            per_framework
                .entry(o.framework.clone())
                .or_default()
                .push(json);
            self.offers.insert(
                oid.clone(),
                Offer {
                    id: oid,
                    framework: o.framework,
                    agent: o.agent,
                    role: o.role,
                    resources: o.resources,
                    created: now.instant,
                },
            );
        }
        for (fid, offers) in per_framework {
            self.tell_framework(&fid, event("OFFERS", json!({ "offers": offers })));
        }
        count
    }

    /// Removes matching offers, telling their frameworks with RESCIND when `rescind`.
    pub(super) fn remove_offers(&mut self, pred: impl Fn(&Offer) -> bool, rescind: bool) {
        let ids: Vec<String> = self
            .offers
            .values()
            .filter(|o| pred(o))
            .map(|o| o.id.clone())
            .collect();
        for oid in ids {
            if let Some(o) = self.offers.remove(&oid) {
                if rescind {
                    self.tell_framework(
                        &o.framework,
                        event("RESCIND", json!({"offer_id": id(&oid)})),
                    );
                }
            }
        }
    }

    pub(super) fn expire_offers(&mut self, now: Now) {
        if let Some(timeout) = self.cfg.offer_timeout {
            self.remove_offers(|o| o.created + timeout <= now.instant, true);
        }
    }

    /// DECLINE: the offers go back, with a refusal filter per `filters.refuse_seconds`.
    pub fn decline(&mut self, fid: &str, offer_ids: &[String], filters: Option<&Json>, now: Now) {
        let refuse = refuse_seconds(filters);
        for oid in offer_ids {
            if self.offers.get(oid).is_some_and(|o| o.framework == fid) {
                if let Some(o) = self.offers.remove(oid) {
                    self.filters
                        .decline(fid, &o.role, &o.agent, o.resources, refuse, now.instant);
                }
            }
        }
    }

    /// ACCEPT: validates the offers, applies the operations in order, declines what is left.
    pub fn accept(&mut self, fid: &str, accept: &Json, now: Now) {
        let offer_ids = super::proto::id_list(accept, "offer_ids");
        let operations = accept
            .get("operations")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default();
        let mut invalid = None;
        let mut taken: Vec<Offer> = Vec::new();
        for oid in &offer_ids {
            match self.offers.get(oid) {
                Some(o) if o.framework == fid => {
                    if let Some(o) = self.offers.remove(oid) {
                        taken.push(o);
                    }
                }
                _ => invalid = Some(format!("Offer {oid} is no longer valid")),
            }
        }
        if offer_ids.is_empty() {
            invalid = Some("No offers specified".into());
        }
        if invalid.is_none() && taken.iter().any(|o| o.agent != taken[0].agent) {
            invalid = Some("Aggregated offers must belong to one single agent".into());
        }
        if invalid.is_none() && !self.agents.get(&taken[0].agent).is_some_and(|a| a.active()) {
            invalid = Some(format!("Agent {} is not active", taken[0].agent));
        }
        if let Some(message) = invalid {
            self.drop_launches(fid, &operations, &message, now);
            return;
        }
        let agent = taken[0].agent.clone();
        let role = taken[0].role.clone();
        let mut remaining = Resources::new();
        for o in &taken {
            remaining.add(&o.resources);
        }
        for op in &operations {
            match op.get("type").and_then(Json::as_str) {
                Some("LAUNCH") => {
                    let tasks = op
                        .pointer("/launch/task_infos")
                        .and_then(Json::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for t in tasks {
                        self.launch(fid, &agent, &role, vec![t], None, &mut remaining, now);
                    }
                }
                Some("LAUNCH_GROUP") => {
                    let executor = op.pointer("/launch_group/executor").cloned();
                    let tasks = op
                        .pointer("/launch_group/task_group/tasks")
                        .and_then(Json::as_array)
                        .cloned()
                        .unwrap_or_default();
                    self.launch(fid, &agent, &role, tasks, executor, &mut remaining, now);
                }
                Some("RESERVE") => {
                    let r = op
                        .pointer("/reserve/resources")
                        .cloned()
                        .unwrap_or(json!([]));
                    self.apply_reservation(&agent, &r, true, Some(&mut remaining));
                }
                Some("UNRESERVE") => {
                    let r = op
                        .pointer("/unreserve/resources")
                        .cloned()
                        .unwrap_or(json!([]));
                    self.apply_reservation(&agent, &r, false, Some(&mut remaining));
                }
                _ => {}
            }
        }
        if !remaining.is_empty() {
            let refuse = refuse_seconds(accept.get("filters"));
            self.filters
                .decline(fid, &role, &agent, remaining, refuse, now.instant);
        }
    }

    /// Every task of a failed ACCEPT: TASK_LOST, or TASK_DROPPED for partition-aware frameworks.
    fn drop_launches(&mut self, fid: &str, operations: &[Json], message: &str, now: Now) {
        let pa = self.frameworks.get(fid).is_some_and(|f| f.partition_aware);
        let state = if pa {
            TaskState::Dropped
        } else {
            TaskState::Lost
        };
        for op in operations {
            let tasks = op
                .pointer("/launch/task_infos")
                .or_else(|| op.pointer("/launch_group/task_group/tasks"))
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            for t in tasks {
                let Some(tid) = id_of(&t, "task_id") else {
                    continue;
                };
                let status = MasterStatus {
                    task_id: &tid,
                    agent_id: id_of(&t, "agent_id").as_deref(),
                    state,
                    reason: "REASON_INVALID_OFFERS",
                    message: message.to_string(),
                    uuid: Some(super::proto::new_uuid()),
                }
                .to_json(now.unix);
                self.tell_framework(fid, super::proto::update_event(status));
            }
        }
    }

    /// Validates and launches one task (or one task group) from the remaining offered resources.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &mut self,
        fid: &str,
        agent: &str,
        role: &str,
        tasks: Vec<Json>,
        executor: Option<Json>,
        remaining: &mut Resources,
        now: Now,
    ) {
        let mut needed = Resources::new();
        let mut error = None;
        if let Some(e) = &executor {
            match e.get("resources").map(Resources::from_json) {
                Some(Ok(r)) => needed.add(&r),
                Some(Err(err)) => error = Some(format!("Executor has invalid resources: {err}")),
                None => {}
            }
        }
        let mut parsed = Vec::new();
        for t in &tasks {
            let r = match validate_task(t, agent, executor.is_some()) {
                Ok(r) => r,
                Err(e) => {
                    error.get_or_insert(e);
                    Resources::new()
                }
            };
            if let Some(tid) = id_of(t, "task_id") {
                if self.tasks.contains_key(&(fid.to_string(), tid.clone())) {
                    error.get_or_insert(format!("Task has duplicate ID: {tid}"));
                }
            }
            needed.add(&r);
            parsed.push(r);
        }
        if error.is_none() && !remaining.contains(&needed) {
            error = Some(format!(
                "Total resources {needed} required by task and its executor is more than available {remaining}"
            ));
        }
        if let Some(message) = error {
            for t in &tasks {
                let Some(tid) = id_of(t, "task_id") else {
                    continue;
                };
                let status = MasterStatus {
                    task_id: &tid,
                    agent_id: Some(agent),
                    state: TaskState::Error,
                    reason: "REASON_TASK_INVALID",
                    message: message.clone(),
                    uuid: Some(super::proto::new_uuid()),
                }
                .to_json(now.unix);
                self.tell_framework(fid, super::proto::update_event(status));
            }
            return;
        }
        remaining.subtract(&needed);
        let executor_id = executor.as_ref().and_then(|e| id_of(e, "executor_id"));
        let mut launched = Vec::new();
        for (t, resources) in tasks.into_iter().zip(parsed) {
            let Some(tid) = id_of(&t, "task_id") else {
                continue;
            };
            let mut info = t.clone();
            info["agent_id"] = id(agent);
            info["resources"] = resources_json(&resources, role);
            let key = (fid.to_string(), tid.clone());
            self.tasks.insert(
                key.clone(),
                Task {
                    framework: fid.to_string(),
                    id: tid,
                    agent: agent.to_string(),
                    name: t
                        .get("name")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string(),
                    role: role.to_string(),
                    resources,
                    info: info.clone(),
                    state: TaskState::Staging,
                    status: None,
                    executor: executor_id.clone(),
                },
            );
            if let Some(a) = self.agents.get_mut(agent) {
                a.tasks.insert(key.clone());
            }
            self.persist_task(&key);
            launched.push(info);
        }
        let framework_info = self.frameworks.get(fid).map(|f| f.info.clone());
        let msg = match executor {
            None => launched
                .into_iter()
                .map(|task| {
                    event(
                        "LAUNCH",
                        json!({"framework_id": id(fid), "framework_info": framework_info, "role": role, "task": task}),
                    )
                })
                .collect::<Vec<_>>(),
            Some(e) => vec![event(
                "LAUNCH_GROUP",
                json!({
                    "framework_id": id(fid),
                    "framework_info": framework_info,
                    "role": role,
                    "executor": e,
                    "task_group": {"tasks": launched},
                }),
            )],
        };
        for m in msg {
            self.tell_agent(agent, m);
        }
    }

    /// RESERVE (`reserve`) or UNRESERVE: swaps unreserved and reserved forms of the resources in
    /// the agent's total (and in `remaining`, for an ACCEPT). Returns false when invalid.
    pub fn apply_reservation(
        &mut self,
        agent: &str,
        resources: &Json,
        reserve: bool,
        remaining: Option<&mut Resources>,
    ) -> bool {
        let Ok(reserved) = Resources::from_json(resources) else {
            return false;
        };
        if reserved.iter().any(|r| !r.is_reserved()) {
            return false;
        }
        let popped: Resources = reserved.iter().map(pop_reservation).collect();
        let (from, to) = if reserve {
            (&popped, &reserved)
        } else {
            (&reserved, &popped)
        };
        let Some(a) = self.agents.get_mut(agent) else {
            return false;
        };
        let pool_ok = match &remaining {
            Some(r) => r.contains(from),
            None => a.total.contains(from),
        };
        if !pool_ok {
            return false;
        }
        a.total.subtract(from);
        a.total.add(to);
        if let Some(r) = remaining {
            r.subtract(from);
            r.add(to);
        }
        self.persist_agent(agent);
        true
    }
}

fn pop_reservation(r: &Resource) -> Resource {
    let mut r = r.clone();
    let _: Option<Reservation> = r.reservations.pop();
    r
}

fn refuse_seconds(filters: Option<&Json>) -> Option<f64> {
    filters
        .and_then(|f| f.get("refuse_seconds"))
        .and_then(Json::as_f64)
}

/// Checks a TaskInfo as Mesos' task validation does; returns its resources.
fn validate_task(t: &Json, agent: &str, in_group: bool) -> Result<Resources, String> {
    let tid = id_of(t, "task_id").ok_or("Task has no 'task_id'")?;
    if tid.contains('/') || tid.chars().any(char::is_control) {
        return Err(format!("TaskID '{tid}' contains invalid characters"));
    }
    if t.get("name").and_then(Json::as_str).is_none() {
        return Err("Task has no 'name'".into());
    }
    match id_of(t, "agent_id") {
        Some(a) if a == agent => {}
        Some(a) => return Err(format!("Task uses invalid agent: {a}")),
        None => return Err("Task has no 'agent_id'".into()),
    }
    let has_command = t.get("command").is_some();
    let has_executor = t.get("executor").is_some();
    if !in_group && has_command == has_executor {
        return Err(
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                .into(),
        );
    }
    let resources = match t.get("resources") {
        Some(r) => {
            Resources::from_json(r).map_err(|e| format!("Task uses invalid resources: {e}"))?
        }
        None => Resources::new(),
    };
    if resources.is_empty() {
        return Err("Task uses no resources".into());
    }
    Ok(resources)
}
