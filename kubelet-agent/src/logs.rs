//! Container logs in the CRI format that kubelet reads.
//!
//! Each run of a container writes one file, `<sandbox>/logs/<container>/<restart_count>.log`.
//! Every line of it is `<RFC3339Nano UTC timestamp> <stdout|stderr> F <text>`; this
//! writer always emits full (`F`) lines, the parser also accepts partial (`P`) ones.
//! [`read_logs`] serves them the way `kubectl logs` expects: tail, since, previous,
//! timestamps and follow.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// How often a follower looks for appended lines.
const FOLLOW_POLL: Duration = Duration::from_millis(50);

/// Which output stream a log line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl LogStream {
    /// The name used in CRI log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// One parsed CRI log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// When the line was written.
    pub timestamp: OffsetDateTime,
    /// Its stream.
    pub stream: LogStream,
    /// `true` for a `P` (partial) line, continued by the next one.
    pub partial: bool,
    /// The text, without the line's terminating newline.
    pub content: &'a [u8],
}

/// Errors of [`read_logs`] and of parsing CRI lines.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The container has no log file in this sandbox.
    #[error("no logs for container {0}")]
    NotFound(String),
    /// `previous` was asked for but the container has only one run.
    #[error("previous terminated container {0} not found")]
    NoPrevious(String),
    /// A line is not in CRI format.
    #[error("malformed CRI log line: {0}")]
    Malformed(&'static str),
    /// Reading the log directory or file failed.
    #[error("io error: {0}")]
    Io(#[from] io::Error),
}

/// Formats a timestamp as RFC3339 in UTC with exactly nine fractional digits.
pub fn format_timestamp(ts: OffsetDateTime) -> String {
    let ts = ts.to_offset(UtcOffset::UTC);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    // Formatting a UTC date within year 0..=9999 into a String cannot fail; fall back to
    // the generic RFC3339 form for out-of-range years.
    ts.format(&fmt)
        .or_else(|_| ts.format(&Rfc3339))
        .unwrap_or_default()
}

/// Formats one full CRI log line, newline included.
pub fn format_cri_line(ts: OffsetDateTime, stream: LogStream, text: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(text.len() + 48);
    line.extend_from_slice(format_timestamp(ts).as_bytes());
    line.push(b' ');
    line.extend_from_slice(stream.as_str().as_bytes());
    line.extend_from_slice(b" F ");
    line.extend_from_slice(text);
    line.push(b'\n');
    line
}

/// Parses one CRI log line (with or without its trailing newline).
pub fn parse_cri_line(line: &[u8]) -> Result<CriLine<'_>, LogError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = parts
        .next()
        .ok_or(LogError::Malformed("missing timestamp"))?;
    let ts = std::str::from_utf8(ts).map_err(|_| LogError::Malformed("timestamp"))?;
    let timestamp =
        OffsetDateTime::parse(ts, &Rfc3339).map_err(|_| LogError::Malformed("timestamp"))?;
    let stream = match parts.next() {
        Some(b"stdout") => LogStream::Stdout,
        Some(b"stderr") => LogStream::Stderr,
        _ => return Err(LogError::Malformed("stream")),
    };
    let partial = match parts.next() {
        Some(b"F") => false,
        Some(b"P") => true,
        _ => return Err(LogError::Malformed("tag")),
    };
    let content = parts.next().unwrap_or_default();
    Ok(CriLine {
        timestamp,
        stream,
        partial,
        content,
    })
}

/// The log directory of a container in a sandbox.
pub fn log_dir(sandbox: &Path, container: &str) -> PathBuf {
    sandbox.join("logs").join(container)
}

/// The log file of one run of a container.
pub fn log_path(sandbox: &Path, container: &str, restart_count: u32) -> PathBuf {
    log_dir(sandbox, container).join(format!("{restart_count}.log"))
}

/// The runs that have a log file, in ascending order.
async fn runs(dir: &Path) -> io::Result<Vec<u32>> {
    let mut runs = Vec::new();
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(runs),
        Err(e) => return Err(e),
    };
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name();
        let run = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u32>().ok());
        runs.extend(run);
    }
    runs.sort_unstable();
    Ok(runs)
}

/// Writes the CRI log file of one run of a container.
#[derive(Debug)]
pub struct LogWriter {
    file: tokio::fs::File,
    path: PathBuf,
}

impl LogWriter {
    /// Creates the log file of the container's next run: the run number is one more than
    /// the highest existing log file's (0 for the first), and is returned with the writer.
    pub async fn create(sandbox: &Path, container: &str) -> io::Result<(Self, u32)> {
        let dir = log_dir(sandbox, container);
        tokio::fs::create_dir_all(&dir).await?;
        let run = runs(&dir)
            .await?
            .last()
            .map_or(0, |last| last.saturating_add(1));
        let path = log_path(sandbox, container, run);
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await?;
        Ok((Self { file, path }, run))
    }

    /// Reopens the existing log file of run `run` for appending (e.g. to resume a
    /// container's log after an agent restart); created if missing.
    pub async fn append(sandbox: &Path, container: &str, run: u32) -> io::Result<Self> {
        tokio::fs::create_dir_all(log_dir(sandbox, container)).await?;
        let path = log_path(sandbox, container, run);
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .await?;
        Ok(Self { file, path })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line (without its newline), stamped now, and flushes it.
    pub async fn write_line(&mut self, stream: LogStream, text: &[u8]) -> io::Result<()> {
        self.write_line_at(OffsetDateTime::now_utc(), stream, text)
            .await
    }

    /// Appends one line (without its newline) with the given timestamp, and flushes it.
    pub async fn write_line_at(
        &mut self,
        ts: OffsetDateTime,
        stream: LogStream,
        text: &[u8],
    ) -> io::Result<()> {
        let line = format_cri_line(ts, stream, text);
        self.file.write_all(&line).await?;
        self.file.flush().await
    }

    /// The timestamp of the last well-formed line of the file, if any.
    pub async fn last_timestamp(&self) -> io::Result<Option<OffsetDateTime>> {
        let text = tokio::fs::read(&self.path).await?;
        Ok(text
            .split(|b| *b == b'\n')
            .rev()
            .find_map(|line| parse_cri_line(line).ok())
            .map(|line| line.timestamp))
    }
}

/// What [`read_logs`] returns, as in `kubectl logs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep reading appended lines until the container has exited.
    pub follow: bool,
    /// Only the last N lines present when reading starts.
    pub tail_lines: Option<usize>,
    /// Only lines written at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Prefix each line with its timestamp and a space.
    pub timestamps: bool,
    /// Read the previous run's file instead of the current one (never followed).
    pub previous: bool,
}

/// State of a log stream between items.
struct Reader {
    file: tokio::fs::File,
    opts: LogOptions,
    done: watch::Receiver<bool>,
    pending: VecDeque<Bytes>,
    partial: Vec<u8>,
    ended: bool,
}

impl Reader {
    /// Turns complete lines of `buf` (keeping any unterminated tail) into output items.
    fn take_lines(&mut self, buf: &[u8]) {
        self.partial.extend_from_slice(buf);
        let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let rest = self.partial.split_off(last_nl + 1);
        let complete = std::mem::replace(&mut self.partial, rest);
        for line in complete.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(item) = render(line, &self.opts) {
                self.pending.push_back(item);
            }
        }
    }

    /// Reads what was appended since the last read.
    async fn read_more(&mut self) -> io::Result<()> {
        let mut buf = Vec::new();
        self.file.read_to_end(&mut buf).await?;
        self.take_lines(&buf);
        Ok(())
    }

    /// Next item: buffered lines first, then (when following) newly appended ones.
    async fn next(&mut self) -> Option<io::Result<Bytes>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(Ok(item));
            }
            if self.ended || !self.opts.follow {
                return None;
            }
            // Observe `done` before reading, so the last read covers every line written
            // before the container was reported exited.
            let done = *self.done.borrow_and_update();
            if let Err(e) = self.read_more().await {
                self.ended = true;
                return Some(Err(e));
            }
            if !self.pending.is_empty() {
                continue;
            }
            if done {
                self.ended = true;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_POLL) => {}
                changed = self.done.changed() => {
                    if changed.is_err() {
                        // The sender is gone: nobody will tell us more, treat as exited.
                        self.done = watch::channel(true).1;
                    }
                }
            }
        }
    }
}

/// Renders one CRI line for output, or `None` when filtered out or malformed.
fn render(line: &[u8], opts: &LogOptions) -> Option<Bytes> {
    let parsed = match parse_cri_line(line) {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::debug!(error = %e, "skipping malformed log line");
            return None;
        }
    };
    if opts.since.is_some_and(|since| parsed.timestamp < since) {
        return None;
    }
    let mut out = Vec::with_capacity(parsed.content.len() + 32);
    if opts.timestamps {
        out.extend_from_slice(format_timestamp(parsed.timestamp).as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(parsed.content);
    if !parsed.partial {
        out.push(b'\n');
    }
    Some(Bytes::from(out))
}

/// Reads a container's log as `kubectl logs` shows it: one item per line, newline
/// included, prefixed by its timestamp when `opts.timestamps`.
///
/// The current run is the highest-numbered log file; `opts.previous` selects the one
/// before it. `tail_lines` picks the last lines present when reading starts, then
/// `since` filters them (as kubelet does). With `follow` (ignored for `previous`),
/// the stream keeps yielding appended lines until `done` is `true` (or its sender is
/// dropped) and the file is drained.
pub async fn read_logs(
    sandbox: &Path,
    container: &str,
    opts: LogOptions,
    done: watch::Receiver<bool>,
) -> Result<impl Stream<Item = io::Result<Bytes>> + Send + 'static, LogError> {
    let runs = runs(&log_dir(sandbox, container)).await?;
    let run = if opts.previous {
        let Some(&run) = runs.iter().rev().nth(1) else {
            return Err(LogError::NoPrevious(container.to_owned()));
        };
        run
    } else {
        *runs
            .last()
            .ok_or_else(|| LogError::NotFound(container.to_owned()))?
    };
    let file = tokio::fs::File::open(log_path(sandbox, container, run)).await?;
    let mut opts = opts;
    opts.follow &= !opts.previous;
    let tail = opts.tail_lines;
    let mut reader = Reader {
        file,
        opts,
        done,
        pending: VecDeque::new(),
        partial: Vec::new(),
        ended: false,
    };
    reader.read_more().await?;
    if let Some(tail) = tail {
        let skip = reader.pending.len().saturating_sub(tail);
        reader.pending.drain(..skip);
    }
    Ok(futures::stream::unfold(reader, |mut reader| async move {
        let item = reader.next().await?;
        Some((item, reader))
    }))
}

#[cfg(test)]
mod tests;
