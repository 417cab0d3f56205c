//! Strategic merge patch cases, each checked against kube-apiserver's documented behaviour.

use serde_json::{json, Value};

use super::apply;
use crate::resources::by_name;

fn patch(resource: &str, original: Value, patch: Value) -> Value {
    apply(by_name(resource).unwrap(), &original, &patch).unwrap()
}

fn pod(containers: Value) -> Value {
    json!({"metadata": {"name": "p", "labels": {"a": "1"}}, "spec": {"containers": containers}})
}

#[test]
fn containers_merge_by_name_and_keep_untouched_fields() {
    let original = pod(json!([
        {"name": "a", "image": "a:1", "command": ["sleep"]},
        {"name": "b", "image": "b:1"}
    ]));
    let out = patch(
        "pods",
        original,
        json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a", "image": "a:1", "command": ["sleep"]}, {"name": "b", "image": "b:2"}])
    );
}

#[test]
fn new_items_go_ahead_of_untouched_originals_and_delete_directives_remove() {
    let original = pod(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
    let out = patch(
        "pods",
        original,
        json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}, {"name": "c", "image": "c"}]}}),
    );
    // As kube-apiserver: an item new to the list comes before the originals the patch left alone.
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c", "image": "c"}, {"name": "b", "image": "b"}])
    );
}

#[test]
fn set_element_order_reorders_the_merged_list() {
    let original = pod(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
    let out = patch(
        "pods",
        original,
        json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                        "containers": [{"name": "a", "image": "a2"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "b", "image": "b"}, {"name": "a", "image": "a2"}])
    );
    assert!(out["spec"].get("$setElementOrder/containers").is_none());
}

#[test]
fn nested_lists_merge_by_their_own_keys() {
    let original = pod(json!([{"name": "a", "image": "a",
        "ports": [{"containerPort": 80, "name": "http"}],
        "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]));
    let out = patch(
        "pods",
        original,
        json!({"spec": {"containers": [{"name": "a",
            "ports": [{"containerPort": 443, "name": "https"}],
            "env": [{"name": "Y", "value": "3"}]}]}}),
    );
    let c = &out["spec"]["containers"][0];
    assert_eq!(
        c["ports"],
        json!([{"containerPort": 443, "name": "https"}, {"containerPort": 80, "name": "http"}])
    );
    assert_eq!(
        c["env"],
        json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}])
    );
}

#[test]
fn rc_template_containers_and_service_ports_merge() {
    let rc = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a"}]}}}});
    let out = patch(
        "replicationcontrollers",
        rc,
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "a2"}]}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "a", "image": "a2"}])
    );

    let svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 81}]}});
    let out = patch(
        "services",
        svc,
        json!({"spec": {"ports": [{"port": 81, "name": "b"}]}}),
    );
    assert_eq!(
        out["spec"]["ports"],
        json!([{"port": 80, "targetPort": 8080}, {"port": 81, "name": "b"}])
    );
}

#[test]
fn unstrategied_lists_are_replaced_and_null_deletes() {
    let original = pod(json!([{"name": "a", "image": "a", "args": ["1", "2"]}]));
    let out = patch(
        "pods",
        original,
        json!({"metadata": {"labels": {"a": null, "b": "2"}},
               "spec": {"containers": [{"name": "a", "args": ["3"]}]}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"b": "2"}));
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["3"]));
}

#[test]
fn replace_directives_on_maps_and_lists() {
    let original = pod(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
    let out = patch(
        "pods",
        original.clone(),
        json!({"spec": {"containers": [{"name": "z", "image": "z"}, {"$patch": "replace"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "z", "image": "z"}])
    );
    let out = patch(
        "pods",
        original,
        json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
    );
    assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
}

#[test]
fn finalizers_merge_as_a_set_and_primitives_can_be_deleted() {
    let original = json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}});
    let out = patch(
        "configmaps",
        original.clone(),
        json!({"metadata": {"finalizers": ["b", "c"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    let out = patch(
        "configmaps",
        original,
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
}

#[test]
fn retain_keys_drops_fields_not_listed() {
    let original = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
    let out = patch(
        "pods",
        original,
        json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}}),
    );
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "v", "hostPath": {"path": "/x"}}])
    );
}

#[test]
fn malformed_patches_are_errors_not_panics() {
    let pods = by_name("pods").unwrap();
    let original = pod(json!([{"name": "a"}]));
    for bad in [
        json!([1, 2]),
        json!({"$patch": "explode"}),
        json!({"spec": {"containers": [1, "x"]}}),
        json!({"$patch": "delete"}),
        json!({"spec": {"containers": [{"name": "a", "$patch": 7}]}}),
        json!({"metadata": {"$retainKeys": "nope"}}),
    ] {
        let err = apply(pods, &original, &bad).unwrap_err();
        assert_eq!(err.code, 400, "{bad}");
    }
    // Odd but well-formed shapes are applied without panicking.
    for odd in [
        json!({"spec": {"$setElementOrder/containers": "x"}}),
        json!({"spec": {"containers": {"not": "a list"}}}),
        json!({"unknown": {"deep": [{"$patch": "delete"}]}}),
    ] {
        let _ = apply(pods, &original, &odd);
    }
}

/// Every merge-keyed list the API-semantics issue names merges by its key (an item with a new key is added,
/// one with a known key is merged), driven by the published schema.
#[test]
fn each_merge_keyed_list_merges_by_its_key() {
    let cases: &[(&str, &str, &str, Value, Value)] = &[
        (
            "pods",
            "/spec/initContainers",
            "name",
            json!({"name": "a", "image": "x"}),
            json!({"name": "b", "image": "y"}),
        ),
        (
            "pods",
            "/spec/volumes",
            "name",
            json!({"name": "a", "emptyDir": {}}),
            json!({"name": "b", "emptyDir": {}}),
        ),
        (
            "pods",
            "/spec/imagePullSecrets",
            "name",
            json!({"name": "a"}),
            json!({"name": "b"}),
        ),
        (
            "pods",
            "/status/conditions",
            "type",
            json!({"type": "Ready", "status": "False"}),
            json!({"type": "Initialized", "status": "True"}),
        ),
        (
            "pods",
            "/metadata/ownerReferences",
            "uid",
            json!({"uid": "1", "name": "a", "kind": "ReplicationController", "apiVersion": "v1"}),
            json!({"uid": "2", "name": "b", "kind": "ReplicationController", "apiVersion": "v1"}),
        ),
        (
            "nodes",
            "/status/conditions",
            "type",
            json!({"type": "Ready", "status": "False"}),
            json!({"type": "MemoryPressure", "status": "False"}),
        ),
        (
            "services",
            "/spec/ports",
            "port",
            json!({"port": 80, "name": "a"}),
            json!({"port": 81, "name": "b"}),
        ),
    ];
    for (resource, pointer, key, first, second) in cases {
        let mut original = json!({});
        let mut patch_doc = json!({});
        let path: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        let (mut o, mut p) = (&mut original, &mut patch_doc);
        for (i, step) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            o[*step] = if last { json!([first]) } else { json!({}) };
            let mut changed = first.clone();
            changed["extra"] = json!("1");
            p[*step] = if last {
                json!([changed, second])
            } else {
                json!({})
            };
            o = &mut o[*step];
            p = &mut p[*step];
        }
        let out = patch(resource, original, patch_doc);
        let list = out.pointer(pointer).unwrap().as_array().unwrap();
        assert_eq!(list.len(), 2, "{resource}{pointer}: {out}");
        assert_eq!(list[0][*key], first[*key], "{resource}{pointer}");
        assert_eq!(
            list[0]["extra"], "1",
            "{resource}{pointer}: merged by {key}"
        );
        assert_eq!(list[1][*key], second[*key], "{resource}{pointer}");
    }
}

#[test]
fn volume_mounts_merge_by_mount_path_and_lists_without_a_strategy_are_replaced() {
    let original = pod(
        json!([{"name": "a", "volumeMounts": [{"mountPath": "/x", "name": "v"}],
        "command": ["a", "b"]}]),
    );
    let out = patch(
        "pods",
        original,
        json!({"spec": {"containers": [{"name": "a",
            "volumeMounts": [{"mountPath": "/y", "name": "w"}], "command": ["c"]}],
            "tolerations": [{"key": "k", "operator": "Exists"}]}}),
    );
    let c = &out["spec"]["containers"][0];
    assert_eq!(c["volumeMounts"].as_array().unwrap().len(), 2);
    assert_eq!(c["command"], json!(["c"]));
    assert_eq!(
        out["spec"]["tolerations"],
        json!([{"key": "k", "operator": "Exists"}])
    );
}

/// The example from the Kubernetes docs ("Update API Objects in Place Using kubectl patch"): a strategic
/// patch adding a container keeps the existing one and puts the new one first.
#[test]
fn the_documented_container_patch() {
    let original = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "patch-demo-ctr", "image": "nginx"}]}}}});
    let out = patch(
        "replicationcontrollers",
        original,
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "patch-demo-ctr-2", "image": "redis"}]}}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "patch-demo-ctr-2", "image": "redis"}, {"name": "patch-demo-ctr", "image": "nginx"}])
    );
}
