//! `kubectl logs` end to end: a pod run by `kumos server`'s Kubernetes framework on a local
//! agent (process runtime), its log read through the API server's `pods/log`, which proxies to
//! the agent's container-log endpoint.

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};

/// Failure guard only: nothing here is expected to take long.
const WAIT: Duration = Duration::from_secs(120);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: talker
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "for i in 1 2 3; do echo line-$i; sleep 1; done; sleep 3600"]
"#;

const ALL: &str = "line-1\nline-2\nline-3\n";

/// An RFC3339 UTC timestamp with nine fractional digits, e.g. `2024-01-02T03:04:05.123456789Z`.
fn is_rfc3339_nano(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() == 30
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'.'
        && b[29] == b'Z'
        && b[20..29].iter().all(u8::is_ascii_digit)
}

#[test]
fn kubectl_logs_reads_follows_and_tails_a_pods_output() -> anyhow::Result<()> {
    let server = KumosServer::start_with(bin(), Store::Embedded, &["--agents", "1"])?;
    let bins = kubectl_binaries();
    let kubectl = Kubectl::new(&bins[0], &server.kubeconfig());
    kubectl.ok(&["create", "namespace", "logs"]);
    kubectl.run_stdin(&["apply", "-n", "logs", "-f", "-"], POD);
    kubectl.ok(&[
        "wait",
        "-n",
        "logs",
        "--for=condition=Ready",
        "pod/talker",
        "--timeout=120s",
    ]);

    // -f streams lines as they are written: read until line-3, then stop kubectl.
    let mut follow = kubectl
        .command(&["logs", "-n", "logs", "talker", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = follow
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut followed = Vec::new();
    while followed.last().map(String::as_str) != Some("line-3") {
        match rx.recv_timeout(WAIT) {
            Ok(line) => followed.push(line),
            Err(e) => {
                let _ = follow.kill();
                anyhow::bail!("kubectl logs -f stopped after {followed:?}: {e}");
            }
        }
    }
    follow.kill()?;
    follow.wait()?;
    let _ = reader.join();
    assert_eq!(followed, ["line-1", "line-2", "line-3"]);

    for k in bins.iter().map(|b| Kubectl::new(b, &server.kubeconfig())) {
        assert_eq!(k.ok(&["logs", "-n", "logs", "talker"]), ALL, "{}", k.name());
    }
    assert_eq!(
        kubectl.ok(&["logs", "-n", "logs", "talker", "-c", "main", "--tail=1"]),
        "line-3\n"
    );
    assert_eq!(
        kubectl.ok(&["logs", "-n", "logs", "talker", "--since=1h"]),
        ALL
    );
    let stamped = kubectl.ok(&["logs", "-n", "logs", "talker", "--timestamps"]);
    let lines: Vec<(&str, &str)> = stamped.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(lines.len(), 3, "{stamped}");
    for (i, (ts, text)) in lines.iter().enumerate() {
        assert!(is_rfc3339_nano(ts), "{ts:?} in {stamped}");
        assert_eq!(*text, format!("line-{}", i + 1));
    }
    let err = kubectl.fails(&["logs", "-n", "logs", "talker", "--previous"]);
    assert!(
        err.contains(r#"previous terminated container "main" in pod "talker" not found"#),
        "{err}"
    );
    let err = kubectl.fails(&["logs", "-n", "logs", "talker", "-c", "nope"]);
    assert!(
        err.contains("container nope is not valid for pod talker"),
        "{err}"
    );
    let err = kubectl.fails(&["logs", "-n", "logs", "nobody"]);
    assert!(err.contains(r#"pods "nobody" not found"#), "{err}");
    eventually(WAIT, "pod deleted", || {
        let out = kubectl.run(&["delete", "-n", "logs", "pod", "talker", "--wait=false"]);
        out.status.success().then_some(())
    })?;
    Ok(())
}
