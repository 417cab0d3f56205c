//! Kumos controllers: the Kubernetes framework (pods → tasks through offers) and the core
//! controllers, all talking to the API server through the `kube` crate like any controller.

pub mod context;
pub mod endpoints;
pub mod events;
pub mod framework;
pub mod gc;
pub mod nodes;
pub mod replication;

pub use context::{client_from_kubeconfig, Context};

use tokio_util::task::TaskTracker;

/// Settings of the controller set.
#[derive(Clone, Debug)]
pub struct ControllersConfig {
    /// The master's URL (`http://127.0.0.1:5050`): the framework subscribes there and the node
    /// controller reads the agents from it.
    pub master_url: String,
    /// Which controllers run, as kube-controller-manager's `--controllers`: `*` for all, a name
    /// to enable one, `-name` to disable one (names: framework, replication, gc, endpoints,
    /// nodes).
    pub controllers: Vec<String>,
    /// How long a node may be not Ready before its pods are deleted (kube's
    /// `--pod-eviction-timeout`, default 5 minutes).
    pub pod_eviction_timeout: std::time::Duration,
}

/// Every controller's name.
pub const CONTROLLERS: [&str; 5] = ["framework", "replication", "gc", "endpoints", "nodes"];

impl ControllersConfig {
    /// All controllers, for the master at `master_url`.
    pub fn new(master_url: &str) -> ControllersConfig {
        ControllersConfig {
            master_url: master_url.to_string(),
            controllers: vec!["*".into()],
            pod_eviction_timeout: std::time::Duration::from_secs(300),
        }
    }

    /// Whether `name` runs.
    pub fn enabled(&self, name: &str) -> bool {
        if self
            .controllers
            .iter()
            .any(|c| c.strip_prefix('-') == Some(name))
        {
            return false;
        }
        self.controllers.iter().any(|c| c == "*" || c == name)
    }
}

/// Runs every controller until `ctx.shutdown` is cancelled; returns once all have stopped.
pub async fn run_all(ctx: Context, config: ControllersConfig) {
    let tracker = TaskTracker::new();
    // Each controller is one owned task; they stop on ctx.shutdown.
    if config.enabled("framework") {
        let fw = framework::FrameworkConfig::new(&config.master_url);
        tracker.spawn(framework::run(ctx.clone(), fw));
    }
    if config.enabled("replication") {
        tracker.spawn(replication::run(ctx.clone()));
    }
    if config.enabled("gc") {
        tracker.spawn(gc::run(ctx.clone()));
    }
    if config.enabled("endpoints") {
        tracker.spawn(endpoints::run(ctx.clone()));
    }
    if config.enabled("nodes") {
        let nodes = nodes::NodesConfig {
            eviction_timeout: config.pod_eviction_timeout,
            ..nodes::NodesConfig::new(&config.master_url)
        };
        tracker.spawn(nodes::run(ctx.clone(), nodes));
    }
    tracker.close();
    tracker.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_selection_like_kube_controller_manager() {
        let mut c = ControllersConfig::new("http://m");
        assert!(CONTROLLERS.iter().all(|n| c.enabled(n)));
        c.controllers = vec!["*".into(), "-nodes".into()];
        assert!(c.enabled("framework") && !c.enabled("nodes"));
        c.controllers = vec!["gc".into()];
        assert!(c.enabled("gc") && !c.enabled("framework"));
    }
}
