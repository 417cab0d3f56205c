//! Issue 6, acceptance 1: the kubectl journey against `kumos server` (its master, local agents and
//! controllers), with the process runtime and again with the docker runtime.

use std::path::Path;
use std::time::Duration;

use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(120);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

fn manifests() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/manifests/journey")
}

fn json(k: &Kubectl, args: &[&str]) -> Option<Json> {
    serde_json::from_str(&k.try_ok(args)?).ok()
}

/// Pods of the RC (by label), as JSON items.
fn pods(k: &Kubectl, selector: &str) -> Vec<Json> {
    json(
        k,
        &["get", "pods", "-n", "journey", "-l", selector, "-o", "json"],
    )
    .and_then(|j| j["items"].as_array().cloned())
    .unwrap_or_default()
}

fn running_ready(p: &Json) -> bool {
    p["status"]["phase"] == "Running"
        && p["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        && p["metadata"]["deletionTimestamp"].is_null()
}

fn wait_ready_count(k: &Kubectl, selector: &str, n: usize) -> anyhow::Result<Vec<Json>> {
    eventually(WAIT, &format!("{n} ready pods for {selector}"), || {
        let ready: Vec<Json> = pods(k, selector)
            .into_iter()
            .filter(running_ready)
            .collect();
        (ready.len() == n).then_some(ready)
    })
}

fn journey(extra: &[&str]) -> anyhow::Result<()> {
    let mut flags = vec!["--agents", "2", "--agent-resources", "cpus:2;mem:2048"];
    flags.extend_from_slice(extra);
    let server = KumosServer::start_with(bin(), Store::Embedded, &flags)?;
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    k.ok(&["create", "namespace", "journey"]);
    let dir = manifests();
    k.ok(&[
        "apply",
        "-n",
        "journey",
        "-f",
        &dir.join("rc.yaml").display().to_string(),
    ]);
    k.ok(&[
        "apply",
        "-n",
        "journey",
        "-f",
        &dir.join("service.yaml").display().to_string(),
    ]);

    // Three pods Running and Ready, with node, podIP and owner.
    k.ok(&[
        "wait",
        "-n",
        "journey",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=sleeper",
        "--timeout=120s",
    ]);
    let ready = wait_ready_count(&k, "app=sleeper", 3)?;
    for p in &ready {
        let node = p["spec"]["nodeName"].as_str().unwrap_or_default();
        assert!(node == "agent-0" || node == "agent-1", "{p}");
        assert_eq!(p["status"]["podIP"], "127.0.0.1");
        assert_eq!(
            p["metadata"]["ownerReferences"][0]["kind"],
            "ReplicationController"
        );
        assert_eq!(p["metadata"]["ownerReferences"][0]["name"], "sleeper");
    }
    let wide = k.ok(&["get", "pods", "-n", "journey", "-o", "wide"]);
    assert!(
        wide.contains("agent-") && wide.contains("127.0.0.1"),
        "{wide}"
    );

    // Scale to 5.
    k.ok(&["scale", "-n", "journey", "rc/sleeper", "--replicas=5"]);
    wait_ready_count(&k, "app=sleeper", 5)?;

    // Relabel one pod out of the selector: it stays, and the RC replaces it.
    let victim = ready[0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    k.ok(&[
        "label",
        "-n",
        "journey",
        "pod",
        &victim,
        "app=orphan",
        "--overwrite",
    ]);
    wait_ready_count(&k, "app=sleeper", 5)?;
    let orphan = json(&k, &["get", "pod", "-n", "journey", &victim, "-o", "json"])
        .ok_or_else(|| anyhow::anyhow!("the relabelled pod is gone"))?;
    assert!(orphan["metadata"]["ownerReferences"]
        .as_array()
        .is_none_or(|o| o.is_empty()));
    assert_eq!(orphan["status"]["phase"], "Running");

    // Delete a pod: replaced.
    let current = pods(&k, "app=sleeper");
    let gone = current[0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    k.ok(&["delete", "pod", "-n", "journey", &gone, "--timeout=60s"]);
    let replaced = wait_ready_count(&k, "app=sleeper", 5)?;
    assert!(replaced
        .iter()
        .all(|p| p["metadata"]["name"] != gone.as_str()));

    // Endpoints list the ready pods (named targetPort resolved to each pod's host port).
    let endpoints = eventually(WAIT, "endpoints of the 5 ready pods", || {
        let ep = json(
            &k,
            &["get", "endpoints", "-n", "journey", "sleeper", "-o", "json"],
        )?;
        let names: Vec<String> = ep["subsets"]
            .as_array()?
            .iter()
            .flat_map(|s| s["addresses"].as_array().cloned().unwrap_or_default())
            .filter_map(|a| a["targetRef"]["name"].as_str().map(str::to_string))
            .collect();
        (names.len() == 5).then_some(ep)
    })?;
    assert_eq!(endpoints["subsets"][0]["addresses"][0]["ip"], "127.0.0.1");
    // Each pod's named container port is published on the host port it was given from the offer.
    for subset in endpoints["subsets"].as_array().into_iter().flatten() {
        let port = subset["ports"][0]["port"].as_u64().unwrap_or_default();
        assert!(
            (20000..30000).contains(&port),
            "endpoint port {port}: {endpoints}"
        );
    }

    // Logs show the container's output; describe shows the scheduling and start events.
    let one = replaced[0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let logs = eventually(WAIT, "kubectl logs", || {
        let l = k.try_ok(&["logs", "-n", "journey", &one])?;
        l.contains("started-").then_some(l)
    })?;
    assert!(logs.contains("-ok"), "{logs}");
    let describe = k.ok(&["describe", "pod", "-n", "journey", &one]);
    for want in [
        "Scheduled",
        "Started container main",
        "Controlled By:  ReplicationController/sleeper",
    ] {
        assert!(
            describe.contains(want),
            "describe lacks {want:?}:\n{describe}"
        );
    }

    // Delete the RC: its pods go away (the relabelled orphan stays).
    k.ok(&["delete", "rc", "-n", "journey", "sleeper"]);
    eventually(WAIT, "the RC's pods to go", || {
        pods(&k, "app=sleeper").is_empty().then_some(())
    })?;
    assert_eq!(pods(&k, "app=orphan").len(), 1);

    // Delete the namespace: everything in it goes away.
    k.ok(&["delete", "namespace", "journey", "--timeout=120s"]);
    let ns = k.run(&["get", "namespace", "journey"]);
    assert!(!ns.status.success());
    Ok(())
}

#[test]
fn kubectl_journey_with_the_process_runtime() -> anyhow::Result<()> {
    journey(&[])
}

#[test]
fn kubectl_journey_with_the_docker_runtime() -> anyhow::Result<()> {
    let socket = conformance::docker::socket().display().to_string();
    journey(&["--runtime", "docker", "--docker-socket", &socket])
}
