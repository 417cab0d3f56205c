//! Which events a watch sees, with kube-apiserver's transition rules: an object that stops matching is
//! reported DELETED, one that starts matching is ADDED. Pure.

use serde_json::Value;

use super::cache::{Event, EventType};
use super::WatchRequest;

/// Whether an object is selected by the request's namespace, label and field selectors.
pub fn selects(req: &WatchRequest, obj: &Value) -> bool {
    let ns_ok = req
        .namespace
        .as_deref()
        .is_none_or(|ns| obj.pointer("/metadata/namespace").and_then(Value::as_str) == Some(ns));
    ns_ok && req.label.matches(obj) && req.field.matches(obj)
}

/// The event type this watch reports for `event`, if any.
pub fn visible(req: &WatchRequest, event: &Event) -> Option<EventType> {
    let now = selects(req, event.object.skeleton());
    let before = event
        .prev
        .as_ref()
        .is_some_and(|p| selects(req, p.skeleton()));
    match event.kind {
        EventType::Added => now.then_some(EventType::Added),
        EventType::Deleted => (before || now).then_some(EventType::Deleted),
        EventType::Modified => match (before, now) {
            (true, true) => Some(EventType::Modified),
            (false, true) => Some(EventType::Added),
            (true, false) => Some(EventType::Deleted),
            (false, false) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use crate::selector::LabelSelector;
    use crate::watch::cached::Cached;
    use serde_json::json;
    use std::sync::Arc;

    fn cached(app: &str) -> Arc<Cached> {
        Arc::new(Cached::new(by_name("pods").unwrap(), &pod(app)))
    }

    fn pod(app: &str) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default", "labels": {"app": app}}})
    }

    fn modified(from: &str, to: &str) -> Event {
        Event {
            kind: EventType::Modified,
            object: cached(to),
            prev: Some(cached(from)),
            revision: 2,
        }
    }

    #[test]
    fn label_transitions_become_added_and_deleted() {
        let req = WatchRequest {
            label: LabelSelector::parse("app=web").unwrap(),
            ..Default::default()
        };
        assert_eq!(
            visible(&req, &modified("web", "web")),
            Some(EventType::Modified)
        );
        assert_eq!(
            visible(&req, &modified("db", "web")),
            Some(EventType::Added)
        );
        assert_eq!(
            visible(&req, &modified("web", "db")),
            Some(EventType::Deleted)
        );
        assert_eq!(visible(&req, &modified("db", "db")), None);
    }

    #[test]
    fn namespaces_filter() {
        let req = WatchRequest {
            namespace: Some("other".into()),
            ..Default::default()
        };
        let added = Event {
            kind: EventType::Added,
            object: cached("web"),
            prev: None,
            revision: 1,
        };
        assert_eq!(visible(&req, &added), None);
        let req = WatchRequest {
            namespace: Some("default".into()),
            ..Default::default()
        };
        assert_eq!(visible(&req, &added), Some(EventType::Added));
    }
}
