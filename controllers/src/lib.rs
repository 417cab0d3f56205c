//! Kumos controllers: the Kubernetes framework (pods → tasks through offers) and the core
//! controllers, all talking to the API server through the `kube` crate like any controller.

pub mod context;

pub use context::{client_from_kubeconfig, Context};
