//! Cases that only one implementation can show: real signals, environment and process
//! groups for the process containerizer, the lifetime knob for the simulated one.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{guard, sh, Harness};
use kubelet_agent::containerizer::{
    ContainerSpec, ContainerizerError, PortMapping, SimulatedConfig, TaskPhase,
};
use kubelet_agent::logs::LogOptions;

/// Whether a pid is gone (or only a zombie waiting for its reaper).
fn gone(pid: &str) -> bool {
    match std::fs::read_to_string(Path::new("/proc").join(pid).join("stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

async fn wait_gone(pid: &str) {
    guard("process to die", async {
        while !gone(pid) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn process_ignoring_term_is_killed_after_grace() {
    let mut h = Harness::process();
    let script = "trap '' TERM; echo ready; sleep infinity";
    h.launch(h.task("t", vec![sh("main", script)])).await;
    h.wait_phase("t", TaskPhase::Running).await;
    h.wait_log("t", "main", "ready").await;
    h.cz.kill("t", Duration::from_millis(500))
        .await
        .expect("kill");
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Killed);
    assert_eq!(end.containers[0].signal, Some(9), "{end:?}");
    h.finish().await;
}

#[tokio::test]
async fn process_sees_ports_env_and_working_dir() {
    let mut h = Harness::process();
    let mut main = sh(
        "main",
        "echo $PORT0 $PORT_HTTP $PORT1 $PORT_METRICS_PORT $PORT2; echo $GREETING; pwd",
    );
    main.env = vec![("GREETING".into(), "hi there".into())];
    main.working_dir = Some("work".into());
    main.ports = vec![
        PortMapping {
            name: Some("http".into()),
            container_port: 80,
            host_port: 31000,
            protocol: "tcp".into(),
        },
        PortMapping {
            name: Some("metrics-port".into()),
            container_port: 9090,
            host_port: 31001,
            protocol: "tcp".into(),
        },
        PortMapping {
            name: None,
            container_port: 53,
            host_port: 31002,
            protocol: "udp".into(),
        },
    ];
    h.launch(h.task("t", vec![main])).await;
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Finished);
    let log = h.log("t", "main", LogOptions::default()).await;
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[0], "31000 31000 31001 31001 31002");
    assert_eq!(lines[1], "hi there");
    let cwd = std::fs::canonicalize(h.sandbox("t").join("work")).expect("work dir");
    assert_eq!(Path::new(lines[2]), cwd);
    h.finish().await;
}

#[tokio::test]
async fn process_spawn_failure_is_an_error_without_events() {
    let mut h = Harness::process();
    let bad = ContainerSpec {
        name: "bad".into(),
        argv: vec!["/nonexistent/kumos-binary".into()],
        ..ContainerSpec::default()
    };
    let containers = vec![sh("good", "sleep infinity"), bad];
    let err =
        h.cz.launch(h.task("t", containers))
            .await
            .expect_err("spawn");
    assert!(
        matches!(err, ContainerizerError::Spawn { ref container, .. } if container == "bad"),
        "{err}"
    );
    assert!(h.cz.tasks().await.is_empty());
    // The container started before the failure is gone with its whole group.
    h.wait_no_process().await;
    // The id is free again.
    h.launch(h.task("t", vec![sh("main", "exit 0")])).await;
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Finished, "{end:?}");
    h.finish().await;
}

#[tokio::test]
async fn process_group_is_killed_with_the_task() {
    let mut h = Harness::process();
    let script = "sleep 1000 & echo $!; sleep infinity";
    h.launch(h.task("t", vec![sh("main", script)])).await;
    h.wait_phase("t", TaskPhase::Running).await;
    h.wait_log("t", "main", "\n").await;
    let log = h.log("t", "main", LogOptions::default()).await;
    let pid = log.trim().to_owned();
    assert!(!gone(&pid), "background sleep {pid} should run");
    h.cz.kill("t", Duration::from_secs(5)).await.expect("kill");
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Killed);
    wait_gone(&pid).await;
    h.finish().await;
}

#[tokio::test]
async fn process_group_is_killed_when_main_process_exits() {
    let mut h = Harness::process();
    let script = "sleep 1000 & echo $!; exit 0";
    h.launch(h.task("t", vec![sh("main", script)])).await;
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Finished);
    let log = h.log("t", "main", LogOptions::default()).await;
    wait_gone(log.trim()).await;
    h.finish().await;
}

#[tokio::test]
async fn simulated_unknown_command_ends_after_lifetime() {
    let mut h = Harness::simulated_with(SimulatedConfig {
        start_delay: Duration::from_millis(10),
        lifetime: Some(Duration::from_millis(100)),
    });
    let nginx = ContainerSpec {
        name: "web".into(),
        image: Some("nginx:1.27".into()),
        argv: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        ..ContainerSpec::default()
    };
    h.launch(h.task("t", vec![nginx])).await;
    h.wait_phase("t", TaskPhase::Running).await;
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Finished, "{end:?}");
    h.finish().await;
}

#[tokio::test]
async fn simulated_kill_while_starting_is_killed() {
    let mut h = Harness::simulated_with(SimulatedConfig {
        start_delay: Duration::from_secs(3600),
        lifetime: None,
    });
    h.launch(h.task("t", vec![sh("main", "exit 0")])).await;
    assert_eq!(
        h.wait_phase("t", TaskPhase::Starting).await.phase,
        TaskPhase::Starting
    );
    h.cz.kill("t", Duration::from_secs(5)).await.expect("kill");
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Killed);
    assert!(end.containers.iter().all(|c| c.started_at.is_none()));
    h.finish().await;
}
