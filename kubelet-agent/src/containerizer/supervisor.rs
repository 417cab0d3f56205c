//! The task-level rules shared by every containerizer.
//!
//! A [`Registry`] knows the tasks of one containerizer, owns one supervisor tokio task
//! per launched task (in a [`JoinSet`]) and routes kill requests to them. A supervisor
//! waits for its containers to start, reports `Running`, relays kill requests as
//! TERM-then-KILL signals to the containers still running, and reports exactly one
//! terminal event once every container has exited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{ContainerState, ContainerizerError, TaskEvent, TaskPhase};

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

type TaskMap = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Duration>>>>;

/// The tasks of one containerizer and the tokio tasks supervising them.
pub(crate) struct Registry {
    events: mpsc::UnboundedSender<TaskEvent>,
    tasks: TaskMap,
    closed: Arc<Mutex<bool>>,
    workers: Mutex<JoinSet<()>>,
}

/// Locks a mutex, recovering from poisoning (the data stays consistent: every critical
/// section is a single map or flag operation).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
    pub fn start(&self, reservation: Reservation, names: Vec<String>, start: StartFuture) {
        let supervisor = Supervisor {
            task_id: reservation.task_id,
            events: self.events.clone(),
            tasks: Arc::clone(&self.tasks),
            kills: reservation.kills,
            states: names.iter().map(|n| ContainerState::pending(n)).collect(),
            killed: false,
        };
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

/// The tokio task following one task from start to its terminal event.
struct Supervisor {
    task_id: String,
    events: mpsc::UnboundedSender<TaskEvent>,
    tasks: TaskMap,
    kills: mpsc::UnboundedReceiver<Duration>,
    states: Vec<ContainerState>,
    killed: bool,
}

impl Supervisor {
    fn emit(&self, phase: TaskPhase, message: String) {
        let _ = self.events.send(TaskEvent {
            task_id: self.task_id.clone(),
            phase,
            message,
            containers: self.states.clone(),
        });
    }

    async fn run(mut self, start: StartFuture) {
        let started = tokio::select! {
            biased;
            started = start => started,
            Some(_) = self.kills.recv() => {
                // Dropping the start future stops whatever it had begun.
                self.killed = true;
                Err("Task killed before it started".to_owned())
            }
        };
        match started {
            Ok(started) => self.supervise(started).await,
            Err(message) => self.finish(message),
        }
    }

    async fn supervise(&mut self, started: Vec<Started>) {
        let mut controls = Vec::with_capacity(started.len());
        let mut exits = FuturesUnordered::new();
        for (i, container) in started.into_iter().enumerate() {
            if let Some(state) = self.states.get_mut(i) {
                *state = container.state;
            }
            controls.push(Some(container.control));
            exits.push(async move { (i, container.exit.await) });
        }
        self.emit(TaskPhase::Running, "Task is running".to_owned());
        let mut deadline: Option<Instant> = None;
        while !exits.is_empty() {
            tokio::select! {
                Some((i, exit)) = exits.next() => {
                    if let Some(control) = controls.get_mut(i) {
                        *control = None;
                    }
                    if let Some(state) = self.states.get_mut(i) {
                        state.running = false;
                        state.exit_code = exit.code;
                        state.signal = exit.signal;
                        state.finished_at = Some(OffsetDateTime::now_utc());
                    }
                }
                Some(grace) = self.kills.recv() => {
                    self.killed = true;
                    controls.iter().flatten().for_each(|c| c.signal(StopSignal::Term));
                    // A grace too long to represent never escalates to SIGKILL.
                    if let Some(at) = Instant::now().checked_add(grace) {
                        deadline = Some(deadline.map_or(at, |d| d.min(at)));
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    controls.iter().flatten().for_each(|c| c.signal(StopSignal::Kill));
                    deadline = None;
                }
            }
        }
        let message = self.exit_message();
        self.finish(message);
    }

    /// Forgets the task, then reports its single terminal event.
    fn finish(&mut self, message: String) {
        lock(&self.tasks).remove(&self.task_id);
        // Kill requests that arrived before the task was forgotten still count.
        if self.kills.try_recv().is_ok() {
            self.killed = true;
        }
        let all_zero = self
            .states
            .iter()
            .all(|s| s.exit_code == Some(0) && s.signal.is_none());
        let (phase, message) = if self.killed {
            (TaskPhase::Killed, "Task killed".to_owned())
        } else if all_zero {
            (TaskPhase::Finished, message)
        } else {
            (TaskPhase::Failed, message)
        };
        self.emit(phase, message);
    }

    /// Mesos-style description of how the containers exited.
    fn exit_message(&self) -> String {
        let describe = |s: &ContainerState| match (s.exit_code, s.signal) {
            (_, Some(sig)) => format!("terminated by signal {sig}"),
            (Some(code), None) => format!("exited with status {code}"),
            (None, None) => "exited".to_owned(),
        };
        match self.states.as_slice() {
            [only] => format!("Command {}", describe(only)),
            all => {
                let failed: Vec<String> = all
                    .iter()
                    .filter(|s| s.exit_code != Some(0) || s.signal.is_some())
                    .map(|s| format!("Container '{}' {}", s.name, describe(s)))
                    .collect();
                if failed.is_empty() {
                    "All containers exited with status 0".to_owned()
                } else {
                    failed.join("; ")
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}
