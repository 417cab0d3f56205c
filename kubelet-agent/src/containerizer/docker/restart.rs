//! Restarts and exec probes for Docker containers. A restart creates a new container for
//! the next run (its own log file) in the task's sandbox; when the task's containers are
//! already gone (its only app container exited, so the sandbox was removed), a new
//! sandbox with the same port mappings is created first. Exec probes run through
//! `docker exec`.

use std::sync::Arc;
use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions};
use futures::future::BoxFuture;
use futures::FutureExt;
use time::OffsetDateTime;

use super::run::TaskCleanup;
use super::task::{create, start_container, supervised};
use super::{spec, Shared};
use crate::containerizer::supervisor::{RestartFuture, Runtime, Started};
use crate::containerizer::{ContainerState, TaskSpec};
use crate::logs::LogWriter;

/// Pause between polls of a running exec.
const EXEC_POLL: Duration = Duration::from_millis(50);

/// What restarting any container of one task needs; one per task, shared by its
/// containers' runtimes.
pub(crate) struct TaskNet {
    /// The task.
    pub spec: TaskSpec,
    /// Image of each container, in order.
    pub images: Vec<String>,
    /// The sandbox container holding the network namespace.
    pub sandbox_id: String,
    /// The current container of each app, in order.
    pub app_ids: Vec<String>,
    /// Removal of the task's containers.
    pub cleanup: Arc<TaskCleanup>,
}

/// The runtime of one container of a Docker task.
pub(crate) struct DockerRuntime {
    pub shared: Arc<Shared>,
    /// Restarts of one task are serialised: they may replace the sandbox.
    pub net: Arc<tokio::sync::Mutex<TaskNet>>,
    pub index: usize,
}

impl DockerRuntime {
    async fn restart_once(self: Arc<Self>) -> Result<Started, String> {
        let shared = &self.shared;
        let agent = shared.config.agent_id.clone();
        let mut net = self.net.lock().await;
        let name = net
            .spec
            .containers
            .get(self.index)
            .map(|c| c.name.clone())
            .ok_or("no such container")?;
        let image = net.images.get(self.index).cloned().ok_or("no image")?;
        if net.cleanup.is_done() {
            let first = net.images.first().cloned().ok_or("no image")?;
            let body = spec::sandbox_body(&agent, &net.spec, &first, shared.config.bind_address);
            let mut created = Vec::new();
            let sandbox = create(shared, "sandbox", body, &mut created)
                .await
                .map_err(|e| e.to_string())?;
            start_container(shared, "sandbox", &sandbox)
                .await
                .map_err(|e| e.to_string())?;
            net.sandbox_id = sandbox.clone();
            net.cleanup = TaskCleanup::new(Arc::clone(shared), vec![sandbox], 0);
        }
        let (log, run) = LogWriter::create(&net.spec.sandbox, &name)
            .await
            .map_err(|e| e.to_string())?;
        let body = spec::app_body(&agent, &net.spec, self.index, &image, &net.sandbox_id, run)
            .ok_or("no such container")?;
        let mut created = Vec::new();
        let id = create(shared, &name, body, &mut created)
            .await
            .map_err(|e| e.to_string())?;
        if !net.cleanup.add_run(&id) {
            shared.remove(&id).await;
            return Err("the task's containers were removed meanwhile".into());
        }
        if let Err(e) = start_container(shared, &name, &id).await {
            net.cleanup.container_exited().await;
            return Err(e.to_string());
        }
        if let Some(slot) = net.app_ids.get_mut(self.index) {
            *slot = id.clone();
        }
        let state = ContainerState {
            running: true,
            started_at: Some(OffsetDateTime::now_utc()),
            restart_count: run,
            container_id: format!("docker://{id}"),
            ..ContainerState::pending(&name)
        };
        Ok(supervised(shared, id, state, log, None, &net.cleanup))
    }

    async fn exec_once(self: Arc<Self>, argv: Vec<String>) -> Option<bool> {
        let id = self.net.lock().await.app_ids.get(self.index).cloned()?;
        let docker = &self.shared.docker;
        let opts = CreateExecOptions {
            cmd: Some(argv),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            ..Default::default()
        };
        let exec = docker.create_exec(&id, opts).await.ok()?;
        let start = StartExecOptions {
            detach: true,
            ..Default::default()
        };
        docker.start_exec(&exec.id, Some(start)).await.ok()?;
        loop {
            let info = docker.inspect_exec(&exec.id).await.ok()?;
            if info.running != Some(true) {
                return Some(info.exit_code == Some(0));
            }
            tokio::time::sleep(EXEC_POLL).await;
        }
    }
}

/// A runtime handle per container (the supervisor wants `Arc<dyn Runtime>`).
pub(crate) struct Handle(pub Arc<DockerRuntime>);

impl Runtime for Handle {
    fn restart(&self) -> Option<RestartFuture> {
        Some(Arc::clone(&self.0).restart_once().boxed())
    }

    fn exec(&self, argv: &[String], timeout: Duration) -> BoxFuture<'static, bool> {
        let run = Arc::clone(&self.0).exec_once(argv.to_vec());
        async move {
            tokio::time::timeout(timeout, run)
                .await
                .ok()
                .flatten()
                .unwrap_or(false)
        }
        .boxed()
    }
}
