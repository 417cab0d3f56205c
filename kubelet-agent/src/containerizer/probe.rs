//! Restart policies and container probes: their specification, the pure rules deciding
//! restarts, back-off and probe thresholds, and the network probe checks.
//!
//! # Restarts
//!
//! A container that exits while its task was not killed is started again when the task's
//! [`RestartPolicy`] says so (`Always`; `OnFailure` after a non-zero exit or a signal).
//! Like the kubelet's CrashLoopBackOff, but shorter: the n-th consecutive restart waits
//! `min(1 s × 2ⁿ, 30 s)`; a run that lasted at least [`BACKOFF_RESET`] starts the count
//! again.
//!
//! # Probes
//!
//! A probe is run [`Probe::initial_delay`] after the container (re)started, then every
//! [`Probe::period`]; a check not done within [`Probe::timeout`] fails.
//! `failure_threshold` consecutive failures of a liveness probe kill the container (a
//! kill that counts as an exit, so the restart policy applies); readiness switches to
//! true after `success_threshold` consecutive successes and back to false after
//! `failure_threshold` consecutive failures.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::supervisor::Runtime;

/// When a container of a task is started again after it exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RestartPolicy {
    /// After every exit.
    Always,
    /// After a non-zero exit or a death by signal.
    OnFailure,
    /// Never (the default, as for a plain Mesos command task).
    #[default]
    Never,
}

impl RestartPolicy {
    /// Parses a Kubernetes `restartPolicy` value.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Always" => Some(Self::Always),
            "OnFailure" => Some(Self::OnFailure),
            "Never" => Some(Self::Never),
            _ => None,
        }
    }

    /// Whether a container that exited with `code`/`signal` is started again.
    pub fn restarts(self, code: Option<i32>, signal: Option<i32>) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => signal.is_some() || code != Some(0),
            Self::Never => false,
        }
    }
}

/// Longest wait before a restart.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run at least this long resets the restart back-off.
pub const BACKOFF_RESET: Duration = Duration::from_secs(60);

/// The wait before the restart that follows `consecutive` earlier quick restarts.
pub fn backoff(consecutive: u32) -> Duration {
    let secs = 1u64.checked_shl(consecutive.min(16)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAction {
    /// Runs a command in the container's context; success is exit status 0.
    Exec(Vec<String>),
    /// `GET path` on `127.0.0.1:<host port>`; success is a status in 200..400.
    HttpGet {
        /// The host port the container port is published on.
        port: u16,
        /// Request path, e.g. `/healthz`.
        path: String,
    },
    /// A TCP connection to `127.0.0.1:<host port>`; success is the connection.
    TcpSocket {
        /// The host port the container port is published on.
        port: u16,
    },
}

/// A liveness or readiness probe of a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The check.
    pub action: ProbeAction,
    /// Wait after the container starts before the first check.
    pub initial_delay: Duration,
    /// Time between checks (default 10 s).
    pub period: Duration,
    /// Time a check may take (default 1 s).
    pub timeout: Duration,
    /// Consecutive failures that count (default 3).
    pub failure_threshold: u32,
    /// Consecutive successes that count (default 1).
    pub success_threshold: u32,
}

impl Probe {
    /// A probe with the Kubernetes defaults.
    pub fn new(action: ProbeAction) -> Self {
        Self {
            action,
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            failure_threshold: 3,
            success_threshold: 1,
        }
    }
}

/// Consecutive results of one probe of one container run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    successes: u32,
    failures: u32,
}

impl Counts {
    /// Records a result; returns the probe's verdict once a threshold is reached:
    /// `Some(true)` after `success_threshold` successes, `Some(false)` after
    /// `failure_threshold` failures (the count then starts again).
    pub fn record(&mut self, probe: &Probe, ok: bool) -> Option<bool> {
        if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes >= probe.success_threshold.max(1)).then_some(true)
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.failures >= probe.failure_threshold.max(1) {
                self.failures = 0;
                Some(false)
            } else {
                None
            }
        }
    }
}

/// One check of `probe`: exec probes through the runtime (passing without one).
pub(crate) fn check(probe: Probe, runtime: Option<Arc<dyn Runtime>>) -> BoxFuture<'static, bool> {
    async move {
        match (&probe.action, runtime) {
            (ProbeAction::Exec(argv), Some(rt)) => rt.exec(argv, probe.timeout).await,
            (ProbeAction::Exec(_), None) => true,
            (action, _) => check_network(action, probe.timeout).await.unwrap_or(false),
        }
    }
    .boxed()
}

/// Runs a network check (an exec check returns `None`: the runtime runs it).
pub(crate) async fn check_network(action: &ProbeAction, timeout: Duration) -> Option<bool> {
    let fut = async {
        match action {
            ProbeAction::Exec(_) => None,
            ProbeAction::TcpSocket { port } => Some(connect(*port).await.is_ok()),
            ProbeAction::HttpGet { port, path } => Some(http_get(*port, path).await),
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(result) => result,
        Err(_) => Some(false),
    }
}

async fn connect(port: u16) -> std::io::Result<TcpStream> {
    TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

async fn http_get(port: u16, path: &str) -> bool {
    let Ok(mut stream) = connect(port).await else {
        return false;
    };
    let path = if path.starts_with('/') { path } else { "/" };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: kumos-probe\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 32];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    let code = std::str::from_utf8(&head[..len])
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok());
    matches!(code, Some(200..=399))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_decisions() {
        use RestartPolicy::*;
        assert!(Always.restarts(Some(0), None));
        assert!(Always.restarts(Some(1), None));
        assert!(OnFailure.restarts(Some(1), None));
        assert!(OnFailure.restarts(None, Some(15)));
        assert!(!OnFailure.restarts(Some(0), None));
        assert!(!Never.restarts(Some(1), None));
        assert_eq!(RestartPolicy::parse("OnFailure"), Some(OnFailure));
        assert_eq!(RestartPolicy::parse("sometimes"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(16));
        assert_eq!(backoff(5), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn thresholds() {
        let mut probe = Probe::new(ProbeAction::TcpSocket { port: 1 });
        probe.failure_threshold = 2;
        probe.success_threshold = 2;
        let mut c = Counts::default();
        assert_eq!(c.record(&probe, false), None);
        assert_eq!(c.record(&probe, true), None);
        assert_eq!(c.record(&probe, false), None);
        assert_eq!(c.record(&probe, false), Some(false));
        assert_eq!(c.record(&probe, false), None);
        assert_eq!(c.record(&probe, true), None);
        assert_eq!(c.record(&probe, true), Some(true));
        assert_eq!(c.record(&probe, true), Some(true));
    }

    #[tokio::test]
    async fn network_checks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
            }
        });
        let t = Duration::from_secs(5);
        let tcp = ProbeAction::TcpSocket { port };
        assert_eq!(check_network(&tcp, t).await, Some(true));
        let http = ProbeAction::HttpGet {
            port,
            path: "/healthz".into(),
        };
        assert_eq!(check_network(&http, t).await, Some(true));
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dead = closed.local_addr().unwrap().port();
        drop(closed);
        let tcp = ProbeAction::TcpSocket { port: dead };
        assert_eq!(check_network(&tcp, t).await, Some(false));
        let exec = ProbeAction::Exec(vec!["true".into()]);
        assert_eq!(check_network(&exec, t).await, None);
    }
}
