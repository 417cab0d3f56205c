//! Pure translations from a [`TaskSpec`] to Docker API bodies, the labels that tie
//! containers to tasks, and Docker exit codes to [`Exit`]s.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HostConfig, PortBinding, PortMap};

use super::super::supervisor::Exit;
use super::super::{ContainerSpec, TaskSpec};

/// The agent that created a container.
pub(crate) const LABEL_AGENT: &str = "kumos.agent-id";
/// The task a container belongs to.
pub(crate) const LABEL_TASK: &str = "kumos.task-id";
/// The container's name in its task (empty for the sandbox container).
pub(crate) const LABEL_CONTAINER: &str = "kumos.container-name";
/// [`ROLE_SANDBOX`] or [`ROLE_APP`].
pub(crate) const LABEL_ROLE: &str = "kumos.role";
/// Position of an app container in [`TaskSpec::containers`].
pub(crate) const LABEL_INDEX: &str = "kumos.container-index";
/// Run number (restart count) of an app container: the number of its log file.
pub(crate) const LABEL_RUN: &str = "kumos.run";
/// The task's sandbox directory on the host (where the CRI logs are written).
pub(crate) const LABEL_SANDBOX: &str = "kumos.sandbox";
/// Role of the container holding a task's network namespace.
pub(crate) const ROLE_SANDBOX: &str = "sandbox";
/// Role of a container running one of the task's [`ContainerSpec`]s.
pub(crate) const ROLE_APP: &str = "app";

/// Highest signal number mapped from a `128 + n` exit code.
const MAX_SIGNAL: i64 = 64;

/// The labels every container of a task carries.
fn task_labels(agent_id: &str, task: &TaskSpec, role: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_AGENT.to_owned(), agent_id.to_owned()),
        (LABEL_TASK.to_owned(), task.task_id.clone()),
        (LABEL_ROLE.to_owned(), role.to_owned()),
        (LABEL_SANDBOX.to_owned(), task.sandbox.display().to_string()),
    ])
}

/// `8080/tcp`: the key of a port in Docker's port maps.
fn port_key(container_port: u16, protocol: &str) -> String {
    let protocol = if protocol.is_empty() {
        "tcp".to_owned()
    } else {
        protocol.to_lowercase()
    };
    format!("{container_port}/{protocol}")
}

/// The body creating a task's sandbox container: `image` running `sleep infinity`
/// under docker-init, publishing every port mapping of the task on `bind`.
pub(crate) fn sandbox_body(
    agent_id: &str,
    task: &TaskSpec,
    image: &str,
    bind: IpAddr,
) -> ContainerCreateBody {
    let mut bindings = PortMap::new();
    for port in task.containers.iter().flat_map(|c| &c.ports) {
        let binding = PortBinding {
            host_ip: Some(bind.to_string()),
            host_port: Some(port.host_port.to_string()),
        };
        bindings
            .entry(port_key(port.container_port, &port.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    let mut labels = task_labels(agent_id, task, ROLE_SANDBOX);
    labels.insert(LABEL_CONTAINER.to_owned(), String::new());
    ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint: Some(vec!["sleep".to_owned()]),
        cmd: Some(vec!["infinity".to_owned()]),
        labels: Some(labels),
        exposed_ports: Some(bindings.keys().cloned().collect()),
        host_config: Some(HostConfig {
            init: Some(true),
            port_bindings: Some(bindings),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

/// Docker CPU shares for a CPU request: `cpus × 1024`, at least 2 (Docker's minimum);
/// `None` (Docker's default) for a non-positive or non-finite request.
pub(crate) fn cpu_shares(cpus: f64) -> Option<i64> {
    (cpus.is_finite() && cpus > 0.0).then(|| ((cpus * 1024.0).round() as i64).max(2))
}

/// Docker memory limit in bytes for a request in MiB; `None` (unlimited) when not positive.
pub(crate) fn memory_bytes(mem_mb: f64) -> Option<i64> {
    (mem_mb.is_finite() && mem_mb > 0.0).then(|| (mem_mb * 1024.0 * 1024.0).round() as i64)
}

/// Docker's absolute working directory for a container: relative paths are taken from
/// the container's root directory.
fn working_dir(dir: &Path) -> String {
    if dir.is_absolute() {
        dir.display().to_string()
    } else {
        Path::new("/").join(dir).display().to_string()
    }
}

/// The body creating the app container `index` of a task, in the network namespace of
/// the sandbox container `sandbox_id`. `run` is its log file number.
pub(crate) fn app_body(
    agent_id: &str,
    task: &TaskSpec,
    index: usize,
    image: &str,
    sandbox_id: &str,
    run: u32,
) -> Option<ContainerCreateBody> {
    let spec: &ContainerSpec = task.containers.get(index)?;
    let mut labels = task_labels(agent_id, task, ROLE_APP);
    labels.insert(LABEL_CONTAINER.to_owned(), spec.name.clone());
    labels.insert(LABEL_INDEX.to_owned(), index.to_string());
    labels.insert(LABEL_RUN.to_owned(), run.to_string());
    let env = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some(ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: (!spec.argv.is_empty()).then(|| spec.argv.clone()),
        env: Some(env),
        working_dir: spec.working_dir.as_deref().map(working_dir),
        labels: Some(labels),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        host_config: Some(HostConfig {
            init: Some(true),
            network_mode: Some(format!("container:{sandbox_id}")),
            cpu_shares: cpu_shares(spec.cpus),
            memory: memory_bytes(spec.mem_mb),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    })
}

/// How a container ended, from Docker's exit code.
///
/// Docker reports a container killed by signal `n` as exit code `128 + n` (docker-init
/// does the same for its child), indistinguishable from a program exiting with that
/// status. The code is read as a signal only when the containerizer signalled the
/// container (`signalled`) or the kernel OOM-killed it (`oom_killed`: SIGKILL).
pub(crate) fn exit_of(code: Option<i64>, signalled: bool, oom_killed: bool) -> Exit {
    let Some(code) = code else {
        return Exit::default();
    };
    let signal = code
        .checked_sub(128)
        .filter(|n| (1..=MAX_SIGNAL).contains(n))
        .and_then(|n| i32::try_from(n).ok());
    match signal {
        Some(signal) if signalled || oom_killed => Exit {
            code: None,
            signal: Some(signal),
        },
        _ => Exit {
            code: Some(i32::try_from(code).unwrap_or(i32::MAX)),
            signal: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containerizer::PortMapping;

    fn task() -> TaskSpec {
        let port = |container_port, host_port| PortMapping {
            name: None,
            container_port,
            host_port,
            protocol: String::new(),
        };
        TaskSpec {
            task_id: "t".into(),
            sandbox: "/sb/t".into(),
            containers: vec![
                ContainerSpec {
                    name: "web".into(),
                    image: Some("busybox".into()),
                    argv: vec!["httpd".into(), "-f".into()],
                    env: vec![("A".into(), "b c".into())],
                    working_dir: Some("work".into()),
                    ports: vec![port(8080, 31000)],
                    cpus: 0.5,
                    mem_mb: 64.0,
                    ..ContainerSpec::default()
                },
                ContainerSpec {
                    name: "side".into(),
                    ports: vec![port(8080, 31001)],
                    ..ContainerSpec::default()
                },
            ],
            ..TaskSpec::default()
        }
    }

    #[test]
    fn sandbox_publishes_every_port_on_the_bind_address_only() {
        let body = sandbox_body("a1", &task(), "busybox", "127.0.0.1".parse().expect("ip"));
        let bindings = body.host_config.and_then(|h| h.port_bindings);
        let list = bindings
            .and_then(|b| b.get("8080/tcp").cloned().flatten())
            .expect("binding");
        let hosts: Vec<_> = list.iter().map(|b| b.host_ip.as_deref()).collect();
        let ports: Vec<_> = list.iter().map(|b| b.host_port.as_deref()).collect();
        assert_eq!(hosts, [Some("127.0.0.1"); 2]);
        assert_eq!(ports, [Some("31000"), Some("31001")]);
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_owned()]));
        let labels = body.labels.expect("labels");
        assert_eq!(labels[LABEL_ROLE], ROLE_SANDBOX);
        assert_eq!(labels[LABEL_AGENT], "a1");
    }

    #[test]
    fn app_container_gets_command_env_resources_and_labels() {
        let body = app_body("a1", &task(), 0, "busybox", "sbx", 2).expect("body");
        assert_eq!(body.cmd, Some(vec!["httpd".to_owned(), "-f".to_owned()]));
        assert_eq!(body.env, Some(vec!["A=b c".to_owned()]));
        assert_eq!(body.working_dir.as_deref(), Some("/work"));
        let host = body.host_config.expect("host config");
        assert_eq!(host.network_mode.as_deref(), Some("container:sbx"));
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(host.memory, Some(64 * 1024 * 1024));
        let labels = body.labels.expect("labels");
        assert_eq!(labels[LABEL_TASK], "t");
        assert_eq!(labels[LABEL_CONTAINER], "web");
        assert_eq!(labels[LABEL_RUN], "2");
        let side = app_body("a1", &task(), 1, "busybox", "sbx", 0).expect("body");
        assert_eq!(side.cmd, None, "empty argv keeps the image's command");
        assert!(app_body("a1", &task(), 2, "busybox", "sbx", 0).is_none());
    }

    #[test]
    fn resources_are_converted_or_left_to_docker() {
        assert_eq!(cpu_shares(0.001), Some(2));
        assert_eq!(cpu_shares(0.0), None);
        assert_eq!(cpu_shares(f64::NAN), None);
        assert_eq!(memory_bytes(-1.0), None);
    }

    #[test]
    fn exit_codes_above_128_are_signals_only_when_signalled() {
        let signal = |n| Exit {
            code: None,
            signal: Some(n),
        };
        let code = |n| Exit {
            code: Some(n),
            signal: None,
        };
        assert_eq!(exit_of(Some(143), true, false), signal(15));
        assert_eq!(exit_of(Some(137), false, true), signal(9));
        assert_eq!(exit_of(Some(143), false, false), code(143));
        assert_eq!(exit_of(Some(0), true, false), code(0));
        assert_eq!(exit_of(Some(255), true, false), code(255));
        assert_eq!(exit_of(None, true, false), Exit::default());
    }
}
