//! Kumos master: Mesos-style resource offers with a hierarchical DRF allocator.
//!
//! The pure core (no I/O): the resource model, sorters, refused-offer filters, quota, one
//! allocation cycle, and the master's state machine (`master`).

pub mod allocator;
pub mod bench;
pub mod client;
pub mod filter;
pub mod http;
pub mod master;
pub mod quota;
pub mod resources;
pub mod service;
pub mod sorter;
