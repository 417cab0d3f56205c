//! The agent's checkpoint in its work directory: its id, and per task the task record and the
//! unacknowledged status updates, each written atomically (temp file + rename).

use super::status::TaskKey;
use super::AgentError;
use offer_scheduler::master::TaskState;
use serde_json::{json, Value as Json};
use std::path::{Path, PathBuf};

/// A task the agent was asked to run.
#[derive(Clone, Debug)]
pub struct TaskRecord {
    /// Framework id.
    pub framework_id: String,
    /// Task id.
    pub task_id: String,
    /// The `TaskInfo`.
    pub info: Json,
    /// The framework's `FrameworkInfo` (capabilities decide LOST vs GONE).
    pub framework_info: Json,
    /// Allocation role.
    pub role: String,
    /// Latest state (`TASK_*`).
    pub state: String,
    /// Executor id of a task group.
    pub executor_id: Option<String>,
}

impl TaskRecord {
    /// True once the task reached a terminal state.
    pub fn is_terminal(&self) -> bool {
        TaskState::parse(&self.state).is_some_and(TaskState::is_terminal)
    }

    /// The framework is `PARTITION_AWARE`.
    pub fn partition_aware(&self) -> bool {
        self.framework_info
            .get("capabilities")
            .and_then(Json::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.get("type").and_then(Json::as_str) == Some("PARTITION_AWARE"))
            })
    }

    fn to_json(&self) -> Json {
        json!({
            "framework_id": self.framework_id,
            "task_id": self.task_id,
            "info": self.info,
            "framework_info": self.framework_info,
            "role": self.role,
            "state": self.state,
            "executor_id": self.executor_id,
        })
    }

    fn from_json(j: &Json) -> Option<TaskRecord> {
        Some(TaskRecord {
            framework_id: j.get("framework_id")?.as_str()?.to_string(),
            task_id: j.get("task_id")?.as_str()?.to_string(),
            info: j.get("info").cloned().unwrap_or(Json::Null),
            framework_info: j.get("framework_info").cloned().unwrap_or(Json::Null),
            role: j
                .get("role")
                .and_then(Json::as_str)
                .unwrap_or("*")
                .to_string(),
            state: j
                .get("state")
                .and_then(Json::as_str)
                .unwrap_or("TASK_STAGING")
                .to_string(),
            executor_id: j
                .get("executor_id")
                .and_then(Json::as_str)
                .map(str::to_string),
        })
    }
}

/// What a checkpoint holds: the agent id, and each task with its unacknowledged updates.
pub type Recovered = (Option<String>, Vec<(TaskRecord, Vec<Json>)>);

/// Paths and atomic writes under the work directory.
pub struct Checkpoint {
    dir: PathBuf,
}

fn seg(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> AgentError + '_ {
    move |source| AgentError::Checkpoint {
        path: path.to_path_buf(),
        source,
    }
}

fn write_atomic(path: &Path, value: &Json) -> Result<(), AgentError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, value.to_string()).map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

impl Checkpoint {
    /// A checkpoint rooted at the work directory.
    pub fn new(dir: PathBuf) -> Checkpoint {
        Checkpoint { dir }
    }

    fn task_dir(&self, key: &TaskKey) -> PathBuf {
        self.dir.join("tasks").join(seg(&key.0)).join(seg(&key.1))
    }

    /// The task's sandbox (its logs live there).
    pub fn sandbox(&self, key: &TaskKey) -> PathBuf {
        self.task_dir(key).join("sandbox")
    }

    /// The agent id and every checkpointed task with its pending updates.
    pub fn load(&self) -> Result<Recovered, AgentError> {
        let agent_path = self.dir.join("agent.json");
        let agent_id = std::fs::read(&agent_path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
            .and_then(|j| j.get("agent_id")?.as_str().map(str::to_string));
        let mut out = Vec::new();
        let tasks = self.dir.join("tasks");
        let Ok(frameworks) = std::fs::read_dir(&tasks) else {
            return Ok((agent_id, out));
        };
        for fw in frameworks.flatten() {
            let Ok(entries) = std::fs::read_dir(fw.path()) else {
                continue;
            };
            for t in entries.flatten() {
                let read = |name: &str| {
                    std::fs::read(t.path().join(name))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
                };
                let Some(rec) = read("task.json").as_ref().and_then(TaskRecord::from_json) else {
                    continue;
                };
                let pending = read("updates.json")
                    .and_then(|u| u.as_array().cloned())
                    .unwrap_or_default();
                out.push((rec, pending));
            }
        }
        Ok((agent_id, out))
    }

    /// Writes the agent id.
    pub fn save_agent_id(&self, id: &str) -> Result<(), AgentError> {
        write_atomic(&self.dir.join("agent.json"), &json!({ "agent_id": id }))
    }

    /// Writes a task's record and its pending updates.
    pub fn save_task(&self, rec: &TaskRecord, pending: &[Json]) -> Result<(), AgentError> {
        let dir = self.task_dir(&(rec.framework_id.clone(), rec.task_id.clone()));
        write_atomic(&dir.join("updates.json"), &Json::Array(pending.to_vec()))?;
        write_atomic(&dir.join("task.json"), &rec.to_json())
    }

    /// Forgets a finished task (its sandbox, with the logs, stays).
    pub fn forget(&self, key: &TaskKey) -> Result<(), AgentError> {
        for name in ["task.json", "updates.json"] {
            let p = self.task_dir(key).join(name);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&p)(e)),
            }
        }
        Ok(())
    }
}
