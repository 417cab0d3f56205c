//! The Kubernetes framework end to end: pods applied with kubectl are placed through offers from
//! the built-in master, run by the local agents (process runtime), and report status back.
//! `kumos server` runs the framework with its other controllers, over its own HTTP API and the
//! master's scheduler API, as `kumos controllers` would from another machine.

use std::path::Path;
use std::time::Duration;

use conformance::mesos::AgentProcess;
use conformance::{kubectl_binaries, Kubectl, KumosServer, Store};

const WAIT: Duration = Duration::from_secs(120);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: hello
  labels: {app: hello}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo hello-from-a-pod; exec sleep 3600"]
    resources:
      requests: {cpu: 250m, memory: 64Mi}
"#;

const BIG: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: big
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    resources:
      requests: {cpu: "50"}
"#;

const ONESHOT: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: oneshot-ok
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "exit 0"]
---
apiVersion: v1
kind: Pod
metadata:
  name: oneshot-fail
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "exit 3"]
"#;

#[test]
fn pods_run_through_offers_and_report_status() -> anyhow::Result<()> {
    let server = KumosServer::start_with(
        bin(),
        Store::Embedded,
        &["--agents", "2", "--agent-resources", "cpus:2;mem:2048"],
    )?;
    let kubectl = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    kubectl.ok(&["create", "namespace", "fw"]);
    kubectl.run_stdin(&["apply", "-n", "fw", "-f", "-"], POD);
    kubectl.ok(&[
        "wait",
        "-n",
        "fw",
        "--for=condition=Ready",
        "pod/hello",
        "--timeout=120s",
    ]);
    let pod: serde_json::Value =
        serde_json::from_str(&kubectl.ok(&["get", "-n", "fw", "pod", "hello", "-o", "json"]))?;
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(pod["status"]["podIP"], "127.0.0.1");
    let node = pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(node == "agent-0" || node == "agent-1", "{node}");
    let cs = &pod["status"]["containerStatuses"][0];
    assert_eq!(cs["ready"], true);
    assert!(cs["containerID"]
        .as_str()
        .unwrap_or_default()
        .starts_with("process://"));
    assert!(cs["state"]["running"]["startedAt"].is_string());
    let describe = kubectl.ok(&["describe", "-n", "fw", "pod", "hello"]);
    for want in [
        "Scheduled",
        "Successfully assigned fw/hello to",
        "Started",
        "Started container main",
        "Pulled",
        "already present on machine",
    ] {
        assert!(
            describe.contains(want),
            "describe lacks {want:?}:\n{describe}"
        );
    }

    // Too big for every agent: Pending with kube-scheduler's reason, until an agent that fits
    // registers (no other action needed).
    kubectl.run_stdin(&["apply", "-n", "fw", "-f", "-"], BIG);
    conformance::eventually(WAIT, "FailedScheduling", || {
        let d = kubectl.try_ok(&["describe", "-n", "fw", "pod", "big"])?;
        d.contains("FailedScheduling").then_some(d)
    })
    .map(|d| {
        assert!(
            d.contains("0/2 nodes are available: 2 Insufficient cpu."),
            "{d}"
        )
    })?;
    let phase = kubectl.ok(&[
        "get",
        "-n",
        "fw",
        "pod",
        "big",
        "-o",
        "jsonpath={.status.phase}",
    ]);
    assert_eq!(phase, "Pending");
    let master = server.master_url().unwrap_or_default().to_string();
    let _big_agent = AgentProcess::start_for(
        bin(),
        &master,
        &server.data_dir().join("agent-secret"),
        "cpus:64;mem:4096",
        "agent-big",
    )?;
    kubectl.ok(&[
        "wait",
        "-n",
        "fw",
        "--for=condition=Ready",
        "pod/big",
        "--timeout=120s",
    ]);
    let node = kubectl.ok(&[
        "get",
        "-n",
        "fw",
        "pod",
        "big",
        "-o",
        "jsonpath={.spec.nodeName}",
    ]);
    assert_eq!(node, "agent-big");

    // Exit codes become pod phases.
    kubectl.run_stdin(&["apply", "-n", "fw", "-f", "-"], ONESHOT);
    for (pod, phase) in [("oneshot-ok", "Succeeded"), ("oneshot-fail", "Failed")] {
        conformance::eventually(WAIT, phase, || {
            let p = kubectl.try_ok(&[
                "get",
                "-n",
                "fw",
                "pod",
                pod,
                "-o",
                "jsonpath={.status.phase}",
            ])?;
            (p == phase).then_some(())
        })?;
    }
    let code = kubectl.ok(&[
        "get",
        "-n",
        "fw",
        "pod",
        "oneshot-fail",
        "-o",
        "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}",
    ]);
    assert_eq!(code, "3");

    // Graceful deletion: the task is killed, then the pod goes away.
    kubectl.ok(&["delete", "-n", "fw", "pod", "hello", "--timeout=60s"]);
    let gone = kubectl.run(&["get", "-n", "fw", "pod", "hello"]);
    assert!(!gone.status.success());
    Ok(())
}
