//! kube-apiserver's Table column definitions for the core/v1 resources we serve.
//!
//! Descriptions that kube takes from `SwaggerDoc()` come from k8s-openapi's schemas, which carry the same
//! field documentation, so they stay word-for-word with the real server.

use std::collections::HashMap;
use std::sync::OnceLock;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Value};

/// Where a column's description comes from.
enum Doc {
    /// A fixed sentence.
    Text(&'static str),
    /// The documentation of a field of a k8s-openapi type.
    Field(fn() -> Value, &'static str),
}

/// One column: name, type, format (`name` or empty), priority, description.
struct Col(&'static str, &'static str, &'static str, u8, Doc);

/// The (uncached) schema of `T`, for reading field documentation.
fn schema_of<T: JsonSchema>() -> Value {
    T::json_schema(&mut SchemaGenerator::default()).to_value()
}

fn field_doc(schema: &Value, field: &str) -> String {
    schema
        .pointer(&format!("/properties/{field}/description"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

const NAME: Col = Col(
    "Name",
    "string",
    "name",
    0,
    Doc::Field(schema_of::<ObjectMeta>, "name"),
);
const AGE: Col = Col(
    "Age",
    "string",
    "",
    0,
    Doc::Field(schema_of::<ObjectMeta>, "creationTimestamp"),
);
const CONTAINERS: Col = Col(
    "Containers",
    "string",
    "",
    1,
    Doc::Text("Names of each container in the template."),
);
const IMAGES: Col = Col(
    "Images",
    "string",
    "",
    1,
    Doc::Text("Images referenced by each container in the template."),
);

fn definitions(resource: &str) -> Vec<Col> {
    use Doc::{Field, Text};
    let pod_spec = schema_of::<core::PodSpec>;
    let pod_status = schema_of::<core::PodStatus>;
    let svc_spec = schema_of::<core::ServiceSpec>;
    let node_info = schema_of::<core::NodeSystemInfo>;
    let event = schema_of::<core::Event>;
    match resource {
        "pods" => vec![
            NAME,
            Col("Ready", "string", "", 0, Text("The aggregate readiness state of this pod for accepting traffic.")),
            Col("Status", "string", "", 0, Text("The aggregate status of the containers in this pod.")),
            Col("Restarts", "string", "", 0, Text("The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.")),
            AGE,
            Col("IP", "string", "", 1, Field(pod_status, "podIP")),
            Col("Node", "string", "", 1, Field(pod_spec, "nodeName")),
            Col("Nominated Node", "string", "", 1, Field(pod_status, "nominatedNodeName")),
            Col("Readiness Gates", "string", "", 1, Field(pod_spec, "readinessGates")),
        ],
        "replicationcontrollers" => vec![
            NAME,
            Col("Desired", "integer", "", 0, Field(schema_of::<core::ReplicationControllerSpec>, "replicas")),
            Col("Current", "integer", "", 0, Field(schema_of::<core::ReplicationControllerStatus>, "replicas")),
            Col("Ready", "integer", "", 0, Field(schema_of::<core::ReplicationControllerStatus>, "readyReplicas")),
            AGE,
            CONTAINERS,
            IMAGES,
            Col("Selector", "string", "", 1, Field(schema_of::<core::ReplicationControllerSpec>, "selector")),
        ],
        "services" => vec![
            NAME,
            Col("Type", "string", "", 0, Field(svc_spec, "type")),
            Col("Cluster-IP", "string", "", 0, Field(svc_spec, "clusterIP")),
            Col("External-IP", "string", "", 0, Field(svc_spec, "externalIPs")),
            Col("Port(s)", "string", "", 0, Field(svc_spec, "ports")),
            AGE,
            Col("Selector", "string", "", 1, Field(svc_spec, "selector")),
        ],
        "endpoints" => vec![
            NAME,
            Col("Endpoints", "string", "", 0, Field(schema_of::<core::Endpoints>, "subsets")),
            AGE,
        ],
        "namespaces" => vec![
            NAME,
            Col("Status", "string", "", 0, Text("The status of the namespace")),
            AGE,
        ],
        "nodes" => vec![
            NAME,
            Col("Status", "string", "", 0, Text("The status of the node")),
            Col("Roles", "string", "", 0, Text("The roles of the node")),
            AGE,
            Col("Version", "string", "", 0, Field(node_info, "kubeletVersion")),
            Col("Internal-IP", "string", "", 1, Field(schema_of::<core::NodeStatus>, "addresses")),
            Col("External-IP", "string", "", 1, Field(schema_of::<core::NodeStatus>, "addresses")),
            Col("OS-Image", "string", "", 1, Field(node_info, "osImage")),
            Col("Kernel-Version", "string", "", 1, Field(node_info, "kernelVersion")),
            Col("Container-Runtime", "string", "", 1, Field(node_info, "containerRuntimeVersion")),
        ],
        "events" => vec![
            Col("Last Seen", "string", "", 0, Field(event, "lastTimestamp")),
            Col("Type", "string", "", 0, Field(event, "type")),
            Col("Reason", "string", "", 0, Field(event, "reason")),
            Col("Object", "string", "", 0, Field(event, "involvedObject")),
            Col("Subobject", "string", "", 1, Field(schema_of::<core::ObjectReference>, "fieldPath")),
            Col("Source", "string", "", 1, Field(event, "source")),
            Col("Message", "string", "", 0, Field(event, "message")),
            Col("First Seen", "string", "", 1, Field(event, "firstTimestamp")),
            Col("Count", "string", "", 1, Field(event, "count")),
            Col("Name", "string", "name", 1, Field(schema_of::<ObjectMeta>, "name")),
        ],
        "configmaps" => vec![
            NAME,
            Col("Data", "string", "", 0, Field(schema_of::<core::ConfigMap>, "data")),
            AGE,
        ],
        // Resources without a printer get kube's default: name and age.
        _ => vec![NAME, AGE],
    }
}

fn render(cols: Vec<Col>) -> Value {
    let defs: Vec<Value> = cols
        .into_iter()
        .map(|Col(name, ty, format, priority, doc)| {
            let description = match doc {
                Doc::Text(t) => t.to_string(),
                Doc::Field(schema, field) => field_doc(&schema(), field),
            };
            json!({
                "name": name,
                "type": ty,
                "format": format,
                "description": description,
                "priority": priority,
            })
        })
        .collect();
    Value::Array(defs)
}

/// The `columnDefinitions` array for a resource (computed once per resource).
pub(super) fn for_resource(resource: &str) -> Value {
    static CACHE: OnceLock<HashMap<&'static str, Value>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| {
        crate::resources::RESOURCES
            .iter()
            .map(|r| (r.name, render(definitions(r.name))))
            .collect()
    });
    cache
        .get(resource)
        .cloned()
        .unwrap_or_else(|| render(definitions(resource)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(resource: &str) -> Vec<(String, i64)> {
        for_resource(resource)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn pod_columns_match_kube() {
        let cols = names("pods");
        let expected = [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ];
        assert_eq!(
            cols,
            expected
                .iter()
                .map(|(n, p)| (n.to_string(), *p))
                .collect::<Vec<_>>()
        );
        let defs = for_resource("pods");
        assert_eq!(defs[0]["format"], "name");
        assert!(defs[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("Name must be unique within a namespace."));
        assert!(defs[4]["description"]
            .as_str()
            .unwrap()
            .starts_with("CreationTimestamp is a timestamp"));
        assert!(!defs[6]["description"].as_str().unwrap().is_empty());
    }

    #[test]
    fn every_column_has_a_description() {
        for r in crate::resources::RESOURCES {
            for c in for_resource(r.name).as_array().unwrap() {
                assert!(
                    !c["description"].as_str().unwrap().is_empty(),
                    "{} {}",
                    r.name,
                    c["name"]
                );
            }
        }
    }

    #[test]
    fn event_and_node_columns_match_kube() {
        let ev: Vec<String> = names("events").into_iter().map(|c| c.0).collect();
        assert_eq!(
            ev,
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        assert_eq!(names("nodes").len(), 10);
        assert_eq!(names("replicationcontrollers")[1], ("Desired".into(), 0));
        assert_eq!(for_resource("replicationcontrollers")[1]["type"], "integer");
    }
}
