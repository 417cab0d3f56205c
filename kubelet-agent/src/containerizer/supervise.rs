//! The supervisor of one task: from its start to its single terminal event, with the
//! restarts and probes of its containers (rules in the `probe` module).

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::probe::{backoff, check, Counts, BACKOFF_RESET};
use super::supervisor::{
    lock, ContainerControl, ContainerPlan, Exit, Plan, StartFuture, Started, StopSignal, TaskMap,
};
use super::{ContainerState, Probe, RestartPolicy, TaskEvent, TaskPhase};

/// Grace between the SIGTERM and the SIGKILL of a container that failed its liveness probe.
const LIVENESS_GRACE: Duration = Duration::from_secs(3);

/// Which probe of a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Liveness,
    Readiness,
}

/// The schedule and consecutive results of one probe during one run.
#[derive(Clone, Copy, Debug)]
struct Tracker {
    next: Instant,
    busy: bool,
    counts: Counts,
}

/// One container: its plan and current run.
struct Slot {
    plan: ContainerPlan,
    control: Option<Box<dyn ContainerControl>>,
    /// Number of the current run, to drop results of earlier runs.
    run: u64,
    started: Instant,
    quick_restarts: u32,
    restart_at: Option<Instant>,
    stop_at: Option<Instant>,
    liveness: Option<Tracker>,
    readiness: Option<Tracker>,
}

type Exits = FuturesUnordered<BoxFuture<'static, (usize, u64, Exit)>>;
type Starts = FuturesUnordered<BoxFuture<'static, (usize, Result<Started, String>)>>;
type Probes = FuturesUnordered<BoxFuture<'static, (usize, u64, Kind, bool)>>;

/// The tokio task following one task from start to its terminal event.
pub(crate) struct Supervisor {
    task_id: String,
    events: mpsc::UnboundedSender<TaskEvent>,
    tasks: TaskMap,
    kills: mpsc::UnboundedReceiver<Duration>,
    states: Vec<ContainerState>,
    killed: bool,
    policy: RestartPolicy,
    slots: Vec<Slot>,
}

impl Supervisor {
    /// A supervisor of the task `task_id`, forgotten from `tasks` when it ends.
    pub fn new(
        task_id: String,
        events: mpsc::UnboundedSender<TaskEvent>,
        tasks: TaskMap,
        kills: mpsc::UnboundedReceiver<Duration>,
        plan: Plan,
    ) -> Self {
        let now = Instant::now();
        let states = plan
            .containers
            .iter()
            .map(|c| ContainerState::pending(&c.name))
            .collect();
        let slots = plan
            .containers
            .into_iter()
            .map(|plan| Slot {
                plan,
                control: None,
                run: 0,
                started: now,
                quick_restarts: 0,
                restart_at: None,
                stop_at: None,
                liveness: None,
                readiness: None,
            })
            .collect();
        Self {
            task_id,
            events,
            tasks,
            kills,
            states,
            killed: false,
            policy: plan.restart_policy,
            slots,
        }
    }

    fn emit(&self, phase: TaskPhase, message: String) {
        let _ = self.events.send(TaskEvent {
            task_id: self.task_id.clone(),
            phase,
            message,
            containers: self.states.clone(),
        });
    }

    /// Awaits `start`, then supervises the containers until the terminal event.
    pub async fn run(mut self, start: StartFuture) {
        let started = tokio::select! {
            biased;
            started = start => started,
            Some(_) = self.kills.recv() => {
                // Dropping the start future stops whatever it had begun.
                self.killed = true;
                Err("Task killed before it started".to_owned())
            }
        };
        match started {
            Ok(started) => self.supervise(started).await,
            Err(message) => self.finish(message),
        }
    }

    async fn supervise(&mut self, started: Vec<Started>) {
        let mut exits = Exits::new();
        let mut starts = Starts::new();
        let mut probes = Probes::new();
        for (i, container) in started.into_iter().enumerate() {
            self.install(i, container, &mut exits);
        }
        self.emit(TaskPhase::Running, "Task is running".to_owned());
        let mut deadline: Option<Instant> = None;
        loop {
            let pending_restart = self.slots.iter().any(|s| s.restart_at.is_some());
            if exits.is_empty() && starts.is_empty() && !pending_restart {
                break;
            }
            let timer = self.next_timer();
            tokio::select! {
                Some((i, run, exit)) = exits.next() => self.on_exit(i, run, exit),
                Some((i, result)) = starts.next() => self.on_restarted(i, result, &mut exits),
                Some((i, run, kind, ok)) = probes.next() => self.on_probe(i, run, kind, ok),
                Some(grace) = self.kills.recv() => {
                    self.killed = true;
                    for slot in &mut self.slots {
                        slot.restart_at = None;
                        if let Some(c) = &slot.control {
                            c.signal(StopSignal::Term);
                        }
                    }
                    // A grace too long to represent never escalates to SIGKILL.
                    if let Some(at) = Instant::now().checked_add(grace) {
                        deadline = Some(deadline.map_or(at, |d| d.min(at)));
                    }
                }
                () = sleep_until(deadline), if deadline.is_some() => {
                    self.slots.iter().filter_map(|s| s.control.as_ref())
                        .for_each(|c| c.signal(StopSignal::Kill));
                    deadline = None;
                }
                () = sleep_until(timer), if timer.is_some() => {
                    self.on_timer(&mut starts, &mut probes);
                }
            }
        }
        let message = self.exit_message();
        self.finish(message);
    }

    /// Makes `container` the current run of container `i`.
    fn install(&mut self, i: usize, container: Started, exits: &mut Exits) {
        let (Some(slot), Some(state)) = (self.slots.get_mut(i), self.states.get_mut(i)) else {
            return;
        };
        let now = Instant::now();
        slot.run += 1;
        slot.started = now;
        slot.control = Some(container.control);
        slot.stop_at = None;
        let tracker = |p: &Probe| Tracker {
            next: now + p.initial_delay,
            busy: false,
            counts: Counts::default(),
        };
        slot.liveness = slot.plan.liveness.as_ref().map(tracker);
        slot.readiness = slot.plan.readiness.as_ref().map(tracker);
        *state = container.state;
        state.ready = state.running && slot.plan.readiness.is_none();
        let run = slot.run;
        let exit = container.exit;
        exits.push(async move { (i, run, exit.await) }.boxed());
    }

    fn on_exit(&mut self, i: usize, run: u64, exit: Exit) {
        let (Some(slot), Some(state)) = (self.slots.get_mut(i), self.states.get_mut(i)) else {
            return;
        };
        if slot.run != run {
            return;
        }
        slot.control = None;
        slot.stop_at = None;
        state.running = false;
        state.ready = false;
        state.exit_code = exit.code;
        state.signal = exit.signal;
        state.finished_at = Some(OffsetDateTime::now_utc());
        let restartable = slot.plan.runtime.as_ref().is_some_and(|r| r.can_restart());
        if self.killed || !restartable || !self.policy.restarts(exit.code, exit.signal) {
            return;
        }
        if slot.started.elapsed() >= BACKOFF_RESET {
            slot.quick_restarts = 0;
        }
        let wait = backoff(slot.quick_restarts);
        slot.quick_restarts = slot.quick_restarts.saturating_add(1);
        slot.restart_at = Some(Instant::now() + wait);
        let message = format!(
            "Container '{}' {}; restarting in {}s",
            state.name,
            describe(state),
            wait.as_secs()
        );
        self.emit(TaskPhase::Running, message);
    }

    fn on_restarted(&mut self, i: usize, result: Result<Started, String>, exits: &mut Exits) {
        if self.killed {
            // Dropping the new run stops it; the task is ending.
            return;
        }
        match result {
            Ok(container) => {
                self.install(i, container, exits);
                let name = self.states.get(i).map(|s| s.name.clone());
                let message = format!("Container '{}' restarted", name.unwrap_or_default());
                self.emit(TaskPhase::Running, message);
            }
            Err(message) => {
                tracing::warn!(task = %self.task_id, %message, "restarting a container failed");
                if let Some(slot) = self.slots.get_mut(i) {
                    let wait = backoff(slot.quick_restarts);
                    slot.quick_restarts = slot.quick_restarts.saturating_add(1);
                    slot.restart_at = Some(Instant::now() + wait);
                }
            }
        }
    }

    fn on_probe(&mut self, i: usize, run: u64, kind: Kind, ok: bool) {
        let (Some(slot), Some(state)) = (self.slots.get_mut(i), self.states.get_mut(i)) else {
            return;
        };
        if slot.run != run || slot.control.is_none() {
            return;
        }
        let (tracker, probe) = match kind {
            Kind::Liveness => (slot.liveness.as_mut(), slot.plan.liveness.as_ref()),
            Kind::Readiness => (slot.readiness.as_mut(), slot.plan.readiness.as_ref()),
        };
        let (Some(tracker), Some(probe)) = (tracker, probe) else {
            return;
        };
        tracker.busy = false;
        let verdict = tracker.counts.record(probe, ok);
        match (kind, verdict) {
            (Kind::Liveness, Some(false)) if slot.stop_at.is_none() => {
                tracing::info!(task = %self.task_id, container = %state.name,
                    "liveness probe failed; killing the container");
                if let Some(c) = &slot.control {
                    c.signal(StopSignal::Term);
                }
                slot.stop_at = Some(Instant::now() + LIVENESS_GRACE);
                // No further probes of this run.
                slot.liveness = None;
                slot.readiness = None;
            }
            (Kind::Readiness, Some(ready)) if state.ready != ready => {
                state.ready = ready;
                let what = if ready { "ready" } else { "not ready" };
                let message = format!("Container '{}' is {what}", state.name);
                self.emit(TaskPhase::Running, message);
            }
            _ => {}
        }
    }

    /// The earliest restart, escalation or probe due.
    fn next_timer(&self) -> Option<Instant> {
        let mut times = Vec::new();
        for slot in &self.slots {
            times.extend(slot.restart_at);
            times.extend(slot.stop_at);
            if slot.control.is_some() {
                let probes = [slot.liveness, slot.readiness];
                times.extend(probes.iter().flatten().filter(|t| !t.busy).map(|t| t.next));
            }
        }
        times.into_iter().min()
    }

    /// Starts the restarts, escalations and probes that are due.
    fn on_timer(&mut self, starts: &mut Starts, probes: &mut Probes) {
        let now = Instant::now();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if slot.restart_at.is_some_and(|at| at <= now) {
                slot.restart_at = None;
                if let Some(restart) = slot.plan.runtime.as_ref().and_then(|r| r.restart()) {
                    starts.push(async move { (i, restart.await) }.boxed());
                }
            }
            if slot.stop_at.is_some_and(|at| at <= now) {
                slot.stop_at = None;
                if let Some(c) = &slot.control {
                    c.signal(StopSignal::Kill);
                }
            }
            if slot.control.is_none() {
                continue;
            }
            let run = slot.run;
            for (kind, tracker, probe) in [
                (Kind::Liveness, &mut slot.liveness, &slot.plan.liveness),
                (Kind::Readiness, &mut slot.readiness, &slot.plan.readiness),
            ] {
                let (Some(tracker), Some(probe)) = (tracker.as_mut(), probe) else {
                    continue;
                };
                if tracker.busy || tracker.next > now {
                    continue;
                }
                tracker.busy = true;
                tracker.next = now + probe.period.max(Duration::from_millis(100));
                let check = check(probe.clone(), slot.plan.runtime.clone());
                probes.push(async move { (i, run, kind, check.await) }.boxed());
            }
        }
    }

    /// Forgets the task, then reports its single terminal event.
    fn finish(&mut self, message: String) {
        lock(&self.tasks).remove(&self.task_id);
        // Kill requests that arrived before the task was forgotten still count.
        if self.kills.try_recv().is_ok() {
            self.killed = true;
        }
        let all_zero = self
            .states
            .iter()
            .all(|s| s.exit_code == Some(0) && s.signal.is_none());
        let (phase, message) = if self.killed {
            (TaskPhase::Killed, "Task killed".to_owned())
        } else if all_zero {
            (TaskPhase::Finished, message)
        } else {
            (TaskPhase::Failed, message)
        };
        self.emit(phase, message);
    }

    /// Mesos-style description of how the containers exited.
    fn exit_message(&self) -> String {
        match self.states.as_slice() {
            [only] => format!("Command {}", describe(only)),
            all => {
                let failed: Vec<String> = all
                    .iter()
                    .filter(|s| s.exit_code != Some(0) || s.signal.is_some())
                    .map(|s| format!("Container '{}' {}", s.name, describe(s)))
                    .collect();
                if failed.is_empty() {
                    "All containers exited with status 0".to_owned()
                } else {
                    failed.join("; ")
                }
            }
        }
    }
}

/// How a container exited, e.g. `"exited with status 1"`.
fn describe(s: &ContainerState) -> String {
    match (s.exit_code, s.signal) {
        (_, Some(sig)) => format!("terminated by signal {sig}"),
        (Some(code), None) => format!("exited with status {code}"),
        (None, None) => "exited".to_owned(),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}
