//! Kumos controllers: the Kubernetes framework and the core controllers.
