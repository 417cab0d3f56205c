//! The master: registries of agents, frameworks, offers and tasks, as one synchronous state
//! machine. Every input (a scheduler call, an agent message, a timer tick) is a method taking the
//! current time; every output is an [`Effect`] the I/O shell delivers. No I/O, no clocks, no
//! locks here, so the whole lifecycle is unit-tested with made-up instants.

mod agents;
pub mod frameworks;
mod offers;
pub mod operator;
pub mod proto;
mod recovery;
pub mod state;
#[cfg(test)]
mod state_tests;
mod tasks;
#[cfg(test)]
mod tests;

use crate::allocator;
use crate::filter::Filters;
use crate::quota::QuotaTable;
use crate::resources::Resources;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use proto::TaskState;

/// The version `/version` and `master_info` report (pymesos switches to v1 behaviour at ≥1.0.0).
pub const MESOS_VERSION: &str = "1.11.0";

/// Master settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `heartbeat_interval_seconds` sent to schedulers, and how often HEARTBEAT events go out.
    pub heartbeat_interval: Duration,
    /// An agent that sends nothing for this long has missed one ping.
    pub agent_ping_timeout: Duration,
    /// After this many missed pings the agent is unreachable.
    pub max_agent_ping_timeouts: u32,
    /// Agents recovered from the store that do not re-register within this time are unreachable.
    pub agent_reregister_timeout: Duration,
    /// Offers outstanding this long are rescinded (`--offer-timeout`); `None` = never.
    pub offer_timeout: Option<Duration>,
    /// Allocator policy.
    pub allocator: allocator::Config,
    /// Hostname and port reported in `master_info`.
    pub hostname: String,
    /// Port reported in `master_info`.
    pub port: u16,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            heartbeat_interval: Duration::from_secs(15),
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout: Duration::from_secs(600),
            offer_timeout: None,
            allocator: allocator::Config::default(),
            hostname: "127.0.0.1".into(),
            port: 5050,
        }
    }
}

/// The current time, twice: a monotonic instant for timers and Unix seconds for timestamps.
#[derive(Clone, Copy, Debug)]
pub struct Now {
    /// Monotonic time.
    pub instant: Instant,
    /// Seconds since the Unix epoch.
    pub unix: f64,
}

impl Now {
    /// The real current time.
    pub fn current() -> Now {
        Now {
            instant: Instant::now(),
            unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }

    /// `d` later.
    pub fn after(self, d: Duration) -> Now {
        Now {
            instant: self.instant + d,
            unix: self.unix + d.as_secs_f64(),
        }
    }
}

/// What the shell must do after a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send a RecordIO record on a stream (a scheduler's or an agent's).
    Send {
        /// Stream id.
        stream: String,
        /// The event.
        event: Json,
    },
    /// End a stream (framework torn down or failed over, agent removed).
    Close {
        /// Stream id.
        stream: String,
    },
    /// Write (`Some`) or delete (`None`) a record in the store.
    Persist {
        /// Store key.
        key: String,
        /// JSON record.
        value: Option<Json>,
    },
}

/// A registered agent.
#[derive(Clone, Debug)]
pub struct Agent {
    /// Agent id.
    pub id: String,
    /// Hostname it reported.
    pub hostname: String,
    /// Port of its HTTP endpoint (logs).
    pub port: u16,
    /// Total resources, including dynamic reservations.
    pub total: Resources,
    /// Mesos `Attribute` JSON list.
    pub attributes: Json,
    /// When it first registered (Unix seconds).
    pub registered_time: f64,
    /// Its stream, while connected.
    pub stream: Option<String>,
    /// False once marked unreachable.
    pub reachable: bool,
    /// Last message from the agent (for the ping timeout).
    pub last_seen: Instant,
    /// Set for agents recovered from the store until they re-register.
    pub reregister_deadline: Option<Instant>,
    /// Tasks on the agent, as (framework, task).
    pub tasks: BTreeSet<(String, String)>,
}

impl Agent {
    /// Connected and reachable: may be offered and launched on.
    pub fn active(&self) -> bool {
        self.stream.is_some() && self.reachable
    }
}

/// A subscribed (or failed-over, waiting) framework.
#[derive(Clone, Debug)]
pub struct Framework {
    /// Framework id.
    pub id: String,
    /// The `FrameworkInfo` it subscribed with (id filled in).
    pub info: Json,
    /// Subscribed roles.
    pub roles: Vec<String>,
    /// `PARTITION_AWARE` capability.
    pub partition_aware: bool,
    /// `GPU_RESOURCES` capability.
    pub gpu_resources: bool,
    /// Its event stream, while connected.
    pub stream: Option<String>,
    /// When a disconnected framework is removed.
    pub failover_deadline: Option<Instant>,
    /// Roles it suppressed.
    pub suppressed: BTreeSet<String>,
    /// When it first registered (Unix seconds).
    pub registered_time: f64,
}

impl Framework {
    /// `failover_timeout` from the info, in seconds (default 0).
    pub fn failover_timeout(&self) -> Duration {
        let s = self
            .info
            .get("failover_timeout")
            .and_then(Json::as_f64)
            .unwrap_or(0.0);
        if s.is_finite() && s > 0.0 {
            Duration::from_secs_f64(s.min(crate::filter::MAX_REFUSE.as_secs_f64()))
        } else {
            Duration::ZERO
        }
    }
}

/// An outstanding offer.
#[derive(Clone, Debug)]
pub struct Offer {
    /// Offer id.
    pub id: String,
    /// Framework it was sent to.
    pub framework: String,
    /// Agent the resources are on.
    pub agent: String,
    /// Role they are allocated to.
    pub role: String,
    /// The resources.
    pub resources: Resources,
    /// When it was made.
    pub created: Instant,
}

/// A task the master knows.
#[derive(Clone, Debug)]
pub struct Task {
    /// Framework id.
    pub framework: String,
    /// Task id.
    pub id: String,
    /// Agent id.
    pub agent: String,
    /// Task name.
    pub name: String,
    /// Allocation role.
    pub role: String,
    /// Resources it holds (released when terminal).
    pub resources: Resources,
    /// The `TaskInfo` as launched (or, for a task group, this task's entry).
    pub info: Json,
    /// Latest state.
    pub state: TaskState,
    /// Latest status JSON (for reconciliation and /state).
    pub status: Option<Json>,
    /// Executor id for task-group tasks.
    pub executor: Option<String>,
}

/// Key of a task: (framework, task id).
pub type TaskKey = (String, String);

/// The master's state.
pub struct Master {
    cfg: Config,
    id: String,
    counter: u64,
    /// Offer ids are `<boot>-O<n>`: unique per master run without a store write per offer.
    boot: String,
    offer_seq: u64,
    start_time: f64,
    agents: BTreeMap<String, Agent>,
    frameworks: BTreeMap<String, Framework>,
    removed_frameworks: BTreeSet<String>,
    offers: BTreeMap<String, Offer>,
    tasks: HashMap<TaskKey, Task>,
    completed: VecDeque<Task>,
    weights: BTreeMap<String, f64>,
    quotas: QuotaTable,
    filters: Filters,
    effects: Vec<Effect>,
    /// Streams by id, to tell framework and agent streams apart on disconnect.
    streams: HashMap<String, StreamOwner>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum StreamOwner {
    Framework(String),
    Agent(String),
}

/// Terminal tasks kept for `/state`'s `completed_tasks`.
const COMPLETED_KEPT: usize = 1000;

/// Store key prefix for master records.
pub const STORE_PREFIX: &str = "/kumos/master/";

impl Master {
    /// A fresh master with the given id (persisted by the shell so restarts keep it).
    pub fn new(cfg: Config, id: String, now: Now) -> Master {
        Master {
            cfg,
            counter: 0,
            boot: format!("{id}-{}", (now.unix * 1000.0) as u64),
            id,
            offer_seq: 0,
            start_time: now.unix,
            agents: BTreeMap::new(),
            frameworks: BTreeMap::new(),
            removed_frameworks: BTreeSet::new(),
            offers: BTreeMap::new(),
            tasks: HashMap::new(),
            completed: VecDeque::new(),
            weights: BTreeMap::new(),
            quotas: QuotaTable::new(),
            filters: Filters::new(),
            effects: Vec::new(),
            streams: HashMap::new(),
        }
    }

    /// The master id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Settings.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Takes the effects produced so far, in order.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// A new framework (`kind` "") or agent ("S") id; the counter is persisted so ids are never
    /// reused across restarts.
    fn new_id(&mut self, kind: &str) -> String {
        self.counter += 1;
        self.persist_info();
        if kind.is_empty() {
            format!("{}-{:04}", self.id, self.counter)
        } else {
            format!("{}-{kind}{}", self.id, self.counter)
        }
    }

    fn send(&mut self, stream: Option<&String>, event: Json) {
        if let Some(s) = stream {
            self.effects.push(Effect::Send {
                stream: s.clone(),
                event,
            });
        }
    }

    /// Sends an event to a framework's current stream (dropped while it is disconnected, as in
    /// Mesos: reconciliation and agent retries recover what was missed).
    fn tell_framework(&mut self, framework: &str, event: Json) {
        let stream = self
            .frameworks
            .get(framework)
            .and_then(|f| f.stream.clone());
        self.send(stream.as_ref(), event);
    }

    fn tell_agent(&mut self, agent: &str, event: Json) {
        let stream = self.agents.get(agent).and_then(|a| a.stream.clone());
        self.send(stream.as_ref(), event);
    }

    /// `master_info` as schedulers see it.
    pub fn master_info(&self) -> Json {
        serde_json::json!({
            "id": self.id,
            "ip": 2130706433u32,
            "port": self.cfg.port,
            "hostname": self.cfg.hostname,
            "version": MESOS_VERSION,
            "address": {"hostname": self.cfg.hostname, "ip": "127.0.0.1", "port": self.cfg.port},
        })
    }

    /// Role weights.
    pub fn weights(&self) -> &BTreeMap<String, f64> {
        &self.weights
    }

    /// Sets role weights (operator UPDATE_WEIGHTS).
    pub fn update_weights(&mut self, weights: impl IntoIterator<Item = (String, f64)>) {
        for (role, w) in weights {
            self.weights.insert(role, w);
        }
        self.persist_info();
    }

    /// Role quotas.
    pub fn quotas(&self) -> &QuotaTable {
        &self.quotas
    }

    /// Sets (`Some`) or removes (`None`) a role's quota.
    pub fn set_quota(&mut self, role: &str, quota: Option<crate::quota::Quota>) {
        match quota {
            Some(q) => {
                self.quotas.insert(role.to_string(), q);
            }
            None => {
                self.quotas.remove(role);
            }
        }
        self.persist_info();
    }

    /// Registered agents.
    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    /// Frameworks (connected or waiting for failover).
    pub fn frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.frameworks.values()
    }

    /// Live tasks.
    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    /// Recently completed tasks.
    pub fn completed_tasks(&self) -> impl Iterator<Item = &Task> {
        self.completed.iter()
    }

    /// Outstanding offers.
    pub fn offers(&self) -> impl Iterator<Item = &Offer> {
        self.offers.values()
    }

    /// When the master started (Unix seconds).
    pub fn start_time(&self) -> f64 {
        self.start_time
    }

    /// A stream ended (client went away).
    pub fn stream_closed(&mut self, stream: &str, now: Now) {
        match self.streams.remove(stream) {
            Some(StreamOwner::Framework(f)) => self.framework_disconnected(&f, stream, now),
            Some(StreamOwner::Agent(a)) => self.agent_disconnected(&a, stream),
            None => {}
        }
    }

    /// Periodic work: framework failover expiry, agent ping timeouts, offer timeouts, filter expiry.
    pub fn tick(&mut self, now: Now) {
        self.expire_frameworks(now);
        self.check_agents(now);
        self.expire_offers(now);
        self.filters.expire(now.instant);
    }
}
