//! API semantics through real kubectl (issue 3's kubectl-visible parts that exist today): client-side
//! apply with strategic merge patches, `diff`, every patch type, `scale`, finalizers and stale
//! resourceVersions.

use std::path::{Path, PathBuf};

use conformance::{kubectl_binaries, Kubectl, KumosServer, Store};

fn kumos() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kumos"))
}

fn manifest(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../conformance/manifests")
            .join(name),
    )
    .expect("manifest")
}

/// One field of an object, by kubectl's JSONPath output.
fn jsonpath(k: &Kubectl, ns: &str, kind: &str, name: &str, path: &str) -> String {
    k.ok(&[
        "get",
        kind,
        name,
        "-n",
        ns,
        "-o",
        &format!("jsonpath={path}"),
    ])
}

fn semantics(k: &Kubectl, ns: &str) {
    let v = k.name();
    k.ok(&["create", "namespace", ns]);
    let duo = manifest("two-containers.yaml");
    let out = k.run_stdin(&["apply", "-n", ns, "-f", "-"], &duo);
    assert!(
        out.status.success(),
        "{v}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Changing one container's field keeps the other container and the untouched fields.
    let changed = duo.replacen("image: busybox:1.36", "image: busybox:1.37", 1);
    let out = k.run_stdin(&["diff", "-n", ns, "-f", "-"], &changed);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{v}: diff of a change exits 1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = k.run_stdin(&["diff", "-n", ns, "-f", "-"], &duo);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v}: diff of no change exits 0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = k.run_stdin(&["apply", "-n", ns, "-f", "-"], &changed);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "pod/duo configured",
        "{v}"
    );
    let env = jsonpath(k, ns, "pod", "duo", "{.spec.containers[0].env[0].value}");
    assert_eq!(env, "fast", "{v}");
    let images = jsonpath(k, ns, "pod", "duo", "{.spec.containers[*].image}");
    assert_eq!(images, "busybox:1.37 busybox:1.36", "{v}");
    let names = jsonpath(k, ns, "pod", "duo", "{.spec.containers[*].name}");
    assert_eq!(names, "front back", "{v}");
    let cmd = jsonpath(k, ns, "pod", "duo", "{.spec.containers[1].command[1]}");
    assert_eq!(cmd, "7200", "{v}");

    // Every patch type.
    k.ok(&[
        "patch",
        "pod",
        "duo",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"m":"1"}}}"#,
    ]);
    k.ok(&[
        "patch",
        "pod",
        "duo",
        "-n",
        ns,
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/metadata/labels/j","value":"2"}]"#,
    ]);
    k.ok(&[
        "patch",
        "pod",
        "duo",
        "-n",
        ns,
        "--type=strategic",
        "-p",
        r#"{"spec":{"containers":[{"name":"back","image":"busybox:1.37"}]}}"#,
    ]);
    let labels = jsonpath(
        k,
        ns,
        "pod",
        "duo",
        "{.metadata.labels.m}{.metadata.labels.j}",
    );
    assert_eq!(labels, "12", "{v}");
    let images = jsonpath(k, ns, "pod", "duo", "{.spec.containers[*].image}");
    assert_eq!(images, "busybox:1.37 busybox:1.37", "{v}");

    // Scale.
    let rc = manifest("rc.yaml");
    let out = k.run_stdin(&["apply", "-n", ns, "-f", "-"], &rc);
    assert!(out.status.success(), "{v}");
    assert_eq!(
        k.ok(&["scale", "rc", "web-rc", "-n", ns, "--replicas=3"])
            .trim(),
        "replicationcontroller/web-rc scaled"
    );
    let err = k.fails(&[
        "scale",
        "rc",
        "web-rc",
        "-n",
        ns,
        "--current-replicas=2",
        "--replicas=5",
    ]);
    assert!(
        err.contains("Expected replicas to be 2, was 3"),
        "{v}: {err}"
    );
    k.ok(&[
        "scale",
        "rc",
        "web-rc",
        "-n",
        ns,
        "--current-replicas=3",
        "--replicas=5",
    ]);
    assert_eq!(jsonpath(k, ns, "rc", "web-rc", "{.spec.replicas}"), "5");

    // A finalizer holds deletion until it is removed.
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n";
    assert!(k
        .run_stdin(&["create", "-n", ns, "-f", "-"], held)
        .status
        .success());
    k.ok(&["delete", "configmap", "held", "-n", ns, "--wait=false"]);
    let ts = jsonpath(k, ns, "configmap", "held", "{.metadata.deletionTimestamp}");
    assert!(!ts.is_empty(), "{v}: deletionTimestamp set");
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let err = k.fails(&["get", "configmap", "held", "-n", ns]);
    assert!(err.contains("NotFound"), "{v}: {err}");

    // A stale resourceVersion is a conflict with the exact message.
    k.ok(&["create", "configmap", "cas", "-n", ns, "--from-literal=a=1"]);
    let stale = k.ok(&["get", "configmap", "cas", "-n", ns, "-o", "yaml"]);
    k.ok(&[
        "patch",
        "configmap",
        "cas",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"data":{"a":"2"}}"#,
    ]);
    let out = k.run_stdin(&["replace", "-n", ns, "-f", "-"], &stale);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Operation cannot be fulfilled on configmaps \"cas\": the object has been modified; please apply your changes to the latest version and try again"),
        "{v}: {err}"
    );
    // ... and so is a stale resourceVersion inside a patch.
    let stale_rv = k.ok(&[
        "get",
        "configmap",
        "cas",
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    k.ok(&[
        "patch",
        "configmap",
        "cas",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"data":{"a":"3"}}"#,
    ]);
    let stale_patch =
        format!(r#"{{"metadata":{{"resourceVersion":"{stale_rv}"}},"data":{{"a":"4"}}}}"#);
    let err = k.fails(&[
        "patch",
        "configmap",
        "cas",
        "-n",
        ns,
        "--type=merge",
        "-p",
        &stale_patch,
    ]);
    assert!(
        err.contains(
            "Operation cannot be fulfilled on configmaps \"cas\": the object has been modified"
        ),
        "{v}: {err}"
    );
    // Moving the client-side-applied pod to server-side apply: `kubectl patch` owns the image it changed, so
    // applying the old image conflicts with it; a configuration matching the live pod goes through.
    let out = k.run_stdin(&["apply", "--server-side", "-n", ns, "-f", "-"], &changed);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("conflict with \"kubectl-patch\": .spec.containers[name=\"back\"].image"),
        "{v}: {err}"
    );
    let live = duo.replace("busybox:1.36", "busybox:1.37");
    let out = k.run_stdin(&["apply", "--server-side", "-n", ns, "-f", "-"], &live);
    assert!(
        out.status.success(),
        "{v}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server_side_apply(k, ns);
    k.ok(&["delete", "namespace", ns]);
    namespace_termination(k, &format!("{ns}-term"));
}

/// Deleting a namespace: Terminating while anything with a finalizer is left, 403 for new content, gone
/// once emptied.
fn namespace_termination(k: &Kubectl, ns: &str) {
    let v = k.name();
    k.ok(&["create", "namespace", ns]);
    let held = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n";
    assert!(k
        .run_stdin(&["create", "-n", ns, "-f", "-"], held)
        .status
        .success());
    k.ok(&["delete", "namespace", ns, "--wait=false"]);
    let phase = k.ok(&["get", "namespace", ns, "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Terminating", "{v}");
    let err = k.fails(&[
        "create",
        "configmap",
        "late",
        "-n",
        ns,
        "--from-literal=a=b",
    ]);
    assert!(
        err.contains(&format!(
            "configmaps \"late\" is forbidden: unable to create new content in namespace {ns} because it is being terminated"
        )),
        "{v}: {err}"
    );
    k.ok(&[
        "patch",
        "configmap",
        "held",
        "-n",
        ns,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    let err = k.fails(&["get", "namespace", ns]);
    assert!(err.contains("NotFound"), "{v}: {err}");
}

/// `apply --server-side`: creates, records ownership, conflicts with a second manager, `--force-conflicts`
/// takes over, and fields dropped from a manager's configuration are removed.
fn server_side_apply(k: &Kubectl, ns: &str) {
    let v = k.name();
    let config = |value: &str, extra: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  owned: \"{value}\"\n{extra}")
    };
    let out = k.run_stdin(
        &["apply", "--server-side", "-n", ns, "-f", "-"],
        &config("1", "  extra: \"x\"\n"),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configmap/ssa serverside-applied",
        "{v}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let managers = jsonpath(
        k,
        ns,
        "configmap",
        "ssa",
        "{.metadata.managedFields[*].manager}",
    );
    assert_eq!(managers, "kubectl", "{v}");

    let other = [
        "apply",
        "--server-side",
        "--field-manager=other",
        "-n",
        ns,
        "-f",
        "-",
    ];
    let out = k.run_stdin(&other, &config("2", ""));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{v}: a conflicting apply must fail");
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\": .data.owned"),
        "{v}: {err}"
    );

    let forced = [
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-n",
        ns,
        "-f",
        "-",
    ];
    let out = k.run_stdin(&forced, &config("2", ""));
    assert!(
        out.status.success(),
        "{v}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        jsonpath(k, ns, "configmap", "ssa", "{.data.owned}"),
        "2",
        "{v}"
    );

    // kubectl's configuration no longer sets `extra`, which it owned alone: it is removed.
    let out = k.run_stdin(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-n",
            ns,
            "-f",
            "-",
        ],
        &config("2", ""),
    );
    assert!(
        out.status.success(),
        "{v}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        jsonpath(k, ns, "configmap", "ssa", "{.data}"),
        r#"{"owned":"2"}"#,
        "{v}"
    );
}

#[test]
fn api_semantics_through_kubectl() {
    let server = KumosServer::start(&kumos(), Store::Embedded).expect("kumos server");
    for (i, bin) in kubectl_binaries().iter().enumerate() {
        semantics(
            &Kubectl::new(bin, &server.kubeconfig()),
            &format!("sem-{i}"),
        );
    }
}
