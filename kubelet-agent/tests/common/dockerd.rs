//! A real dockerd for the Docker containerizer tests, one per test binary.
//!
//! The first test asking for it runs `scripts/docker-test-env.sh start DIR PID` (which
//! installs docker.io and busybox-static if missing, starts dockerd with its data, exec
//! root and socket under DIR, and imports the offline image `busybox:latest`). That
//! script leaves a watchdog behind that stops dockerd and deletes DIR once this test
//! process has exited, since statics are never dropped. A dockerd that cannot start
//! fails every Docker test: they are never skipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;

/// The image the Docker tests run (imported offline by the setup script).
pub const IMAGE: &str = "busybox:latest";

static SOCKET: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// Starts dockerd (once per process) and returns its API socket; panics if it cannot.
pub fn socket() -> PathBuf {
    match SOCKET.get_or_init(start) {
        Ok(socket) => socket.clone(),
        Err(e) => panic!("the test dockerd could not be started: {e}"),
    }
}

fn start() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/docker-test-env.sh");
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("kumos-dockerd-{pid}"));
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .arg(&dir)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let socket = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if socket.is_empty() {
        return Err("the setup script printed no socket".to_owned());
    }
    Ok(PathBuf::from(socket))
}

/// A Docker client of the test dockerd, for checks behind the containerizer's back.
pub async fn client() -> Docker {
    let socket = socket();
    let path = socket.to_str().expect("socket path is UTF-8");
    Docker::connect_with_unix(path, 60, bollard::API_DEFAULT_VERSION)
        .expect("docker client")
        .negotiate_version()
        .await
        .expect("docker version negotiation")
}

/// The containers (running or not) labelled with this agent id, with their labels.
pub async fn containers(agent_id: &str) -> Vec<HashMap<String, String>> {
    let filters = HashMap::from([("label", vec![format!("kumos.agent-id={agent_id}")])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    client()
        .await
        .list_containers(Some(opts))
        .await
        .expect("list containers")
        .into_iter()
        .map(|c| c.labels.unwrap_or_default())
        .collect()
}
