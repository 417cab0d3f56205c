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
fn deeply_nested_garbage_never_panics() {
    // Unknown field 1 of Namespace → nested 200 levels of length-delimited bytes.
    let mut inner = Msg::new();
    for _ in 0..200 {
        inner = Msg::new().msg(1, inner);
    }
    let _ = decode(&Msg::body("v1", "Namespace", inner));
}
