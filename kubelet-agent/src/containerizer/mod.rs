//! Containerizers: the layer of the agent that turns a task into running containers.
//!
//! A [`Containerizer`] launches every container of a [`TaskSpec`], reports the task's
//! life as [`TaskEvent`]s on the channel given at construction, and kills or shuts
//! down tasks on request. Two implementations exist:
//!
//! - [`ProcessContainerizer`]: each container is a child process in its own process
//!   group, logging to CRI-format files (see [`crate::logs`]).
//! - [`SimulatedContainerizer`]: no processes; a tiny script language in `argv`
//!   drives simulated containers, so the same contract holds without forking.
//! - [`DockerContainerizer`]: each container is a Docker container run by dockerd; the
//!   containers of a task share a network namespace, and tasks survive an agent
//!   restart ([`Containerizer::recover`]).
//!
//! All share the task-level rules, implemented once in the private `supervisor`
//! module: a task goes `Starting` (optional), then `Running` once every container has
//! started, then exactly one terminal phase once every container has exited for good:
//! `Killed` if [`Containerizer::kill`] was called, else `Finished` if every exit code
//! is 0, else `Failed`. While the task runs, a container that exits is started again
//! as the task's [`RestartPolicy`] says, after a back-off (see [`backoff`]; process and
//! simulated runtimes — Docker containers are not restarted), and the container's
//! [`Probe`]s run. Each restart and each change of readiness is reported as a further
//! `Running` event.

use std::path::PathBuf;
use std::time::Duration;

mod docker;
mod probe;
mod process;
mod simulated;
mod supervise;
mod supervisor;

pub use docker::{DockerConfig, DockerContainerizer, DockerError};
pub use probe::{backoff, Probe, ProbeAction, RestartPolicy, BACKOFF_RESET, MAX_BACKOFF};
pub use process::ProcessContainerizer;
pub use simulated::{SimulatedConfig, SimulatedContainerizer};

/// One container of a task, with its command already resolved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerSpec {
    /// Container name (`"main"` for a Mesos command task); names its log directory.
    pub name: String,
    /// Image reference; required and pulled when missing by the Docker containerizer,
    /// recorded only by the process and simulated ones.
    pub image: Option<String>,
    /// The resolved command line, e.g. `["sh", "-c", "echo hi"]`.
    pub argv: Vec<String>,
    /// Environment variables set for the container, in order.
    pub env: Vec<(String, String)>,
    /// Working directory; relative paths are taken from the sandbox, default is the sandbox.
    pub working_dir: Option<PathBuf>,
    /// Port mappings; the process containerizer passes each host port as `PORT<i>` and,
    /// when named, `PORT_<NAME>` (upper-cased, `-` replaced by `_`).
    pub ports: Vec<PortMapping>,
    /// CPU share requested (Docker: `cpus × 1024` CPU shares; otherwise recorded only).
    pub cpus: f64,
    /// Memory in MiB requested (Docker: the memory limit; otherwise recorded only).
    pub mem_mb: f64,
    /// Liveness probe: failing it kills the container (then the restart policy applies).
    pub liveness_probe: Option<Probe>,
    /// Readiness probe: decides [`ContainerState::ready`]; without one a running
    /// container is ready.
    pub readiness_probe: Option<Probe>,
}

/// A port of a container exposed on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortMapping {
    /// Optional port name (e.g. `"http"`), exposed as `PORT_<NAME>` by the process containerizer.
    pub name: Option<String>,
    /// Port inside the container.
    pub container_port: u16,
    /// Port allocated on the host.
    pub host_port: u16,
    /// Protocol, e.g. `"tcp"`.
    pub protocol: String,
}

/// A task: a group of containers sharing a sandbox directory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskSpec {
    /// Task identifier, unique among the tasks known to a containerizer.
    pub task_id: String,
    /// The containers, started together.
    pub containers: Vec<ContainerSpec>,
    /// Sandbox directory; created if missing. Logs go to `<sandbox>/logs/<container>/`.
    pub sandbox: PathBuf,
    /// Whether containers that exit are started again (see the `probe` module rules).
    pub restart_policy: RestartPolicy,
}

/// The phase of a task, as reported in [`TaskEvent`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskPhase {
    /// Accepted; containers are being started.
    Starting,
    /// Every container has started.
    Running,
    /// Terminal: every container exited with status 0.
    Finished,
    /// Terminal: some container exited non-zero or by a signal, or could not start.
    Failed,
    /// Terminal: the task was killed through [`Containerizer::kill`] or shutdown.
    Killed,
}

impl TaskPhase {
    /// Whether this phase is terminal (no further event follows for the task).
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::Killed)
    }
}

/// The state of one container at the time of an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerState {
    /// Container name, as in [`ContainerSpec::name`].
    pub name: String,
    /// Whether the container is running.
    pub running: bool,
    /// Whether the container is ready: running, and its readiness probe (if any) passed.
    pub ready: bool,
    /// Exit code, once exited normally.
    pub exit_code: Option<i32>,
    /// Signal number, once terminated by a signal.
    pub signal: Option<i32>,
    /// When the container started.
    pub started_at: Option<time::OffsetDateTime>,
    /// When the container exited.
    pub finished_at: Option<time::OffsetDateTime>,
    /// Which run of the container this is (also the number of its log file).
    pub restart_count: u32,
    /// Runtime-specific identifier, e.g. `process://<task>/<container>/<run>`.
    pub container_id: String,
}

impl ContainerState {
    /// A container that has not started yet.
    pub fn pending(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            running: false,
            ready: false,
            exit_code: None,
            signal: None,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            container_id: String::new(),
        }
    }
}

/// A change of phase of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskEvent {
    /// The task.
    pub task_id: String,
    /// Its new phase.
    pub phase: TaskPhase,
    /// Human-readable detail, e.g. `"Command exited with status 1"`.
    pub message: String,
    /// Every container's state, in [`TaskSpec::containers`] order.
    pub containers: Vec<ContainerState>,
}

/// Errors of containerizer operations.
#[derive(Debug, thiserror::Error)]
pub enum ContainerizerError {
    /// No task with this id is known (never launched, or already reported terminal).
    #[error("unknown task {0}")]
    UnknownTask(String),
    /// A task with this id is already known.
    #[error("task {0} already exists")]
    AlreadyExists(String),
    /// A container's process could not be started; the task's other containers were killed.
    #[error("failed to start container {container}: {source}")]
    Spawn {
        /// The container that failed.
        container: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Preparing the sandbox or the log files failed.
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    /// The containerizer was shut down and accepts no more tasks.
    #[error("containerizer is shut down")]
    ShutDown,
    /// A Docker operation failed; the task's containers created so far were removed.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// Runs tasks made of containers and reports their phases as [`TaskEvent`]s.
#[async_trait::async_trait]
pub trait Containerizer: Send + Sync + 'static {
    /// Starts every container of the task; events (Starting? then Running, then exactly
    /// one terminal) go to the sender given at construction. On `Err`, no event is sent
    /// and the task is not known.
    async fn launch(&self, spec: TaskSpec) -> Result<(), ContainerizerError>;
    /// SIGTERM to each container (process: to its process group), SIGKILL after `grace`;
    /// ends in exactly one terminal event, Killed. Returns once the request is recorded,
    /// not when the task has ended. Unknown task → `Err(UnknownTask)`.
    async fn kill(&self, task_id: &str, grace: Duration) -> Result<(), ContainerizerError>;
    /// Tasks currently known (running or not yet reported terminal).
    async fn tasks(&self) -> Vec<String>;
    /// Stops everything (used at agent shutdown in tests); owned tasks are joined.
    /// Every task still known is killed without grace and reported Killed.
    async fn shutdown(&self);
    /// Re-adopts tasks that a previous instance of this containerizer left running
    /// (e.g. before the agent was killed), so they are not launched again: each adopted
    /// task is reported `Running` (never `Starting`), then ends like any other. Returns
    /// the adopted task ids. Containerizers whose containers die with the agent (process,
    /// simulated) adopt nothing, the default.
    async fn recover(&self) -> Result<Vec<String>, ContainerizerError> {
        Ok(Vec::new())
    }
}
