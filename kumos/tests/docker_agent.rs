//! Issue 5, acceptance 4, through the real path: `kumos agent --runtime docker` on a private
//! dockerd, driven by a pymesos scheduler. The agent is killed with SIGKILL while its containers
//! run and while a status update is still unacknowledged; after a restart its running task is
//! re-adopted (same container, never relaunched) and the pending update reaches the framework.

use std::path::Path;
use std::time::Duration;

use conformance::docker::{docker, socket};
use conformance::mesos::{is_event, AgentProcess, MasterProcess, PymesosScheduler};

const WAIT: Duration = Duration::from_secs(120);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

/// `task-id label → container id` of the running containers the agent created (sandboxes too).
fn containers() -> anyhow::Result<Vec<(String, String)>> {
    let out = docker(&[
        "ps",
        "--filter",
        "label=kumos.task-id",
        "--format",
        "{{.Label \"kumos.task-id\"}} {{.ID}} {{.Label \"kumos.role\"}}",
    ])?;
    Ok(out
        .lines()
        .filter(|l| !l.ends_with(" sandbox"))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect())
}

#[test]
fn killed_docker_agent_readopts_its_containers_and_resends_updates() -> anyhow::Result<()> {
    let sock = socket().display().to_string();
    let mut master = MasterProcess::start(bin(), &[])?;
    let mut agent = AgentProcess::start_with(
        bin(),
        &format!("http://{}", master.addr),
        &master.secret_file(),
        "cpus:2;mem:1024",
        "docker-agent",
        &["--runtime", "docker", "--docker-socket", &sock],
    )?;
    let sched = PymesosScheduler::start(
        "survive",
        &master.hostport(),
        &[
            ("TASKS", "2"),
            ("DOCKER_IMAGE", "busybox:latest"),
            ("SLEEP", "600"),
        ],
    )?;
    for task in ["task-1", "task-2"] {
        sched.wait_for(WAIT, task, |e| {
            is_event(e, "update", &[("task_id", task), ("state", "TASK_RUNNING")])
        })?;
    }
    let before = containers()?;
    let id_of = |list: &[(String, String)], task: &str| {
        list.iter()
            .find(|(t, _)| t.ends_with(&format!("/{task}")))
            .map(|(_, id)| id.clone())
    };
    let task1 = id_of(&before, "task-1")
        .ok_or_else(|| anyhow::anyhow!("no container for task-1: {before:?}"))?;
    let task2 = id_of(&before, "task-2")
        .ok_or_else(|| anyhow::anyhow!("no container for task-2: {before:?}"))?;

    // With the master down, task-2's container dies: the agent checkpoints TASK_FAILED but
    // cannot send it. Then the agent itself is killed.
    master.kill9();
    docker(&["kill", &task2])?;
    conformance::eventually(WAIT, "the unsent update in the checkpoint", || {
        let fw = std::fs::read_dir(agent.work_dir().join("tasks"))
            .ok()?
            .flatten()
            .next()?;
        let pending = std::fs::read_to_string(fw.path().join("task-2/updates.json")).ok()?;
        pending.contains("TASK_FAILED").then_some(())
    })?;
    agent.kill9();
    assert_eq!(
        id_of(&containers()?, "task-1").as_deref(),
        Some(task1.as_str()),
        "task-1 outlives its agent"
    );

    master.start_again()?;
    agent.start_again()?;
    // The agent's own update (not the master's reconciliation answer) arrives, with its uuid.
    let failed = sched.wait_for(WAIT, "the re-sent TASK_FAILED", |e| {
        is_event(
            e,
            "update",
            &[
                ("task_id", "task-2"),
                ("state", "TASK_FAILED"),
                ("source", "SOURCE_EXECUTOR"),
            ],
        )
    })?;
    assert_eq!(failed["has_uuid"], true);
    sched.wait_for(WAIT, "reconciliation after the master restart", |e| {
        is_event(
            e,
            "update",
            &[("task_id", "task-1"), ("state", "TASK_RUNNING")],
        ) && e["reason"] == "REASON_RECONCILIATION"
    })?;
    // Re-adopted, not relaunched: the same single container, and no new launch.
    let after = containers()?;
    let task1_containers: Vec<_> = after
        .iter()
        .filter(|(t, _)| t.ends_with("/task-1"))
        .collect();
    assert_eq!(task1_containers.len(), 1, "{after:?}");
    assert_eq!(task1_containers[0].1, task1);
    let launches = sched
        .events()
        .into_iter()
        .filter(|e| is_event(e, "launched", &[]))
        .count();
    assert_eq!(launches, 2);
    // The re-adopted task is still controlled by the agent: killing it through the master works.
    drop(sched);
    Ok(())
}
