//! The simulated containerizer: containers without processes, driven by a tiny script.
//!
//! Every container of a task starts after [`SimulatedConfig::start_delay`]. What it then
//! does depends on its `argv`:
//!
//! - `["sh", "-c", SCRIPT]`: SCRIPT is a list of commands separated by `;` (always run
//!   the next) or `&&` (run the next only if the previous succeeded). Separators are
//!   not quote-aware. The commands are:
//!   - `echo TEXT`: appends TEXT (one pair of surrounding quotes removed) as a stdout log
//!     line; `echo TEXT >&2` writes it to stderr instead. Status 0.
//!   - `sleep N` (seconds, fractions allowed) or `sleep infinity`.
//!   - `exit N`: the container exits with status N.
//!   - `true` / `false`: status 0 / 1.
//!   - anything else: runs until killed, or until [`SimulatedConfig::lifetime`] elapses
//!     (then status 0).
//!
//!   At the end of the script the container exits with the last command's status.
//! - any other `argv`: runs until killed, or until the lifetime elapses (status 0).
//!
//! A simulated container ignores no signal: SIGTERM ends it at once (signal 15).
//! Images, environment, working directory, ports and resources are only recorded.

use std::time::Duration;

use futures::FutureExt;
use time::OffsetDateTime;
use tokio::sync::{mpsc, watch};

use std::sync::Arc;

use futures::future::BoxFuture;

use super::supervisor::{
    ContainerControl, Exit, Plan, Registry, RestartFuture, Runtime, StartFuture, Started,
    StopSignal,
};
use super::{
    ContainerSpec, ContainerState, Containerizer, ContainerizerError, TaskEvent, TaskSpec,
};
use crate::logs::{LogStream, LogWriter};

/// Timing of simulated containers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimulatedConfig {
    /// How long a task stays `Starting` before its containers run.
    pub start_delay: Duration,
    /// How long a command the script language does not know runs; `None` = until killed.
    pub lifetime: Option<Duration>,
}

/// Simulates containers; see the module documentation.
pub struct SimulatedContainerizer {
    registry: Registry,
    config: SimulatedConfig,
}

impl SimulatedContainerizer {
    /// A containerizer reporting task events on `events`.
    pub fn new(events: mpsc::UnboundedSender<TaskEvent>, config: SimulatedConfig) -> Self {
        Self {
            registry: Registry::new(events),
            config,
        }
    }
}

/// One command of a script.
#[derive(Clone, Debug, PartialEq)]
enum Cmd {
    Echo(LogStream, String),
    Sleep(Option<Duration>),
    Exit(i32),
    Status(i32),
    Unknown,
}

/// How a command is joined to the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Join {
    Always,
    IfSuccess,
}

fn parse_cmd(text: &str) -> Cmd {
    let text = text.trim();
    let (word, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
    let rest = rest.trim();
    match word {
        "echo" => {
            let (stream, rest) = match rest.strip_suffix(">&2") {
                Some(r) => (LogStream::Stderr, r.trim_end()),
                None => (LogStream::Stdout, rest),
            };
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| rest.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)));
            Cmd::Echo(stream, unquoted.unwrap_or(rest).to_owned())
        }
        "sleep" if rest == "infinity" => Cmd::Sleep(None),
        "sleep" => match rest.parse::<f64>().ok().map(Duration::try_from_secs_f64) {
            Some(Ok(d)) => Cmd::Sleep(Some(d)),
            _ => Cmd::Unknown,
        },
        "exit" if rest.is_empty() => Cmd::Exit(0),
        "exit" => rest.parse().map_or(Cmd::Unknown, Cmd::Exit),
        "true" if rest.is_empty() => Cmd::Status(0),
        "false" if rest.is_empty() => Cmd::Status(1),
        _ => Cmd::Unknown,
    }
}

/// Parses a container's argv into the commands it runs.
fn parse(argv: &[String]) -> Vec<(Join, Cmd)> {
    let [sh, c, script] = argv else {
        return vec![(Join::Always, Cmd::Unknown)];
    };
    if sh != "sh" || c != "-c" {
        return vec![(Join::Always, Cmd::Unknown)];
    }
    let mut cmds = Vec::new();
    for (i, part) in script.split(';').enumerate() {
        for (j, cmd) in part.split("&&").enumerate() {
            let join = if j == 0 {
                Join::Always
            } else {
                Join::IfSuccess
            };
            if cmd.trim().is_empty() && i > 0 && j == 0 {
                continue; // trailing or doubled `;`
            }
            cmds.push((join, parse_cmd(cmd)));
        }
    }
    cmds
}

/// Runs one command; `Some(exit)` ends the container.
async fn step(cmd: &Cmd, log: &mut LogWriter, lifetime: Option<Duration>) -> (i32, Option<Exit>) {
    match cmd {
        Cmd::Echo(stream, text) => {
            if let Err(e) = log.write_line(*stream, text.as_bytes()).await {
                tracing::warn!(path = %log.path().display(), error = %e, "writing log failed");
            }
            (0, None)
        }
        Cmd::Sleep(Some(d)) => {
            tokio::time::sleep(*d).await;
            (0, None)
        }
        Cmd::Sleep(None) => futures::future::pending().await,
        Cmd::Exit(code) => (*code, Some(exited(*code))),
        Cmd::Status(code) => (*code, None),
        Cmd::Unknown => match lifetime {
            Some(d) => {
                tokio::time::sleep(d).await;
                (0, Some(exited(0)))
            }
            None => futures::future::pending().await,
        },
    }
}

fn exited(code: i32) -> Exit {
    Exit {
        code: Some(code),
        signal: None,
    }
}

/// Runs a script until its end, an `exit`, or a signal.
async fn run(
    cmds: Vec<(Join, Cmd)>,
    mut log: LogWriter,
    mut signals: watch::Receiver<Option<i32>>,
    lifetime: Option<Duration>,
) -> Exit {
    let mut status = 0;
    for (join, cmd) in &cmds {
        if *join == Join::IfSuccess && status != 0 {
            continue;
        }
        tokio::select! {
            (code, exit) = step(cmd, &mut log, lifetime) => {
                status = code;
                if let Some(exit) = exit {
                    return exit;
                }
            }
            Ok(()) = signals.changed() => {
                let signal = *signals.borrow_and_update();
                return Exit { code: None, signal };
            }
        }
    }
    exited(status)
}

/// Delivers signals to a simulated container.
struct Signals(watch::Sender<Option<i32>>);

impl ContainerControl for Signals {
    fn signal(&self, signal: StopSignal) {
        let number = match signal {
            StopSignal::Term => 15,
            StopSignal::Kill => 9,
        };
        let _ = self.0.send(Some(number));
    }
}

/// Starts the containers of a task after the start delay.
async fn start(
    task_id: String,
    spec: TaskSpec,
    config: SimulatedConfig,
) -> Result<Vec<Started>, String> {
    tokio::time::sleep(config.start_delay).await;
    let mut started = Vec::with_capacity(spec.containers.len());
    for container in &spec.containers {
        started.push(start_one(&task_id, &spec, container, config).await?);
    }
    Ok(started)
}

async fn start_one(
    task_id: &str,
    spec: &TaskSpec,
    container: &ContainerSpec,
    config: SimulatedConfig,
) -> Result<Started, String> {
    let (log, restart_count) = LogWriter::create(&spec.sandbox, &container.name)
        .await
        .map_err(|e| {
            format!(
                "Failed to create log of container '{}': {e}",
                container.name
            )
        })?;
    let (tx, rx) = watch::channel(None);
    let state = ContainerState {
        running: true,
        started_at: Some(OffsetDateTime::now_utc()),
        restart_count,
        container_id: format!("simulated://{task_id}/{}/{restart_count}", container.name),
        ..ContainerState::pending(&container.name)
    };
    Ok(Started {
        state,
        control: Box::new(Signals(tx)),
        exit: run(parse(&container.argv), log, rx, config.lifetime).boxed(),
    })
}

/// Restarts a simulated container; exec probes run `true` (passes), `false` (fails),
/// and pass for any other command.
struct SimulatedRuntime {
    task_id: String,
    spec: TaskSpec,
    container: ContainerSpec,
    config: SimulatedConfig,
}

impl Runtime for SimulatedRuntime {
    fn restart(&self) -> Option<RestartFuture> {
        let task_id = self.task_id.clone();
        let spec = self.spec.clone();
        let container = self.container.clone();
        let config = self.config;
        Some(async move { start_one(&task_id, &spec, &container, config).await }.boxed())
    }

    fn exec(&self, argv: &[String], _timeout: Duration) -> BoxFuture<'static, bool> {
        let ok = argv.first().map(String::as_str) != Some("false");
        futures::future::ready(ok).boxed()
    }
}

#[async_trait::async_trait]
impl Containerizer for SimulatedContainerizer {
    async fn launch(&self, spec: TaskSpec) -> Result<(), ContainerizerError> {
        let reservation = self.registry.reserve(&spec.task_id)?;
        if let Err(e) = tokio::fs::create_dir_all(&spec.sandbox).await {
            self.registry.release(reservation);
            return Err(e.into());
        }
        let plan = Plan::new(&spec, |c| {
            let runtime: Arc<dyn Runtime> = Arc::new(SimulatedRuntime {
                task_id: spec.task_id.clone(),
                spec: spec.clone(),
                container: c.clone(),
                config: self.config,
            });
            Some(runtime)
        });
        self.registry.emit_starting(&spec.task_id, &plan.names());
        let future: StartFuture = start(spec.task_id.clone(), spec, self.config).boxed();
        self.registry.start(reservation, plan, future);
        Ok(())
    }

    async fn kill(&self, task_id: &str, grace: Duration) -> Result<(), ContainerizerError> {
        self.registry.kill(task_id, grace)
    }

    async fn tasks(&self) -> Vec<String> {
        self.registry.tasks()
    }

    async fn shutdown(&self) {
        self.registry.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        ["sh", "-c", script].map(String::from).to_vec()
    }

    #[test]
    fn parses_the_script_language() {
        let cmds = parse(&sh(
            "echo 'hello world'; sleep 0.5 && false&&exit 3; echo x >&2;",
        ));
        assert_eq!(
            cmds,
            vec![
                (
                    Join::Always,
                    Cmd::Echo(LogStream::Stdout, "hello world".into())
                ),
                (Join::Always, Cmd::Sleep(Some(Duration::from_millis(500)))),
                (Join::IfSuccess, Cmd::Status(1)),
                (Join::IfSuccess, Cmd::Exit(3)),
                (Join::Always, Cmd::Echo(LogStream::Stderr, "x".into())),
            ]
        );
        assert_eq!(
            parse(&sh("sleep infinity")),
            vec![(Join::Always, Cmd::Sleep(None))]
        );
        assert_eq!(parse(&sh("nginx -g x")), vec![(Join::Always, Cmd::Unknown)]);
        assert_eq!(parse(&["nginx".into()]), vec![(Join::Always, Cmd::Unknown)]);
        assert_eq!(parse(&sh("exit nope")), vec![(Join::Always, Cmd::Unknown)]);
    }
}
