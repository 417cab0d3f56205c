//! Issue 6, acceptance 4: a pymesos framework and a ReplicationController share a saturated
//! two-agent cluster, and the allocator's weighted DRF gives each role its weight's share.
//!
//! Role weights: `kubernetes` 1, `batch` 3. The pymesos framework (role `batch`) fills the cluster
//! first with short tasks, so resources keep returning to the allocator; the RC's long-running
//! pods then win each freed slot only while the `kubernetes` role's weighted share is the lower:
//! it settles at a quarter of the cpus (1 of 4), the batch role holding the rest. With equal
//! weights it would settle at half.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use conformance::mesos::{is_event, PymesosScheduler};
use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(120);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

const RC: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata: {name: share}
spec:
  replicas: 8
  selector: {app: share}
  template:
    metadata:
      labels: {app: share}
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sleep", "3600"]
        resources:
          requests: {cpu: 500m, memory: 32Mi}
"#;

/// cpus used per framework name, from the master's state.
fn used_cpus(master: &str) -> Option<(f64, f64)> {
    let out = Command::new("curl")
        .args(["-sf", &format!("{master}/master/state.json")])
        .output()
        .ok()?;
    let state: Json = serde_json::from_slice(&out.stdout).ok()?;
    let mut kube = 0.0;
    let mut batch = 0.0;
    for f in state["frameworks"].as_array()? {
        let cpus = f["used_resources"]["cpus"].as_f64().unwrap_or(0.0);
        match f["name"].as_str() {
            Some("kumos-kubernetes") => kube += cpus,
            Some("pymesos-greedy") => batch += cpus,
            _ => {}
        }
    }
    Some((kube, batch))
}

#[test]
fn pymesos_and_an_rc_share_by_role_weight() -> anyhow::Result<()> {
    let server = KumosServer::start_with(
        bin(),
        Store::Embedded,
        &[
            "--agents",
            "2",
            "--agent-resources",
            "cpus:2;mem:2048",
            "--allocation-interval",
            "200ms",
        ],
    )?;
    let master = server.master_url().unwrap_or_default().to_string();
    let weights = r#"{"type":"UPDATE_WEIGHTS","update_weights":{"weight_infos":[{"role":"kubernetes","weight":1.0},{"role":"batch","weight":3.0}]}}"#;
    let out = Command::new("curl")
        .args([
            "-sf",
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            weights,
        ])
        .arg(format!("{master}/api/v1"))
        .output()?;
    assert!(out.status.success(), "UPDATE_WEIGHTS failed");

    let hostport = master.trim_start_matches("http://").to_string();
    let sched = PymesosScheduler::start(
        "greedy",
        &hostport,
        &[
            ("ROLE", "batch"),
            ("TASK_CPUS", "0.5"),
            ("SLEEP", "2"),
            ("DEADLINE", "600"),
        ],
    )?;
    sched.wait_for(WAIT, "registration", |e| is_event(e, "registered", &[]))?;
    eventually(WAIT, "batch to fill the cluster", || {
        let (_, batch) = used_cpus(&master)?;
        (batch >= 3.99).then_some(())
    })?;

    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    k.ok(&["create", "namespace", "share"]);
    let out = k.run_stdin(&["apply", "-n", "share", "-f", "-"], RC);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The kubernetes role gains freed slots until its weighted share catches up: 1 cpu of 4.
    eventually(WAIT, "the kubernetes role to reach its share", || {
        let (kube, _) = used_cpus(&master)?;
        (kube >= 0.99).then_some(())
    })?;
    // Later freed slots go to whichever weighted share is lower; the split stays by weight.
    let mut samples = Vec::new();
    eventually(WAIT, "twenty samples of the split", || {
        samples.push(used_cpus(&master)?);
        std::thread::sleep(Duration::from_millis(100));
        (samples.len() >= 20).then_some(())
    })?;
    let (kube, batch) = *samples.last().unwrap_or(&(0.0, 0.0));
    let max_kube = samples.iter().map(|s| s.0).fold(0.0, f64::max);
    assert!(
        (1.0..=1.5).contains(&max_kube),
        "kubernetes (weight 1) should hold about 1 of 4 cpus, held up to {max_kube}: {samples:?}"
    );
    assert!(
        batch >= 2.0,
        "batch (weight 3) keeps the rest: kube {kube}, batch {batch}"
    );
    Ok(())
}
