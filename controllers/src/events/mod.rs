//! Placeholder event recorder (replaced by the aggregating recorder on merge).

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use kube::api::{Api, PostParams};

/// Event type.
#[derive(Clone, Copy, Debug)]
pub enum EventType {
    /// Normal.
    Normal,
    /// Warning.
    Warning,
}

/// Records events.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    component: String,
}

impl Recorder {
    /// A recorder for `component`.
    pub fn new(client: kube::Client, component: &str) -> Recorder {
        Recorder {
            client,
            component: component.to_string(),
        }
    }

    /// Records one event.
    pub async fn record(
        &self,
        obj: &ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let ns = obj.namespace.clone().unwrap_or_else(|| "default".into());
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        );
        let ev = Event {
            metadata: kube::api::ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    obj.name.clone().unwrap_or_default(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos())
                )),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: obj.clone(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(
                match kind {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            source: Some(k8s_openapi::api::core::v1::EventSource {
                component: Some(self.component.clone()),
                host: None,
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(err) = api.create(&PostParams::default(), &ev).await {
            tracing::warn!(%err, "cannot record event");
        }
    }
}
