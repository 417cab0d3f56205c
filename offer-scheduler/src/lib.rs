//! Kumos master: Mesos-style resource offers with a hierarchical DRF allocator.
//!
//! This crate currently holds the pure allocator core (no I/O): the resource model, sorters,
//! refused-offer filters, quota and one allocation cycle.

pub mod allocator;
pub mod filter;
pub mod quota;
pub mod resources;
pub mod sorter;
