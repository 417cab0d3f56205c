//! Swagger conversion, protobuf encoding (read back with the protobuf wire reader) and `/openapi/v2` serving.

use super::*;
use crate::protobuf::wire::{Fields, WireValue as Field};
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

/// Every field of a message, read with the request-body decoder's wire reader.
fn fields(buf: &[u8]) -> Vec<(u32, Field<'_>)> {
    Fields::new(buf)
        .collect::<Result<_, _>>()
        .expect("well-formed protobuf")
}

/// Every length-delimited payload of `field`.
fn all(buf: &[u8], field: u32) -> Vec<&[u8]> {
    fields(buf)
        .into_iter()
        .filter_map(|(n, f)| match f {
            Field::Bytes(b) if n == field => Some(b),
            _ => None,
        })
        .collect()
}

fn one(buf: &[u8], field: u32) -> &[u8] {
    let v = all(buf, field);
    assert_eq!(v.len(), 1, "field {field}");
    v[0]
}

fn string(buf: &[u8], field: u32) -> String {
    all(buf, field)
        .first()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .unwrap_or_default()
}

/// The value of the `Named*{name=1,value=2}` entry called `name` among the repeated `field`.
fn named<'a>(buf: &'a [u8], field: u32, name: &str) -> &'a [u8] {
    all(buf, field)
        .into_iter()
        .find(|n| string(n, 1) == name)
        .map(|n| one(n, 2))
        .unwrap_or_else(|| panic!("no {name}"))
}

/// A vendor extension's YAML value, parsed.
fn extension(buf: &[u8], field: u32, name: &str) -> Value {
    let any = named(buf, field, name);
    serde_yaml::from_str(&string(any, 2)).unwrap()
}

fn encoded() -> &'static [u8] {
    &docs().protobuf
}

/// `Document.definitions[name]`.
fn definition(name: &str) -> &'static [u8] {
    named(one(encoded(), 9), 1, name)
}

/// `Schema.properties[name]`.
fn property<'a>(schema: &'a [u8], name: &str) -> &'a [u8] {
    named(one(schema, 25), 1, name)
}

#[test]
fn encoder_writes_varints_and_oneof_defaults() {
    let doc = json!({"swagger": "2.0", "definitions": {"M": {"type": "object",
        "additionalProperties": false, "maxLength": 300}}});
    let bytes = encode(&doc);
    assert_eq!(string(&bytes, 1), "2.0");
    let m = named(one(&bytes, 9), 1, "M");
    assert!(fields(m).contains(&(11, Field::Varint(300))));
    // additionalProperties: false must stay present inside its oneof.
    assert_eq!(fields(one(m, 21)), vec![(2, Field::Varint(0))]);
    assert_eq!(all(one(m, 22), 1), vec![b"object".as_slice()]);
}

#[test]
fn refs_point_at_definitions_and_resolve() {
    let doc = swagger();
    assert_eq!(doc["swagger"], "2.0");
    let text = doc.to_string();
    assert!(!text.contains("#/components/"));
    let definitions = doc["definitions"].as_object().unwrap();
    for r in text.split("\"#/definitions/").skip(1) {
        let name = &r[..r.find('"').unwrap()];
        assert!(definitions.contains_key(name), "{name}");
    }
    // A described reference is a bare `$ref` with its description, not an allOf.
    let meta = &doc["definitions"]["io.k8s.api.core.v1.Pod"]["properties"]["metadata"];
    assert_eq!(
        meta["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(meta.get("allOf").is_none());
    assert!(meta["description"].is_string());
}

#[test]
fn pod_carries_gvk_and_described_spec_ref() {
    assert_eq!(string(encoded(), 1), "2.0");
    assert_eq!(string(one(encoded(), 2), 1), "Kubernetes");
    let pod = definition("io.k8s.api.core.v1.Pod");
    assert_eq!(
        extension(pod, 31, "x-kubernetes-group-version-kind"),
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    let spec = property(pod, "spec");
    assert_eq!(string(spec, 1), "#/definitions/io.k8s.api.core.v1.PodSpec");
    assert!(!string(spec, 4).is_empty());
    assert_eq!(all(one(pod, 22), 1), vec![b"object".as_slice()]);
}

#[test]
fn containers_carry_patch_merge_key_and_strategy() {
    let containers = property(definition("io.k8s.api.core.v1.PodSpec"), "containers");
    assert_eq!(
        extension(containers, 31, "x-kubernetes-patch-merge-key"),
        json!("name")
    );
    assert_eq!(
        extension(containers, 31, "x-kubernetes-patch-strategy"),
        json!("merge")
    );
    assert_eq!(all(one(containers, 22), 1), vec![b"array".as_slice()]);
    let items = all(one(containers, 23), 1);
    assert_eq!(items.len(), 1);
    assert_eq!(
        string(items[0], 1),
        "#/definitions/io.k8s.api.core.v1.Container"
    );
}

#[test]
fn pod_patch_operation_takes_field_validation_and_a_body() {
    let paths = one(encoded(), 8);
    let item = named(paths, 2, "/api/v1/namespaces/{namespace}/pods/{name}");
    let patch = one(item, 8);
    assert_eq!(string(patch, 5), "patchCoreV1NamespacedPod");
    assert_eq!(
        extension(patch, 13, "x-kubernetes-group-version-kind"),
        json!({"group": "", "kind": "Pod", "version": "v1"})
    );
    let consumes: Vec<&[u8]> = all(patch, 7);
    assert!(consumes.contains(&b"application/strategic-merge-patch+json".as_slice()));
    let params: Vec<&[u8]> = all(patch, 8).into_iter().map(|p| one(p, 1)).collect();
    // Parameter.body_parameter
    let body = params
        .iter()
        .find_map(|p| all(p, 1).first().copied())
        .unwrap();
    assert_eq!(string(body, 2), "body");
    assert_eq!(string(body, 3), "body");
    // Parameter.non_body_parameter.query_parameter_sub_schema
    let queries: Vec<String> = params
        .iter()
        .flat_map(|p| all(p, 2))
        .flat_map(|nb| all(nb, 3))
        .map(|q| string(q, 4))
        .collect();
    assert!(
        queries.contains(&"fieldValidation".to_string()),
        "{queries:?}"
    );
    // Path-level parameters: name and namespace as path_parameter_sub_schema, required.
    let path_params: Vec<&[u8]> = all(item, 9)
        .into_iter()
        .flat_map(|p| all(one(p, 1), 2))
        .flat_map(|nb| all(nb, 4))
        .collect();
    assert!(path_params.iter().any(|p| string(p, 4) == "namespace"
        && fields(p).contains(&(1, Field::Varint(1)))
        && string(p, 5) == "string"));
}

async fn call(path: &str, headers: &[(&str, &str)]) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = super::super::router()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

#[tokio::test]
async fn serves_protobuf_on_request_and_json_otherwise() {
    let accept = format!("{PROTOBUF_MEDIA_TYPE_DEPRECATED}, application/json");
    for path in ["/openapi/v2", "/swagger-2.0.0.pb-v1"] {
        let (status, headers, body) = call(path, &[("accept", &accept)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], PROTOBUF_MEDIA_TYPE);
        assert_eq!(body, encoded());
        let etag = headers["etag"].to_str().unwrap().to_string();
        let (status, _, body) = call(path, &[("accept", &accept), ("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
    }
    let (status, headers, body) = call("/openapi/v2", &[("accept", "application/json")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["vary"], "Accept");
    let doc: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    assert!(doc["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
}

#[tokio::test]
async fn unacceptable_media_type_is_406() {
    let (status, headers, _) = call("/openapi/v2", &[("accept", "text/html")]).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(headers["vary"], "Accept");
}

#[test]
fn negotiation_follows_q_values_and_wildcards() {
    assert_eq!(negotiate(None), Some(Format::Json));
    assert_eq!(negotiate(Some("*/*")), Some(Format::Json));
    assert_eq!(negotiate(Some(PROTOBUF_MEDIA_TYPE)), Some(Format::Protobuf));
    assert_eq!(
        negotiate(Some(&format!(
            "application/json;q=0.5, {PROTOBUF_MEDIA_TYPE_DEPRECATED}"
        ))),
        Some(Format::Protobuf)
    );
    assert_eq!(
        negotiate(Some(&format!("{PROTOBUF_MEDIA_TYPE};q=0, application/*"))),
        Some(Format::Json)
    );
    assert_eq!(negotiate(Some("application/xml")), None);
}
