//! The Docker containerizer: each container of a task is a Docker container, run by a
//! real dockerd through its Engine API (the `bollard` crate, over a unix socket).
//!
//! # Tasks as containers
//!
//! - **Images** are inspected first and pulled only when missing.
//! - **Network**: the containers of a task share one network namespace. A *sandbox*
//!   container is started first: the image of the task's first container running
//!   `sleep infinity` (so that image must provide `sleep`, as busybox- or
//!   distribution-based images do; no separate pause image has to be present on an
//!   offline host). The task's containers then run with
//!   `network_mode: container:<sandbox-id>`. Every [`PortMapping`](super::PortMapping)
//!   of the task is published on the sandbox: `host_port` → `container_port`, bound to
//!   [`DockerConfig::bind_address`] only, which may not be unspecified (`0.0.0.0`, `::`).
//! - **Command**: a non-empty `argv` becomes the container's `Cmd` (the image's
//!   entrypoint, if any, still applies); an empty one keeps the image's entrypoint and
//!   command. `env`, `working_dir` (a relative one is taken from `/`), CPU shares
//!   (`cpus × 1024`) and the memory limit (`mem_mb` MiB) come from the spec; ports are
//!   not passed as environment variables.
//! - **Signals**: containers run under docker-init (`init: true`), so a shell as the
//!   container's main process still receives SIGTERM. Kill sends SIGTERM, then SIGKILL
//!   after the grace period. Docker reports death by signal `n` as exit code `128 + n`;
//!   such a code is reported as signal `n` only for a container this containerizer
//!   signalled (or that was OOM-killed), otherwise as that exit code.
//! - **Logs**: stdout and stderr are followed through the Docker logs API (with Docker's
//!   timestamps) into the same CRI files as the process containerizer writes, so
//!   [`crate::logs::read_logs`] works unchanged.
//! - **Identity**: every container carries the labels `kumos.agent-id`,
//!   `kumos.task-id`, `kumos.container-name`, plus `kumos.role` (`sandbox` / `app`),
//!   `kumos.container-index`, `kumos.run` (its log file number) and `kumos.sandbox`.
//!   Container ids are reported as `docker://<id>`.
//! - **Cleanup**: once the last container of a task has exited (and its output is
//!   drained), all the task's containers, sandbox included, are removed, before the
//!   terminal event is sent. [`Containerizer::shutdown`] kills every task and removes
//!   whatever this containerizer created or adopted and is still there.
//!
//! # Agent restarts
//!
//! Dropping a `DockerContainerizer` (or killing the agent) leaves its containers
//! running. [`Containerizer::recover`] on a new instance with the same
//! [`DockerConfig::agent_id`] lists the containers labelled with it and re-adopts every
//! task with at least one running container: waiting and log streaming resume (lines
//! already in the CRI log, by Docker timestamp, are not copied again) and the task is
//! reported `Running` (no `Starting`). Tasks whose containers have all exited while no
//! agent watched them are removed, not reported: their exit status is lost.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use bollard::Docker;
use futures::FutureExt;
use tokio::sync::mpsc;

use super::supervisor::{Plan, Registry};
use super::{Containerizer, ContainerizerError, TaskEvent, TaskSpec};

mod restart;
mod run;
mod spec;
mod task;

/// Seconds the Docker client waits for a response's headers (streams may last longer).
const CLIENT_TIMEOUT_SECS: u64 = 120;

/// Where the Docker containerizer finds dockerd and how it labels and publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerConfig {
    /// The dockerd API socket, e.g. `/var/run/docker.sock`.
    pub socket: PathBuf,
    /// Host address port mappings are published on (default `127.0.0.1`); never
    /// unspecified.
    pub bind_address: IpAddr,
    /// Labels every container as this agent's, for [`Containerizer::recover`].
    pub agent_id: String,
}

impl DockerConfig {
    /// A configuration publishing on `127.0.0.1`.
    pub fn new(socket: impl Into<PathBuf>, agent_id: impl Into<String>) -> Self {
        Self {
            socket: socket.into(),
            bind_address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            agent_id: agent_id.into(),
        }
    }
}

impl Default for DockerConfig {
    /// The default Docker socket, `127.0.0.1`, and an empty agent id.
    fn default() -> Self {
        Self::new("/var/run/docker.sock", "")
    }
}

/// Errors specific to the Docker containerizer.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// Ports may not be published on every interface.
    #[error("bind address {0} is unspecified; publish ports on a specific address")]
    UnspecifiedBindAddress(IpAddr),
    /// The socket path is not UTF-8.
    #[error("docker socket path {0:?} is not valid UTF-8")]
    SocketPath(PathBuf),
    /// A container of the task names no image.
    #[error("container {0} has no image")]
    NoImage(String),
    /// A call to dockerd failed.
    #[error("docker {op} failed: {source}")]
    Api {
        /// What was asked, e.g. `"create container main"`.
        op: String,
        /// The client's error (connection, or dockerd's answer).
        #[source]
        source: bollard::errors::Error,
    },
}

/// Builds the mapper of a bollard error to [`DockerError::Api`] for `op`.
fn api(op: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let op = op.into();
    move |source| DockerError::Api { op, source }
}

/// What the containerizer and its supervised containers share.
pub(crate) struct Shared {
    docker: Docker,
    config: DockerConfig,
    /// Containers created or adopted and not removed yet.
    owned: Mutex<HashSet<String>>,
}

impl Shared {
    fn owned(&self) -> MutexGuard<'_, HashSet<String>> {
        self.owned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a container as ours, to be removed at the latest by shutdown.
    fn track(&self, id: &str) {
        self.owned().insert(id.to_owned());
    }

    /// Kills and removes a container (and its anonymous volumes); a missing one counts
    /// as removed, other failures are logged.
    async fn remove(&self, id: &str) {
        let opts = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => {
                tracing::warn!(%id, error = %e, "removing container failed");
                return;
            }
        }
        self.owned().remove(id);
    }
}

/// Runs tasks as Docker containers; see the module documentation.
pub struct DockerContainerizer {
    registry: Registry,
    shared: Arc<Shared>,
}

impl DockerContainerizer {
    /// Connects to dockerd at `config.socket` (negotiating the API version) and reports
    /// task events on `events`.
    pub async fn new(
        events: mpsc::UnboundedSender<TaskEvent>,
        config: DockerConfig,
    ) -> Result<Self, DockerError> {
        if config.bind_address.is_unspecified() {
            return Err(DockerError::UnspecifiedBindAddress(config.bind_address));
        }
        let socket = config
            .socket
            .to_str()
            .ok_or_else(|| DockerError::SocketPath(config.socket.clone()))?;
        let docker =
            Docker::connect_with_unix(socket, CLIENT_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
                .map_err(api("connect"))?
                .negotiate_version()
                .await
                .map_err(api("version negotiation"))?;
        Ok(Self {
            registry: Registry::new(events),
            shared: Arc::new(Shared {
                docker,
                config,
                owned: Mutex::new(HashSet::new()),
            }),
        })
    }

    /// The configuration this containerizer was built with.
    pub fn config(&self) -> &DockerConfig {
        &self.shared.config
    }
}

#[async_trait::async_trait]
impl Containerizer for DockerContainerizer {
    async fn launch(&self, spec: TaskSpec) -> Result<(), ContainerizerError> {
        let reservation = self.registry.reserve(&spec.task_id)?;
        let (started, net) = match task::start(&self.shared, &spec).await {
            Ok(started) => started,
            Err(e) => {
                self.registry.release(reservation);
                return Err(e);
            }
        };
        let net = net.map(|n| Arc::new(tokio::sync::Mutex::new(n)));
        let plan = Plan::new(&spec, |c| {
            let net = net.clone()?;
            let index = spec.containers.iter().position(|s| s.name == c.name)?;
            let runtime = restart::DockerRuntime {
                shared: Arc::clone(&self.shared),
                net,
                index,
            };
            Some(Arc::new(restart::Handle(Arc::new(runtime))) as Arc<dyn super::supervisor::Runtime>)
        });
        self.registry.emit_starting(&spec.task_id, &plan.names());
        self.registry.start(
            reservation,
            plan,
            futures::future::ready(Ok(started)).boxed(),
        );
        Ok(())
    }

    async fn kill(&self, task_id: &str, grace: Duration) -> Result<(), ContainerizerError> {
        self.registry.kill(task_id, grace)
    }

    async fn tasks(&self) -> Vec<String> {
        self.registry.tasks()
    }

    async fn shutdown(&self) {
        self.registry.shutdown().await;
        // Containers of launches that failed half-way and were not cleaned up.
        let left: Vec<String> = self.shared.owned().iter().cloned().collect();
        for id in left {
            self.shared.remove(&id).await;
        }
    }

    async fn recover(&self) -> Result<Vec<String>, ContainerizerError> {
        task::recover(&self.shared, &self.registry).await
    }
}
