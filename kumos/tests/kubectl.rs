//! Issue 2, acceptance 2: real kubectl (the default version and 1.28) against `kumos server` on the
//! embedded store and on a real etcd.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use conformance::{kubectl_binaries, EtcdProcess, Kubectl, KumosServer, Store};

fn kumos() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kumos"))
}

fn manifest(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../conformance/manifests")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Every kubectl step of the acceptance list, in a namespace of its own.
fn scenario(k: &Kubectl, ns: &str) {
    let v = k.name();
    let resources = k.ok(&["api-resources"]);
    for (name, short) in [
        ("configmaps", "cm"),
        ("endpoints", "ep"),
        ("events", "ev"),
        ("namespaces", "ns"),
        ("nodes", "no"),
        ("pods", "po"),
        ("replicationcontrollers", "rc"),
        ("services", "svc"),
    ] {
        assert!(
            resources
                .lines()
                .any(|l| words(l).starts_with(&[name, short])),
            "{v}: api-resources lacks {name}/{short}:\n{resources}"
        );
    }

    assert_eq!(
        k.ok(&["create", "namespace", ns]).trim(),
        format!("namespace/{ns} created")
    );
    // kubectl ≥1.32 sends these three as protobuf bodies.
    let out = k.ok(&[
        "create",
        "configmap",
        "proto-cm",
        "-n",
        ns,
        "--from-literal=a=b",
    ]);
    assert_eq!(out.trim(), "configmap/proto-cm created", "{v}");
    let data = k.ok(&[
        "get",
        "configmap",
        "proto-cm",
        "-n",
        ns,
        "-o",
        "jsonpath={.data.a}",
    ]);
    assert_eq!(data, "b", "{v}");
    let out = k.ok(&[
        "create",
        "service",
        "clusterip",
        "proto-svc",
        "-n",
        ns,
        "--tcp=80:8080",
    ]);
    assert_eq!(out.trim(), "service/proto-svc created", "{v}");
    let port = k.ok(&[
        "get",
        "service",
        "proto-svc",
        "-n",
        ns,
        "-o",
        "jsonpath={.spec.ports[0].targetPort}",
    ]);
    assert_eq!(port, "8080", "{v}");
    for (file, kind, name) in [
        ("pod.yaml", "pod", "web"),
        ("rc.yaml", "replicationcontroller", "web-rc"),
        ("service.yaml", "service", "web"),
        ("configmap.yaml", "configmap", "settings"),
    ] {
        let out = k.ok(&["apply", "-n", ns, "-f", &manifest(file)]);
        assert_eq!(out.trim(), format!("{kind}/{name} created"), "{v}");
    }
    // Re-applying an unchanged manifest is a no-op.
    let out = k.ok(&["apply", "-n", ns, "-f", &manifest("pod.yaml")]);
    assert_eq!(out.trim(), "pod/web unchanged", "{v}");

    let pods = k.ok(&["get", "pods", "-n", ns]);
    let lines: Vec<&str> = pods.lines().collect();
    assert_eq!(
        words(lines[0]),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{v}: {pods}"
    );
    assert_eq!(
        words(lines[1])[..4],
        ["web", "0/1", "Pending", "0"],
        "{v}: {pods}"
    );
    let wide = k.ok(&["get", "pods", "-n", ns, "-o", "wide"]);
    assert!(
        words(wide.lines().next().unwrap_or_default()).contains(&"NODE"),
        "{v}: {wide}"
    );
    let svc = k.ok(&["get", "svc", "web", "-n", ns]);
    assert_eq!(
        words(svc.lines().next().unwrap_or_default()),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{v}: {svc}"
    );
    let cluster_ip = words(svc.lines().nth(1).unwrap_or_default())[2].to_string();
    assert!(
        cluster_ip.starts_with("127."),
        "{v}: cluster IP {cluster_ip} is not loopback"
    );

    let yaml = k.ok(&["get", "pod", "web", "-n", ns, "-o", "yaml"]);
    for needle in [
        "kind: Pod",
        "name: web",
        "restartPolicy: Always",
        "phase: Pending",
        "uid: ",
    ] {
        assert!(
            yaml.contains(needle),
            "{v}: -o yaml lacks {needle}:\n{yaml}"
        );
    }

    let selected = k.ok(&["get", "pods", "-n", ns, "-l", "app=web", "-o", "name"]);
    assert_eq!(selected.trim(), "pod/web", "{v}");
    let set_based = k.ok(&[
        "get",
        "pods,services,configmaps",
        "-n",
        ns,
        "-l",
        "app in (web,db)",
        "-o",
        "name",
    ]);
    let mut names: Vec<&str> = set_based.lines().collect();
    names.sort();
    assert_eq!(
        names,
        ["configmap/settings", "pod/web", "service/web"],
        "{v}"
    );
    let none = k.run(&[
        "get",
        "pods",
        "-n",
        ns,
        "-l",
        "app notin (web,web-rc),!missing",
    ]);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("No resources found"),
        "{v}"
    );
    let by_field = k.ok(&[
        "get",
        "pods",
        "-n",
        ns,
        "--field-selector",
        "metadata.name=web",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "pod/web", "{v}");
    let by_phase = k.run(&[
        "get",
        "pods",
        "-n",
        ns,
        "--field-selector",
        "status.phase=Running",
    ]);
    assert!(
        String::from_utf8_lossy(&by_phase.stderr).contains("No resources found"),
        "{v}"
    );

    watch_sees_a_later_change(k, ns);

    let explain = k.ok(&["explain", "pod.spec.containers"]);
    assert!(
        explain.contains("DESCRIPTION") && explain.contains("image"),
        "{v}: {explain}"
    );

    // The exact error texts a real cluster gives.
    let err = k.fails(&["get", "pod", "nope", "-n", ns]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): pods \"nope\" not found",
        "{v}"
    );
    let err = k.fails(&["create", "-n", ns, "-f", &manifest("pod.yaml")]);
    assert!(
        err.contains("Error from server (AlreadyExists): error when creating")
            && err.contains("pods \"web\" already exists"),
        "{v}: {err}"
    );
    let err = k.fails(&["apply", "-n", ns, "-f", &manifest("bad-pod.yaml")]);
    assert!(
        err.contains(
            "The Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of"
        ),
        "{v}: {err}"
    );

    assert_eq!(
        k.ok(&["delete", "pod", "web", "-n", ns]).trim(),
        "pod \"web\" deleted",
        "{v}"
    );
    let err = k.fails(&["get", "pod", "web", "-n", ns]);
    assert_eq!(
        err.trim(),
        "Error from server (NotFound): pods \"web\" not found",
        "{v}"
    );
    k.ok(&["delete", "namespace", ns]);
}

/// `kubectl get -w` prints the current object, then a change made afterwards.
fn watch_sees_a_later_change(k: &Kubectl, ns: &str) {
    let mut child = k
        .command(&[
            "get",
            "configmap",
            "settings",
            "-n",
            ns,
            "-w",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("header line");
    assert_eq!(words(&first)[..2], ["EVENT", "NAME"], "{}", k.name());
    let added = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("ADDED line");
    assert_eq!(words(&added)[..2], ["ADDED", "settings"], "{}", k.name());
    k.ok(&["label", "configmap", "settings", "-n", ns, "changed=yes"]);
    let modified = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("MODIFIED line");
    assert_eq!(
        words(&modified)[..2],
        ["MODIFIED", "settings"],
        "{}",
        k.name()
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
}

#[test]
fn kubectl_against_the_embedded_store() {
    // No agents: the API-level checks below see pods stay Pending.
    let server = KumosServer::start_with(&kumos(), Store::Embedded, &["--agents", "0"])
        .expect("kumos server");
    for (i, bin) in kubectl_binaries().iter().enumerate() {
        scenario(
            &Kubectl::new(bin, &server.kubeconfig()),
            &format!("e2e-{i}"),
        );
    }
}

#[test]
fn kubectl_against_etcd() {
    let etcd = EtcdProcess::start().expect("etcd");
    let server =
        KumosServer::start_with(&kumos(), Store::Etcd(etcd.endpoint()), &["--agents", "0"])
            .expect("kumos server");
    for (i, bin) in kubectl_binaries().iter().enumerate() {
        scenario(
            &Kubectl::new(bin, &server.kubeconfig()),
            &format!("e2e-{i}"),
        );
    }
}
