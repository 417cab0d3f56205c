//! Test harness for the containerizer contract: one containerizer, its event channel,
//! a temporary directory for sandboxes, and a checker of every task's event sequence.

// Each test binary uses a different subset of the harness.
#![allow(dead_code)]

pub mod dockerd;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use kubelet_agent::containerizer::{
    ContainerSpec, Containerizer, DockerConfig, DockerContainerizer, ProcessContainerizer,
    SimulatedConfig, SimulatedContainerizer, TaskEvent, TaskPhase, TaskSpec,
};
use kubelet_agent::logs::{read_logs, LogOptions};
use tokio::sync::{mpsc, watch};

/// Failure guard for anything awaited in a test: never a timing assertion.
pub const GUARD: Duration = Duration::from_secs(30);

/// Awaits `fut`, failing the test if it takes longer than [`GUARD`].
pub async fn guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A container running `sh -c SCRIPT`.
pub fn sh(name: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        argv: ["sh", "-c", script].map(String::from).to_vec(),
        cpus: 0.1,
        mem_mb: 32.0,
        ..ContainerSpec::default()
    }
}

/// One containerizer under test.
pub struct Harness {
    pub cz: Box<dyn Containerizer>,
    events: mpsc::UnboundedReceiver<TaskEvent>,
    dir: tempfile::TempDir,
    phases: HashMap<String, Vec<TaskPhase>>,
    /// For a Docker containerizer: its agent id (unique per harness).
    agent_id: Option<String>,
}

impl Harness {
    fn new(cz: Box<dyn Containerizer>, events: mpsc::UnboundedReceiver<TaskEvent>) -> Self {
        Self {
            cz,
            events,
            dir: tempfile::tempdir().expect("tempdir"),
            phases: HashMap::new(),
            agent_id: None,
        }
    }

    fn with(is_process: bool, config: SimulatedConfig) -> Self {
        let (tx, events) = mpsc::unbounded_channel();
        let cz: Box<dyn Containerizer> = if is_process {
            Box::new(ProcessContainerizer::new(tx))
        } else {
            Box::new(SimulatedContainerizer::new(tx, config))
        };
        Self::new(cz, events)
    }

    /// A process containerizer.
    pub fn process() -> Self {
        Self::with(true, SimulatedConfig::default())
    }

    /// A Docker containerizer on the test dockerd (started on first use), with an agent
    /// id of its own; containers without an image run [`dockerd::IMAGE`].
    pub async fn docker() -> Self {
        let agent_id = format!("test-{}", uuid::Uuid::new_v4());
        let (cz, events) = docker_containerizer(&agent_id).await;
        Self {
            agent_id: Some(agent_id),
            ..Self::new(cz, events)
        }
    }

    /// The Docker agent id of this harness; panics for other containerizers.
    pub fn agent_id(&self) -> &str {
        self.agent_id.as_deref().expect("a Docker harness")
    }

    /// Simulates an agent restart: drops the Docker containerizer without shutting it
    /// down (its containers keep running), builds a new one with the same agent id and
    /// returns what its `recover()` adopted. Adopted tasks start their event sequence anew.
    pub async fn restart_docker(&mut self) -> Vec<String> {
        let agent_id = self.agent_id().to_owned();
        let (cz, events) = docker_containerizer(&agent_id).await;
        self.cz = cz;
        self.events = events;
        self.phases.clear();
        let adopted = guard("recover", self.cz.recover()).await.expect("recover");
        for task in &adopted {
            self.phases.insert(task.clone(), Vec::new());
        }
        adopted
    }

    /// A simulated containerizer with a short start delay and no lifetime.
    pub fn simulated() -> Self {
        Self::simulated_with(SimulatedConfig {
            start_delay: Duration::from_millis(20),
            lifetime: None,
        })
    }

    /// A simulated containerizer with this configuration.
    pub fn simulated_with(config: SimulatedConfig) -> Self {
        Self::with(false, config)
    }

    /// The sandbox of a task.
    pub fn sandbox(&self, task_id: &str) -> PathBuf {
        self.dir.path().join(task_id)
    }

    /// A task with its own sandbox (for Docker, containers default to the test image).
    pub fn task(&self, task_id: &str, mut containers: Vec<ContainerSpec>) -> TaskSpec {
        if self.agent_id.is_some() {
            for c in containers.iter_mut().filter(|c| c.image.is_none()) {
                c.image = Some(dockerd::IMAGE.to_owned());
            }
        }
        TaskSpec {
            task_id: task_id.to_owned(),
            containers,
            sandbox: self.sandbox(task_id),
            ..TaskSpec::default()
        }
    }

    /// Launches a task, which must succeed.
    pub async fn launch(&self, spec: TaskSpec) {
        let id = spec.task_id.clone();
        guard("launch", self.cz.launch(spec))
            .await
            .unwrap_or_else(|e| panic!("launch {id}: {e}"));
    }

    /// Checks that an event continues its task's sequence: Starting? Running* terminal
    /// (further `Running` events report restarts and readiness changes).
    fn check(&mut self, event: &TaskEvent) {
        let seen = self.phases.entry(event.task_id.clone()).or_default();
        assert!(
            !seen.iter().any(|p| p.is_terminal()),
            "event after terminal: {event:?} (seen {seen:?})"
        );
        let ok = match event.phase {
            TaskPhase::Starting => seen.is_empty(),
            TaskPhase::Running => true,
            _ => true,
        };
        assert!(ok, "unexpected {event:?} after {seen:?}");
        seen.push(event.phase);
    }

    /// The next event of any task.
    pub async fn next_event(&mut self) -> TaskEvent {
        let event = guard("an event", self.events.recv())
            .await
            .expect("event channel closed");
        self.check(&event);
        event
    }

    /// Events of `task_id` until one with `phase` (which is returned).
    pub async fn wait_phase(&mut self, task_id: &str, phase: TaskPhase) -> TaskEvent {
        loop {
            let event = self.next_event().await;
            if event.task_id != task_id {
                continue;
            }
            if event.phase == phase {
                return event;
            }
            assert!(
                !event.phase.is_terminal(),
                "waiting for {phase:?}, got {event:?}"
            );
        }
    }

    /// Events of `task_id` until its terminal one.
    pub async fn wait_terminal(&mut self, task_id: &str) -> TaskEvent {
        loop {
            let event = self.next_event().await;
            if event.task_id == task_id && event.phase.is_terminal() {
                return event;
            }
        }
    }

    /// The whole current log of a container of a task.
    pub async fn log(&self, task_id: &str, container: &str, opts: LogOptions) -> String {
        let (_tx, done) = watch::channel(true);
        let stream = read_logs(&self.sandbox(task_id), container, opts, done)
            .await
            .expect("read_logs");
        let chunks: Vec<_> = guard("log stream", stream.collect()).await;
        let mut text = String::new();
        for chunk in chunks {
            text.push_str(&String::from_utf8_lossy(&chunk.expect("log chunk")));
        }
        text
    }

    /// Waits until a container's log contains `needle`.
    pub async fn wait_log(&self, task_id: &str, container: &str, needle: &str) {
        guard(needle, async {
            loop {
                let path = kubelet_agent::logs::log_dir(&self.sandbox(task_id), container);
                if path.exists()
                    && self
                        .log(task_id, container, LogOptions::default())
                        .await
                        .contains(needle)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Shuts down, then checks every launched task got exactly one terminal event and
    /// no process is left running in a sandbox.
    pub async fn finish(mut self) {
        guard("shutdown", self.cz.shutdown()).await;
        self.wait_no_process().await;
        assert!(
            self.cz.tasks().await.is_empty(),
            "tasks left after shutdown"
        );
        while let Ok(event) = self.events.try_recv() {
            self.check(&event);
        }
        if let Some(agent_id) = &self.agent_id {
            let left = dockerd::containers(agent_id).await;
            assert!(left.is_empty(), "containers left after shutdown: {left:?}");
        }
        for (task, phases) in &self.phases {
            let terminal = phases.iter().filter(|p| p.is_terminal()).count();
            assert_eq!(terminal, 1, "task {task}: {phases:?}");
        }
    }
}

/// A Docker containerizer on the test dockerd and its event receiver.
async fn docker_containerizer(
    agent_id: &str,
) -> (Box<dyn Containerizer>, mpsc::UnboundedReceiver<TaskEvent>) {
    let (tx, events) = mpsc::unbounded_channel();
    let config = DockerConfig::new(dockerd::socket(), agent_id);
    let cz = guard("docker connect", DockerContainerizer::new(tx, config))
        .await
        .expect("connect to the test dockerd");
    (Box::new(cz), events)
}

/// Processes (not zombies) whose working directory is under `dir`.
pub fn processes_under(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(dir)))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

impl Harness {
    /// Waits until no process runs with its working directory in this harness's sandboxes.
    pub async fn wait_no_process(&self) {
        let dir = std::fs::canonicalize(self.dir.path()).expect("tempdir");
        guard("sandbox processes to exit", async {
            while !processes_under(&dir).is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}
