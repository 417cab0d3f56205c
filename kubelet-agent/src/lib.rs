//! Kumos agent: registers with the master and runs tasks through containerizers.

pub mod containerizer;
pub mod logs;
