//! Resource arithmetic, parsing and JSON tests.

use super::*;
use serde_json::json;

fn r(s: &str) -> Resources {
    match Resources::parse(s) {
        Ok(r) => r,
        Err(e) => panic!("parse {s}: {e}"),
    }
}

#[test]
fn add_subtract_contains() {
    let mut a = r("cpus:0.1;mem:100;ports:[31000-31010]");
    a.add(&r("cpus:0.2;ports:[31011-31020]"));
    assert_eq!(a.scalar("cpus"), r("cpus:0.3").scalar("cpus"));
    assert!(a.contains(&r("cpus:0.3;ports:[31005-31020]")));
    assert!(!a.contains(&r("cpus:0.301")));
    a.subtract(&r("cpus:0.3;ports:[31000-31019]"));
    assert_eq!(a, r("mem:100;ports:[31020-31020]"));
}

#[test]
fn reservations_are_distinct_entries() {
    let a = r("cpus(web):2;cpus:1;mem:4096");
    assert_eq!(a.scalar("cpus"), Scalar::from_units(3));
    assert!(!a.contains(&r("cpus:2")));
    assert!(a.contains(&r("cpus(web):2")));
    assert_eq!(a.reserved(Some("web")), r("cpus(web):2"));
    assert_eq!(a.unreserved(), r("cpus:1;mem:4096"));
    assert_eq!(a.allocatable_to("web/api"), a);
    assert_eq!(a.allocatable_to("db"), r("cpus:1;mem:4096"));
}

#[test]
fn parse_errors() {
    assert!(matches!(
        Resources::parse("cpus"),
        Err(ParseError::Syntax(_))
    ));
    assert!(matches!(
        Resources::parse("cpus:abc"),
        Err(ParseError::Value { .. })
    ));
    assert!(matches!(
        Resources::parse("cpus:-1"),
        Err(ParseError::Scalar { .. })
    ));
    assert!(matches!(
        Resources::parse("ports:[5-3]"),
        Err(ParseError::Value { .. })
    ));
    assert!(matches!(
        Resources::parse("cpus(a b):1"),
        Err(ParseError::Role { .. })
    ));
    assert!(matches!(
        Resources::parse("cpus(web:1"),
        Err(ParseError::Syntax(_))
    ));
    assert!(matches!(Resources::parse(":1"), Err(ParseError::Name(_))));
    assert!(matches!(
        Resources::parse("x:1;x:[1-2]"),
        Err(ParseError::MixedTypes(_))
    ));
    assert_eq!(
        Resources::parse("cpus:abc").map_err(|e| e.to_string()),
        Err("bad value 'abc' for resource 'cpus'".to_string())
    );
}

#[test]
fn parse_sets_and_display() {
    let a = r("disks:{a,b};cpus(web):2.5");
    assert_eq!(a.to_string(), "disks:{a, b}; cpus(web):2.5");
}

#[test]
fn json_round_trip_and_shape() {
    let a = r("cpus(web):2;mem:4096;ports:[31000-32000];d:{x}");
    let j = a.to_json();
    assert_eq!(
        j[0],
        json!({"name":"cpus","type":"SCALAR","scalar":{"value":2.0},"role":"web",
               "reservations":[{"type":"STATIC","role":"web"}]})
    );
    assert_eq!(
        j[1],
        json!({"name":"mem","type":"SCALAR","scalar":{"value":4096.0},"role":"*"})
    );
    assert_eq!(
        j[2]["ranges"],
        json!({"range":[{"begin":31000,"end":32000}]})
    );
    assert_eq!(j[3]["set"], json!({"item":["x"]}));
    assert_eq!(Resources::from_json(&j), Ok(a));
}

#[test]
fn json_legacy_dynamic_reservation() {
    let j = json!([{"name":"cpus","type":"SCALAR","scalar":{"value":1.5},"role":"db",
                    "reservation":{"principal":"ops"}}]);
    let a = Resources::from_json(&j).unwrap_or_default();
    let res = a
        .iter()
        .next()
        .map(|r| r.reservations.clone())
        .unwrap_or_default();
    assert_eq!(res.len(), 1);
    assert_eq!(res[0].kind, ReservationKind::Dynamic);
    assert_eq!(res[0].principal.as_deref(), Some("ops"));
    assert!(Resources::from_json(&json!([{"name":"cpus","type":"BOGUS"}])).is_err());
    assert!(Resources::parse(r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1}}]"#).is_ok());
}
