//! Kumos master: Mesos-style resource offers with a hierarchical DRF allocator.
