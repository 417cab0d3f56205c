//! The node controller, the endpoints controller and the event recorder against a real `kumos server`
//! with two local agents, observed through real kubectl. The controllers run in this test process
//! (through the kube crate, as any third-party controller would).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use controllers::events::{EventType, Recorder};
use controllers::nodes::NodesConfig;
use controllers::{endpoints, nodes, Context};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);
const NS: &str = "epnodes";

fn kumos() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kumos"))
}

fn get_json(k: &Kubectl, args: &[&str]) -> Option<Value> {
    let out = k.run(args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// A pod no scheduler picks up, with a named container port published on `hostPort`.
fn pod_manifest(name: &str) -> String {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
        "spec": {
            "schedulerName": "e2e-nobody",
            "containers": [{"name": "web", "image": "busybox",
                "ports": [{"name": "http", "containerPort": 8080, "hostPort": 31080}]}]
        }
    })
    .to_string()
}

/// Pod status as an agent would write it: an IP and a Ready condition.
fn status_patch(ready: bool) -> Value {
    json!({"status": {
        "phase": "Running",
        "podIP": "127.0.0.1",
        "podIPs": [{"ip": "127.0.0.1"}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
    }})
}

fn target_names(subset: &Value, key: &str) -> Vec<String> {
    subset[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["targetRef"]["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn nodes_endpoints_and_events_through_kubectl() -> anyhow::Result<()> {
    // The server's own node and endpoints controllers stay off: this test runs them itself,
    // with a faster poll.
    let server = KumosServer::start_with(
        &kumos(),
        Store::Embedded,
        &["--agents", "2", "--controllers", "*,-nodes,-endpoints"],
    )?;
    let master = server
        .master_url()
        .context("kumos server reported no master URL")?
        .to_string();
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());

    let rt = tokio::runtime::Runtime::new()?;
    let client = rt.block_on(controllers::client_from_kubeconfig(&server.kubeconfig()))?;
    let shutdown = CancellationToken::new();
    let ctx = Context {
        client: client.clone(),
        shutdown: shutdown.clone(),
    };
    let config = NodesConfig {
        poll_interval: Duration::from_secs(1),
        ..NodesConfig::new(&master)
    };
    let node_task = rt.spawn(nodes::run(ctx.clone(), config));
    let endpoints_task = rt.spawn(endpoints::run(ctx));

    // Nodes: one per agent, Ready, with capacity from the agent's resources.
    eventually(
        WAIT,
        "agent-0 and agent-1 Ready in kubectl get nodes",
        || {
            let out = k.run(&["get", "nodes", "--no-headers"]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let ready = |n: &str| {
                text.lines().any(|l| {
                    let w: Vec<&str> = l.split_whitespace().collect();
                    w.first() == Some(&n) && w.get(1) == Some(&"Ready")
                })
            };
            (ready("agent-0") && ready("agent-1")).then_some(())
        },
    )?;
    for name in ["agent-0", "agent-1"] {
        let node = get_json(&k, &["get", "node", name, "-o", "json"]).context("node json")?;
        let cap = &node["status"]["capacity"];
        assert!(cap["cpu"].as_str().is_some_and(|c| !c.is_empty()), "{node}");
        assert!(
            cap["memory"].as_str().is_some_and(|m| m.ends_with("Mi")),
            "{node}"
        );
        assert_eq!(cap["pods"], "110");
        assert_eq!(node["metadata"]["labels"]["kubernetes.io/hostname"], name);
        assert!(node["metadata"]["annotations"]["kumos.io/agent-id"].is_string());
        assert_eq!(
            node["status"]["nodeInfo"]["kubeletVersion"],
            "v1.33.0-kumos"
        );
    }
    let described = k.ok(&["describe", "node", "agent-0"]);
    assert!(
        described.contains("RegisteredNode") && described.contains("KubeletReady"),
        "{described}"
    );
    let wide = k.ok(&["get", "nodes", "-o", "wide"]);
    assert!(
        wide.contains("v1.33.0-kumos") && wide.contains("127.0.0.1"),
        "{wide}"
    );

    // Endpoints: a Service with a selector and two pods, one Ready and one not.
    k.ok(&["create", "namespace", NS]);
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {"selector": {"app": "web"},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}
    });
    let out = k.run_stdin(&["apply", "-f", "-"], &svc.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["web-ready", "web-unready"] {
        let out = k.run_stdin(&["create", "-f", "-"], &pod_manifest(name));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for (name, ready) in [("web-ready", true), ("web-unready", false)] {
        rt.block_on(pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(status_patch(ready)),
        ))?;
    }
    let subset = eventually(WAIT, "endpoints web with both pods", || {
        let ep = get_json(&k, &["get", "endpoints", "web", "-n", NS, "-o", "json"])?;
        let subset = ep["subsets"].get(0)?.clone();
        (target_names(&subset, "addresses") == ["web-ready"]
            && target_names(&subset, "notReadyAddresses") == ["web-unready"])
        .then_some(subset)
    })?;
    assert_eq!(
        subset["ports"],
        json!([{"name": "http", "port": 31080, "protocol": "TCP"}]),
        "the named target port resolves to the container's hostPort"
    );
    let address = &subset["addresses"][0];
    assert_eq!(address["ip"], "127.0.0.1");
    assert_eq!(address["targetRef"]["kind"], "Pod");
    assert_eq!(address["targetRef"]["namespace"], NS);
    assert!(address["targetRef"]["uid"].is_string());
    let listed = k.ok(&["get", "endpoints", "web", "-n", NS]);
    assert!(listed.contains("127.0.0.1:31080"), "{listed}");

    // The unready pod turns Ready: both are served.
    rt.block_on(pods.patch_status(
        "web-unready",
        &PatchParams::default(),
        &Patch::Merge(status_patch(true)),
    ))?;
    eventually(WAIT, "both pods in addresses", || {
        let ep = get_json(&k, &["get", "endpoints", "web", "-n", NS, "-o", "json"])?;
        let subset = &ep["subsets"][0];
        (target_names(subset, "addresses") == ["web-ready", "web-unready"]
            && target_names(subset, "notReadyAddresses").is_empty())
        .then_some(())
    })?;

    // Deleting the Service deletes its Endpoints.
    k.ok(&["delete", "service", "web", "-n", NS]);
    eventually(WAIT, "endpoints web deleted", || {
        let out = k.run(&["get", "endpoints", "web", "-n", NS]);
        (!out.status.success()).then_some(())
    })?;

    // Events: the same event twice is one Event with count 2, shown by kubectl describe.
    let pod = rt.block_on(pods.get("web-ready"))?;
    let recorder = Recorder::new(client, "e2e-recorder");
    for _ in 0..2 {
        rt.block_on(recorder.try_record(
            &pod.object_ref(&()),
            EventType::Warning,
            "E2ETwice",
            "recorded twice by the test",
        ))?;
    }
    let events = get_json(
        &k,
        &[
            "get",
            "events",
            "-n",
            NS,
            "--field-selector",
            "reason=E2ETwice",
            "-o",
            "json",
        ],
    )
    .context("events json")?;
    let items = events["items"].as_array().context("items")?;
    assert_eq!(items.len(), 1, "{events}");
    assert_eq!(items[0]["count"], 2);
    assert_eq!(items[0]["type"], "Warning");
    assert_eq!(items[0]["source"]["component"], "e2e-recorder");
    assert_eq!(items[0]["involvedObject"]["name"], "web-ready");
    let described = k.ok(&["describe", "pod", "web-ready", "-n", NS]);
    let line = described
        .lines()
        .find(|l| l.contains("E2ETwice"))
        .with_context(|| format!("describe shows no E2ETwice event:\n{described}"))?;
    assert!(
        line.contains("(x2 over") && line.contains("e2e-recorder"),
        "{line}"
    );

    shutdown.cancel();
    rt.block_on(async {
        let _ = node_task.await;
        let _ = endpoints_task.await;
    });
    Ok(())
}

/// A stand-in master whose `GET_AGENTS` reply the test controls.
async fn fake_master(reply: Arc<Mutex<Value>>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/api/v1",
        axum::routing::post(move || {
            let reply = reply.clone();
            async move {
                let body = reply.lock().map(|r| r.clone()).unwrap_or(Value::Null);
                axum::Json(body)
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

fn agents_reply(agents: &[(&str, bool)]) -> Value {
    let agents: Vec<Value> = agents
        .iter()
        .map(|(host, active)| {
            json!({"agent_info": {"id": {"value": format!("id-{host}")}, "hostname": host,
                "port": 5051, "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.5}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024}}],
                "attributes": [{"name": "rack", "type": "TEXT", "text": {"value": "r7"}}]},
                "active": active})
        })
        .collect();
    json!({"type": "GET_AGENTS", "get_agents": {"agents": agents, "recovered_agents": []}})
}

fn ready_status(k: &Kubectl, node: &str) -> Option<String> {
    let out = k.run(&[
        "get",
        "node",
        node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// An agent that disappears from the master: its Node turns Unknown and, after the eviction timeout,
/// the pods bound to it are deleted.
#[test]
fn lost_agent_node_turns_unknown_and_its_pods_are_evicted() -> anyhow::Result<()> {
    // The node controller under test talks to a fake master; the server's own stays off.
    let server =
        KumosServer::start_with(&kumos(), Store::Embedded, &["--controllers", "*,-nodes"])?;
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    let rt = tokio::runtime::Runtime::new()?;
    let reply = Arc::new(Mutex::new(agents_reply(&[("ghost", true)])));
    let master = rt.block_on(fake_master(reply.clone()))?;
    let client = rt.block_on(controllers::client_from_kubeconfig(&server.kubeconfig()))?;
    let shutdown = CancellationToken::new();
    let ctx = Context {
        client,
        shutdown: shutdown.clone(),
    };
    let config = NodesConfig {
        poll_interval: Duration::from_millis(200),
        eviction_timeout: Duration::from_secs(1),
        ..NodesConfig::new(&master)
    };
    let task = rt.spawn(nodes::run(ctx, config));

    eventually(WAIT, "node ghost Ready", || {
        (ready_status(&k, "ghost")? == "True").then_some(())
    })?;
    let node = get_json(&k, &["get", "node", "ghost", "-o", "json"]).context("node")?;
    assert_eq!(node["status"]["capacity"]["cpu"], "2500m");
    assert_eq!(node["status"]["capacity"]["memory"], "1024Mi");
    assert_eq!(node["metadata"]["labels"]["rack"], "r7");
    assert_eq!(
        node["metadata"]["annotations"]["kumos.io/agent-id"],
        "id-ghost"
    );

    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "bound", "namespace": "default"},
        "spec": {"nodeName": "ghost", "schedulerName": "e2e-nobody",
                 "containers": [{"name": "c", "image": "busybox"}]}
    });
    let out = k.run_stdin(&["create", "-f", "-"], &pod.to_string());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    if let Ok(mut r) = reply.lock() {
        *r = agents_reply(&[]);
    }
    eventually(WAIT, "node ghost Unknown", || {
        (ready_status(&k, "ghost")? == "Unknown").then_some(())
    })?;
    let listed = k.ok(&["get", "nodes", "ghost", "--no-headers"]);
    assert!(listed.contains("NotReady"), "{listed}");
    eventually(WAIT, "pod bound to ghost evicted", || {
        let out = k.run(&["get", "pod", "bound", "-n", "default"]);
        (!out.status.success()).then_some(())
    })?;
    let described = k.ok(&["describe", "node", "ghost"]);
    assert!(
        described.contains("NodeNotReady") && described.contains("NodeControllerEviction"),
        "{described}"
    );

    shutdown.cancel();
    rt.block_on(async {
        let _ = task.await;
    });
    Ok(())
}
