//! The replication controller and the garbage collector inside `kumos server`, driven by the real
//! kubectl: replicas, scaling, release of relabelled pods, replacement, adoption and the Background
//! cascade of `kubectl delete rc`. Pods stay Pending (no scheduler runs yet), which is enough here.

use std::path::PathBuf;
use std::time::Duration;

use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);

fn kumos() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kumos"))
}

fn rc_manifest(name: &str, app: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: v1
kind: ReplicationController
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    app: {app}
  template:
    metadata:
      labels:
        app: {app}
        tier: back
    spec:
      containers:
        - name: app
          image: busybox
          command: ["sleep", "3600"]
"#
    )
}

/// `kubectl apply -f -` of `manifest`, which must succeed.
fn apply(k: &Kubectl, ns: &str, manifest: &str) {
    let out = k.run_stdin(&["apply", "-n", ns, "-f", "-"], manifest);
    assert!(
        out.status.success(),
        "kubectl apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn get_json(k: &Kubectl, args: &[&str]) -> Option<Value> {
    let out = k.run(args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// The pods matching `selector` in `ns` that are not being deleted.
fn live_pods(k: &Kubectl, ns: &str, selector: &str) -> Option<Vec<Value>> {
    let list = get_json(k, &["get", "pods", "-n", ns, "-l", selector, "-o", "json"])?;
    let items = list.get("items")?.as_array()?;
    Some(
        items
            .iter()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .cloned()
            .collect(),
    )
}

fn name_of(obj: &Value) -> String {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn owners_of(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Waits until `n` live pods match `selector`, each controlled by the RC `rc` (of uid `uid`).
fn wait_owned_pods(
    k: &Kubectl,
    ns: &str,
    selector: &str,
    rc: &str,
    uid: &str,
    n: usize,
) -> Vec<Value> {
    eventually(DEADLINE, &format!("{n} pods of {rc}"), || {
        let pods = live_pods(k, ns, selector)?;
        let owned = pods.iter().all(|p| {
            owners_of(p).iter().any(|r| {
                r["kind"] == "ReplicationController"
                    && r["apiVersion"] == "v1"
                    && r["name"] == rc
                    && r["uid"] == uid
                    && r["controller"] == true
                    && r["blockOwnerDeletion"] == true
            })
        });
        (pods.len() == n && owned).then_some(pods)
    })
    .expect("pods of the replication controller")
}

/// Waits until the RC reports `n` replicas, `fully_labeled` of them with all the template's labels.
fn wait_status(k: &Kubectl, ns: &str, rc: &str, n: i64, fully_labeled: i64) {
    eventually(DEADLINE, &format!("{rc} status.replicas = {n}"), || {
        let obj = get_json(k, &["get", "rc", rc, "-n", ns, "-o", "json"])?;
        let status = obj.get("status")?;
        (status.get("replicas")?.as_i64()? == n
            && status
                .get("fullyLabeledReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                == fully_labeled
            && status.get("observedGeneration")?.as_i64()?
                == obj.pointer("/metadata/generation")?.as_i64()?)
        .then_some(())
    })
    .expect("the RC's status");
}

fn uid_of(k: &Kubectl, ns: &str, kind: &str, name: &str) -> String {
    k.ok(&[
        "get",
        kind,
        name,
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.uid}",
    ])
}

#[test]
fn replication_controller_and_garbage_collector() {
    let server = KumosServer::start(&kumos(), Store::Embedded).expect("kumos server");
    let bin = kubectl_binaries().remove(0);
    let k = Kubectl::new(&bin, &server.kubeconfig());
    let ns = "rc-e2e";
    k.ok(&["create", "namespace", ns]);

    // Three replicas from the template, named from generateName, controlled by the RC.
    apply(&k, ns, &rc_manifest("web", "web", 3));
    let uid = uid_of(&k, ns, "rc", "web");
    let pods = wait_owned_pods(&k, ns, "app=web", "web", &uid, 3);
    for p in &pods {
        assert_eq!(
            p.pointer("/metadata/generateName"),
            Some(&Value::from("web-"))
        );
        assert!(name_of(p).starts_with("web-"), "{}", name_of(p));
        assert_eq!(
            p.pointer("/metadata/labels/tier"),
            Some(&Value::from("back"))
        );
    }
    wait_status(&k, ns, "web", 3, 3);

    // Scale up, then down.
    k.ok(&["scale", "rc", "web", "-n", ns, "--replicas=5"]);
    wait_owned_pods(&k, ns, "app=web", "web", &uid, 5);
    wait_status(&k, ns, "web", 5, 5);
    k.ok(&["scale", "rc", "web", "-n", ns, "--replicas=4"]);
    let pods = wait_owned_pods(&k, ns, "app=web", "web", &uid, 4);
    wait_status(&k, ns, "web", 4, 4);

    // A pod relabelled out of the selector is released (it stays, without owner) and replaced.
    let relabelled = name_of(&pods[0]);
    k.ok(&[
        "label",
        "pod",
        &relabelled,
        "-n",
        ns,
        "app=other",
        "--overwrite",
    ]);
    let pods = wait_owned_pods(&k, ns, "app=web", "web", &uid, 4);
    assert!(pods.iter().all(|p| name_of(p) != relabelled));
    eventually(DEADLINE, "the relabelled pod released", || {
        let pod = get_json(&k, &["get", "pod", &relabelled, "-n", ns, "-o", "json"])?;
        owners_of(&pod).is_empty().then_some(())
    })
    .expect("release");

    // A deleted pod is replaced.
    let victim = name_of(&pods[0]);
    k.ok(&["delete", "pod", &victim, "-n", ns]);
    let pods = wait_owned_pods(&k, ns, "app=web", "web", &uid, 4);
    assert!(pods.iter().all(|p| name_of(p) != victim));

    // Deleting the RC (Background, kubectl's default) takes its pods along; the released one stays.
    k.ok(&["delete", "rc", "web", "-n", ns]);
    eventually(DEADLINE, "the RC's pods deleted", || {
        live_pods(&k, ns, "app=web")?.is_empty().then_some(())
    })
    .expect("garbage collection");
    let kept = live_pods(&k, ns, "app=other").expect("pods");
    assert_eq!(kept.len(), 1, "the released pod stays");

    // An orphan matching a new RC's selector is adopted instead of creating a pod.
    let orphan = r#"apiVersion: v1
kind: Pod
metadata:
  name: orphan
  labels:
    app: adopt
spec:
  containers:
    - name: app
      image: busybox
      command: ["sleep", "3600"]
"#;
    apply(&k, ns, orphan);
    apply(&k, ns, &rc_manifest("adopter", "adopt", 1));
    let uid = uid_of(&k, ns, "rc", "adopter");
    let pods = wait_owned_pods(&k, ns, "app=adopt", "adopter", &uid, 1);
    assert_eq!(name_of(&pods[0]), "orphan");
    // The orphan lacks the template's `tier` label: it is not fully labelled.
    wait_status(&k, ns, "adopter", 1, 0);
    // Still one pod once the RC has settled.
    let pods = live_pods(&k, ns, "app=adopt").expect("pods");
    assert_eq!(pods.len(), 1, "adoption must not add a pod");
}

/// A pod whose only owner, of the given kind, does not exist.
fn owned_pod(name: &str, api_version: &str, kind: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "Pod",
            "metadata": {{"name": "{name}", "ownerReferences": [
                {{"apiVersion": "{api_version}", "kind": "{kind}", "name": "ghost",
                  "uid": "6a1f0000-0000-4000-8000-000000000000"}}]}},
            "spec": {{"containers": [{{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}}]}}}}"#
    )
}

/// A child process killed on drop (when a test fails half-way).
struct Guard(Option<std::process::Child>);

impl Guard {
    /// Stops the process with SIGTERM and returns whether it exited successfully.
    fn terminate(&mut self) -> bool {
        let Some(mut child) = self.0.take() else {
            return false;
        };
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().is_ok_and(|s| s.success())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `kumos controllers` against a separate `kumos apiserver`, stopped by SIGTERM.
#[test]
fn controllers_subcommand_against_a_separate_apiserver() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let mut api = Command::new(kumos())
        .arg("apiserver")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("KUMOS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("kumos apiserver");
    let stdout = api.stdout.take().expect("stdout");
    let mut api = Guard(Some(api));
    // The first line is printed once the kubeconfig is written.
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("apiserver output");
    assert!(line.contains("serving on"), "{line}");
    let kubeconfig = dir.path().join("kubeconfig");
    let bin = kubectl_binaries().remove(0);
    let k = Kubectl::new(&bin, &kubeconfig);
    let ns = "default";
    // Before the controllers start: a pod whose only owner never existed (the first sweep collects
    // it) and one owned by a kind the collector does not know (kept). Listing is in name order, so
    // the sweep has looked at `a-foreign` once `dangling` is gone.
    apply(
        &k,
        ns,
        &owned_pod("dangling", "v1", "ReplicationController"),
    );
    apply(&k, ns, &owned_pod("a-foreign", "apps/v1", "ReplicaSet"));
    let controllers = Command::new(kumos())
        .arg("controllers")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--master", "http://127.0.0.1:1"])
        .env("KUMOS_LOG", "warn")
        .spawn()
        .expect("kumos controllers");
    let mut controllers = Guard(Some(controllers));

    eventually(DEADLINE, "the sweep at start", || {
        let pod = k.run(&["get", "pod", "dangling", "-n", ns]);
        (!pod.status.success()).then_some(())
    })
    .expect("the dangling pod collected");
    k.ok(&["get", "pod", "a-foreign", "-n", ns]);

    // A ConfigMap owned by a Service goes with it.
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "owner-svc",
        "-n",
        ns,
        "--tcp=80:80",
    ]);
    let svc_uid = uid_of(&k, ns, "service", "owner-svc");
    let cm = format!(
        r#"{{"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {{"name": "owned-cm", "ownerReferences": [
                {{"apiVersion": "v1", "kind": "Service", "name": "owner-svc", "uid": "{svc_uid}"}}]}},
            "data": {{"a": "b"}}}}"#
    );
    apply(&k, ns, &cm);
    k.ok(&["get", "configmap", "owned-cm", "-n", ns]);
    k.ok(&["delete", "service", "owner-svc", "-n", ns]);
    eventually(DEADLINE, "the ConfigMap of a deleted Service", || {
        let cm = k.run(&["get", "configmap", "owned-cm", "-n", ns]);
        (!cm.status.success()).then_some(())
    })
    .expect("the owned ConfigMap collected");
    apply(&k, ns, &rc_manifest("solo", "solo", 2));
    let uid = uid_of(&k, ns, "rc", "solo");
    wait_owned_pods(&k, ns, "app=solo", "solo", &uid, 2);
    wait_status(&k, ns, "solo", 2, 2);

    assert!(
        controllers.terminate(),
        "kumos controllers exits 0 on SIGTERM"
    );
    assert!(api.terminate(), "kumos apiserver exits 0 on SIGTERM");
}
