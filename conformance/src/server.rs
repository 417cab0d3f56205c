//! A `kumos server` child process on a free loopback port, with its data directory, kubeconfig and CA.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use anyhow::Context;

/// Which store the server uses.
#[derive(Debug, Clone)]
pub enum Store {
    /// The embedded store in the data directory.
    Embedded,
    /// A real etcd at this endpoint; each server gets its own key prefix.
    Etcd(String),
}

/// A running `kumos server`; killed on drop.
pub struct KumosServer {
    bin: PathBuf,
    store: Store,
    extra: Vec<String>,
    dir: tempfile::TempDir,
    prefix: String,
    child: Option<Child>,
    url: String,
    master: Option<String>,
}

impl KumosServer {
    /// Starts `bin server` with a fresh data directory and waits until `/readyz` answers.
    pub fn start(bin: &Path, store: Store) -> anyhow::Result<KumosServer> {
        Self::start_with(bin, store, &[])
    }

    /// [`KumosServer::start`] with extra command-line flags.
    pub fn start_with(bin: &Path, store: Store, extra: &[&str]) -> anyhow::Result<KumosServer> {
        let dir = tempfile::tempdir()?;
        let prefix = format!(
            "/kumos-{}",
            dir.path().file_name().unwrap_or_default().to_string_lossy()
        );
        let mut server = KumosServer {
            bin: bin.to_path_buf(),
            store,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
            prefix,
            child: None,
            url: String::new(),
            master: None,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let kubeconfig = self.kubeconfig();
        let _ = std::fs::remove_file(&kubeconfig);
        let mut cmd = Command::new(&self.bin);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(["--listen", "127.0.0.1:0", "--master-listen", "127.0.0.1:0"])
            .args(&self.extra)
            .env("KUMOS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Store::Etcd(endpoint) = &self.store {
            cmd.args([
                "--store",
                "etcd",
                "--etcd-endpoints",
                endpoint,
                "--etcd-prefix",
                &self.prefix,
            ]);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        // The first stdout line names the URL once the listener is bound and the kubeconfig written.
        let stdout = child.stdout.take().context("no stdout")?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        self.child = Some(child);
        self.url = line
            .split_whitespace()
            .find(|w| w.starts_with("https://") || w.starts_with("http://"))
            .with_context(|| format!("kumos did not report its URL: {line:?}"))?
            .to_string();
        self.master = line
            .split("master: ")
            .nth(1)
            .and_then(|m| m.split(|c: char| c == ')' || c.is_whitespace()).next())
            .map(str::to_string);
        crate::eventually(Duration::from_secs(60), "kumos /readyz", || {
            let out = self.curl(&["-sf", &format!("{}/readyz", self.url)]).ok()?;
            (out.status.success() && out.stdout == b"ok").then_some(())
        })
    }

    /// The built-in master's URL (`http://127.0.0.1:PORT`), as the server reported it.
    pub fn master_url(&self) -> Option<&str> {
        self.master.as_deref()
    }

    /// The API server's base URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The CA certificate the server generated.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("pki/ca.crt")
    }

    /// The bearer token.
    pub fn token(&self) -> anyhow::Result<String> {
        Ok(std::fs::read_to_string(self.dir.path().join("token"))?
            .trim()
            .to_string())
    }

    /// Runs curl against the server with its CA (no token unless the args add one).
    pub fn curl(&self, args: &[&str]) -> anyhow::Result<Output> {
        curl(&self.ca_path(), args)
    }

    /// An HTTP client for this server that does not borrow it (for use from other threads).
    pub fn client(&self) -> anyhow::Result<ApiClient> {
        Ok(ApiClient {
            url: self.url.clone(),
            token: self.token()?,
            ca: self.ca_path(),
        })
    }

    /// Sends a request with the bearer token; returns (HTTP status, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        self.client()?.request(method, path, body)
    }

    /// Kills the server with SIGKILL (no shutdown path runs).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops the server with SIGTERM and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status()?;
            let status = child.wait()?;
            anyhow::ensure!(status.success(), "kumos exited with {status} on SIGTERM");
        }
        Ok(())
    }

    /// Starts the server again on the same data directory (and store prefix).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop()?;
        self.spawn()
    }

    /// Starts the server again after [`KumosServer::kill9`].
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        self.spawn()
    }
}

impl Drop for KumosServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn curl(ca: &Path, args: &[&str]) -> anyhow::Result<Output> {
    Command::new("curl")
        .arg("--cacert")
        .arg(ca)
        .args(["--max-time", "30"])
        .args(args)
        .output()
        .context("running curl (install curl)")
}

/// A token-carrying HTTPS client for one server (curl underneath).
#[derive(Debug, Clone)]
pub struct ApiClient {
    url: String,
    token: String,
    ca: PathBuf,
}

impl ApiClient {
    /// Sends a request; returns (HTTP status, body). A status of 0 means no response (server gone).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<(u16, String)> {
        let auth = format!("Authorization: Bearer {}", self.token);
        let url = format!("{}{path}", self.url);
        let mut args = vec![
            "-s",
            "-X",
            method,
            "-H",
            &auth,
            "-w",
            "\n%{http_code}",
            &url,
        ];
        if let Some(b) = body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let out = curl(&self.ca, &args)?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        Ok((code.trim().parse().unwrap_or(0), body.to_string()))
    }
}
