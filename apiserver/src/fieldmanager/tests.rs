//! Server-side apply ownership and conflicts.

use serde_json::{json, Value};

use super::*;
use crate::resources::by_name;

fn cms() -> &'static ResourceInfo {
    by_name("configmaps").unwrap()
}

fn cm(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})
}

fn owners(obj: &Value) -> Vec<(String, String, Vec<String>)> {
    managed_fields(obj)
        .into_iter()
        .map(|m| {
            (
                m.manager,
                m.operation,
                m.fields.iter().map(|p| fieldset::display(p)).collect(),
            )
        })
        .collect()
}

#[test]
fn apply_records_ownership_in_fields_v1() {
    let out = apply(
        cms(),
        &json!({}),
        &cm(json!({"a": "1"})),
        "alice",
        false,
        "t",
    )
    .unwrap();
    assert_eq!(out["data"], json!({"a": "1"}));
    assert_eq!(
        out["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:data": {"f:a": {}}})
    );
    assert_eq!(
        owners(&out),
        [("alice".into(), "Apply".into(), vec![".data.a".to_string()])]
    );
}

#[test]
fn conflicting_appliers_get_409_unless_they_force() {
    let live = apply(
        cms(),
        &json!({}),
        &cm(json!({"a": "1"})),
        "alice",
        false,
        "t",
    )
    .unwrap();
    // The same value is shared ownership, not a conflict.
    let shared = apply(cms(), &live, &cm(json!({"a": "1"})), "bob", false, "t").unwrap();
    assert_eq!(owners(&shared).len(), 2);
    let err = apply(cms(), &live, &cm(json!({"a": "2"})), "bob", false, "t").unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .data.a"
    );
    let forced = apply(cms(), &live, &cm(json!({"a": "2"})), "bob", true, "t").unwrap();
    assert_eq!(forced["data"]["a"], "2");
    assert_eq!(
        owners(&forced),
        [("bob".into(), "Apply".into(), vec![".data.a".to_string()])]
    );
}

#[test]
fn fields_dropped_from_a_config_are_removed_only_when_owned_alone() {
    let live = apply(
        cms(),
        &json!({}),
        &cm(json!({"a": "1", "b": "2"})),
        "alice",
        false,
        "t",
    )
    .unwrap();
    let live = apply(cms(), &live, &cm(json!({"b": "2"})), "bob", false, "t").unwrap();
    let out = apply(cms(), &live, &cm(json!({})), "alice", false, "t").unwrap();
    assert_eq!(
        out["data"],
        json!({"b": "2"}),
        "a owned by alice alone is gone; b is bob's too"
    );
}

#[test]
fn list_map_items_are_owned_by_key() {
    let pods = by_name("pods").unwrap();
    let pod = |image: &str| json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "web", "image": image}]}});
    let live = apply(pods, &json!({}), &pod("a"), "alice", false, "t").unwrap();
    let err = apply(pods, &live, &pod("b"), "bob", false, "t").unwrap_err();
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.containers[name=\"web\"].image"
    );
    let fields = &live["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(
        fields["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"],
        json!({".": {}, "f:image": {}})
    );
    assert_eq!(FieldSet::from_fields_v1(fields), fields_of(pods, &pod("a")));
}

#[test]
fn updates_take_ownership_of_what_they_change() {
    let live = apply(
        cms(),
        &json!({}),
        &cm(json!({"a": "1"})),
        "alice",
        false,
        "t",
    )
    .unwrap();
    let mut edited = live.clone();
    edited["data"]["a"] = json!("9");
    record_update(cms(), &live, &mut edited, "kubectl-edit", "t");
    assert_eq!(
        owners(&edited),
        [(
            "kubectl-edit".into(),
            "Update".into(),
            vec![".data.a".to_string()]
        )]
    );
    // alice's next apply of her old value now conflicts with the editor.
    let err = apply(cms(), &edited, &cm(json!({"a": "1"})), "alice", false, "t").unwrap_err();
    assert!(
        err.message.contains("conflict with \"kubectl-edit\""),
        "{}",
        err.message
    );
}
