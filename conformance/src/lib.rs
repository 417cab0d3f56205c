//! Test fixtures: start a `kumos server`, run kubectl against it, poll with deadlines.

pub mod etcd;

pub use etcd::EtcdProcess;
