//! Running the real kubectl binaries (the default one and an older version) against a kubeconfig.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The default `kubectl` and `kubectl.1.28` from the directory it links into. Panics when either is missing:
/// these tests must fail loudly rather than skip.
pub fn kubectl_binaries() -> Vec<PathBuf> {
    let out = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .expect("running sh");
    let default = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        default.is_file(),
        "kubectl not found on PATH: install kubectl"
    );
    let old = default.with_file_name("kubectl.1.28");
    assert!(
        old.is_file(),
        "{} not found: the tests need kubectl 1.28 beside kubectl",
        old.display()
    );
    vec![default, old]
}

/// kubectl bound to one kubeconfig.
#[derive(Debug, Clone)]
pub struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// kubectl `bin` using `kubeconfig`.
    pub fn new(bin: &Path, kubeconfig: &Path) -> Kubectl {
        Kubectl {
            bin: bin.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }

    /// The binary's file name (`kubectl.1.28`), for messages.
    pub fn name(&self) -> String {
        self.bin
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    }

    /// A command with the kubeconfig set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        cmd
    }

    /// Runs kubectl and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running kubectl")
    }

    /// Runs kubectl; its stdout when it succeeds (for polling, where a failure is not final).
    pub fn try_ok(&self, args: &[&str]) -> Option<String> {
        let out = self.run(args);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs kubectl with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .expect("writing kubectl stdin");
        }
        child.wait_with_output().expect("waiting for kubectl")
    }

    /// Runs kubectl, asserts success and returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{} {args:?} failed: {}{}",
            self.name(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl, asserts failure and returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{} {args:?} unexpectedly succeeded: {}",
            self.name(),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}
