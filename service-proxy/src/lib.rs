//! The service proxy every agent runs: a userspace, async proxy that listens on each Service's
//! cluster IP and port (and on the agent's address at the Service's NodePort) and forwards TCP
//! connections and UDP datagrams to the Service's ready endpoints, round-robin, skipping endpoints
//! that refuse, honouring `sessionAffinity: ClientIP`.
//!
//! - [`table`]: Services + Endpoints → the listeners to run, and the difference between two tables (pure).
//! - [`balancer`]: round-robin, fallback order and ClientIP affinity with expiry (pure, time passed in).
//! - [`proxy`]: the listeners and connections (tokio), updated in place from a table.
//! - [`watch`]: Services and Endpoints mirrored from the API server, applied to the proxy on every change.

pub mod balancer;
pub mod proxy;
pub mod table;
pub mod watch;

pub use proxy::{BindFailure, Proxy, ProxyConfig};
pub use table::{Affinity, ListenerKey, ListenerSpec, Protocol, ServiceRef, Table};
pub use watch::{run, WatchConfig};
