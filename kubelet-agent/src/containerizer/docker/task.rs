//! Starting a task's containers, and re-adopting the containers of a previous agent.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bollard::models::{ContainerCreateBody, ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{CreateImageOptionsBuilder, ListContainersOptionsBuilder};
use futures::{FutureExt, StreamExt};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::super::supervisor::{Plan, Registry, Started};
use super::super::{ContainerState, ContainerizerError, TaskSpec};
use super::restart::TaskNet;
use super::run::{watch, Control, TaskCleanup, Watch};
use super::spec::{self, LABEL_CONTAINER, LABEL_INDEX, LABEL_ROLE, LABEL_RUN, LABEL_SANDBOX};
use super::{api, DockerError, Shared};
use crate::logs::LogWriter;

/// Makes sure `image` is present: inspected first, pulled only when missing.
async fn ensure_image(shared: &Shared, image: &str) -> Result<(), DockerError> {
    match shared.docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        Err(e) => return Err(api(format!("inspect image {image}"))(e)),
    }
    tracing::info!(%image, "pulling image");
    let opts = CreateImageOptionsBuilder::new().from_image(image).build();
    let mut progress = shared.docker.create_image(Some(opts), None, None);
    while let Some(step) = progress.next().await {
        step.map_err(api(format!("pull image {image}")))?;
    }
    Ok(())
}

/// Creates a container, recording its id in `created` (and as owned) at once.
pub(super) async fn create(
    shared: &Shared,
    what: &str,
    body: ContainerCreateBody,
    created: &mut Vec<String>,
) -> Result<String, DockerError> {
    let response = shared
        .docker
        .create_container(None, body)
        .await
        .map_err(api(format!("create container {what}")))?;
    shared.track(&response.id);
    created.push(response.id.clone());
    Ok(response.id)
}

/// Starts every container of a task: the sandbox, then the app containers in order.
/// On failure, every container created for the task is removed. Also returns what
/// restarting its containers needs.
pub(super) async fn start(
    shared: &Arc<Shared>,
    spec: &TaskSpec,
) -> Result<(Vec<Started>, Option<TaskNet>), ContainerizerError> {
    tokio::fs::create_dir_all(&spec.sandbox).await?;
    if spec.containers.is_empty() {
        return Ok((Vec::new(), None));
    }
    let mut images = Vec::with_capacity(spec.containers.len());
    for container in &spec.containers {
        let image = container.image.as_deref().filter(|i| !i.is_empty());
        images.push(image.ok_or_else(|| DockerError::NoImage(container.name.clone()))?);
    }
    let mut distinct = images.clone();
    distinct.sort_unstable();
    distinct.dedup();
    for image in distinct {
        ensure_image(shared, image).await?;
    }
    let mut created = Vec::new();
    let result = create_and_start(shared, spec, &images, &mut created).await;
    if result.is_err() {
        for id in &created {
            shared.remove(id).await;
        }
    }
    result
}

async fn create_and_start(
    shared: &Arc<Shared>,
    spec: &TaskSpec,
    images: &[&str],
    created: &mut Vec<String>,
) -> Result<(Vec<Started>, Option<TaskNet>), ContainerizerError> {
    let agent_id = &shared.config.agent_id;
    let first = images
        .first()
        .ok_or_else(|| DockerError::NoImage(String::new()))?;
    let body = spec::sandbox_body(agent_id, spec, first, shared.config.bind_address);
    let sandbox_id = create(shared, "sandbox", body, created).await?;
    start_container(shared, "sandbox", &sandbox_id).await?;
    let mut apps = Vec::with_capacity(spec.containers.len());
    for (index, (container, image)) in spec.containers.iter().zip(images).enumerate() {
        let (log, run) = LogWriter::create(&spec.sandbox, &container.name).await?;
        let body = spec::app_body(agent_id, spec, index, image, &sandbox_id, run)
            .ok_or_else(|| DockerError::NoImage(container.name.clone()))?;
        let id = create(shared, &container.name, body, created).await?;
        apps.push((container.name.as_str(), id, log, run));
    }
    let mut started_at = Vec::with_capacity(apps.len());
    for (name, id, _, _) in &apps {
        start_container(shared, name, id).await?;
        started_at.push(OffsetDateTime::now_utc());
    }
    let cleanup = TaskCleanup::new(Arc::clone(shared), created.clone(), apps.len());
    let net = TaskNet {
        spec: spec.clone(),
        images: images.iter().map(|i| i.to_string()).collect(),
        sandbox_id: sandbox_id.clone(),
        app_ids: apps.iter().map(|(_, id, _, _)| id.clone()).collect(),
        cleanup: Arc::clone(&cleanup),
    };
    let started = apps
        .into_iter()
        .zip(started_at)
        .map(|((name, id, log, run), at)| {
            let state = ContainerState {
                running: true,
                started_at: Some(at),
                restart_count: run,
                container_id: format!("docker://{id}"),
                ..ContainerState::pending(name)
            };
            supervised(shared, id, state, log, None, &cleanup)
        })
        .collect();
    Ok((started, Some(net)))
}

pub(super) async fn start_container(
    shared: &Shared,
    what: &str,
    id: &str,
) -> Result<(), DockerError> {
    shared
        .docker
        .start_container(id, None)
        .await
        .map_err(api(format!("start container {what}")))
}

/// A started container handed to the supervisor.
pub(super) fn supervised(
    shared: &Arc<Shared>,
    id: String,
    state: ContainerState,
    log: LogWriter,
    resume_after: Option<OffsetDateTime>,
    cleanup: &Arc<TaskCleanup>,
) -> Started {
    let signalled = Arc::new(AtomicBool::new(false));
    let control = Control {
        shared: Arc::clone(shared),
        id: id.clone(),
        signalled: Arc::clone(&signalled),
    };
    let exit = watch(Watch {
        shared: Arc::clone(shared),
        id,
        log,
        resume_after,
        signalled,
        cleanup: Arc::clone(cleanup),
    });
    Started {
        state,
        control: Box::new(control),
        exit: exit.boxed(),
    }
}

fn label<'a>(summary: &'a ContainerSummary, key: &str) -> Option<&'a str> {
    summary.labels.as_ref()?.get(key).map(String::as_str)
}

/// Re-adopts the tasks of containers labelled with this agent's id; see the module
/// documentation. Returns the adopted task ids, sorted.
pub(super) async fn recover(
    shared: &Arc<Shared>,
    registry: &Registry,
) -> Result<Vec<String>, ContainerizerError> {
    let filter = format!("{}={}", spec::LABEL_AGENT, shared.config.agent_id);
    let filters = HashMap::from([("label", vec![filter])]);
    let opts = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let list = shared
        .docker
        .list_containers(Some(opts))
        .await
        .map_err(api("list containers"))?;
    let mut tasks: BTreeMap<String, Vec<ContainerSummary>> = BTreeMap::new();
    for summary in list {
        if let Some(task) = label(&summary, spec::LABEL_TASK) {
            tasks.entry(task.to_owned()).or_default().push(summary);
        }
    }
    let known = registry.tasks();
    let mut adopted = Vec::new();
    for (task_id, containers) in tasks {
        if known.contains(&task_id) {
            continue;
        }
        let ids: Vec<String> = containers.iter().filter_map(|c| c.id.clone()).collect();
        let mut apps: Vec<&ContainerSummary> = containers
            .iter()
            .filter(|c| label(c, LABEL_ROLE) == Some(spec::ROLE_APP))
            .collect();
        apps.sort_by_key(|c| label(c, LABEL_INDEX).and_then(|i| i.parse::<usize>().ok()));
        let running = apps
            .iter()
            .any(|c| c.state == Some(ContainerSummaryStateEnum::RUNNING));
        if !running {
            tracing::info!(task = %task_id, "removing the containers of an ended task");
            for id in &ids {
                shared.remove(id).await;
            }
            continue;
        }
        let reservation = registry.reserve(&task_id)?;
        ids.iter().for_each(|id| shared.track(id));
        let cleanup = TaskCleanup::new(Arc::clone(shared), ids, apps.len());
        match adopt(shared, &apps, &cleanup).await {
            Ok(started) => {
                let names = started.iter().map(|s| s.state.name.clone()).collect();
                registry.start(
                    reservation,
                    Plan::adopted(names),
                    futures::future::ready(Ok(started)).boxed(),
                );
                tracing::info!(task = %task_id, "re-adopted task");
                adopted.push(task_id);
            }
            Err(e) => {
                tracing::warn!(task = %task_id, error = %e, "re-adopting task failed");
                registry.release(reservation);
            }
        }
    }
    Ok(adopted)
}

/// Resumes supervising the app containers of one task.
async fn adopt(
    shared: &Arc<Shared>,
    apps: &[&ContainerSummary],
    cleanup: &Arc<TaskCleanup>,
) -> Result<Vec<Started>, ContainerizerError> {
    let mut started = Vec::with_capacity(apps.len());
    for summary in apps {
        let id = summary.id.clone().unwrap_or_default();
        let name = label(summary, LABEL_CONTAINER).unwrap_or_default();
        let run = label(summary, LABEL_RUN).and_then(|r| r.parse().ok());
        let sandbox = label(summary, LABEL_SANDBOX).unwrap_or_default();
        let log = LogWriter::append(sandbox.as_ref(), name, run.unwrap_or(0)).await?;
        let resume_after = log.last_timestamp().await?;
        let info = shared
            .docker
            .inspect_container(&id, None)
            .await
            .map_err(api(format!("inspect container {name}")))?;
        let docker_state = info.state.unwrap_or_default();
        let started_at = docker_state
            .started_at
            .and_then(|at| OffsetDateTime::parse(&at, &Rfc3339).ok());
        let state = ContainerState {
            running: docker_state.running == Some(true),
            started_at,
            restart_count: run.unwrap_or(0),
            container_id: format!("docker://{id}"),
            ..ContainerState::pending(name)
        };
        started.push(supervised(shared, id, state, log, resume_after, cleanup));
    }
    Ok(started)
}
