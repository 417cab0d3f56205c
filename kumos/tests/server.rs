//! Issue 2, acceptance 3-5 against a real `kumos server`: watch replay and 410, kill -9 durability,
//! authentication and TLS, restarts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use conformance::{kubectl_binaries, Kubectl, KumosServer, Store};
use serde_json::{json, Value};

fn kumos() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kumos"))
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

fn configmap(name: &str, value: &str) -> String {
    json!({"metadata": {"name": name}, "data": {"v": value}}).to_string()
}

fn rv(body: &str) -> i64 {
    let v: Value = serde_json::from_str(body).expect("JSON body");
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("resourceVersion")
}

/// Watch events (type, name) read over HTTP until the server's timeout ends the stream.
fn watch(server: &KumosServer, query: &str) -> Vec<Value> {
    let auth = format!("Authorization: Bearer {}", server.token().unwrap());
    let url = format!("{}{CMS}?watch=true&timeoutSeconds=2&{query}", server.url());
    let out = server.curl(&["-sN", "-H", &auth, &url]).unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[test]
fn watch_replays_history_in_order_and_answers_410_when_too_old() {
    let server = KumosServer::start_with(
        &kumos(),
        Store::Embedded,
        &["--default-watch-cache-size", "8"],
    )
    .unwrap();
    let (code, body) = server
        .request("POST", CMS, Some(&configmap("a", "1")))
        .unwrap();
    assert_eq!(code, 201, "{body}");
    let start = rv(&body) - 1;
    let (code, body) = server
        .request("PUT", &format!("{CMS}/a"), Some(&configmap("a", "2")))
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, _) = server.request("DELETE", &format!("{CMS}/a"), None).unwrap();
    assert_eq!(code, 200);

    let events = watch(&server, &format!("resourceVersion={start}"));
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object"]["data"]["v"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(seen, [("ADDED", "1"), ("MODIFIED", "2"), ("DELETED", "2")]);

    // Push the first revisions out of the watch cache's window.
    for i in 0..12 {
        let (code, _) = server
            .request("POST", CMS, Some(&configmap(&format!("f{i}"), "x")))
            .unwrap();
        assert_eq!(code, 201);
    }
    let events = watch(&server, &format!("resourceVersion={start}"));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
}

#[test]
fn kill_9_during_a_burst_of_creates_loses_no_acknowledged_object() {
    let mut server = KumosServer::start(&kumos(), Store::Embedded).unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = server.client().unwrap();
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (acked, stop, server) = (acked.clone(), stop.clone(), client.clone());
            scope.spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("burst-{worker}-{i}");
                    match server.request("POST", CMS, Some(&configmap(&name, "x"))) {
                        Ok((201, _)) => acked.lock().unwrap().push(name),
                        // The server died mid-request: nothing was acknowledged.
                        _ => break,
                    }
                }
            });
        }
        conformance::eventually(
            std::time::Duration::from_secs(120),
            "100 acknowledged creates",
            || (acked.lock().unwrap().len() >= 100).then_some(()),
        )
        .unwrap();
        server.kill9().unwrap();
        stop.store(true, Ordering::SeqCst);
    });
    server.start_again().unwrap();
    let (code, body) = server.request("GET", CMS, None).unwrap();
    assert_eq!(code, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    let stored: std::collections::HashSet<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    let acked = acked.lock().unwrap();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|n| !stored.contains(n.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged creates lost: {lost:?}",
        lost.len(),
        acked.len()
    );
}

#[test]
fn unauthenticated_requests_get_401_and_kubectl_works_over_tls() {
    let mut server = KumosServer::start(&kumos(), Store::Embedded).unwrap();
    let url = format!("{}/api/v1/namespaces", server.url());
    let out = server.curl(&["-s", &url]).unwrap();
    let status: Value = serde_json::from_slice(&out.stdout).expect("a Status body");
    assert_eq!(
        status,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );
    let out = server
        .curl(&["-s", "-H", "Authorization: Bearer wrong", &url])
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"code\":401"));
    assert!(server.url().starts_with("https://"));

    let kubectl = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    assert_eq!(kubectl.ok(&["get", "--raw", "/readyz"]), "ok");
    kubectl.ok(&["create", "configmap", "kept", "--from-literal=a=b"]);

    // A restart on the same directory keeps the objects, the CA and the token.
    let ca = std::fs::read_to_string(server.ca_path()).unwrap();
    let token = server.token().unwrap();
    server.restart().unwrap();
    assert_eq!(std::fs::read_to_string(server.ca_path()).unwrap(), ca);
    assert_eq!(server.token().unwrap(), token);
    let kubectl = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    assert_eq!(
        kubectl
            .ok(&["get", "configmap", "kept", "-o", "name"])
            .trim(),
        "configmap/kept"
    );
}
