//! Kumos agent: registers with the master and runs tasks through containerizers.

pub mod agent;
pub mod containerizer;
pub mod logs;
