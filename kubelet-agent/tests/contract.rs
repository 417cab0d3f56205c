//! The containerizer contract, run against the process, the simulated and the Docker
//! containerizer (the latter on a real dockerd started by the test fixture).
//!
//! Every case is a generic `async fn(Harness)`; the `contract!` macro instantiates it
//! once per implementation. Timeouts are failure guards only, never assertions.

mod common;

use std::time::Duration;

use common::{guard, sh, Harness};
use futures::StreamExt;
use kubelet_agent::containerizer::{
    ContainerizerError, Probe, ProbeAction, RestartPolicy, TaskEvent, TaskPhase,
};
use kubelet_agent::logs::{read_logs, LogError, LogOptions};
use tokio::sync::watch;

macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod process {
            $( #[tokio::test] async fn $case() { super::$case(super::Harness::process()).await; } )*
        }
        mod simulated {
            $( #[tokio::test] async fn $case() { super::$case(super::Harness::simulated()).await; } )*
        }
        mod docker {
            $( #[tokio::test] async fn $case() { super::$case(super::Harness::docker().await).await; } )*
        }
    };
}

contract!(
    running_task_logs_hello,
    exit_zero_finishes,
    exit_one_fails,
    kill_running_task_is_killed,
    logs_readable_after_exit,
    stderr_is_logged,
    follow_ends_when_container_exits,
    tail_lines_gives_last_line,
    since_filters_older_lines,
    previous_reads_the_earlier_run,
    duplicate_launch_already_exists,
    kill_unknown_task_fails,
    two_containers_run_and_finish_together,
    two_containers_one_failing_fails,
    shutdown_kills_and_refuses_new_tasks,
);

/// Cases of restarts and probes, on every runtime.
macro_rules! restart_contract {
    ($($case:ident),* $(,)?) => {
        mod process_restarts {
            $( #[tokio::test] async fn $case() { super::$case(super::Harness::process()).await; } )*
        }
        mod docker_restarts {
            $( #[tokio::test] async fn $case() { super::$case(super::Harness::docker().await).await; } )*
        }
        mod simulated_restarts {
            $( #[tokio::test] async fn $case() { super::$case(super::Harness::simulated()).await; } )*
        }
    };
}

restart_contract!(
    on_failure_restarts_and_counts,
    liveness_failure_restarts,
    readiness_decides_ready,
);

/// Events of `task_id` until a `Running` one satisfying `pred`.
async fn wait_running(
    h: &mut Harness,
    task_id: &str,
    pred: impl Fn(&TaskEvent) -> bool,
) -> TaskEvent {
    loop {
        let e = h.next_event().await;
        assert!(!e.phase.is_terminal(), "task ended: {e:?}");
        if e.task_id == task_id && e.phase == TaskPhase::Running && pred(&e) {
            return e;
        }
    }
}

/// An exec probe of `argv` checked every 100 ms, failing at the first failure.
fn exec_probe(argv: &[&str]) -> Probe {
    let mut probe = Probe::new(ProbeAction::Exec(
        argv.iter().map(|a| a.to_string()).collect(),
    ));
    probe.period = Duration::from_millis(100);
    probe.failure_threshold = 1;
    probe
}

async fn on_failure_restarts_and_counts(mut h: Harness) {
    let mut spec = h.task("t", vec![sh("main", "echo run; exit 1")]);
    spec.restart_policy = RestartPolicy::OnFailure;
    h.launch(spec).await;
    let restarted = wait_running(&mut h, "t", |e| e.containers[0].restart_count >= 1).await;
    assert!(restarted.containers[0].running, "{restarted:?}");
    h.cz.kill("t", Duration::from_secs(5)).await.expect("kill");
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Killed, "{end:?}");
    assert!(end.containers[0].restart_count >= 1);
    h.finish().await;
}

async fn liveness_failure_restarts(mut h: Harness) {
    let mut main = sh("main", "sleep infinity");
    main.liveness_probe = Some(exec_probe(&["false"]));
    let mut spec = h.task("t", vec![main]);
    spec.restart_policy = RestartPolicy::Always;
    h.launch(spec).await;
    let restarted = wait_running(&mut h, "t", |e| {
        e.containers[0].restart_count >= 1 && e.containers[0].running
    })
    .await;
    assert_eq!(restarted.containers[0].exit_code, None, "{restarted:?}");
    h.cz.kill("t", Duration::from_secs(5)).await.expect("kill");
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Killed);
    h.finish().await;
}

async fn readiness_decides_ready(mut h: Harness) {
    let mut never = sh("never", "sleep infinity");
    never.readiness_probe = Some(exec_probe(&["false"]));
    let mut soon = sh("soon", "sleep infinity");
    soon.readiness_probe = Some(exec_probe(&["true"]));
    let plain = sh("plain", "sleep infinity");
    h.launch(h.task("t", vec![never, soon, plain])).await;
    let first = h.wait_phase("t", TaskPhase::Running).await;
    let ready: Vec<bool> = first.containers.iter().map(|c| c.ready).collect();
    assert_eq!(ready, [false, false, true], "{first:?}");
    let later = wait_running(&mut h, "t", |e| e.containers[1].ready).await;
    assert!(
        !later.containers[0].ready && later.containers[2].ready,
        "{later:?}"
    );
    h.cz.kill("t", Duration::from_secs(5)).await.expect("kill");
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Killed);
    h.finish().await;
}

async fn running_task_logs_hello(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "echo hello; sleep infinity")]))
        .await;
    let running = h.wait_phase("t", TaskPhase::Running).await;
    assert_eq!(running.containers.len(), 1);
    let main = &running.containers[0];
    assert!(main.running && main.started_at.is_some());
    assert_eq!((main.name.as_str(), main.restart_count), ("main", 0));
    assert!(!main.container_id.is_empty());
    h.wait_log("t", "main", "hello").await;
    assert_eq!(h.cz.tasks().await, vec!["t".to_owned()]);
    h.finish().await;
}

async fn exit_zero_finishes(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "exit 0")])).await;
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Finished, "{end:?}");
    assert_eq!(end.containers[0].exit_code, Some(0));
    assert!(!end.containers[0].running && end.containers[0].finished_at.is_some());
    assert!(h.cz.tasks().await.is_empty());
    h.finish().await;
}

async fn exit_one_fails(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "exit 1")])).await;
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Failed);
    assert_eq!(end.message, "Command exited with status 1");
    assert_eq!(end.containers[0].exit_code, Some(1));
    h.finish().await;
}

async fn kill_running_task_is_killed(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "echo hello; sleep infinity")]))
        .await;
    h.wait_phase("t", TaskPhase::Running).await;
    h.cz.kill("t", Duration::from_secs(5)).await.expect("kill");
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Killed);
    assert_eq!(end.containers[0].signal, Some(15), "{end:?}");
    assert!(h.cz.tasks().await.is_empty());
    let err = h.cz.kill("t", Duration::ZERO).await.expect_err("gone");
    assert!(matches!(err, ContainerizerError::UnknownTask(_)), "{err}");
    h.finish().await;
}

async fn logs_readable_after_exit(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "echo one; echo two; exit 0")]))
        .await;
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Finished);
    assert_eq!(
        h.log("t", "main", LogOptions::default()).await,
        "one\ntwo\n"
    );
    let opts = LogOptions {
        timestamps: true,
        ..LogOptions::default()
    };
    let stamped = h.log("t", "main", opts).await;
    let lines: Vec<&str> = stamped.lines().collect();
    assert_eq!(lines.len(), 2);
    for (line, text) in lines.iter().zip(["one", "two"]) {
        let (ts, rest) = line.split_once(' ').expect("timestamp prefix");
        assert_eq!(rest, text);
        assert_eq!(ts.len(), "2024-01-01T00:00:00.123456789Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    }
    h.finish().await;
}

async fn stderr_is_logged(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "echo oops >&2; exit 0")]))
        .await;
    h.wait_terminal("t").await;
    assert_eq!(h.log("t", "main", LogOptions::default()).await, "oops\n");
    let path = kubelet_agent::logs::log_path(&h.sandbox("t"), "main", 0);
    let raw = std::fs::read_to_string(path).expect("log file");
    assert!(raw.trim_end().ends_with(" stderr F oops"), "{raw}");
    h.finish().await;
}

async fn follow_ends_when_container_exits(mut h: Harness) {
    let script = "echo first; sleep 1; echo second; exit 0";
    h.launch(h.task("t", vec![sh("main", script)])).await;
    h.wait_phase("t", TaskPhase::Running).await;
    let (done_tx, done) = watch::channel(false);
    let opts = LogOptions {
        follow: true,
        ..LogOptions::default()
    };
    let stream = read_logs(&h.sandbox("t"), "main", opts, done)
        .await
        .expect("read_logs");
    let read = async {
        let chunks: Vec<_> = stream.collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.expect("chunk").to_vec()).expect("utf8"))
            .collect::<Vec<_>>()
    };
    let watch_exit = async {
        let end = h.wait_terminal("t").await;
        done_tx.send_replace(true);
        end
    };
    let (lines, end) = guard("follow", async { tokio::join!(read, watch_exit) }).await;
    assert_eq!(end.phase, TaskPhase::Finished);
    assert_eq!(lines, vec!["first\n", "second\n"]);
    h.finish().await;
}

async fn tail_lines_gives_last_line(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "echo a; echo b; echo c")]))
        .await;
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Finished);
    let tail = |n| LogOptions {
        tail_lines: Some(n),
        ..LogOptions::default()
    };
    assert_eq!(h.log("t", "main", tail(1)).await, "c\n");
    assert_eq!(h.log("t", "main", tail(0)).await, "");
    assert_eq!(h.log("t", "main", tail(10)).await, "a\nb\nc\n");
    h.finish().await;
}

async fn since_filters_older_lines(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "echo old; exit 0")]))
        .await;
    h.wait_terminal("t").await;
    let since = |since| LogOptions {
        since: Some(since),
        ..LogOptions::default()
    };
    let future = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let past = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    assert_eq!(h.log("t", "main", since(future)).await, "");
    assert_eq!(h.log("t", "main", since(past)).await, "old\n");
    h.finish().await;
}

async fn previous_reads_the_earlier_run(mut h: Harness) {
    let sandbox = h.sandbox("shared");
    let (_tx, done) = watch::channel(true);
    let previous = LogOptions {
        previous: true,
        ..LogOptions::default()
    };
    let mut first = h.task("run0", vec![sh("main", "echo run0")]);
    first.sandbox = sandbox.clone();
    h.launch(first).await;
    h.wait_terminal("run0").await;
    let err = read_logs(&sandbox, "main", previous.clone(), done.clone()).await;
    assert!(matches!(err, Err(LogError::NoPrevious(_))));
    let mut second = h.task("run1", vec![sh("main", "echo run1")]);
    second.sandbox = sandbox.clone();
    h.launch(second).await;
    let end = h.wait_terminal("run1").await;
    assert_eq!(end.containers[0].restart_count, 1);
    let read = |opts| async {
        let stream = read_logs(&sandbox, "main", opts, done.clone())
            .await
            .expect("read_logs");
        let chunks: Vec<_> = stream.collect().await;
        chunks
            .into_iter()
            .map(|c| c.expect("chunk"))
            .collect::<Vec<_>>()
            .concat()
    };
    assert_eq!(read(LogOptions::default()).await, b"run1\n");
    assert_eq!(read(previous).await, b"run0\n");
    h.finish().await;
}

async fn duplicate_launch_already_exists(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "sleep infinity")]))
        .await;
    let err =
        h.cz.launch(h.task("t", vec![sh("main", "exit 0")]))
            .await
            .expect_err("duplicate");
    assert!(
        matches!(err, ContainerizerError::AlreadyExists(ref id) if id == "t"),
        "{err}"
    );
    // A grace too long to represent still ends in Killed (SIGTERM suffices here).
    h.cz.kill("t", Duration::MAX).await.expect("kill");
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Killed);
    h.finish().await;
}

async fn kill_unknown_task_fails(h: Harness) {
    let err =
        h.cz.kill("nope", Duration::ZERO)
            .await
            .expect_err("unknown");
    assert!(
        matches!(err, ContainerizerError::UnknownTask(ref id) if id == "nope"),
        "{err}"
    );
    h.finish().await;
}

async fn two_containers_run_and_finish_together(mut h: Harness) {
    let containers = vec![
        sh("a", "echo a; sleep 1; exit 0"),
        sh("b", "echo b; exit 0"),
    ];
    h.launch(h.task("t", containers)).await;
    let running = h.wait_phase("t", TaskPhase::Running).await;
    let names: Vec<&str> = running.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert!(
        running.containers.iter().all(|c| c.started_at.is_some()),
        "{running:?}"
    );
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Finished, "{end:?}");
    assert!(end
        .containers
        .iter()
        .all(|c| c.exit_code == Some(0) && !c.running));
    assert_eq!(h.log("t", "a", LogOptions::default()).await, "a\n");
    assert_eq!(h.log("t", "b", LogOptions::default()).await, "b\n");
    h.finish().await;
}

async fn two_containers_one_failing_fails(mut h: Harness) {
    let containers = vec![sh("a", "exit 0"), sh("b", "exit 3")];
    h.launch(h.task("t", containers)).await;
    let end = h.wait_terminal("t").await;
    assert_eq!(end.phase, TaskPhase::Failed);
    assert_eq!(end.message, "Container 'b' exited with status 3");
    h.finish().await;
}

async fn shutdown_kills_and_refuses_new_tasks(mut h: Harness) {
    h.launch(h.task("t", vec![sh("main", "sleep infinity")]))
        .await;
    h.wait_phase("t", TaskPhase::Running).await;
    guard("shutdown", h.cz.shutdown()).await;
    assert_eq!(h.wait_terminal("t").await.phase, TaskPhase::Killed);
    let err = h.cz.launch(h.task("u", vec![sh("main", "exit 0")])).await;
    assert!(matches!(err, Err(ContainerizerError::ShutDown)));
    h.finish().await;
}
