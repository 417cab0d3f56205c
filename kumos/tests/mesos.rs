//! Issue 4 acceptance through the real path: `kumos master` and `kumos agent` processes driven by
//! an unmodified pymesos scheduler from PyPI.

use std::path::Path;
use std::time::Duration;

use conformance::mesos::{is_event, AgentProcess, MasterProcess, PymesosScheduler};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(90);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

fn t(e: &Json) -> f64 {
    e["t"].as_f64().unwrap_or_default()
}

/// Acceptance 2: subscribe, offers, a command task RUNNING then FINISHED (acknowledged), and a
/// declined offer not re-offered within its refuse_seconds.
#[test]
fn pymesos_runs_a_command_task_and_decline_filters_hold() -> anyhow::Result<()> {
    let master = MasterProcess::start(bin(), &[])?;
    let agent = AgentProcess::start(
        bin(),
        &master,
        "cpus:2;mem:1024;ports:[31000-31010]",
        "agent-a",
    )?;
    let sched = PymesosScheduler::start("launch", &master.hostport(), &[("REFUSE_SECONDS", "3")])?;

    let registered = sched.wait_for(WAIT, "registered", |e| is_event(e, "registered", &[]))?;
    assert_eq!(registered["version"], "1.11.0");
    let offer = sched.wait_for(WAIT, "an offer", |e| is_event(e, "offer", &[]))?;
    let cpus = offer["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["name"] == "cpus"))
        .map(|r| r["scalar"]["value"].as_f64().unwrap_or_default());
    assert_eq!(cpus, Some(2.0), "the whole agent is offered: {offer}");
    assert_eq!(offer["resources"][0]["allocation_info"]["role"], "*");

    let running = sched.wait_for(WAIT, "TASK_RUNNING", |e| {
        is_event(
            e,
            "update",
            &[("task_id", "task-1"), ("state", "TASK_RUNNING")],
        )
    })?;
    let finished = sched.wait_for(WAIT, "TASK_FINISHED", |e| {
        is_event(
            e,
            "update",
            &[("task_id", "task-1"), ("state", "TASK_FINISHED")],
        )
    })?;
    assert!(t(&running) <= t(&finished));
    for u in [&running, &finished] {
        assert_eq!(u["has_uuid"], true, "agent updates carry a uuid: {u}");
        assert_eq!(u["source"], "SOURCE_EXECUTOR");
        assert_eq!(u["agent_id"], offer["agent_id"]);
    }

    // pymesos acknowledged implicitly; the acknowledgement travelled master → agent, which then
    // forgets the task's checkpoint (only the sandbox with its logs stays).
    let task_dir =
        conformance::eventually(WAIT, "the agent to drop the acknowledged task", || {
            let fw = std::fs::read_dir(agent.work_dir().join("tasks"))
                .ok()?
                .flatten()
                .next()?;
            let dir = fw.path().join("task-1");
            (!dir.join("task.json").exists()).then_some(dir)
        })?;
    let log = std::fs::read_to_string(task_dir.join("sandbox/logs/main/0.log"))?;
    assert!(log.contains("stdout F hello-from-pymesos"), "{log}");

    let declined = sched.wait_for(WAIT, "the decline", |e| is_event(e, "declined", &[]))?;
    let reoffered = sched.wait_for(WAIT, "the re-offer", |e| is_event(e, "reoffered", &[]))?;
    // The first offer after the decline is the one the scheduler saw as the re-offer, and the
    // filter's lower bound is a behaviour, not a speed: it cannot come back sooner.
    let first_after = sched
        .events()
        .into_iter()
        .find(|e| is_event(e, "offer", &[]) && t(e) > t(&declined))
        .ok_or_else(|| anyhow::anyhow!("no offer after the decline"))?;
    assert_eq!(first_after["offer_id"], reoffered["offer_id"]);
    assert!(
        t(&first_after) - t(&declined) >= 3.0,
        "re-offered {:.2}s after declining with refuse_seconds=3",
        t(&first_after) - t(&declined)
    );
    Ok(())
}

/// Acceptance 4: a killed agent → FAILURE and TASK_LOST; a restarted master → the framework
/// re-subscribes, RECONCILE reports the surviving task, nothing is launched twice.
#[test]
fn agent_loss_and_master_restart_keep_pymesos_tasks_straight() -> anyhow::Result<()> {
    let mut master = MasterProcess::start(
        bin(),
        &[
            "--agent-ping-timeout",
            "300ms",
            "--max-agent-ping-timeouts",
            "3",
        ],
    )?;
    let mut a = AgentProcess::start(bin(), &master, "cpus:1;mem:512", "agent-a")?;
    let b = AgentProcess::start(bin(), &master, "cpus:1;mem:512", "agent-b")?;
    let sched = PymesosScheduler::start(
        "survive",
        &master.hostport(),
        &[("AGENTS", "2"), ("SLEEP", "600")],
    )?;

    for task in ["task-1", "task-2"] {
        sched.wait_for(WAIT, task, |e| {
            is_event(e, "update", &[("task_id", task), ("state", "TASK_RUNNING")])
        })?;
    }
    let launched: Vec<Json> = sched
        .events()
        .into_iter()
        .filter(|e| is_event(e, "launched", &[]))
        .collect();
    assert_eq!(launched.len(), 2);
    conformance::eventually(WAIT, "one task process per agent", || {
        (a.task_processes().len() == 1 && b.task_processes().len() == 1).then_some(())
    })?;
    let state = master.get_json("/master/state.json")?;
    let a_id = state["slaves"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["hostname"] == "agent-a"))
        .and_then(|s| s["id"].as_str())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("agent-a not in /master/state.json: {state}"))?;
    let on_a = launched
        .iter()
        .find(|l| l["agent_id"] == a_id.as_str())
        .map(|l| l["task_id"].clone());
    let on_b = launched
        .iter()
        .find(|l| l["agent_id"] != a_id.as_str())
        .map(|l| l["task_id"].clone());
    let (Some(on_a), Some(on_b)) = (on_a, on_b) else {
        anyhow::bail!("expected one task per agent: {launched:?}");
    };
    let (on_a, on_b) = (
        on_a.as_str().unwrap_or_default().to_string(),
        on_b.as_str().unwrap_or_default().to_string(),
    );

    a.kill9();
    sched.wait_for(WAIT, "FAILURE for agent-a", |e| {
        is_event(e, "failure", &[("agent_id", &a_id)])
    })?;
    let lost = sched.wait_for(WAIT, "TASK_LOST", |e| {
        is_event(e, "update", &[("task_id", &on_a), ("state", "TASK_LOST")])
    })?;
    assert_eq!(lost["reason"], "REASON_SLAVE_REMOVED");
    assert_eq!(lost["source"], "SOURCE_MASTER");
    // The master writes its state in order and answers a registration only once it is durable:
    // a third agent's registration therefore also makes the loss above durable before the
    // master is killed.
    let c = AgentProcess::start(bin(), &master, "cpus:1;mem:512", "agent-c")?;
    conformance::eventually(WAIT, "agent-c registered", || {
        c.work_dir().join("agent.json").exists().then_some(())
    })?;

    master.kill9();
    master.start_again()?;
    sched.wait_for(WAIT, "re-registration", |e| {
        is_event(e, "reregistered", &[])
    })?;
    let reconciled = sched.wait_for(WAIT, "reconciliation of the surviving task", |e| {
        is_event(
            e,
            "update",
            &[("task_id", &on_b), ("state", "TASK_RUNNING")],
        ) && e["reason"] == "REASON_RECONCILIATION"
    })?;
    assert_eq!(reconciled["has_uuid"], false);
    assert_eq!(reconciled["source"], "SOURCE_MASTER");
    // The agent re-registers with the new master and keeps its task: still one process, and the
    // scheduler never launched anything again.
    conformance::eventually(WAIT, "agent-b back in /state", || {
        let s = master.get_json("/master/state.json").ok()?;
        let back = s["slaves"]
            .as_array()?
            .iter()
            .any(|s| s["hostname"] == "agent-b" && s["active"] == true);
        back.then_some(())
    })?;
    assert_eq!(b.task_processes().len(), 1);
    let launches = sched
        .events()
        .into_iter()
        .filter(|e| is_event(e, "launched", &[]))
        .count();
    assert_eq!(launches, 2);
    let tasks = master.get_json("/tasks")?;
    let running: Vec<&Json> = tasks["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .collect();
    assert_eq!(running.len(), 1, "{tasks}");
    assert_eq!(running[0]["id"], on_b.as_str());
    Ok(())
}

/// `kumos server --agents 2`: the built-in master has both local agents, each with its own slice
/// of ports, and runs a pymesos task on them.
#[test]
fn kumos_server_runs_local_agents_under_its_master() -> anyhow::Result<()> {
    let server = conformance::KumosServer::start_with(
        bin(),
        conformance::Store::Embedded,
        &["--agents", "2", "--agent-resources", "cpus:1;mem:512"],
    )?;
    let master = server
        .master_url()
        .ok_or_else(|| anyhow::anyhow!("kumos server did not report its master"))?
        .trim_start_matches("http://")
        .to_string();
    let slaves = conformance::eventually(WAIT, "two local agents", || {
        let out = std::process::Command::new("curl")
            .args(["-sf", &format!("http://{master}/slaves")])
            .output()
            .ok()?;
        let j: Json = serde_json::from_slice(&out.stdout).ok()?;
        let s = j["slaves"].as_array()?.clone();
        (s.len() == 2).then_some(s)
    })?;
    let mut hosts: Vec<&str> = slaves
        .iter()
        .filter_map(|s| s["hostname"].as_str())
        .collect();
    hosts.sort();
    assert_eq!(hosts, ["agent-0", "agent-1"]);
    let ports: Vec<&str> = slaves
        .iter()
        .filter_map(|s| s["resources"]["ports"].as_str())
        .collect();
    assert!(
        ports.contains(&"[20000-20099]") && ports.contains(&"[20100-20199]"),
        "{ports:?}"
    );
    let sched = PymesosScheduler::start("launch", &master, &[("REFUSE_SECONDS", "1")])?;
    sched.wait_for(WAIT, "TASK_FINISHED", |e| {
        is_event(
            e,
            "update",
            &[("task_id", "task-1"), ("state", "TASK_FINISHED")],
        )
    })?;
    Ok(())
}

/// Two masters on one etcd: one leads, the other answers 307 to the leader (pymesos follows it
/// and registers there); when the leader dies, the standby takes over with the leader's state.
#[test]
fn standby_master_redirects_and_takes_over() -> anyhow::Result<()> {
    let etcd = conformance::EtcdProcess::start()?;
    let shared = tempfile::tempdir()?;
    let secret = shared.path().join("agent-secret");
    let endpoint = etcd.endpoint();
    let secret_arg = secret.display().to_string();
    let flags = [
        "--store",
        "etcd",
        "--etcd-endpoints",
        endpoint.as_str(),
        "--etcd-prefix",
        "/standby-test",
        "--agent-secret-file",
        secret_arg.as_str(),
    ];
    let mut first = MasterProcess::start(bin(), &flags)?;
    conformance::eventually(WAIT, "the first master to lead", || {
        first.get_json("/version").ok()
    })?;
    let second = MasterProcess::start(bin(), &flags)?;
    let location = conformance::eventually(WAIT, "a 307 from the standby", || {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
                "-X",
                "POST",
            ])
            .args(["-H", "Content-Type: application/json", "-d", "{}"])
            .arg(format!("http://{}/api/v1/scheduler", second.hostport()))
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.starts_with("307 ").then_some(text)
    })?;
    assert!(
        location.ends_with(&format!("{}/api/v1/scheduler", first.hostport())),
        "{location}"
    );
    let sched = PymesosScheduler::start("survive", &second.hostport(), &[("AGENTS", "0")])?;
    let registered = sched.wait_for(WAIT, "registration through the standby", |e| {
        is_event(e, "registered", &[])
    })?;
    let fid = registered["framework_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    drop(sched);

    first.kill9();
    let frameworks = conformance::eventually(WAIT, "the standby to lead", || {
        second.get_json("/master/frameworks").ok()
    })?;
    let known = frameworks["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|f| f["id"] == fid.as_str());
    assert!(
        known,
        "the new leader recovered the framework from etcd: {frameworks}"
    );
    Ok(())
}
