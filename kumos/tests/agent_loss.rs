//! Issue 6, acceptance 3: killing an agent process → its pods are marked Failed (NodeLost) and the
//! ReplicationController replaces them on another agent; at no point does the RC have more
//! Running pods than its replicas.

use std::path::Path;
use std::time::Duration;

use conformance::mesos::AgentProcess;
use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(120);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

const RC: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata: {name: keep}
spec:
  replicas: 4
  selector: {app: keep}
  template:
    metadata:
      labels: {app: keep}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: main
        image: busybox
        command: ["sleep", "3600"]
        resources:
          requests: {cpu: 400m, memory: 64Mi}
"#;

fn pods(k: &Kubectl) -> Vec<Json> {
    let out = k.run(&["get", "pods", "-n", "loss", "-l", "app=keep", "-o", "json"]);
    serde_json::from_slice::<Json>(&out.stdout)
        .ok()
        .and_then(|j| j["items"].as_array().cloned())
        .unwrap_or_default()
}

fn running(p: &Json) -> bool {
    p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
}

fn ready(p: &Json) -> bool {
    running(p)
        && p["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

fn node(p: &Json) -> &str {
    p["spec"]["nodeName"].as_str().unwrap_or_default()
}

#[test]
fn pods_of_a_killed_agent_are_replaced_elsewhere() -> anyhow::Result<()> {
    let server = KumosServer::start_with(
        bin(),
        Store::Embedded,
        &[
            "--agents",
            "1",
            "--agent-resources",
            "cpus:1;mem:1024",
            "--agent-ping-timeout",
            "300ms",
            "--max-agent-ping-timeouts",
            "3",
        ],
    )?;
    let master = server.master_url().unwrap_or_default().to_string();
    let secret = server.data_dir().join("agent-secret");
    let mut doomed =
        AgentProcess::start_for(bin(), &master, &secret, "cpus:1;mem:1024", "agent-x")?;
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    k.ok(&["create", "namespace", "loss"]);
    let out = k.run_stdin(&["apply", "-n", "loss", "-f", "-"], RC);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Two pods fit on each agent.
    let placed = eventually(WAIT, "4 ready pods on two agents", || {
        let p: Vec<Json> = pods(&k).into_iter().filter(ready).collect();
        (p.len() == 4).then_some(p)
    })?;
    let on_x: Vec<String> = placed
        .iter()
        .filter(|p| node(p) == "agent-x")
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(on_x.len(), 2, "{placed:?}");
    let _spare = AgentProcess::start_for(bin(), &master, &secret, "cpus:2;mem:2048", "agent-y")?;
    eventually(WAIT, "agent-y to register", || {
        let out = k.run(&["get", "node", "agent-y"]);
        out.status.success().then_some(())
    })?;

    doomed.kill9();
    let mut max_running = 0;
    let replaced = eventually(WAIT, "replacements on agent-y", || {
        let all = pods(&k);
        max_running = max_running.max(all.iter().filter(|p| running(p)).count());
        let ready: Vec<&Json> = all.iter().filter(|p| ready(p)).collect();
        let moved = ready.iter().filter(|p| node(p) == "agent-y").count();
        (ready.len() == 4 && moved == 2).then(|| all.clone())
    })?;
    assert!(max_running <= 4, "the RC ran {max_running} pods at once");
    for name in &on_x {
        let lost = replaced
            .iter()
            .find(|p| p["metadata"]["name"] == name.as_str())
            .ok_or_else(|| anyhow::anyhow!("the lost pod {name} vanished"))?;
        assert_eq!(lost["status"]["phase"], "Failed", "{lost}");
        assert_eq!(lost["status"]["reason"], "NodeLost", "{lost}");
    }
    Ok(())
}
