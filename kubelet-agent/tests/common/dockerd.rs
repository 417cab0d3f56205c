//! A real dockerd for the Docker containerizer tests, one per test binary.
//!
//! The first test asking for it runs `scripts/docker-test-env.sh start DIR PID` (which
//! installs docker.io and busybox-static if missing, starts dockerd with its data, exec
//! root and socket under DIR, and imports the offline image `busybox:latest`). That
//! script leaves a watchdog behind that stops dockerd and deletes DIR once this test
//! process has exited, since statics are never dropped. A dockerd that cannot start
//! fails every Docker test: they are never skipped.

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;

/// The image the Docker tests run (imported offline by the setup script).
pub use conformance::docker::{socket, IMAGE};

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
