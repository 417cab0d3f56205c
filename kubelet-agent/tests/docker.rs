//! Cases only the Docker containerizer can show, on a real dockerd started by the test
//! fixture (see `common/dockerd.rs`): a task's shared network namespace, ports published
//! on 127.0.0.1, and re-adoption of running containers after an agent restart.
//! All traffic stays on 127.0.0.1.

mod common;

use std::time::Duration;

use common::{dockerd, guard, sh, Harness};
use kubelet_agent::containerizer::{
    ContainerSpec, ContainerizerError, DockerConfig, DockerContainerizer, DockerError, PortMapping,
    TaskPhase,
};
use kubelet_agent::logs::LogOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A container serving `index.html` containing `body` with busybox httpd on port 8080.
fn web(body: &str) -> ContainerSpec {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 8080 -h /www");
    sh("web", &script)
}

/// A port of the host that was free a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").port()
}

/// `GET /` on 127.0.0.1:port, retried until the answer contains `needle`.
async fn http_get_until(port: u16, needle: &str) -> String {
    guard("HTTP answer on the published port", async {
        loop {
            if let Ok(mut conn) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                let request = b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
                let mut answer = Vec::new();
                if conn.write_all(request).await.is_ok()
                    && conn.read_to_end(&mut answer).await.is_ok()
                {
                    let answer = String::from_utf8_lossy(&answer).into_owned();
                    if answer.contains(needle) {
                        return answer;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

#[tokio::test]
async fn containers_of_a_task_share_one_network_namespace() {
    let mut h = Harness::docker().await;
    let client = sh(
        "client",
        "i=0; while [ $i -lt 300 ]; do wget -qO- http://127.0.0.1:8080/ && exit 0; \
         i=$((i+1)); sleep 0.1; done; exit 1",
    );
    h.launch(h.task("t", vec![web("hello-from-web"), client]))
        .await;
    h.wait_phase("t", TaskPhase::Running).await;
    h.wait_log("t", "client", "hello-from-web").await;
    h.cz.kill("t", Duration::from_secs(5)).await.expect("kill");
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Killed);
    let client = end.containers.get(1).expect("client state");
    assert_eq!(client.exit_code, Some(0), "{end:?}");
    assert!(client.container_id.starts_with("docker://"), "{client:?}");
    h.finish().await;
}

#[tokio::test]
async fn host_port_is_published_on_loopback() {
    let mut h = Harness::docker().await;
    let port = free_port();
    let mut server = web("published");
    server.ports = vec![PortMapping {
        name: Some("http".into()),
        container_port: 8080,
        host_port: port,
        protocol: "tcp".into(),
    }];
    h.launch(h.task("t", vec![server])).await;
    h.wait_phase("t", TaskPhase::Running).await;
    let answer = http_get_until(port, "published").await;
    assert!(answer.starts_with("HTTP/1."), "{answer}");
    let docker = dockerd::client().await;
    let summaries = docker
        .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
        .await
        .expect("list");
    let published: Vec<_> = summaries
        .iter()
        .filter(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l.get("kumos.agent-id").map(String::as_str) == Some(h.agent_id()))
        })
        .flat_map(|c| c.ports.clone().unwrap_or_default())
        .filter(|p| p.public_port == Some(port))
        .collect();
    assert!(!published.is_empty(), "{summaries:?}");
    assert!(
        published
            .iter()
            .all(|p| p.ip.as_deref() == Some("127.0.0.1")),
        "{published:?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn restarted_agent_readopts_running_task() {
    let mut h = Harness::docker().await;
    let script = "echo before; sleep 2; echo after; sleep infinity";
    h.launch(h.task("t", vec![sh("main", script)])).await;
    let running = h.wait_phase("t", TaskPhase::Running).await;
    h.wait_log("t", "main", "before").await;
    let before = dockerd::containers(h.agent_id()).await.len();
    assert_eq!(before, 2, "sandbox and main");

    let adopted = h.restart_docker().await;
    assert_eq!(adopted, vec!["t".to_owned()]);
    let readopted = h.wait_phase("t", TaskPhase::Running).await;
    assert_eq!(
        readopted.containers[0].container_id,
        running.containers[0].container_id
    );
    assert_eq!(h.cz.tasks().await, vec!["t".to_owned()]);
    assert_eq!(dockerd::containers(h.agent_id()).await.len(), before);
    let again = guard("second recover", h.cz.recover())
        .await
        .expect("recover");
    assert!(again.is_empty(), "already adopted: {again:?}");

    h.wait_log("t", "main", "after").await;
    let log = h.log("t", "main", LogOptions::default()).await;
    assert_eq!(log, "before\nafter\n", "no line copied twice");
    h.cz.kill("t", Duration::from_secs(5)).await.expect("kill");
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Killed);
    assert_eq!(end.containers[0].signal, Some(15), "{end:?}");
    h.finish().await;
}

#[tokio::test]
async fn failed_create_is_an_error_and_leaves_no_container() {
    let h = Harness::docker().await;
    let mut too_small = sh("main", "exit 0");
    // Below dockerd's minimum memory limit (6 MiB): creating the container fails.
    too_small.mem_mb = 1.0;
    let err =
        h.cz.launch(h.task("t", vec![sh("ok", "sleep infinity"), too_small]))
            .await
            .expect_err("create fails");
    assert!(matches!(err, ContainerizerError::Docker(_)), "{err}");
    assert!(h.cz.tasks().await.is_empty());
    assert!(dockerd::containers(h.agent_id()).await.is_empty());
    h.finish().await;
}

#[tokio::test]
async fn missing_program_fails_the_task() {
    let mut h = Harness::docker().await;
    let mut missing = sh("main", "exit 0");
    missing.argv = vec!["/no/such/program".into()];
    h.launch(h.task("t", vec![missing])).await;
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Failed, "{end:?}");
    assert_eq!(
        end.containers[0].exit_code,
        Some(127),
        "docker-init: {end:?}"
    );
    h.finish().await;
}

#[tokio::test]
async fn publishing_on_every_interface_is_refused() {
    let (tx, _events) = tokio::sync::mpsc::unbounded_channel();
    let mut config = DockerConfig::new(dockerd::socket(), "refused");
    config.bind_address = "0.0.0.0".parse().expect("ip");
    let err = DockerContainerizer::new(tx, config)
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(err, DockerError::UnspecifiedBindAddress(_)),
        "{err}"
    );
}

#[tokio::test]
async fn env_and_working_dir_reach_the_container() {
    let mut h = Harness::docker().await;
    let mut main = sh("main", "echo $GREETING; pwd");
    main.env = vec![("GREETING".into(), "hi there".into())];
    main.working_dir = Some("work".into());
    h.launch(h.task("t", vec![main])).await;
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Finished);
    assert_eq!(
        h.log("t", "main", LogOptions::default()).await,
        "hi there\n/work\n"
    );
    h.finish().await;
}

#[tokio::test]
async fn unterminated_last_line_is_logged() {
    let mut h = Harness::docker().await;
    h.launch(h.task("t", vec![sh("main", "echo one; echo -n two")]))
        .await;
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Finished);
    assert_eq!(
        h.log("t", "main", LogOptions::default()).await,
        "one\ntwo\n"
    );
    h.finish().await;
}
