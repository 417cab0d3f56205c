//! A private dockerd for tests (one per test process), started by `scripts/docker-test-env.sh`
//! with an offline `busybox:latest` image; a watchdog stops it when the process exits. Tests
//! that need Docker fail (never skip) when it cannot start.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The test image (busybox from Debian's busybox-static, imported offline).
pub const IMAGE: &str = "busybox:latest";

static SOCKET: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The socket of this process's test dockerd, starting it on first use; panics if it cannot.
pub fn socket() -> PathBuf {
    match SOCKET.get_or_init(start) {
        Ok(socket) => socket.clone(),
        Err(e) => panic!("the test dockerd could not be started: {e}"),
    }
}

fn start() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/docker-test-env.sh");
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("kumos-dockerd-{pid}"));
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .arg(&dir)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("running {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let socket = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if socket.is_empty() {
        return Err("the setup script printed no socket".to_owned());
    }
    Ok(PathBuf::from(socket))
}

/// Runs the docker CLI against the test dockerd; stdout on success.
pub fn docker(args: &[&str]) -> anyhow::Result<String> {
    let host = format!("unix://{}", socket().display());
    let out = Command::new("docker")
        .args(["-H", &host])
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
