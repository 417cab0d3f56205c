//! The Kubernetes framework across a controller restart, with every role in its own process
//! (`kumos apiserver`, `kumos master`, `kumos agent`, `kumos controllers`): the restarted framework
//! re-subscribes with its persisted id, reconciles, and launches nothing twice.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use conformance::mesos::{AgentProcess, MasterProcess};
use conformance::{eventually, kubectl_binaries, Kubectl};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(120);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

struct Killed(Option<Child>);

impl Killed {
    fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.kill();
    }
}

fn controllers(kubeconfig: &Path, master: &str) -> Killed {
    let child = Command::new(bin())
        .arg("controllers")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--master", master])
        .env("KUMOS_LOG", "warn")
        .spawn()
        .expect("kumos controllers");
    Killed(Some(child))
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
"#;

fn pod_json(k: &Kubectl, name: &str) -> Option<Json> {
    let out = k.run(&["get", "pod", name, "-o", "json"]);
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
fn restarted_controllers_reconcile_and_launch_nothing_twice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let api = Command::new(bin())
        .arg("apiserver")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("KUMOS_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut api = Killed(Some(api));
    let stdout = api
        .0
        .as_mut()
        .and_then(|c| c.stdout.take())
        .expect("stdout");
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let kubeconfig = dir.path().join("kubeconfig");
    let master = MasterProcess::start(bin(), &[])?;
    let master_url = format!("http://{}", master.addr);
    let agent = AgentProcess::start(bin(), &master, "cpus:2;mem:2048", "agent-a")?;
    let mut ctl = controllers(&kubeconfig, &master_url);
    let k = Kubectl::new(&kubectl_binaries()[0], &kubeconfig);
    let out = k.run_stdin(&["apply", "-f", "-"], POD);
    assert!(out.status.success());
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/steady",
        "--timeout=120s",
    ]);
    let before = pod_json(&k, "steady").ok_or_else(|| anyhow::anyhow!("no pod"))?;
    let container = before["status"]["containerStatuses"][0]["containerID"].clone();
    assert_eq!(agent.task_processes().len(), 1);

    ctl.kill();
    let _ctl = controllers(&kubeconfig, &master_url);
    // Still one framework (the same id), the same container, one process; and the framework
    // works: a new pod runs.
    let out = k.run_stdin(&["apply", "-f", "-"], &POD.replace("steady", "after"));
    assert!(out.status.success());
    k.ok(&[
        "wait",
        "--for=condition=Ready",
        "pod/after",
        "--timeout=120s",
    ]);
    let frameworks = master.get_json("/master/frameworks")?;
    let ours: Vec<&Json> = frameworks["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["name"] == "kumos-kubernetes")
        .collect();
    assert_eq!(ours.len(), 1, "{frameworks}");
    let after = eventually(WAIT, "the steady pod still running", || {
        let p = pod_json(&k, "steady")?;
        (p["status"]["phase"] == "Running").then_some(p)
    })?;
    assert_eq!(
        after["status"]["containerStatuses"][0]["containerID"],
        container
    );
    assert_eq!(
        agent.task_processes().len(),
        2,
        "one process per pod, none relaunched"
    );
    Ok(())
}
