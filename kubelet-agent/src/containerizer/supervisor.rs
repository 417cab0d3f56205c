//! The task-level rules shared by every containerizer.
//!
//! A [`Registry`] knows the tasks of one containerizer, owns one supervisor tokio task
//! per launched task (in a [`JoinSet`]) and routes kill requests to them. A supervisor
//! waits for its containers to start, reports `Running`, relays kill requests as
//! TERM-then-KILL signals to the containers still running, and reports exactly one
//! terminal event once every container has exited for good. The supervisor itself
//! (restarts and probes included) lives in the `supervise` module.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::supervise::Supervisor;
use super::{
    ContainerSpec, ContainerState, ContainerizerError, Probe, RestartPolicy, TaskEvent, TaskPhase,
    TaskSpec,
};

/// Signals a supervisor sends to a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopSignal {
    /// Ask to stop (SIGTERM).
    Term,
    /// Force stop (SIGKILL).
    Kill,
}

/// How a container ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Exit {
    /// Exit status, when it exited by itself.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
}

/// Sends stop signals to a running container.
pub(crate) trait ContainerControl: Send + Sync {
    /// Delivers the signal; errors (e.g. already gone) are ignored.
    fn signal(&self, signal: StopSignal);
}

/// A started container, handed to the supervisor.
pub(crate) struct Started {
    /// Its state at start (`running`, `started_at`, `restart_count`, `container_id` set).
    pub state: ContainerState,
    /// Delivers stop signals.
    pub control: Box<dyn ContainerControl>,
    /// Completes when the container has exited and its output is drained.
    pub exit: BoxFuture<'static, Exit>,
}

/// Starts the containers of a task: every container or an error message.
pub(crate) type StartFuture = BoxFuture<'static, Result<Vec<Started>, String>>;

/// Starts one container again: the new run, or an error message.
pub(crate) type RestartFuture = BoxFuture<'static, Result<Started, String>>;

/// What a runtime does for one container beyond signalling it: restarts and exec probes.
pub(crate) trait Runtime: Send + Sync {
    /// Starts the container again as a new run (new log file, next restart count);
    /// `None` when this runtime does not restart containers.
    fn restart(&self) -> Option<RestartFuture>;
    /// Whether [`Runtime::restart`] ever returns a future.
    fn can_restart(&self) -> bool {
        true
    }
    /// Runs `argv` in the container's context: whether it exited 0 within `timeout`.
    fn exec(&self, argv: &[String], timeout: Duration) -> BoxFuture<'static, bool>;
}

/// What the supervisor knows of one container beyond its runs.
pub(crate) struct ContainerPlan {
    /// Container name.
    pub name: String,
    /// Its liveness probe.
    pub liveness: Option<Probe>,
    /// Its readiness probe.
    pub readiness: Option<Probe>,
    /// How to restart it and run exec probes; `None`: no restarts, exec probes pass.
    pub runtime: Option<Arc<dyn Runtime>>,
}

/// The restart policy and the containers of a task, in [`TaskSpec::containers`] order.
pub(crate) struct Plan {
    /// When exited containers are started again.
    pub restart_policy: RestartPolicy,
    /// The containers.
    pub containers: Vec<ContainerPlan>,
}

impl Plan {
    /// The plan of a task, with the runtime `runtime` gives each container.
    pub fn new(
        spec: &TaskSpec,
        runtime: impl Fn(&ContainerSpec) -> Option<Arc<dyn Runtime>>,
    ) -> Self {
        Self {
            restart_policy: spec.restart_policy,
            containers: spec
                .containers
                .iter()
                .map(|c| ContainerPlan {
                    name: c.name.clone(),
                    liveness: c.liveness_probe.clone(),
                    readiness: c.readiness_probe.clone(),
                    runtime: runtime(c),
                })
                .collect(),
        }
    }

    /// The plan of adopted containers whose spec is unknown: no restarts, no probes.
    pub fn adopted(names: Vec<String>) -> Self {
        Self {
            restart_policy: RestartPolicy::Never,
            containers: names
                .into_iter()
                .map(|name| ContainerPlan {
                    name,
                    liveness: None,
                    readiness: None,
                    runtime: None,
                })
                .collect(),
        }
    }

    /// The container names, in order.
    pub fn names(&self) -> Vec<String> {
        self.containers.iter().map(|c| c.name.clone()).collect()
    }
}

pub(crate) type TaskMap = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Duration>>>>;

/// The tasks of one containerizer and the tokio tasks supervising them.
pub(crate) struct Registry {
    events: mpsc::UnboundedSender<TaskEvent>,
    tasks: TaskMap,
    closed: Arc<Mutex<bool>>,
    workers: Mutex<JoinSet<()>>,
}

/// Locks a mutex, recovering from poisoning (the data stays consistent: every critical
/// section is a single map or flag operation).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A task id reserved by [`Registry::reserve`], to be passed to [`Registry::start`].
pub(crate) struct Reservation {
    task_id: String,
    kills: mpsc::UnboundedReceiver<Duration>,
}

impl Registry {
    /// A registry reporting on `events`.
    pub fn new(events: mpsc::UnboundedSender<TaskEvent>) -> Self {
        Self {
            events,
            tasks: TaskMap::default(),
            closed: Arc::new(Mutex::new(false)),
            workers: Mutex::new(JoinSet::new()),
        }
    }

    /// Makes a task known; fails if it already is or the registry is shut down.
    pub fn reserve(&self, task_id: &str) -> Result<Reservation, ContainerizerError> {
        let closed = lock(&self.closed);
        if *closed {
            return Err(ContainerizerError::ShutDown);
        }
        let mut tasks = lock(&self.tasks);
        if tasks.contains_key(task_id) {
            return Err(ContainerizerError::AlreadyExists(task_id.to_owned()));
        }
        let (tx, kills) = mpsc::unbounded_channel();
        tasks.insert(task_id.to_owned(), tx);
        Ok(Reservation {
            task_id: task_id.to_owned(),
            kills,
        })
    }

    /// Forgets a reserved task that failed to launch.
    pub fn release(&self, reservation: Reservation) {
        lock(&self.tasks).remove(&reservation.task_id);
    }

    /// Reports a reserved task as `Starting`, its containers not started yet.
    pub fn emit_starting(&self, task_id: &str, names: &[String]) {
        // A dropped receiver is not an error for the containerizer.
        let _ = self.events.send(TaskEvent {
            task_id: task_id.to_owned(),
            phase: TaskPhase::Starting,
            message: "Starting containers".to_owned(),
            containers: names.iter().map(|n| ContainerState::pending(n)).collect(),
        });
    }

    /// Asks the task's supervisor to stop it with this grace period.
    pub fn kill(&self, task_id: &str, grace: Duration) -> Result<(), ContainerizerError> {
        let tasks = lock(&self.tasks);
        let tx = tasks
            .get(task_id)
            .ok_or_else(|| ContainerizerError::UnknownTask(task_id.to_owned()))?;
        // A closed receiver means the supervisor is reporting the end right now.
        let _ = tx.send(grace);
        Ok(())
    }

    /// The known task ids, sorted.
    pub fn tasks(&self) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.tasks).keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Spawns the supervisor of a reserved task: it awaits `start`, then the containers.
    pub fn start(&self, reservation: Reservation, plan: Plan, start: StartFuture) {
        let supervisor = Supervisor::new(
            reservation.task_id,
            self.events.clone(),
            Arc::clone(&self.tasks),
            reservation.kills,
            plan,
        );
        let mut workers = lock(&self.workers);
        while workers.try_join_next().is_some() {}
        workers.spawn(supervisor.run(start));
    }

    /// Refuses new tasks, kills every known task without grace and joins all supervisors.
    pub async fn shutdown(&self) {
        *lock(&self.closed) = true;
        loop {
            for tx in lock(&self.tasks).values() {
                let _ = tx.send(Duration::ZERO);
            }
            let mut workers = std::mem::take(&mut *lock(&self.workers));
            if workers.is_empty() {
                if lock(&self.tasks).is_empty() {
                    return;
                }
                // A launch reserved its task before the shutdown and has not spawned yet.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            while let Some(res) = workers.join_next().await {
                if let Err(e) = res {
                    tracing::warn!(error = %e, "task supervisor failed");
                }
            }
        }
    }
}
