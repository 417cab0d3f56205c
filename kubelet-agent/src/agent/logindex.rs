//! Where each task's logs are, for the agent's HTTP endpoint: task key and, for pods, the
//! `(namespace, pod, container)` of its `kumos.io/*` TaskInfo labels → sandbox, log directory
//! name and a `done` watch flipped once the task is terminal (ending `follow` streams).
//!
//! The daemon updates the index on launch and on terminal states; the HTTP handlers read it.
//! A std mutex guards it and is never held across an `.await`. Finished tasks stay readable
//! (their sandboxes stay on disk), the oldest forgotten beyond [`FINISHED_KEPT`].

use super::status::TaskKey;
use serde_json::Value as Json;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::watch;

/// Finished tasks whose logs stay reachable through the index.
pub const FINISHED_KEPT: usize = 1024;

/// The container name every task's logs are written under (the agent runs one container per
/// task, see [`super::launch::task_spec`]).
pub const TASK_CONTAINER: &str = "main";

/// A pod container, as named by the `kumos.io/*` TaskInfo labels.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodContainer {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
}

/// What a log reader needs for one task.
#[derive(Clone, Debug)]
pub struct LogTarget {
    /// The task's sandbox.
    pub sandbox: PathBuf,
    /// The container name of its log directory.
    pub container: String,
    /// The pod's uid (`kumos.io/pod-uid`), for pod tasks.
    pub pod_uid: Option<String>,
    /// `true` once the task is terminal.
    pub done: watch::Receiver<bool>,
}

struct Entry {
    sandbox: PathBuf,
    pod: Option<(PodContainer, String)>,
    done: watch::Sender<bool>,
}

impl Entry {
    fn target(&self) -> LogTarget {
        LogTarget {
            sandbox: self.sandbox.clone(),
            container: TASK_CONTAINER.to_string(),
            pod_uid: self.pod.as_ref().map(|(_, uid)| uid.clone()),
            done: self.done.subscribe(),
        }
    }
}

#[derive(Default)]
struct Inner {
    tasks: HashMap<TaskKey, Entry>,
    pods: HashMap<PodContainer, TaskKey>,
    finished: VecDeque<TaskKey>,
}

/// The shared index; cheap to clone.
#[derive(Clone, Default)]
pub struct LogIndex {
    inner: Arc<Mutex<Inner>>,
}

fn label<'a>(info: &'a Json, key: &str) -> Option<&'a str> {
    info.pointer("/labels/labels")?
        .as_array()?
        .iter()
        .find(|l| l.get("key").and_then(Json::as_str) == Some(key))?
        .get("value")?
        .as_str()
}

/// The pod container and pod uid a `TaskInfo` runs, from its labels.
pub fn pod_of(info: &Json) -> Option<(PodContainer, String)> {
    let pc = PodContainer {
        namespace: label(info, "kumos.io/pod-namespace")?.to_string(),
        pod: label(info, "kumos.io/pod-name")?.to_string(),
        container: label(info, "kumos.io/container")?.to_string(),
    };
    Some((
        pc,
        label(info, "kumos.io/pod-uid")
            .unwrap_or_default()
            .to_string(),
    ))
}

impl LogIndex {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a task (replacing an earlier run of the same key, whose followers end).
    pub fn insert(&self, key: &TaskKey, sandbox: PathBuf, info: &Json, done: bool) {
        let pod = pod_of(info);
        let mut inner = self.lock();
        if let Some(pc) = pod.as_ref().map(|(pc, _)| pc.clone()) {
            inner.pods.insert(pc, key.clone());
        }
        let entry = Entry {
            sandbox,
            pod,
            done: watch::channel(done).0,
        };
        if let Some(old) = inner.tasks.insert(key.clone(), entry) {
            old.done.send_replace(true);
        }
        if done {
            Self::retire(&mut inner, key);
        }
    }

    /// The task is terminal: its followers drain and end.
    pub fn finish(&self, key: &TaskKey) {
        let mut inner = self.lock();
        let Some(entry) = inner.tasks.get(key) else {
            return;
        };
        if !entry.done.send_replace(true) {
            Self::retire(&mut inner, key);
        }
    }

    /// Every task is done (the agent is stopping).
    pub fn finish_all(&self) {
        for entry in self.lock().tasks.values() {
            entry.done.send_replace(true);
        }
    }

    fn retire(inner: &mut Inner, key: &TaskKey) {
        inner.finished.retain(|k| k != key);
        inner.finished.push_back(key.clone());
        while inner.finished.len() > FINISHED_KEPT {
            let Some(old) = inner.finished.pop_front() else {
                break;
            };
            // A key relaunched since it finished is live again: keep it.
            if inner.tasks.get(&old).is_some_and(|e| !*e.done.borrow()) {
                continue;
            }
            if let Some(entry) = inner.tasks.remove(&old) {
                if let Some((pc, _)) = entry.pod {
                    if inner.pods.get(&pc) == Some(&old) {
                        inner.pods.remove(&pc);
                    }
                }
            }
        }
    }

    /// The logs of a pod's container.
    pub fn pod(&self, pc: &PodContainer) -> Option<LogTarget> {
        let inner = self.lock();
        let key = inner.pods.get(pc)?;
        inner.tasks.get(key).map(Entry::target)
    }

    /// The logs of a task.
    pub fn task(&self, key: &TaskKey) -> Option<LogTarget> {
        self.lock().tasks.get(key).map(Entry::target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(ns: &str, pod: &str, c: &str) -> Json {
        json!({"labels": {"labels": [
            {"key": "kumos.io/pod-uid", "value": "u1"},
            {"key": "kumos.io/pod-namespace", "value": ns},
            {"key": "kumos.io/pod-name", "value": pod},
            {"key": "kumos.io/container", "value": c},
        ]}})
    }

    fn pc(ns: &str, pod: &str, c: &str) -> PodContainer {
        PodContainer {
            namespace: ns.into(),
            pod: pod.into(),
            container: c.into(),
        }
    }

    #[test]
    fn pods_and_tasks_are_found_and_finish() {
        let index = LogIndex::default();
        let key = ("fw".to_string(), "u1.app".to_string());
        index.insert(&key, "/sb".into(), &info("ns", "p", "app"), false);
        let t = index.pod(&pc("ns", "p", "app")).expect("pod entry");
        assert_eq!(t.sandbox, PathBuf::from("/sb"));
        assert_eq!(t.pod_uid.as_deref(), Some("u1"));
        assert!(!*t.done.borrow());
        assert!(index.pod(&pc("ns", "p", "other")).is_none());
        index.finish(&key);
        assert!(*t.done.borrow());
        assert!(*index.task(&key).expect("task entry").done.borrow());
    }

    #[test]
    fn finished_tasks_are_bounded() {
        let index = LogIndex::default();
        for i in 0..=FINISHED_KEPT {
            let key = ("fw".to_string(), format!("t{i}"));
            index.insert(&key, "/sb".into(), &json!({}), true);
        }
        assert!(index.task(&("fw".into(), "t0".into())).is_none());
        assert!(index.task(&("fw".into(), "t1".into())).is_some());
    }
}
