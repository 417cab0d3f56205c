//! A started Docker container as the supervisor sees it: stop signals, and an exit
//! future that streams its output into the CRI log, waits for its exit code and, for
//! the task's last container, removes the task's containers.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{KillContainerOptionsBuilder, LogsOptionsBuilder};
use futures::StreamExt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::super::supervisor::{ContainerControl, Exit, StopSignal};
use super::{spec, Shared};
use crate::logs::{LogStream, LogWriter};

/// How long output is still drained after a container exited.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before asking again when waiting for a container failed.
const WAIT_RETRY: Duration = Duration::from_millis(500);

/// Sends stop signals to a container through the Docker API.
pub(crate) struct Control {
    pub shared: Arc<Shared>,
    pub id: String,
    /// Set once a signal was sent: exit codes `128 + n` then read as signal `n`.
    pub signalled: Arc<AtomicBool>,
}

impl ContainerControl for Control {
    fn signal(&self, signal: StopSignal) {
        self.signalled.store(true, Ordering::SeqCst);
        let name = match signal {
            StopSignal::Term => "SIGTERM",
            StopSignal::Kill => "SIGKILL",
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(id = %self.id, "no runtime to signal the container from");
            return;
        };
        let docker = self.shared.docker.clone();
        let id = self.id.clone();
        runtime.spawn(async move {
            let opts = KillContainerOptionsBuilder::new().signal(name).build();
            if let Err(e) = docker.kill_container(&id, Some(opts)).await {
                // Typically: the container has already exited.
                tracing::debug!(%id, signal = name, error = %e, "signalling container failed");
            }
        });
    }
}

/// The containers of one task, removed together once its last app container exited,
/// so that an agent restarted meanwhile still finds every container of the task. A
/// restarted container adds its new run ([`TaskCleanup::add_run`]) while the task's
/// containers are still there.
pub(crate) struct TaskCleanup {
    shared: Arc<Shared>,
    ids: std::sync::Mutex<Vec<String>>,
    remaining: AtomicUsize,
    done: AtomicBool,
}

impl TaskCleanup {
    /// Cleanup of `ids` (app containers and sandbox) after `apps` app containers exit.
    pub fn new(shared: Arc<Shared>, ids: Vec<String>, apps: usize) -> Arc<Self> {
        Arc::new(Self {
            shared,
            ids: std::sync::Mutex::new(ids),
            remaining: AtomicUsize::new(apps),
            done: AtomicBool::new(false),
        })
    }

    /// Whether the task's containers were removed (its last app container exited).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// Counts a new run `id` of an app container; false when the containers are already gone.
    pub fn add_run(&self, id: &str) -> bool {
        if self.is_done() {
            return false;
        }
        self.ids
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(id.to_owned());
        self.remaining.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Records that one app container exited; the last one removes every container.
    pub async fn container_exited(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.store(true, Ordering::SeqCst);
            let ids = self
                .ids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            for id in &ids {
                self.shared.remove(id).await;
            }
        }
    }
}

/// What the exit future of one app container needs.
pub(crate) struct Watch {
    pub shared: Arc<Shared>,
    pub id: String,
    pub log: LogWriter,
    /// Skip log lines stamped at or before this time (already copied before a restart).
    pub resume_after: Option<OffsetDateTime>,
    pub signalled: Arc<AtomicBool>,
    pub cleanup: Arc<TaskCleanup>,
}

/// Streams the output, waits for the exit, drains the output, then cleans up.
pub(crate) async fn watch(w: Watch) -> Exit {
    let logs = copy_logs(Arc::clone(&w.shared), w.id.clone(), w.log, w.resume_after);
    tokio::pin!(logs);
    let mut copied = false;
    let (code, oom_killed) = tokio::select! {
        exit = wait_exit(&w.shared, &w.id) => exit,
        () = &mut logs => {
            copied = true;
            wait_exit(&w.shared, &w.id).await
        }
    };
    if !copied && tokio::time::timeout(DRAIN_TIMEOUT, logs).await.is_err() {
        tracing::warn!(id = %w.id, "container log still streaming after exit");
    }
    let exit = spec::exit_of(code, w.signalled.load(Ordering::SeqCst), oom_killed);
    w.cleanup.container_exited().await;
    exit
}

fn is_not_found(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Waits until the container is no longer running: its exit code (`None` if the
/// container disappeared) and whether it was OOM-killed.
async fn wait_exit(shared: &Shared, id: &str) -> (Option<i64>, bool) {
    loop {
        // A non-zero exit surfaces as an error item; the state is read below either way.
        let waited = shared.docker.wait_container(id, None).next().await;
        match shared.docker.inspect_container(id, None).await {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                if state.running != Some(true) {
                    return (state.exit_code, state.oom_killed == Some(true));
                }
            }
            Err(e) if is_not_found(&e) => {
                tracing::warn!(%id, "container disappeared while running");
                return (None, false);
            }
            Err(e) => tracing::warn!(%id, error = %e, "inspecting container failed"),
        }
        if let Some(Err(e)) = waited {
            tracing::debug!(%id, error = %e, "waiting for container returned an error");
        }
        tokio::time::sleep(WAIT_RETRY).await;
    }
}

/// Splits a Docker log frame requested with timestamps into its time and text.
fn split_timestamp(frame: &[u8]) -> (Option<OffsetDateTime>, &[u8]) {
    let Some(space) = frame.iter().position(|b| *b == b' ') else {
        return (None, frame);
    };
    let (ts, rest) = frame.split_at(space);
    let parsed = std::str::from_utf8(ts)
        .ok()
        .and_then(|ts| OffsetDateTime::parse(ts, &Rfc3339).ok());
    match parsed {
        Some(ts) => (Some(ts), rest.get(1..).unwrap_or_default()),
        None => (None, frame),
    }
}

/// Turns Docker log frames into CRI lines: complete lines are written at once with
/// the frame's timestamp, an unterminated tail waits for the rest of its line.
struct LineSplitter {
    log: LogWriter,
    resume_after: Option<OffsetDateTime>,
    /// Per stream: the first timestamp and the text of an unterminated line.
    partial: [(Option<OffsetDateTime>, Vec<u8>); 2],
    /// Timestamp of the newest line written.
    last_written: Option<OffsetDateTime>,
}

impl LineSplitter {
    async fn frame(&mut self, stream: LogStream, frame: &[u8]) {
        let (ts, text) = split_timestamp(frame);
        let ts = ts.unwrap_or_else(OffsetDateTime::now_utc);
        if self.resume_after.is_some_and(|after| ts <= after) {
            return;
        }
        let slot = usize::from(stream == LogStream::Stderr);
        let pieces: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
        let Some((last, complete)) = pieces.split_last() else {
            return;
        };
        for piece in complete {
            let Some((first_ts, mut line)) = self.partial.get_mut(slot).map(std::mem::take) else {
                return;
            };
            line.extend_from_slice(piece);
            self.write(first_ts.unwrap_or(ts), stream, &line).await;
        }
        if let Some(partial) = self.partial.get_mut(slot).filter(|_| !last.is_empty()) {
            // The text after the last newline waits for the rest of its line.
            partial.0.get_or_insert(ts);
            partial.1.extend_from_slice(last);
        }
    }

    async fn write(&mut self, ts: OffsetDateTime, stream: LogStream, line: &[u8]) {
        self.last_written = Some(self.last_written.map_or(ts, |l| l.max(ts)));
        if let Err(e) = self.log.write_line_at(ts, stream, line).await {
            let path = self.log.path().display().to_string();
            tracing::warn!(%path, error = %e, "writing log failed");
        }
    }

    /// Writes unterminated lines left at the end of the output.
    async fn flush(&mut self) {
        for (slot, stream) in [LogStream::Stdout, LogStream::Stderr]
            .into_iter()
            .enumerate()
        {
            let Some((ts, text)) = self.partial.get_mut(slot).map(std::mem::take) else {
                continue;
            };
            if let Some(ts) = ts.filter(|_| !text.is_empty()) {
                self.write(ts, stream, &text).await;
            }
        }
    }
}

/// Follows the container's stdout and stderr into its CRI log until the output ends.
async fn copy_logs(
    shared: Arc<Shared>,
    id: String,
    log: LogWriter,
    resume_after: Option<OffsetDateTime>,
) {
    // Docker keeps entries from this whole second on; the splitter drops those already
    // copied (a time beyond i32 seconds falls back to the whole log).
    let since = resume_after.map_or(0, |t| i32::try_from(t.unix_timestamp()).unwrap_or(0));
    let mut splitter = LineSplitter {
        log,
        resume_after,
        partial: Default::default(),
        last_written: None,
    };
    // Follow until the output ends; then read once more without following: dockerd may
    // close a follow stream at exit before it logged the container's unterminated last line.
    for follow in [true, false] {
        if !follow {
            splitter.resume_after = splitter.last_written.or(splitter.resume_after);
        }
        let opts = LogsOptionsBuilder::new()
            .follow(follow)
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .since(since)
            .build();
        let mut frames = shared.docker.logs(&id, Some(opts));
        while let Some(frame) = frames.next().await {
            match frame {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    splitter.frame(LogStream::Stdout, &message).await;
                }
                Ok(LogOutput::StdErr { message }) => {
                    splitter.frame(LogStream::Stderr, &message).await;
                }
                Ok(LogOutput::StdIn { .. }) => {}
                Err(e) => {
                    tracing::warn!(%id, error = %e, "streaming container logs failed");
                    break;
                }
            }
        }
        splitter.flush().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_docker_timestamps_from_text() {
        let (ts, text) = split_timestamp(b"2024-01-02T03:04:05.123456789Z hello world\n");
        assert_eq!(
            ts.map(|t| t.nanosecond()),
            Some(123_456_789),
            "nanoseconds kept"
        );
        assert_eq!(text, b"hello world\n");
        assert_eq!(
            split_timestamp(b"no-time here"),
            (None, &b"no-time here"[..])
        );
        assert_eq!(split_timestamp(b"plain"), (None, &b"plain"[..]));
    }

    #[tokio::test]
    async fn frames_become_whole_lines_and_resumed_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, _) = LogWriter::create(dir.path(), "c").await.expect("log");
        let path = log.path().to_path_buf();
        let resume_after = OffsetDateTime::parse("2024-01-01T00:00:01Z", &Rfc3339).ok();
        let mut splitter = LineSplitter {
            log,
            resume_after,
            partial: Default::default(),
            last_written: None,
        };
        let frames: [(LogStream, &[u8]); 5] = [
            (LogStream::Stdout, b"2024-01-01T00:00:01Z copied before\n"),
            (LogStream::Stdout, b"2024-01-01T00:00:02Z hel"),
            (LogStream::Stderr, b"2024-01-01T00:00:03Z err\n"),
            (LogStream::Stdout, b"2024-01-01T00:00:04Z lo\nwor"),
            (LogStream::Stdout, b"2024-01-01T00:00:05Z ld"),
        ];
        for (stream, frame) in frames {
            splitter.frame(stream, frame).await;
        }
        splitter.flush().await;
        let text = std::fs::read_to_string(path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "2024-01-01T00:00:03.000000000Z stderr F err",
                "2024-01-01T00:00:02.000000000Z stdout F hello",
                "2024-01-01T00:00:04.000000000Z stdout F world",
            ]
        );
    }
}
