//! Mesos-side fixtures: `kumos master` and `kumos agent` child processes, and a pymesos scheduler
//! (real pymesos from PyPI) whose events arrive as JSON lines.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value as Json;

fn read_first_line(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("no stdout")?;
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // Keep draining so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in reader.lines() {});
    Ok(line)
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A `kumos master` process with its own data directory (embedded store).
pub struct MasterProcess {
    bin: PathBuf,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
    /// Where it listens (kept across restarts).
    pub addr: SocketAddr,
}

impl MasterProcess {
    /// Starts `bin master` on a free port with extra flags.
    pub fn start(bin: &Path, extra: &[&str]) -> anyhow::Result<MasterProcess> {
        let mut m = MasterProcess {
            bin: bin.to_path_buf(),
            dir: tempfile::tempdir()?,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
            addr: "127.0.0.1:0".parse()?,
        };
        m.spawn()?;
        Ok(m)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(&self.bin)
            .arg("master")
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--master-listen", &self.addr.to_string()])
            .args(&self.extra)
            .env("KUMOS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {} master", self.bin.display()))?;
        let line = read_first_line(&mut child)?;
        self.child = Some(child);
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .with_context(|| format!("master did not report its URL: {line:?}"))?;
        self.addr = url.trim_start_matches("http://").parse()?;
        Ok(())
    }

    /// `host:port`.
    pub fn hostport(&self) -> String {
        self.addr.to_string()
    }

    /// The agent secret file.
    pub fn secret_file(&self) -> PathBuf {
        self.dir.path().join("agent-secret")
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        kill(&mut self.child);
    }

    /// Starts again on the same port and data directory.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.spawn()
    }

    /// GET a JSON endpoint.
    pub fn get_json(&self, path: &str) -> anyhow::Result<Json> {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "10",
                &format!("http://{}{path}", self.addr),
            ])
            .output()?;
        anyhow::ensure!(out.status.success(), "GET {path} failed");
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A `kumos agent` process with its own work directory.
pub struct AgentProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    bin: PathBuf,
}

impl AgentProcess {
    /// Starts an agent of `master` with the given `--resources` and hostname.
    pub fn start(
        bin: &Path,
        master: &MasterProcess,
        resources: &str,
        hostname: &str,
    ) -> anyhow::Result<AgentProcess> {
        let url = format!("http://{}", master.addr);
        Self::start_for(bin, &url, &master.secret_file(), resources, hostname)
    }

    /// Starts an agent of the master at `master_url` (e.g. a `kumos server`'s built-in master).
    pub fn start_for(
        bin: &Path,
        master_url: &str,
        secret_file: &Path,
        resources: &str,
        hostname: &str,
    ) -> anyhow::Result<AgentProcess> {
        Self::start_with(bin, master_url, secret_file, resources, hostname, &[])
    }

    /// [`AgentProcess::start_for`] with extra flags (e.g. `--runtime docker`).
    pub fn start_with(
        bin: &Path,
        master_url: &str,
        secret_file: &Path,
        resources: &str,
        hostname: &str,
        extra: &[&str],
    ) -> anyhow::Result<AgentProcess> {
        let dir = tempfile::tempdir()?;
        let mut args: Vec<String> = vec![
            "agent".into(),
            "--master".into(),
            master_url.into(),
            "--secret-file".into(),
            secret_file.display().to_string(),
            "--work-dir".into(),
            dir.path().display().to_string(),
            "--resources".into(),
            resources.into(),
            "--hostname".into(),
            hostname.into(),
            "--status-update-retry".into(),
            "500ms".into(),
            // Several agents share this host: each takes a free port for its endpoint.
            "--port".into(),
            "0".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut agent = AgentProcess {
            child: None,
            dir,
            args,
            bin: bin.to_path_buf(),
        };
        agent.spawn()?;
        Ok(agent)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(&self.bin)
            .args(&self.args)
            .env("KUMOS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting kumos agent")?;
        read_first_line(&mut child)?;
        self.child = Some(child);
        Ok(())
    }

    /// Starts the agent again on the same work directory (after [`AgentProcess::kill9`]).
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.spawn()
    }

    /// The work directory.
    pub fn work_dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL (its task processes are left behind, as a crashed agent leaves them).
    pub fn kill9(&mut self) {
        kill(&mut self.child);
    }

    /// Processes whose working directory lies under this agent's work directory.
    pub fn task_processes(&self) -> Vec<u32> {
        processes_under(self.dir.path())
    }
}

/// Pids whose cwd is under `dir`.
pub fn processes_under(dir: &Path) -> Vec<u32> {
    let Ok(dir) = dir.canonicalize() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd.starts_with(&dir)) {
            out.push(pid);
        }
    }
    out
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        kill(&mut self.child);
        for pid in processes_under(self.dir.path()) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// The virtualenv with pymesos, set up once per test process by `setup-pymesos.sh`.
pub fn pymesos_python() -> anyhow::Result<PathBuf> {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    VENV.get_or_init(|| {
        let venv = std::env::var_os("KUMOS_PYMESOS_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("kumos-pymesos-venv"));
        let script = python_dir().join("setup-pymesos.sh");
        let status = Command::new("bash").arg(&script).arg(&venv).status();
        match status {
            Ok(s) if s.success() => Ok(venv.join("bin/python")),
            other => Err(format!("{} failed: {other:?}", script.display())),
        }
    })
    .clone()
    .map_err(|e| anyhow::anyhow!(e))
}

fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// A running pymesos scheduler (conformance/python/pymesos_scheduler.py).
pub struct PymesosScheduler {
    child: Option<Child>,
    events: Arc<Mutex<Vec<Json>>>,
    notify: mpsc::Receiver<()>,
}

impl PymesosScheduler {
    /// Starts the scheduler in `mode` against `master`, with extra environment.
    pub fn start(
        mode: &str,
        master: &str,
        env: &[(&str, &str)],
    ) -> anyhow::Result<PymesosScheduler> {
        let python = pymesos_python()?;
        let mut child = Command::new(python)
            .arg(python_dir().join("pymesos_scheduler.py"))
            .args([mode, master])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the pymesos scheduler")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(j) = serde_json::from_str::<Json>(&line) {
                    if let Ok(mut e) = sink.lock() {
                        e.push(j);
                    }
                    let _ = tx.send(());
                }
            }
        });
        Ok(PymesosScheduler {
            child: Some(child),
            events,
            notify: rx,
        })
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Json> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Waits until an event matches `pred` (failing after `deadline`), returning it.
    pub fn wait_for(
        &self,
        deadline: Duration,
        what: &str,
        pred: impl Fn(&Json) -> bool,
    ) -> anyhow::Result<Json> {
        let end = std::time::Instant::now() + deadline;
        loop {
            if let Some(e) = self.events().into_iter().find(|e| pred(e)) {
                return Ok(e);
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                anyhow::bail!("timed out waiting for {what}; events: {:#?}", self.events());
            }
            let _ = self
                .notify
                .recv_timeout(left.min(Duration::from_millis(200)));
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut c = self.child.take().context("already waited")?;
        Ok(c.wait()?)
    }
}

impl Drop for PymesosScheduler {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// `ev == name` (and every `(key, value)` pair equal).
pub fn is_event(e: &Json, name: &str, fields: &[(&str, &str)]) -> bool {
    e.get("ev").and_then(Json::as_str) == Some(name)
        && fields
            .iter()
            .all(|(k, v)| e.get(*k).and_then(Json::as_str) == Some(*v))
}
