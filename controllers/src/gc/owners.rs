//! The garbage collector's pure parts: which kinds it knows (the core/v1 resources Kumos serves),
//! which it scans for dependents, and the verdict over a dependent's owners.

use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, Pod, ReplicationController, Service,
};
use kube::core::ApiResource;

/// A kind the collector can look owners up in.
#[derive(Clone, Debug)]
pub struct Kind {
    /// How to address it.
    pub resource: ApiResource,
    /// Whether its objects live in a namespace.
    pub namespaced: bool,
}

fn kind<K: kube::Resource<DynamicType = ()>>(namespaced: bool) -> Kind {
    Kind {
        resource: ApiResource::erase::<K>(&()),
        namespaced,
    }
}

/// Every kind that can own objects: the core/v1 resources Kumos serves.
pub fn owner_kinds() -> Vec<Kind> {
    vec![
        kind::<Pod>(true),
        kind::<ReplicationController>(true),
        kind::<Service>(true),
        kind::<ConfigMap>(true),
        kind::<Endpoints>(true),
        kind::<Event>(true),
        kind::<Node>(false),
        kind::<Namespace>(false),
    ]
}

/// The kinds scanned for dependents, and watched for owner deletions.
pub fn dependent_kinds() -> Vec<Kind> {
    vec![
        kind::<Pod>(true),
        kind::<ReplicationController>(true),
        kind::<Service>(true),
        kind::<ConfigMap>(true),
        kind::<Endpoints>(true),
    ]
}

/// The kind an ownerReference names, when the collector knows it.
pub fn resolve(api_version: &str, kind: &str) -> Option<Kind> {
    owner_kinds()
        .into_iter()
        .find(|k| k.resource.api_version == api_version && k.resource.kind == kind)
}

/// What became of one owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// An object of that name exists with the referenced uid.
    Present,
    /// No object of that name, or one with another uid (the owner was deleted and perhaps recreated).
    Absent,
    /// The collector cannot tell (an unknown kind): the dependent is kept.
    Unknown,
}

/// The state of an owner from the object found under its name (`found_uid`), if any.
pub fn owner_state(referenced_uid: &str, found_uid: Option<Option<&str>>) -> OwnerState {
    match found_uid {
        None => OwnerState::Absent,
        Some(uid) if uid == Some(referenced_uid) => OwnerState::Present,
        Some(_) => OwnerState::Absent,
    }
}

/// A dependent is garbage when it has owners and every one of them is absent.
pub fn is_garbage(states: &[OwnerState]) -> bool {
    !states.is_empty() && states.iter().all(|s| *s == OwnerState::Absent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_core_kinds_only() {
        let rc = resolve("v1", "ReplicationController");
        assert!(rc.is_some_and(|k| k.namespaced && k.resource.plural == "replicationcontrollers"));
        assert!(resolve("v1", "Node").is_some_and(|k| !k.namespaced));
        assert!(resolve("apps/v1", "ReplicaSet").is_none());
        assert!(resolve("apps/v1", "Pod").is_none());
    }

    #[test]
    fn owner_states() {
        assert_eq!(owner_state("u1", None), OwnerState::Absent);
        assert_eq!(owner_state("u1", Some(Some("u1"))), OwnerState::Present);
        assert_eq!(owner_state("u1", Some(Some("u2"))), OwnerState::Absent);
        assert_eq!(owner_state("u1", Some(None)), OwnerState::Absent);
    }

    #[test]
    fn garbage_only_when_every_owner_is_absent() {
        use OwnerState::*;
        assert!(is_garbage(&[Absent]));
        assert!(is_garbage(&[Absent, Absent]));
        assert!(!is_garbage(&[Absent, Present]));
        assert!(!is_garbage(&[Absent, Unknown]));
        assert!(!is_garbage(&[]));
    }
}
