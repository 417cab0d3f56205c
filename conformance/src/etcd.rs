//! A throwaway single-member etcd server for tests: temp data dir, free 127.0.0.1 ports, killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long a fresh etcd may take to answer its health endpoint.
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// A running etcd process, stopped (SIGKILL) and its data removed when dropped.
pub struct EtcdProcess {
    child: Child,
    endpoint: String,
    // Held for its Drop: removes the data dir and log.
    _dir: tempfile::TempDir,
}

impl EtcdProcess {
    /// Starts etcd on free loopback ports and waits until it reports healthy.
    ///
    /// # Panics
    /// When no etcd binary is installed: tests that need etcd must fail, never silently skip.
    pub fn start() -> anyhow::Result<EtcdProcess> {
        let binary = find_etcd().unwrap_or_else(|| panic!("etcd not found: install etcd-server"));
        let dir = tempfile::tempdir().context("creating etcd temp dir")?;
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log =
            std::fs::File::create(dir.path().join("etcd.log")).context("creating etcd log")?;
        let child = Command::new(&binary)
            .arg("--name=kumos-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=kumos-test={peer_url}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut etcd = EtcdProcess {
            child,
            endpoint: client_url,
            _dir: dir,
        };
        etcd.wait_healthy(client_port)?;
        Ok(etcd)
    }

    /// The client URL, e.g. `http://127.0.0.1:23790`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    fn wait_healthy(&mut self, port: u16) -> anyhow::Result<()> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().context("polling etcd")? {
                bail!("etcd exited during startup ({status}): {}", self.log_tail());
            }
            if healthy(port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "etcd did not become healthy in {STARTUP_DEADLINE:?}: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self._dir.path().join("etcd.log")).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        log.get(start..).unwrap_or_default().to_owned()
    }
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        // Best effort: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/usr/bin/etcd`, else the first `etcd` on `PATH`.
fn find_etcd() -> Option<PathBuf> {
    let fixed = PathBuf::from("/usr/bin/etcd");
    if fixed.is_file() {
        return Some(fixed);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("etcd"))
        .find(|candidate| candidate.is_file())
}

/// A port the OS considers free right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Whether etcd's `/health` endpoint on `port` reports healthy.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"health\":\"true\"")
}
