//! How the watch cache holds one version of an object: its wire JSON, serialized once and shared by every
//! watcher and by the event history, and a skeleton holding only what label and field selectors read.
//! A pod held as a parsed `Value` costs ten times its JSON; events and objects share these by `Arc`.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::resources::ResourceInfo;
use crate::selector::selectable_pointers;

/// One object version as the watch cache keeps it.
#[derive(Debug)]
pub struct Cached {
    json: Bytes,
    skeleton: Value,
}

impl Cached {
    /// Serializes `object` once and keeps the parts of it that selectors of `resource` read.
    pub fn new(resource: &ResourceInfo, object: &Value) -> Cached {
        Cached {
            json: Bytes::from(serde_json::to_vec(object).unwrap_or_default()),
            skeleton: skeleton(resource, object),
        }
    }

    /// A stored value as the API serves it at `revision` (see [`ResourceInfo::decode`]); `None` if
    /// the value is not JSON.
    pub fn decode(resource: &ResourceInfo, bytes: &[u8], revision: i64) -> Option<Cached> {
        let object = resource.decode(bytes, revision).ok()?;
        Some(Cached::new(resource, &object))
    }

    /// The object as it goes on the wire.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// Namespace, name, labels and the resource's selectable fields: enough for every selector.
    pub fn skeleton(&self) -> &Value {
        &self.skeleton
    }

    /// The whole object, parsed again (for Tables and lists, which reshape it).
    pub fn object(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }
}

/// Copies, for every pointer a selector may read, the object's value two levels deep along it (e.g.
/// `/status/podIPs` for `/status/podIPs/0/ip`), plus `metadata.labels`.
fn skeleton(resource: &ResourceInfo, object: &Value) -> Value {
    let mut out = Map::new();
    let pointers = selectable_pointers(resource);
    for pointer in pointers.iter().copied().chain(["/metadata/labels"]) {
        let mut parts = pointer.split('/').skip(1);
        let (Some(top), second) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(value) = object.get(top) else {
            continue;
        };
        match second {
            None => {
                out.insert(top.to_string(), value.clone());
            }
            Some(second) => {
                if let Some(inner) = value.get(second) {
                    let slot = out
                        .entry(top.to_string())
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Some(map) = slot.as_object_mut() {
                        map.insert(second.to_string(), inner.clone());
                    }
                }
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::by_name;
    use crate::selector::{FieldSelector, LabelSelector};
    use serde_json::json;

    fn pod() -> Value {
        json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"},
                         "annotations": {"big": "x".repeat(1000)}, "uid": "u"},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Running", "podIPs": [{"ip": "127.0.0.5"}], "conditions": []}
        })
    }

    #[test]
    fn the_wire_json_is_the_object_and_the_skeleton_holds_only_selectable_parts() {
        let pods = by_name("pods").unwrap();
        let c = Cached::new(pods, &pod());
        assert_eq!(c.object(), pod());
        assert_eq!(
            c.skeleton(),
            &json!({
                "metadata": {"name": "p", "namespace": "ns", "labels": {"app": "web"}},
                "spec": {"nodeName": "n1"},
                "status": {"phase": "Running", "podIPs": [{"ip": "127.0.0.5"}]}
            })
        );
    }

    #[test]
    fn selectors_decide_the_same_on_the_skeleton_as_on_the_object() {
        let pods = by_name("pods").unwrap();
        let c = Cached::new(pods, &pod());
        for field in [
            "spec.nodeName=n1",
            "spec.nodeName!=n1",
            "status.phase=Running",
            "status.podIP=127.0.0.5",
            "spec.hostNetwork=false",
            "metadata.name=p,metadata.namespace=ns",
            "spec.restartPolicy=",
        ] {
            let f = FieldSelector::parse(pods, field).unwrap();
            assert_eq!(f.matches(c.skeleton()), f.matches(&pod()), "{field}");
        }
        for label in ["app=web", "app!=web", "!app", "tier"] {
            let l = LabelSelector::parse(label).unwrap();
            assert_eq!(l.matches(c.skeleton()), l.matches(&pod()), "{label}");
        }
        let events = by_name("events").unwrap();
        let event = json!({"metadata": {"name": "e", "namespace": "ns"}, "reason": "Started",
                           "involvedObject": {"kind": "Pod", "name": "p"}, "reportingComponent": "kumos"});
        let c = Cached::new(events, &event);
        for field in [
            "reason=Started",
            "involvedObject.name=p",
            "source=kumos",
            "type=",
        ] {
            let f = FieldSelector::parse(events, field).unwrap();
            assert_eq!(f.matches(c.skeleton()), f.matches(&event), "{field}");
        }
    }
}
