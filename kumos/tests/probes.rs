//! Restarts and probes end to end (issue 5): pods applied with kubectl run on a local agent
//! (process runtime) of `kumos server`; a failing liveness probe restarts the container
//! and counts the restart, a failing readiness probe keeps the pod Running but not Ready.
//! Deadlines are failure guards only.

use std::path::Path;
use std::time::Duration;

use conformance::{kubectl_binaries, Kubectl, KumosServer, Store};

const WAIT: Duration = Duration::from_secs(120);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

const PODS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: liveness
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "touch healthy; sleep 2; rm healthy; exec sleep 3600"]
    livenessProbe:
      exec: {command: [test, -f, healthy]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata:
  name: unready
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    readinessProbe:
      exec: {command: ["false"]}
      periodSeconds: 1
"#;

fn get(k: &Kubectl, pod: &str, path: &str) -> Option<String> {
    k.try_ok(&[
        "get",
        "-n",
        "pr",
        "pod",
        pod,
        "-o",
        &format!("jsonpath={{{path}}}"),
    ])
}

#[test]
fn liveness_restarts_and_readiness_gates_ready() -> anyhow::Result<()> {
    probes(&[])
}

#[test]
fn liveness_restarts_and_readiness_gates_ready_in_docker() -> anyhow::Result<()> {
    let socket = conformance::docker::socket().display().to_string();
    probes(&["--runtime", "docker", "--docker-socket", &socket])
}

fn probes(extra: &[&str]) -> anyhow::Result<()> {
    let mut flags = vec!["--agents", "1"];
    flags.extend_from_slice(extra);
    let server = KumosServer::start_with(bin(), Store::Embedded, &flags)?;
    let kubectl = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    kubectl.ok(&["create", "namespace", "pr"]);
    kubectl.run_stdin(&["apply", "-n", "pr", "-f", "-"], PODS);

    // The liveness probe fails once `healthy` is gone: the container is restarted.
    conformance::eventually(WAIT, "a restart of pod/liveness", || {
        let n = get(
            &kubectl,
            "liveness",
            ".status.containerStatuses[0].restartCount",
        )?;
        (n.parse::<u32>().ok()? >= 1).then_some(())
    })?;
    conformance::eventually(WAIT, "pod/liveness running again", || {
        let running = get(
            &kubectl,
            "liveness",
            ".status.containerStatuses[0].state.running.startedAt",
        )?;
        let phase = get(&kubectl, "liveness", ".status.phase")?;
        (!running.is_empty() && phase == "Running").then_some(())
    })?;
    let table = kubectl.ok(&["get", "-n", "pr", "pod", "liveness", "--no-headers"]);
    let restarts = table
        .split_whitespace()
        .nth(3)
        .and_then(|r| r.parse::<u32>().ok());
    assert!(restarts.is_some_and(|r| r >= 1), "{table}");

    // Readiness never passes: Running, but not Ready (READY 0/1).
    conformance::eventually(WAIT, "pod/unready running", || {
        let phase = get(&kubectl, "unready", ".status.phase")?;
        let started = get(
            &kubectl,
            "unready",
            ".status.containerStatuses[0].state.running.startedAt",
        )?;
        (phase == "Running" && !started.is_empty()).then_some(())
    })?;
    let ready = get(
        &kubectl,
        "unready",
        r#".status.conditions[?(@.type=="Ready")].status"#,
    );
    assert_eq!(ready.as_deref(), Some("False"));
    let table = kubectl.ok(&["get", "-n", "pr", "pod", "unready", "--no-headers"]);
    assert_eq!(table.split_whitespace().nth(1), Some("0/1"), "{table}");
    // The liveness pod keeps failing its probe, so it alternates between Running and
    // CrashLoopBackOff as kubectl shows it; it is Running again after each restart.
    conformance::eventually(WAIT, "pod/liveness shown Running again", || {
        let table = kubectl.ok(&["get", "-n", "pr", "pod", "liveness", "--no-headers"]);
        (table.split_whitespace().nth(2) == Some("Running")).then_some(())
    })?;
    Ok(())
}
