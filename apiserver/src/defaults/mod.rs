//! Defaulting of core/v1 objects, as kube-apiserver applies it before validation. Pure.
//! STUB: owned by the `validation` work package.

use crate::resources::ResourceInfo;
use serde_json::Value;

/// Fills defaults into `object` (e.g. pod `restartPolicy: Always`, container `imagePullPolicy`,
/// service `type: ClusterIP`, rc `replicas: 1`, namespace `spec.finalizers: [kubernetes]`).
pub fn apply(_resource: &ResourceInfo, _object: &mut Value) {
    unimplemented!("validation package")
}
