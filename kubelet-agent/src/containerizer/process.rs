//! The process containerizer: each container is a child process in its own process group.
//!
//! A container runs `argv` with the sandbox (or its `working_dir`, created if missing)
//! as working directory, its `env` plus `PORT<i>` and `PORT_<NAME>` for its ports, stdin
//! closed and stdout/stderr copied line by line into its CRI log file. Like a container
//! runtime tearing down a PID namespace, the whole process group is killed once the
//! container's main process exits. Images are recorded but not used.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt};
use futures::FutureExt;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};
use tokio::sync::mpsc;

use super::supervisor::{
    ContainerControl, Exit, Plan, Registry, RestartFuture, Runtime, Started, StopSignal,
};
use super::{
    ContainerSpec, ContainerState, Containerizer, ContainerizerError, TaskEvent, TaskSpec,
};
use crate::logs::{LogStream, LogWriter};

/// How long output is still drained after a container's process group was killed
/// (a descendant that left the group may hold the pipes open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs containers as local processes; see the module documentation.
pub struct ProcessContainerizer {
    registry: Registry,
}

impl ProcessContainerizer {
    /// A containerizer reporting task events on `events`.
    pub fn new(events: mpsc::UnboundedSender<TaskEvent>) -> Self {
        Self {
            registry: Registry::new(events),
        }
    }
}

/// The environment variables exposing a container's host ports.
fn port_env(spec: &ContainerSpec) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (i, port) in spec.ports.iter().enumerate() {
        env.push((format!("PORT{i}"), port.host_port.to_string()));
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let name = name.to_uppercase().replace('-', "_");
            env.push((format!("PORT_{name}"), port.host_port.to_string()));
        }
    }
    env
}

/// Sends signals to a container's process group.
struct Group(Pid);

impl Group {
    fn send(&self, signal: Signal) {
        if let Err(e) = killpg(self.0, signal) {
            tracing::debug!(pgid = self.0.as_raw(), %signal, error = %e, "killpg failed");
        }
    }
}

impl ContainerControl for Group {
    fn signal(&self, signal: StopSignal) {
        self.send(match signal {
            StopSignal::Term => Signal::SIGTERM,
            StopSignal::Kill => Signal::SIGKILL,
        });
    }
}

/// Kills the process group if the container's exit future is dropped before the end.
struct GroupGuard {
    group: Group,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.group.send(Signal::SIGKILL);
        }
    }
}

/// The lines of one output pipe.
fn lines<R>(pipe: Option<R>, stream: LogStream) -> BoxStream<'static, (LogStream, Vec<u8>)>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let Some(pipe) = pipe else {
        return stream::empty().boxed();
    };
    stream::unfold(BufReader::new(pipe), move |mut reader| async move {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => None,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                Some(((stream, line), reader))
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading container output failed");
                None
            }
        }
    })
    .boxed()
}

/// Copies stdout and stderr into the log file until both pipes are closed.
async fn copy_output(stdout: Option<ChildStdout>, stderr: Option<ChildStderr>, mut log: LogWriter) {
    let stdout = lines(stdout, LogStream::Stdout);
    let stderr = lines(stderr, LogStream::Stderr);
    let mut merged = stream::select(stdout, stderr);
    while let Some((stream, line)) = merged.next().await {
        if let Err(e) = log.write_line(stream, &line).await {
            tracing::warn!(path = %log.path().display(), error = %e, "writing log failed");
        }
    }
}

/// Waits for the main process, kills its group, drains the output.
///
/// The guard is armed before the future is first polled, so dropping the future at any
/// point (launch failure, abort) kills the group.
fn run(child: Child, pgid: Pid, log: LogWriter) -> impl Future<Output = Exit> + Send {
    let guard = GroupGuard {
        group: Group(pgid),
        armed: true,
    };
    wait_and_drain(child, guard, log)
}

async fn wait_and_drain(mut child: Child, mut guard: GroupGuard, log: LogWriter) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    let pgid = guard.group.0;
    let copy = copy_output(child.stdout.take(), child.stderr.take(), log);
    tokio::pin!(copy);
    let mut copied = false;
    let status = tokio::select! {
        status = child.wait() => status,
        () = &mut copy => {
            copied = true;
            child.wait().await
        }
    };
    guard.group.send(Signal::SIGKILL);
    guard.armed = false;
    if !copied && tokio::time::timeout(DRAIN_TIMEOUT, copy).await.is_err() {
        tracing::warn!(
            pgid = pgid.as_raw(),
            "container output still open after exit"
        );
    }
    match status {
        Ok(status) => Exit {
            code: status.code(),
            signal: status.signal(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "waiting for container failed");
            Exit::default()
        }
    }
}

/// The working directory of a container.
fn work_dir(sandbox: &Path, spec: &ContainerSpec) -> PathBuf {
    match &spec.working_dir {
        Some(dir) => sandbox.join(dir),
        None => sandbox.to_path_buf(),
    }
}

/// Restarts a container as a new process; runs exec probes with its environment and
/// working directory.
struct ProcessRuntime {
    task_id: String,
    sandbox: PathBuf,
    spec: ContainerSpec,
}

impl Runtime for ProcessRuntime {
    fn restart(&self) -> Option<RestartFuture> {
        let task_id = self.task_id.clone();
        let sandbox = self.sandbox.clone();
        let spec = self.spec.clone();
        Some(
            async move {
                spawn(&task_id, &sandbox, &spec)
                    .await
                    .map_err(|e| e.to_string())
            }
            .boxed(),
        )
    }

    fn exec(&self, argv: &[String], timeout: Duration) -> BoxFuture<'static, bool> {
        let Some((program, args)) = argv.split_first() else {
            return futures::future::ready(false).boxed();
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .envs(port_env(&self.spec))
            .current_dir(work_dir(&self.sandbox, &self.spec))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        async move {
            match tokio::time::timeout(timeout, command.status()).await {
                Ok(Ok(status)) => status.success(),
                _ => false,
            }
        }
        .boxed()
    }
}

/// Spawns one container of a task.
async fn spawn(
    task_id: &str,
    sandbox: &Path,
    spec: &ContainerSpec,
) -> Result<Started, ContainerizerError> {
    let spawn_err = |source: io::Error| ContainerizerError::Spawn {
        container: spec.name.clone(),
        source,
    };
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(spawn_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty argv",
        )));
    };
    let dir = work_dir(sandbox, spec);
    tokio::fs::create_dir_all(&dir).await.map_err(spawn_err)?;
    let (log, restart_count) = LogWriter::create(sandbox, &spec.name).await?;
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .envs(port_env(spec))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().map_err(spawn_err)?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| spawn_err(io::Error::other("spawned process has no pid")))?;
    let pgid = Pid::from_raw(pid);
    let state = ContainerState {
        running: true,
        started_at: Some(OffsetDateTime::now_utc()),
        restart_count,
        container_id: format!("process://{task_id}/{}/{restart_count}", spec.name),
        ..ContainerState::pending(&spec.name)
    };
    Ok(Started {
        state,
        control: Box::new(Group(pgid)),
        exit: run(child, pgid, log).boxed(),
    })
}

#[async_trait::async_trait]
impl Containerizer for ProcessContainerizer {
    async fn launch(&self, spec: TaskSpec) -> Result<(), ContainerizerError> {
        let reservation = self.registry.reserve(&spec.task_id)?;
        let mut started = Vec::with_capacity(spec.containers.len());
        let mut failure = tokio::fs::create_dir_all(&spec.sandbox)
            .await
            .err()
            .map(ContainerizerError::Io);
        for container in &spec.containers {
            if failure.is_some() {
                break;
            }
            match spawn(&spec.task_id, &spec.sandbox, container).await {
                Ok(s) => started.push(s),
                Err(e) => failure = Some(e),
            }
        }
        if let Some(e) = failure {
            // Dropping the exit futures kills the groups already started.
            drop(started);
            self.registry.release(reservation);
            return Err(e);
        }
        let plan = Plan::new(&spec, |c| {
            let runtime: Arc<dyn Runtime> = Arc::new(ProcessRuntime {
                task_id: spec.task_id.clone(),
                sandbox: spec.sandbox.clone(),
                spec: c.clone(),
            });
            Some(runtime)
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
    }
}
