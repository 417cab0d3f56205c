//! Kumos controllers: the Kubernetes framework (pods → tasks through offers) and the core
//! controllers, all talking to the API server through the `kube` crate like any controller.

pub mod context;
pub mod endpoints;
pub mod events;
pub mod framework;
pub mod gc;
pub mod replication;
pub mod nodes;

pub use context::{client_from_kubeconfig, Context};

use tokio_util::task::TaskTracker;

/// Settings of the controller set.
#[derive(Clone, Debug)]
pub struct ControllersConfig {
    /// The master's URL (`http://127.0.0.1:5050`): the framework subscribes there and the node
    /// controller reads the agents from it.
    pub master_url: String,
}

/// Runs every controller until `ctx.shutdown` is cancelled; returns once all have stopped.
pub async fn run_all(ctx: Context, config: ControllersConfig) {
    let tracker = TaskTracker::new();
    // Each controller is one owned task; they stop on ctx.shutdown.
    tracker.spawn(framework::run(
        ctx.clone(),
        framework::FrameworkConfig::new(&config.master_url),
    ));
    tracker.spawn(replication::run(ctx.clone()));
    tracker.spawn(gc::run(ctx.clone()));
    tracker.spawn(endpoints::run(ctx.clone()));
    tracker.spawn(nodes::run(
        ctx.clone(),
        nodes::NodesConfig::new(&config.master_url),
    ));
    tracker.close();
    tracker.wait().await;
}
