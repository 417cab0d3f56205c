//! The recorder's decisions, free of I/O: event names, the Event object, and aggregation of repeats.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::EventType;

/// How long after its last occurrence a repeated event is folded into the existing Event.
pub const AGGREGATION_WINDOW_SECS: i64 = 600;

/// How many recent events the cache remembers.
pub const CACHE_CAPACITY: usize = 4096;

/// Events with the same key are the same event repeated: same object, reason, message and type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventKey {
    uid: String,
    kind: String,
    namespace: String,
    name: String,
    reason: String,
    message: String,
    type_: EventType,
}

impl EventKey {
    /// The key of one occurrence.
    pub fn new(obj: &ObjectReference, type_: EventType, reason: &str, message: &str) -> EventKey {
        EventKey {
            uid: obj.uid.clone().unwrap_or_default(),
            kind: obj.kind.clone().unwrap_or_default(),
            namespace: obj.namespace.clone().unwrap_or_default(),
            name: obj.name.clone().unwrap_or_default(),
            reason: reason.to_string(),
            message: message.to_string(),
            type_,
        }
    }
}

/// What to write for one occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new Event named `name` in `namespace`, with count 1.
    Create {
        /// Namespace of the Event.
        namespace: String,
        /// Name of the Event.
        name: String,
    },
    /// Raise the existing Event's count to `count` and its lastTimestamp to now.
    Patch {
        /// Namespace of the Event.
        namespace: String,
        /// Name of the Event.
        name: String,
        /// The new count.
        count: i32,
    },
}

#[derive(Debug, Clone)]
struct Recent {
    namespace: String,
    name: String,
    count: i32,
    last_seen: Timestamp,
}

/// Recent events by key, bounded in size and age.
#[derive(Debug)]
pub struct EventCache {
    window_secs: i64,
    capacity: usize,
    recent: HashMap<EventKey, Recent>,
}

impl Default for EventCache {
    fn default() -> Self {
        EventCache::new(AGGREGATION_WINDOW_SECS, CACHE_CAPACITY)
    }
}

impl EventCache {
    /// A cache folding repeats less than `window_secs` apart, remembering at most `capacity` events.
    pub fn new(window_secs: i64, capacity: usize) -> EventCache {
        EventCache {
            window_secs,
            capacity: capacity.max(1),
            recent: HashMap::new(),
        }
    }

    /// Decides how to write an occurrence of `key` at `now`, and remembers it.
    pub fn decide(&mut self, key: &EventKey, obj: &ObjectReference, now: Timestamp) -> Decision {
        if let Some(r) = self.recent.get_mut(key) {
            if now.as_second() - r.last_seen.as_second() < self.window_secs {
                r.count = r.count.saturating_add(1);
                r.last_seen = now;
                return Decision::Patch {
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    count: r.count,
                };
            }
        }
        self.make_room(now);
        let namespace = event_namespace(obj);
        let name = event_name(obj.name.as_deref().unwrap_or_default(), now);
        self.recent.insert(
            key.clone(),
            Recent {
                namespace: namespace.clone(),
                name: name.clone(),
                count: 1,
                last_seen: now,
            },
        );
        Decision::Create { namespace, name }
    }

    /// Forgets `key` (its Event could not be written or is gone), so the next occurrence creates one.
    pub fn forget(&mut self, key: &EventKey) {
        self.recent.remove(key);
    }

    /// How many events are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.recent.len()
    }

    /// Whether nothing is remembered.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    /// Drops expired entries; when still full, the least recently seen one.
    fn make_room(&mut self, now: Timestamp) {
        if self.recent.len() < self.capacity {
            return;
        }
        let window = self.window_secs;
        self.recent
            .retain(|_, r| now.as_second() - r.last_seen.as_second() < window);
        while self.recent.len() >= self.capacity {
            let oldest = self
                .recent
                .iter()
                .min_by_key(|(_, r)| r.last_seen)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.recent.remove(&k),
                None => break,
            };
        }
    }
}

/// The namespace an event about `obj` lives in: the object's, or `default` for cluster-scoped objects.
pub fn event_namespace(obj: &ObjectReference) -> String {
    match obj.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => ns.to_string(),
        _ => "default".to_string(),
    }
}

/// `<object-name>.<hex nanoseconds>`, as client-go names events.
pub fn event_name(object_name: &str, now: Timestamp) -> String {
    format!("{object_name}.{:x}", now.as_nanosecond().max(0))
}

/// The first occurrence's Event.
pub fn new_event(
    obj: &ObjectReference,
    type_: EventType,
    reason: &str,
    message: &str,
    component: &str,
    decision_name: (&str, &str),
    now: Timestamp,
) -> Event {
    let (namespace, name) = decision_name;
    Event {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        involved_object: obj.clone(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        type_: Some(type_.as_str().to_string()),
        source: Some(EventSource {
            component: Some(component.to_string()),
            host: None,
        }),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        reporting_component: Some(component.to_string()),
        ..Event::default()
    }
}

/// The merge patch of a repeat: the new count and lastTimestamp.
pub fn repeat_patch(count: i32, now: Timestamp) -> serde_json::Value {
    serde_json::json!({ "count": count, "lastTimestamp": Time(now) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some("web-1".into()),
            namespace: Some("ns1".into()),
            uid: Some(uid.into()),
            ..ObjectReference::default()
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).expect("valid timestamp")
    }

    #[test]
    fn names_like_client_go() {
        let t = Timestamp::from_nanosecond(0x17f_0000_0001).expect("valid");
        assert_eq!(event_name("web-1", t), "web-1.17f00000001");
    }

    #[test]
    fn repeats_within_the_window_patch_the_first_event() {
        let mut cache = EventCache::default();
        let obj = pod("u1");
        let key = EventKey::new(&obj, EventType::Normal, "Started", "started it");
        let first = cache.decide(&key, &obj, at(0));
        let Decision::Create { namespace, name } = first else {
            panic!("first occurrence must create: {first:?}");
        };
        assert_eq!(namespace, "ns1");
        assert!(name.starts_with("web-1."));
        assert_eq!(
            cache.decide(&key, &obj, at(300)),
            Decision::Patch {
                namespace: "ns1".into(),
                name: name.clone(),
                count: 2
            }
        );
        // The window slides with the last occurrence.
        assert_eq!(
            cache.decide(&key, &obj, at(850)),
            Decision::Patch {
                namespace: "ns1".into(),
                name,
                count: 3
            }
        );
        assert!(matches!(
            cache.decide(&key, &obj, at(850 + 600)),
            Decision::Create { .. }
        ));
    }

    #[test]
    fn different_reason_message_type_or_object_are_different_events() {
        let mut cache = EventCache::default();
        let obj = pod("u1");
        let base = EventKey::new(&obj, EventType::Normal, "R", "m");
        assert!(matches!(
            cache.decide(&base, &obj, at(0)),
            Decision::Create { .. }
        ));
        for key in [
            EventKey::new(&obj, EventType::Warning, "R", "m"),
            EventKey::new(&obj, EventType::Normal, "R2", "m"),
            EventKey::new(&obj, EventType::Normal, "R", "m2"),
            EventKey::new(&pod("u2"), EventType::Normal, "R", "m"),
        ] {
            assert!(matches!(
                cache.decide(&key, &obj, at(1)),
                Decision::Create { .. }
            ));
        }
        assert_eq!(cache.len(), 5);
    }

    #[test]
    fn forget_makes_the_next_occurrence_create() {
        let mut cache = EventCache::default();
        let obj = pod("u1");
        let key = EventKey::new(&obj, EventType::Normal, "R", "m");
        cache.decide(&key, &obj, at(0));
        cache.forget(&key);
        assert!(cache.is_empty());
        assert!(matches!(
            cache.decide(&key, &obj, at(1)),
            Decision::Create { .. }
        ));
    }

    #[test]
    fn capacity_evicts_the_oldest() {
        let mut cache = EventCache::new(600, 2);
        let obj = pod("u1");
        let keys: Vec<EventKey> = (0..3)
            .map(|i| EventKey::new(&obj, EventType::Normal, &format!("R{i}"), "m"))
            .collect();
        for (i, k) in keys.iter().enumerate() {
            cache.decide(k, &obj, at(i as i64));
        }
        assert_eq!(cache.len(), 2);
        assert!(matches!(
            cache.decide(&keys[0], &obj, at(4)),
            Decision::Create { .. }
        ));
        assert!(matches!(
            cache.decide(&keys[2], &obj, at(5)),
            Decision::Patch { count: 2, .. }
        ));
    }

    #[test]
    fn cluster_scoped_objects_get_events_in_default() {
        let node = ObjectReference {
            kind: Some("Node".into()),
            name: Some("agent-0".into()),
            ..ObjectReference::default()
        };
        assert_eq!(event_namespace(&node), "default");
        let ev = new_event(
            &node,
            EventType::Warning,
            "NodeNotReady",
            "gone",
            "node-controller",
            ("default", "agent-0.1"),
            at(0),
        );
        assert_eq!(ev.type_.as_deref(), Some("Warning"));
        assert_eq!(ev.count, Some(1));
        assert_eq!(ev.first_timestamp, ev.last_timestamp);
        assert_eq!(
            ev.source.and_then(|s| s.component).as_deref(),
            Some("node-controller")
        );
        assert_eq!(ev.metadata.namespace.as_deref(), Some("default"));
    }

    #[test]
    fn repeat_patch_sets_count_and_time() {
        let p = repeat_patch(3, at(0));
        assert_eq!(p["count"], 3);
        assert_eq!(p["lastTimestamp"], "2023-11-14T22:13:20Z");
    }
}
