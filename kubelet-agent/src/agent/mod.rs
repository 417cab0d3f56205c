//! The agent daemon: subscribes to the master, runs what it is told through a containerizer, and
//! reports task status reliably (checkpointed, re-sent until acknowledged), reconnecting and
//! re-registering whenever the master goes away.

mod checkpoint;
pub mod http;
pub mod launch;
pub mod logindex;
pub mod probes;
pub mod status;

use crate::containerizer::{Containerizer, TaskEvent};
use checkpoint::{Checkpoint, TaskRecord};
use logindex::LogIndex;
use offer_scheduler::client::{ClientError, EventStream, MasterClient};
use serde_json::{json, Value as Json};
use status::{Backoff, StatusQueues, TaskKey};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

/// Agent settings.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Master URL, e.g. `http://127.0.0.1:5050`.
    pub master_url: String,
    /// Shared secret for the agent protocol.
    pub secret: String,
    /// Work directory: checkpoints and task sandboxes.
    pub work_dir: PathBuf,
    /// Hostname reported to the master.
    pub hostname: String,
    /// Address the agent's HTTP endpoint (container logs) listens on.
    pub ip: IpAddr,
    /// Port of the agent's HTTP endpoint; 0 picks a free one. The port actually bound is the
    /// one reported to the master.
    pub port: u16,
    /// Total resources (Mesos `Resource` JSON list).
    pub resources: Json,
    /// Attributes (Mesos `Attribute` JSON list).
    pub attributes: Json,
    /// Status update retry schedule.
    pub backoff: Backoff,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The work directory could not be read or written.
    #[error("agent work directory {path}: {source}")]
    Checkpoint {
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP endpoint could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

/// Default kill grace period when the task has no kill policy (Mesos: 3 s).
const DEFAULT_GRACE: Duration = Duration::from_secs(3);

struct Agent {
    cfg: AgentConfig,
    client: MasterClient,
    containerizer: Arc<dyn Containerizer>,
    checkpoint: Checkpoint,
    agent_id: Option<String>,
    tasks: BTreeMap<TaskKey, TaskRecord>,
    /// Containerizer task id → our key.
    by_container: HashMap<String, TaskKey>,
    queues: StatusQueues,
    stream: Option<String>,
    /// Where each task's logs are, shared with the HTTP endpoint.
    logs: LogIndex,
}

fn container_task_id(key: &TaskKey) -> String {
    // Task ids cannot contain '/', so this is unambiguous.
    format!("{}/{}", key.0, key.1)
}

fn id_of(j: &Json, field: &str) -> Option<String> {
    j.get(field)?.get("value")?.as_str().map(str::to_string)
}

/// Runs an agent until `token` is cancelled; `events` is the receiving end of the channel the
/// containerizer was built with. The agent's HTTP endpoint ([`http`]) serves on `cfg.ip` and
/// `cfg.port` meanwhile.
pub async fn run(
    mut cfg: AgentConfig,
    containerizer: Arc<dyn Containerizer>,
    mut events: UnboundedReceiver<TaskEvent>,
    token: CancellationToken,
) -> Result<(), AgentError> {
    let (server, logs) = http::Server::start(&mut cfg, token.child_token()).await?;
    let mut agent = Agent::load(cfg, containerizer, logs)?;
    let adopted = match agent.containerizer.recover().await {
        Ok(ids) => ids,
        Err(err) => {
            tracing::error!(%err, "cannot recover containers; their tasks are reported lost");
            Vec::new()
        }
    };
    agent.recover(&adopted);
    let mut retry = Duration::from_millis(200);
    loop {
        let attempt = tokio::select! {
            _ = token.cancelled() => break,
            r = agent.subscribe() => r,
        };
        match attempt {
            Ok(stream) => {
                retry = Duration::from_millis(200);
                agent.session(stream, &mut events, &token).await;
                agent.stream = None;
            }
            Err(err) => tracing::warn!(%err, "cannot subscribe to the master; retrying"),
        }
        let pause = tokio::time::sleep(retry);
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = &mut pause => break,
                Some(e) = events.recv() => agent.on_task_event(e).await,
            }
        }
        if token.is_cancelled() {
            break;
        }
        retry = (retry * 2).min(Duration::from_secs(5));
    }
    agent.logs.finish_all();
    server.join().await;
    agent.containerizer.shutdown().await;
    Ok(())
}

impl Agent {
    fn load(
        cfg: AgentConfig,
        containerizer: Arc<dyn Containerizer>,
        logs: LogIndex,
    ) -> Result<Agent, AgentError> {
        let checkpoint = Checkpoint::new(cfg.work_dir.clone());
        let (agent_id, records) = checkpoint.load()?;
        let mut queues = StatusQueues::new(cfg.backoff);
        let mut tasks = BTreeMap::new();
        for (rec, pending) in records {
            let key = (rec.framework_id.clone(), rec.task_id.clone());
            // Live tasks the containerizer does not re-adopt get a terminal update in
            // `recover`, which ends their followers; the logs stay readable.
            logs.insert(&key, checkpoint.sandbox(&key), &rec.info, rec.is_terminal());
            queues.restore(key.clone(), pending);
            tasks.insert(key, rec);
        }
        Ok(Agent {
            client: MasterClient::new(
                &cfg.master_url,
                offer_scheduler::http::AGENT_PATH,
                Some(format!("Bearer {}", cfg.secret)),
            ),
            cfg,
            containerizer,
            checkpoint,
            agent_id,
            tasks,
            by_container: HashMap::new(),
            queues,
            stream: None,
            logs,
        })
    }

    /// Tasks checkpointed as live either were re-adopted by the containerizer (Docker containers
    /// outlive the agent; their status flows again) or did not survive the restart (processes die
    /// with the agent): those get a terminal update, queued like any other.
    fn recover(&mut self, adopted: &[String]) {
        for cid in adopted {
            let key = self
                .tasks
                .keys()
                .find(|k| container_task_id(k) == *cid)
                .cloned();
            if let Some(key) = key {
                tracing::info!(task = key.1, "re-adopted a running task");
                self.by_container.insert(cid.clone(), key);
            }
        }
        let dead: Vec<TaskKey> = self
            .tasks
            .iter()
            .filter(|(k, r)| {
                !r.is_terminal() && !self.by_container.contains_key(&container_task_id(k))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            let pa = self
                .tasks
                .get(&key)
                .is_some_and(TaskRecord::partition_aware);
            let state = if pa { "TASK_GONE" } else { "TASK_LOST" };
            let s = launch::status(
                &key.1,
                state,
                Some("REASON_EXECUTOR_TERMINATED"),
                "The task's process did not survive the agent restart",
            );
            self.enqueue(&key, s);
        }
    }

    async fn subscribe(&mut self) -> Result<EventStream, ClientError> {
        let mut info = json!({
            "hostname": self.cfg.hostname,
            "port": self.cfg.port,
            "resources": self.cfg.resources,
            "attributes": self.cfg.attributes,
        });
        if let Some(id) = &self.agent_id {
            info["id"] = json!({ "value": id });
        }
        let tasks: Vec<Json> = self
            .tasks
            .values()
            .map(|r| {
                json!({
                    "framework_id": {"value": r.framework_id},
                    "task_id": {"value": r.task_id},
                    "state": r.state,
                    "role": r.role,
                    "info": r.info,
                    "executor_id": r.executor_id.as_ref().map(|e| json!({"value": e})),
                })
            })
            .collect();
        let call = json!({"type": "SUBSCRIBE", "subscribe": {"agent_info": info, "tasks": tasks}});
        self.client.subscribe(&call).await
    }

    async fn session(
        &mut self,
        mut stream: EventStream,
        events: &mut UnboundedReceiver<TaskEvent>,
        token: &CancellationToken,
    ) {
        let sid = stream.stream_id.clone();
        let heartbeat_every = match stream.next().await {
            Ok(Some(ev)) if ev.get("type").and_then(Json::as_str) == Some("SUBSCRIBED") => {
                let Some(id) = ev
                    .pointer("/subscribed/agent_id/value")
                    .and_then(Json::as_str)
                else {
                    return;
                };
                tracing::info!(agent_id = id, "registered with the master");
                self.agent_id = Some(id.to_string());
                if let Err(err) = self.checkpoint.save_agent_id(id) {
                    tracing::error!(%err, "cannot checkpoint the agent id");
                }
                let secs = ev
                    .pointer("/subscribed/heartbeat_interval_seconds")
                    .and_then(Json::as_f64)
                    .unwrap_or(15.0);
                Duration::from_secs_f64((secs / 3.0).clamp(0.05, 60.0))
            }
            other => {
                tracing::warn!(?other, "master stream did not start with SUBSCRIBED");
                return;
            }
        };
        self.stream = Some(sid);
        for update in self.queues.heads(Instant::now()) {
            self.send_update(update).await;
        }
        let mut heartbeat = tokio::time::interval(heartbeat_every);
        let mut retry = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = token.cancelled() => return,
                ev = stream.next() => match ev {
                    Ok(Some(ev)) => self.on_master_event(ev).await,
                    Ok(None) => { tracing::warn!("the master ended the stream"); return; }
                    Err(err) => { tracing::warn!(%err, "lost the master"); return; }
                },
                Some(e) = events.recv() => self.on_task_event(e).await,
                _ = heartbeat.tick() => self.heartbeat().await,
                _ = retry.tick() => {
                    for update in self.queues.due(Instant::now()) {
                        self.send_update(update).await;
                    }
                }
            }
        }
    }

    async fn call(&self, call: Json) {
        let Some(sid) = &self.stream else { return };
        if let Err(err) = self.client.call(&call, sid).await {
            tracing::warn!(%err, "call to the master failed");
        }
    }

    async fn heartbeat(&self) {
        if let Some(id) = &self.agent_id {
            self.call(json!({"type": "HEARTBEAT", "agent_id": {"value": id}}))
                .await;
        }
    }

    async fn send_update(&self, update: Json) {
        if let Some(id) = &self.agent_id {
            self.call(json!({"type": "UPDATE", "agent_id": {"value": id}, "update": update}))
                .await;
        }
    }

    async fn on_master_event(&mut self, ev: Json) {
        let kind = ev.get("type").and_then(Json::as_str).unwrap_or_default();
        let body = ev
            .get(kind.to_ascii_lowercase())
            .cloned()
            .unwrap_or(Json::Null);
        let fid = id_of(&body, "framework_id").unwrap_or_default();
        match kind {
            "LAUNCH" => {
                let task = body.get("task").cloned().unwrap_or(Json::Null);
                self.launch(&fid, &body, task, None).await;
            }
            "LAUNCH_GROUP" => {
                let executor = body.get("executor").and_then(|e| id_of(e, "executor_id"));
                let tasks = body
                    .pointer("/task_group/tasks")
                    .and_then(Json::as_array)
                    .cloned()
                    .unwrap_or_default();
                for t in tasks {
                    self.launch(&fid, &body, t, executor.clone()).await;
                }
            }
            "KILL" => {
                if let Some(tid) = id_of(&body, "task_id") {
                    let grace = body
                        .pointer("/kill_policy/grace_period/nanoseconds")
                        .and_then(Json::as_u64)
                        .map_or(DEFAULT_GRACE, Duration::from_nanos);
                    self.kill(&(fid, tid), grace).await;
                }
            }
            "ACKNOWLEDGE" => {
                let (Some(tid), Some(uuid)) = (
                    id_of(&body, "task_id"),
                    body.get("uuid").and_then(Json::as_str),
                ) else {
                    return;
                };
                self.acknowledge(&(fid, tid), uuid).await;
            }
            "SHUTDOWN_FRAMEWORK" => {
                let keys: Vec<TaskKey> = self
                    .tasks
                    .iter()
                    .filter(|(k, r)| k.0 == fid && !r.is_terminal())
                    .map(|(k, _)| k.clone())
                    .collect();
                for key in keys {
                    self.kill(&key, DEFAULT_GRACE).await;
                }
            }
            _ => {}
        }
    }

    async fn launch(&mut self, fid: &str, body: &Json, task: Json, executor: Option<String>) {
        let Some(tid) = id_of(&task, "task_id") else {
            return;
        };
        let key = (fid.to_string(), tid.clone());
        if self.tasks.get(&key).is_some_and(|r| !r.is_terminal()) {
            return;
        }
        let sandbox = self.checkpoint.sandbox(&key);
        let record = TaskRecord {
            framework_id: fid.to_string(),
            task_id: tid.clone(),
            info: task.clone(),
            framework_info: body.get("framework_info").cloned().unwrap_or(Json::Null),
            role: body
                .get("role")
                .and_then(Json::as_str)
                .unwrap_or("*")
                .to_string(),
            state: "TASK_STAGING".into(),
            executor_id: executor,
        };
        self.tasks.insert(key.clone(), record);
        self.logs.insert(&key, sandbox.clone(), &task, false);
        self.save(&key);
        let cid = container_task_id(&key);
        let failure = match launch::task_spec(&task, &cid, &sandbox) {
            Err(msg) => Some(msg),
            Ok(spec) => match self.containerizer.launch(spec).await {
                Ok(()) => None,
                Err(e) => Some(e.to_string()),
            },
        };
        match failure {
            None => {
                self.by_container.insert(cid, key);
            }
            Some(msg) => {
                let s = launch::status(
                    &tid,
                    "TASK_FAILED",
                    Some("REASON_CONTAINER_LAUNCH_FAILED"),
                    &msg,
                );
                self.enqueue(&key, s);
                self.flush_head(&key).await;
            }
        }
    }

    async fn kill(&mut self, key: &TaskKey, grace: Duration) {
        let cid = container_task_id(key);
        if self.by_container.contains_key(&cid)
            && self.containerizer.kill(&cid, grace).await.is_ok()
        {
            return;
        }
        let (state, msg) = match self.tasks.get(key) {
            Some(r) if r.is_terminal() => return,
            Some(_) => ("TASK_KILLED", "Task killed before it started"),
            None => ("TASK_LOST", "Task is unknown to the agent"),
        };
        let s = launch::status(&key.1, state, None, msg);
        self.enqueue(key, s);
        self.flush_head(key).await;
    }

    async fn acknowledge(&mut self, key: &TaskKey, uuid: &str) {
        let next = self.queues.ack(key, uuid, Instant::now());
        self.save(key);
        if let Some(update) = next {
            self.send_update(update).await;
        }
        let done =
            self.queues.is_idle(key) && self.tasks.get(key).is_none_or(TaskRecord::is_terminal);
        if done {
            self.tasks.remove(key);
            self.by_container.remove(&container_task_id(key));
            if let Err(err) = self.checkpoint.forget(key) {
                tracing::warn!(%err, "cannot remove a finished task's checkpoint");
            }
        }
    }

    async fn on_task_event(&mut self, e: TaskEvent) {
        let Some(key) = self.by_container.get(&e.task_id).cloned() else {
            return;
        };
        let mut s = launch::status_for_event(&key.1, &e);
        if let Some(exec) = self.tasks.get(&key).and_then(|r| r.executor_id.clone()) {
            s["executor_id"] = json!({ "value": exec });
        }
        if e.phase.is_terminal() {
            self.by_container.remove(&e.task_id);
        }
        self.enqueue(&key, s);
        self.flush_head(&key).await;
    }

    /// Records the new state and queues the update, checkpointing both before anything is sent.
    fn enqueue(&mut self, key: &TaskKey, status: Json) {
        let state = status
            .get("state")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(r) = self.tasks.get_mut(key) {
            r.state = state;
            if r.is_terminal() {
                self.logs.finish(key);
            }
        }
        let update = json!({"framework_id": {"value": key.0}, "status": status});
        self.queues.push(key.clone(), update, Instant::now());
        self.save(key);
    }

    /// Sends the task's queued head if it is the only update waiting (otherwise the earlier head
    /// is still awaiting its acknowledgement).
    async fn flush_head(&mut self, key: &TaskKey) {
        let pending = self.queues.pending(key);
        if pending.len() == 1 {
            self.send_update(pending[0].clone()).await;
        }
    }

    fn save(&self, key: &TaskKey) {
        let Some(rec) = self.tasks.get(key) else {
            return;
        };
        if let Err(err) = self.checkpoint.save_task(rec, &self.queues.pending(key)) {
            tracing::error!(%err, task = key.1, "cannot checkpoint task");
        }
    }
}
