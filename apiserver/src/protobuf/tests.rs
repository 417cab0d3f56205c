//! Unit tests: hand-built bodies (field numbers written out from the Kubernetes generated.proto files),
//! error mapping, and no-panic checks.

use super::decode;
use super::encode::Msg;
use serde_json::json;

fn meta(name: &str) -> Msg {
    Msg::new().str(1, name)
}

#[test]
fn namespace_minimal() {
    let body = Msg::body("v1", "Namespace", Msg::new().msg(1, meta("a")));
    assert_eq!(
        decode(&body),
        Ok(json!({
            "kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": "a", "creationTimestamp": null},
            "spec": {}, "status": {}
        }))
    );
}

#[test]
fn bad_magic_and_truncation_are_bad_requests() {
    let err = decode(b"{\"kind\":\"Pod\"}").unwrap_err();
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
    assert!(err
        .message
        .contains("does not appear to be a protobuf message"));
    let body = Msg::body("v1", "Namespace", Msg::new().msg(1, meta("abc")));
    let err = decode(&body[..body.len() - 1]).unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (400, "unexpected EOF"));
}

#[test]
fn unknown_kind_is_unsupported_media_type() {
    let err = decode(&Msg::body("apps/v1", "Deployment", Msg::new())).unwrap_err();
    assert_eq!(
        (err.code, err.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
    let err = decode(&Msg::body("v1", "", Msg::new())).unwrap_err();
    assert_eq!(err.code, 400);
}

#[test]
fn wrong_wire_type_is_bad_request() {
    // ObjectMeta.name (1) sent as a varint.
    let body = Msg::body("v1", "Namespace", Msg::new().msg(1, Msg::new().int(1, 5)));
    let err = decode(&body).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(err.message, "proto: wrong wireType = 0 for field name");
}

#[test]
fn unknown_fields_are_skipped() {
    let raw = Msg::new()
        .int(99, 1)
        .msg(1, meta("a").str(1000, "x").int(77, 3));
    let out = decode(&Msg::body("v1", "Namespace", raw));
    assert_eq!(out.map(|v| v["metadata"]["name"].clone()), Ok(json!("a")));
}

#[test]
fn nesting_depth_is_bounded() {
    let schema = super::schema::schema().expect("schema");
    let deep = super::json::message(schema, "Namespace", &[], 65);
    assert_eq!(deep, Err(super::json::DecodeError::TooDeep));
}

/// A Pod written field by field with the numbers from core/v1 and meta/v1 generated.proto.
#[test]
fn hand_built_pod() {
    let quantity = |s: &str| Msg::new().str(1, s);
    let metadata = Msg::new()
        .str(2, "web-") // generateName
        .str(3, "prod") // namespace
        .entry(11, "app", "web") // labels
        .msg(
            13,
            Msg::new()
                .str(5, "v1")
                .str(1, "ReplicationController")
                .str(3, "web")
                .str(4, "u")
                .int(6, 1),
        )
        .str(14, "example.com/f"); // finalizers
    let container = Msg::new()
        .str(1, "web")
        .str(2, "nginx")
        .str(3, "nginx")
        .str(4, "-g")
        .msg(6, Msg::new().str(1, "http").int(3, 8080).str(4, "TCP")) // ports
        .msg(7, Msg::new().str(1, "A").str(2, "1")) // env
        .msg(
            8,
            Msg::new().msg(1, Msg::new().str(1, "cpu").msg(2, quantity("100m"))),
        ) // resources.limits
        .str(14, "Always"); // imagePullPolicy
    let spec = Msg::new()
        .msg(2, container)
        .str(3, "Never") // restartPolicy
        .int(4, 0) // terminationGracePeriodSeconds (pointer: zero is kept)
        .int(11, 0) // hostNetwork false (plain bool: dropped)
        .str(10, "node-1"); // nodeName
    let pod = Msg::new()
        .msg(1, metadata)
        .msg(2, spec)
        .msg(3, Msg::new().str(1, "Pending"));
    assert_eq!(
        decode(&Msg::body("v1", "Pod", pod)),
        Ok(json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {
                "generateName": "web-", "namespace": "prod", "creationTimestamp": null,
                "labels": {"app": "web"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "ReplicationController", "name": "web",
                                     "uid": "u", "controller": true}],
                "finalizers": ["example.com/f"]
            },
            "spec": {
                "containers": [{
                    "name": "web", "image": "nginx", "command": ["nginx"], "args": ["-g"],
                    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                    "env": [{"name": "A", "value": "1"}],
                    "resources": {"limits": {"cpu": "100m"}},
                    "imagePullPolicy": "Always"
                }],
                "restartPolicy": "Never", "terminationGracePeriodSeconds": 0, "nodeName": "node-1"
            },
            "status": {"phase": "Pending"}
        }))
    );
}

/// A ReplicationController with `replicas: 0` (a pointer, so kept) and a negative int32.
#[test]
fn hand_built_replication_controller() {
    let template = Msg::new().msg(1, Msg::new().entry(11, "app", "web")).msg(
        2,
        Msg::new().msg(2, Msg::new().str(1, "c").str(2, "busybox")),
    );
    let spec = Msg::new()
        .int(1, 0)
        .int(4, -5) // minReadySeconds, sign-extended on the wire like Go does
        .entry(2, "app", "web")
        .msg(3, template);
    let rc = Msg::new().msg(1, Msg::new().str(1, "web")).msg(2, spec);
    let out = decode(&Msg::body("v1", "ReplicationController", rc)).unwrap_or_default();
    assert_eq!(
        out["spec"],
        json!({
            "replicas": 0, "minReadySeconds": -5, "selector": {"app": "web"},
            "template": {
                "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {}}]}
            }
        })
    );
    assert_eq!(out["status"], json!({"replicas": 0}));
}

#[test]
fn bytes_are_base64_and_int_or_string_both_ways() {
    let cm = Msg::new()
        .msg(1, Msg::new().str(1, "c"))
        .msg(3, Msg::new().str(1, "bin").bytes(2, &[0, 1, 0xff]));
    let out = decode(&Msg::body("v1", "ConfigMap", cm)).unwrap_or_default();
    assert_eq!(out["binaryData"], json!({"bin": "AAH/"}));
    let port = |target: Msg| Msg::new().int(3, 80).msg(4, target);
    let svc = Msg::new().msg(
        2,
        Msg::new()
            .msg(1, port(Msg::new().int(1, 1).str(3, "http")))
            .msg(1, port(Msg::new().int(2, 8080))),
    );
    let out = decode(&Msg::body("v1", "Service", svc)).unwrap_or_default();
    assert_eq!(out["spec"]["ports"][0]["targetPort"], json!("http"));
    assert_eq!(out["spec"]["ports"][1]["targetPort"], json!(8080));
}

#[test]
fn out_of_range_time_is_bad_request() {
    let meta = Msg::new().msg(8, Msg::new().int(1, i64::MAX));
    let err = decode(&Msg::body("v1", "Namespace", Msg::new().msg(1, meta))).unwrap_err();
    assert_eq!(err.code, 400);
}

/// decode → encode (schema-driven) → decode gives the same JSON for every fixture body.
#[test]
fn fixtures_round_trip_through_the_encoder() {
    let schema = super::schema::schema().expect("schema");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures").flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "pb") {
            continue;
        }
        let first = decode(&std::fs::read(&path).expect("read")).expect("decodes");
        let (kind, api_version) = (first["kind"].as_str(), first["apiVersion"].as_str());
        let (Some(kind), Some(api_version), Some(object)) = (kind, api_version, first.as_object())
        else {
            panic!("{path:?}: no kind/apiVersion");
        };
        let raw = super::encode::from_json(schema, kind, object);
        let again = decode(&Msg::body(api_version, kind, raw));
        assert_eq!(again.as_ref(), Ok(&first), "{path:?}");
        seen += 1;
    }
    assert!(seen >= 10);
}

#[test]
fn repeated_singular_messages_merge() {
    // metadata sent twice: protobuf merges (name from the first, namespace and labels from both).
    let raw = Msg::new()
        .msg(1, Msg::new().str(1, "a").entry(11, "x", "1"))
        .msg(1, Msg::new().str(3, "ns").entry(11, "y", "2"));
    let out = decode(&Msg::body("v1", "ConfigMap", raw)).unwrap_or_default();
    assert_eq!(
        out["metadata"],
        json!({"name": "a", "namespace": "ns", "creationTimestamp": null, "labels": {"x": "1", "y": "2"}})
    );
}

#[test]
fn every_supported_kind_decodes_an_empty_object() {
    for (api_version, kind) in super::KINDS {
        let out = decode(&Msg::body(api_version, kind, Msg::new()));
        let out = out.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(
            (out["kind"].as_str(), out["apiVersion"].as_str()),
            (Some(*kind), Some(*api_version))
        );
    }
}
