//! The Kubernetes framework: pending pods become demands, offers from the master are packed with
//! them, each placed pod is bound and launched as a task group (LAUNCH_GROUP), and task status
//! comes back as pod status. It speaks the same Mesos v1 scheduler HTTP API as any framework.

pub mod demand;
pub mod matching;
pub mod podstatus;
mod shell;
pub mod tasks;
pub mod writes;

pub use shell::run;

use std::time::Duration;

/// Framework settings.
#[derive(Clone, Debug)]
pub struct FrameworkConfig {
    /// The master (`http://127.0.0.1:5050`).
    pub master_url: String,
    /// Role the framework subscribes with (default `kubernetes`).
    pub role: String,
    /// How long the master keeps our tasks while we are away (controller restarts).
    pub failover_timeout: Duration,
    /// Pods whose `spec.schedulerName` is one of these are ours.
    pub scheduler_names: Vec<String>,
}

impl FrameworkConfig {
    /// Defaults for `master_url`.
    pub fn new(master_url: &str) -> FrameworkConfig {
        FrameworkConfig {
            master_url: master_url.to_string(),
            role: "kubernetes".into(),
            failover_timeout: Duration::from_secs(7 * 24 * 3600),
            scheduler_names: vec!["default-scheduler".into(), "kumos".into()],
        }
    }
}
