//! Reliable status updates (Mesos' status update manager): per task, updates are queued in order,
//! checkpointed before they are sent, and the head of each queue is re-sent with exponential
//! backoff until the master forwards the framework's acknowledgement.

use serde_json::Value as Json;
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// (framework id, task id).
pub type TaskKey = (String, String);

/// Retry schedule: first retry after `initial`, doubling up to `max`.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// First retry interval.
    pub initial: Duration,
    /// Largest retry interval.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        // Mesos retries after 10 s, doubling to 10 min; a local cluster can afford to be quicker.
        Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Default)]
struct Queue {
    updates: VecDeque<Json>,
    next_retry: Option<(Instant, Duration)>,
}

/// Unacknowledged updates, by task. Pure: time is an argument.
#[derive(Debug, Default)]
pub struct StatusQueues {
    queues: BTreeMap<TaskKey, Queue>,
    backoff: Backoff,
}

fn uuid_of(update: &Json) -> Option<&str> {
    update.pointer("/status/uuid").and_then(Json::as_str)
}

impl StatusQueues {
    /// Empty queues with a retry schedule.
    pub fn new(backoff: Backoff) -> StatusQueues {
        StatusQueues {
            queues: BTreeMap::new(),
            backoff,
        }
    }

    /// Restores a task's queue from its checkpoint.
    pub fn restore(&mut self, key: TaskKey, updates: Vec<Json>) {
        if !updates.is_empty() {
            self.queues.insert(
                key,
                Queue {
                    updates: updates.into(),
                    next_retry: None,
                },
            );
        }
    }

    /// Appends an update; returns it when it is the head (to be sent now).
    pub fn push(&mut self, key: TaskKey, update: Json, now: Instant) -> Option<Json> {
        let q = self.queues.entry(key).or_default();
        q.updates.push_back(update);
        if q.updates.len() == 1 {
            q.next_retry = Some((now + self.backoff.initial, self.backoff.initial));
            return q.updates.front().cloned();
        }
        None
    }

    /// The master acknowledged `uuid`: drops the head if it matches and returns the next update to
    /// send, if any. Acks for anything but the head are stale duplicates and ignored.
    pub fn ack(&mut self, key: &TaskKey, uuid: &str, now: Instant) -> Option<Json> {
        let q = self.queues.get_mut(key)?;
        if q.updates.front().and_then(uuid_of) != Some(uuid) {
            return None;
        }
        q.updates.pop_front();
        if q.updates.is_empty() {
            self.queues.remove(key);
            return None;
        }
        q.next_retry = Some((now + self.backoff.initial, self.backoff.initial));
        q.updates.front().cloned()
    }

    /// Heads whose retry time has come; their next retry is pushed back (doubling).
    pub fn due(&mut self, now: Instant) -> Vec<Json> {
        let max = self.backoff.max;
        let mut out = Vec::new();
        for q in self.queues.values_mut() {
            match q.next_retry {
                Some((at, interval)) if at <= now => {
                    let next = (interval * 2).min(max);
                    q.next_retry = Some((now + next, next));
                    out.extend(q.updates.front().cloned());
                }
                None => {
                    q.next_retry = Some((now + self.backoff.initial, self.backoff.initial));
                    out.extend(q.updates.front().cloned());
                }
                _ => {}
            }
        }
        out
    }

    /// Every head, e.g. to send at once after (re)subscribing.
    pub fn heads(&mut self, now: Instant) -> Vec<Json> {
        let initial = self.backoff.initial;
        self.queues
            .values_mut()
            .filter_map(|q| {
                q.next_retry = Some((now + initial, initial));
                q.updates.front().cloned()
            })
            .collect()
    }

    /// The queued updates of a task (for its checkpoint).
    pub fn pending(&self, key: &TaskKey) -> Vec<Json> {
        self.queues
            .get(key)
            .map(|q| q.updates.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// True when nothing is waiting for the task.
    pub fn is_idle(&self, key: &TaskKey) -> bool {
        !self.queues.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upd(uuid: &str) -> Json {
        json!({"framework_id": {"value": "f"}, "status": {"uuid": uuid}})
    }

    #[test]
    fn in_order_one_at_a_time_with_backoff() {
        let t0 = Instant::now();
        let key = ("f".to_string(), "t".to_string());
        let mut q = StatusQueues::new(Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
        });
        assert_eq!(q.push(key.clone(), upd("a"), t0), Some(upd("a")));
        assert_eq!(q.push(key.clone(), upd("b"), t0), None);
        assert!(q.due(t0).is_empty());
        assert_eq!(q.due(t0 + Duration::from_secs(1)), vec![upd("a")]);
        // Next retry doubles: not due 1 s later, due 2 s later.
        assert!(q.due(t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(q.due(t0 + Duration::from_secs(3)), vec![upd("a")]);
        // A stale ack changes nothing; the head's ack releases the next update.
        assert_eq!(q.ack(&key, "b", t0), None);
        assert_eq!(q.ack(&key, "a", t0), Some(upd("b")));
        assert_eq!(q.pending(&key), vec![upd("b")]);
        assert_eq!(q.ack(&key, "b", t0), None);
        assert!(q.is_idle(&key));
    }

    #[test]
    fn restored_queues_resend_their_heads() {
        let t0 = Instant::now();
        let key = ("f".to_string(), "t".to_string());
        let mut q = StatusQueues::new(Backoff::default());
        q.restore(key.clone(), vec![upd("a"), upd("b")]);
        assert_eq!(q.heads(t0), vec![upd("a")]);
    }
}
