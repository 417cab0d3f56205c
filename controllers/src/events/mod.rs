//! The event recorder every controller uses: core/v1 Events about objects, with repeats of the same
//! event folded into one Event whose `count` rises (what `kubectl describe` lists under Events).

mod logic;

pub use logic::{event_name, AGGREGATION_WINDOW_SECS};

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource};

use logic::{Decision, EventCache, EventKey};

/// The `type` of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something needs attention.
    Warning,
}

impl EventType {
    /// The API spelling: `Normal` or `Warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// An event could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The API server refused or could not be reached.
    #[error("writing event {namespace}/{name}: {source}")]
    Write {
        /// Namespace of the Event.
        namespace: String,
        /// Name of the Event.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

/// Writes events for one component (`endpoint-controller`). Cheap to clone; clones share the cache of
/// recent events, so repeats recorded through any clone aggregate.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    cache: Arc<Mutex<EventCache>>,
}

impl Recorder {
    /// A recorder writing through `client` with `source.component` and `reportingComponent` set to
    /// `component`.
    pub fn new(client: Client, component: &str) -> Recorder {
        Recorder {
            client,
            component: component.to_string(),
            cache: Arc::new(Mutex::new(EventCache::default())),
        }
    }

    /// The component events are reported as.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// Records that `reason`/`message` happened to `obj`, best effort: a failure is logged, never
    /// returned (a controller must not stop over an event). See [`Recorder::try_record`].
    pub async fn record(
        &self,
        obj: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        if let Err(e) = self.try_record(obj, type_, reason, message).await {
            tracing::warn!(component = %self.component, error = %e, "recording event");
        }
    }

    /// Records that `reason`/`message` happened to `obj`. The first occurrence creates an Event named
    /// `<object-name>.<hex timestamp>`; a repeat (same object uid, reason, message and type) within
    /// [`AGGREGATION_WINDOW_SECS`] of the previous one raises that Event's `count` and `lastTimestamp`.
    pub async fn try_record(
        &self,
        obj: &ObjectReference,
        type_: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), RecordError> {
        let key = EventKey::new(obj, type_, reason, message);
        let now = Timestamp::now();
        let decision = self.with_cache(|c| c.decide(&key, obj, now));
        let new_event = |namespace: &str, name: &str| {
            logic::new_event(
                obj,
                type_,
                reason,
                message,
                &self.component,
                (namespace, name),
                now,
            )
        };
        let result = match decision {
            Decision::Create { namespace, name } => {
                self.create(&namespace, &name, new_event(&namespace, &name))
                    .await
            }
            Decision::Patch {
                namespace,
                name,
                count,
            } => {
                let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
                let patch = Patch::Merge(logic::repeat_patch(count, now));
                match api.patch(&name, &PatchParams::default(), &patch).await {
                    Ok(_) => Ok(()),
                    Err(e) if is_not_found(&e) => {
                        // The Event expired or was deleted: start a new one.
                        self.with_cache(|c| c.forget(&key));
                        let fresh = self.with_cache(|c| c.decide(&key, obj, now));
                        match fresh {
                            Decision::Create { namespace, name } => {
                                let ev = new_event(&namespace, &name);
                                self.create(&namespace, &name, ev).await
                            }
                            Decision::Patch { .. } => Ok(()),
                        }
                    }
                    Err(source) => Err(RecordError::Write {
                        namespace,
                        name,
                        source,
                    }),
                }
            }
        };
        if result.is_err() {
            self.with_cache(|c| c.forget(&key));
        }
        result
    }

    /// [`Recorder::record`] for an object at hand (its reference carries kind, name, namespace, uid).
    pub async fn publish<K>(&self, obj: &K, type_: EventType, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        self.record(&obj.object_ref(&()), type_, reason, message)
            .await;
    }

    async fn create(&self, namespace: &str, name: &str, ev: Event) -> Result<(), RecordError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        api.create(&PostParams::default(), &ev)
            .await
            .map(|_| ())
            .map_err(|source| RecordError::Write {
                namespace: namespace.to_string(),
                name: name.to_string(),
                source,
            })
    }

    /// Runs `f` on the cache; the lock is never held across an await.
    fn with_cache<T>(&self, f: impl FnOnce(&mut EventCache) -> T) -> T {
        let mut guard = match self.cache.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}
