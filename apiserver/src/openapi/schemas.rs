//! `components.schemas` of the `/openapi/v3/api/v1` document, built from k8s-openapi's schemars schemas.
//!
//! k8s-openapi names its schemas exactly as kube does (`io.k8s.api.core.v1.Pod`) and the OpenAPI 3 settings
//! of schemars put them under `#/components/schemas/` with `$ref` siblings folded into `allOf`, as kube
//! writes them. On top we add what k8s-openapi leaves out: the list kinds, the
//! `x-kubernetes-group-version-kind` tags and the list-merge extensions kubectl's patch logic reads.

use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::resources::RESOURCES;

/// The `$ref` string of a named schema.
pub(super) fn schema_ref(name: &str) -> String {
    format!("#/components/schemas/{name}")
}

/// The schema name of a core/v1 kind (`io.k8s.api.core.v1.Pod`).
pub(super) fn core_name(kind: &str) -> String {
    format!("io.k8s.api.core.v1.{kind}")
}

/// The schema name of a meta/v1 type (`io.k8s.apimachinery.pkg.apis.meta.v1.Status`).
pub(super) fn meta_name(kind: &str) -> String {
    format!("io.k8s.apimachinery.pkg.apis.meta.v1.{kind}")
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

/// One list field's merge semantics, as kube's Go struct tags declare them.
struct ListSemantics {
    /// Short schema name (`PodSpec`).
    schema: &'static str,
    field: &'static str,
    /// `x-kubernetes-patch-merge-key` (empty: none).
    merge_key: &'static str,
    /// `x-kubernetes-patch-strategy` (empty: none).
    strategy: &'static str,
    /// `x-kubernetes-list-type`.
    list_type: &'static str,
    /// `x-kubernetes-list-map-keys` (empty: none).
    map_keys: &'static [&'static str],
}

const fn ls(
    schema: &'static str,
    field: &'static str,
    merge_key: &'static str,
    strategy: &'static str,
    list_type: &'static str,
    map_keys: &'static [&'static str],
) -> ListSemantics {
    ListSemantics {
        schema,
        field,
        merge_key,
        strategy,
        list_type,
        map_keys,
    }
}

/// core/v1 list fields.
const LIST_SEMANTICS: &[ListSemantics] = &[
    ls("PodSpec", "containers", "name", "merge", "map", &["name"]),
    ls(
        "PodSpec",
        "initContainers",
        "name",
        "merge",
        "map",
        &["name"],
    ),
    ls(
        "PodSpec",
        "ephemeralContainers",
        "name",
        "merge",
        "map",
        &["name"],
    ),
    ls(
        "PodSpec",
        "volumes",
        "name",
        "merge,retainKeys",
        "map",
        &["name"],
    ),
    ls(
        "PodSpec",
        "imagePullSecrets",
        "name",
        "merge",
        "map",
        &["name"],
    ),
    ls("PodSpec", "hostAliases", "ip", "merge", "map", &["ip"]),
    ls(
        "PodSpec",
        "topologySpreadConstraints",
        "topologyKey",
        "merge",
        "map",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    ls(
        "PodSpec",
        "resourceClaims",
        "name",
        "merge,retainKeys",
        "map",
        &["name"],
    ),
    ls(
        "PodSpec",
        "schedulingGates",
        "name",
        "merge",
        "map",
        &["name"],
    ),
    ls("PodSpec", "tolerations", "", "", "atomic", &[]),
    ls("PodSpec", "readinessGates", "", "", "atomic", &[]),
    ls(
        "Container",
        "ports",
        "containerPort",
        "merge",
        "map",
        &["containerPort", "protocol"],
    ),
    ls("Container", "env", "name", "merge", "map", &["name"]),
    ls(
        "Container",
        "volumeMounts",
        "mountPath",
        "merge",
        "map",
        &["mountPath"],
    ),
    ls(
        "Container",
        "volumeDevices",
        "devicePath",
        "merge",
        "map",
        &["devicePath"],
    ),
    ls("Container", "envFrom", "", "", "atomic", &[]),
    ls("Container", "resizePolicy", "", "", "atomic", &[]),
    ls("Container", "command", "", "", "atomic", &[]),
    ls("Container", "args", "", "", "atomic", &[]),
    ls("PodStatus", "conditions", "type", "merge", "map", &["type"]),
    ls("PodStatus", "podIPs", "ip", "merge", "map", &["ip"]),
    ls("PodStatus", "hostIPs", "ip", "merge", "atomic", &[]),
    ls("PodStatus", "containerStatuses", "", "", "atomic", &[]),
    ls("PodStatus", "initContainerStatuses", "", "", "atomic", &[]),
    ls(
        "ServiceSpec",
        "ports",
        "port",
        "merge",
        "map",
        &["port", "protocol"],
    ),
    ls("ServiceSpec", "clusterIPs", "", "", "atomic", &[]),
    ls("ServiceSpec", "externalIPs", "", "", "atomic", &[]),
    ls(
        "ServiceStatus",
        "conditions",
        "type",
        "merge",
        "map",
        &["type"],
    ),
    ls("NodeSpec", "podCIDRs", "", "merge", "set", &[]),
    ls("NodeSpec", "taints", "", "", "atomic", &[]),
    ls(
        "NodeStatus",
        "conditions",
        "type",
        "merge",
        "map",
        &["type"],
    ),
    ls("NodeStatus", "addresses", "type", "merge", "map", &["type"]),
    ls(
        "NamespaceStatus",
        "conditions",
        "type",
        "merge",
        "map",
        &["type"],
    ),
    ls(
        "ReplicationControllerStatus",
        "conditions",
        "type",
        "merge",
        "map",
        &["type"],
    ),
    ls("Endpoints", "subsets", "", "", "atomic", &[]),
];

/// Meta/v1 list fields (not core/v1 schema names).
const META_LIST_SEMANTICS: &[ListSemantics] = &[
    ls("ObjectMeta", "finalizers", "", "merge", "set", &[]),
    ls(
        "ObjectMeta",
        "ownerReferences",
        "uid",
        "merge",
        "map",
        &["uid"],
    ),
    ls("ObjectMeta", "managedFields", "", "", "atomic", &[]),
];

fn annotate_lists(schemas: &mut Map<String, Value>) {
    let core = LIST_SEMANTICS.iter().map(|e| (core_name(e.schema), e));
    let meta = META_LIST_SEMANTICS.iter().map(|e| (meta_name(e.schema), e));
    for (schema, e) in core.chain(meta) {
        let Some(prop) = schemas
            .get_mut(&schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{}", e.field)))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if !e.merge_key.is_empty() {
            prop.insert("x-kubernetes-patch-merge-key".into(), json!(e.merge_key));
        }
        if !e.strategy.is_empty() {
            prop.insert("x-kubernetes-patch-strategy".into(), json!(e.strategy));
        }
        prop.insert("x-kubernetes-list-type".into(), json!(e.list_type));
        if !e.map_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), json!(e.map_keys));
        }
    }
}

/// The `<Kind>List` schema kube publishes for every served kind.
fn list_schema(kind: &str) -> Value {
    let plural = RESOURCES
        .iter()
        .find(|r| r.kind == kind)
        .map_or(kind.to_lowercase(), |r| r.name.to_string());
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string",
            },
            "items": {
                "description": format!("List of {plural}."),
                "type": "array",
                "items": {"allOf": [{"$ref": schema_ref(&core_name(kind))}], "default": {}},
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string",
            },
            "metadata": {
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "allOf": [{"$ref": schema_ref(&meta_name("ListMeta"))}],
                "default": {},
            },
        },
        "required": ["items"],
        "x-kubernetes-group-version-kind": gvk("", "v1", &format!("{kind}List")),
    })
}

/// Every schema of the core/v1 document, keyed by kube's schema name.
pub(super) fn build() -> Map<String, Value> {
    let mut generator = SchemaSettings::openapi3().into_generator();
    // Each call registers the type and everything it references under components/schemas.
    let _ = generator.subschema_for::<core::ConfigMap>();
    let _ = generator.subschema_for::<core::Endpoints>();
    let _ = generator.subschema_for::<core::Event>();
    let _ = generator.subschema_for::<core::Namespace>();
    let _ = generator.subschema_for::<core::Node>();
    let _ = generator.subschema_for::<core::Pod>();
    let _ = generator.subschema_for::<core::ReplicationController>();
    let _ = generator.subschema_for::<core::Service>();
    let _ = generator.subschema_for::<core::Binding>();
    let _ = generator.subschema_for::<Scale>();
    let _ = generator.subschema_for::<meta::Status>();
    let _ = generator.subschema_for::<meta::DeleteOptions>();
    let _ = generator.subschema_for::<meta::ListMeta>();
    let _ = generator.subschema_for::<meta::Patch>();
    let _ = generator.subschema_for::<meta::APIResourceList>();
    let _ = generator.subschema_for::<meta::WatchEvent<()>>();
    let mut schemas = generator.take_definitions(true);

    for r in RESOURCES {
        schemas.insert(core_name(&r.list_kind()), list_schema(r.kind));
    }

    let mut tag = |name: String, value: Value| {
        if let Some(obj) = schemas.get_mut(&name).and_then(Value::as_object_mut) {
            obj.insert("x-kubernetes-group-version-kind".into(), value);
        }
    };
    for r in RESOURCES {
        tag(core_name(r.kind), gvk("", "v1", r.kind));
    }
    tag(core_name("Binding"), gvk("", "v1", "Binding"));
    tag(
        "io.k8s.api.autoscaling.v1.Scale".into(),
        gvk("autoscaling", "v1", "Scale"),
    );
    tag(meta_name("Status"), gvk("", "v1", "Status"));
    tag(meta_name("DeleteOptions"), gvk("", "v1", "DeleteOptions"));
    tag(meta_name("WatchEvent"), gvk("", "v1", "WatchEvent"));

    annotate_lists(&mut schemas);
    schemas.sort_keys();
    schemas
}
