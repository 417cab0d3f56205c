//! The static table of resources this server serves: names, kinds, scope, verbs and subresources.
//!
//! Everything that needs to know "what is a pod" (routing, discovery, OpenAPI, tables, field selectors,
//! storage keys) reads it from here, so adding a resource is one entry.

/// One served resource of the core/v1 group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Plural lowercase name used in URLs and storage keys (`pods`).
    pub name: &'static str,
    /// Singular lowercase name (`pod`).
    pub singular: &'static str,
    /// The object kind (`Pod`).
    pub kind: &'static str,
    /// Whether objects live inside a namespace.
    pub namespaced: bool,
    /// kubectl short names (`po`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// Subresources served under `/{name}/{sub}`.
    pub subresources: &'static [&'static str],
}

impl ResourceInfo {
    /// The kind of the list object (`PodList`).
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Verbs on the collection and on single objects, as discovery reports them.
    pub fn verbs(&self) -> &'static [&'static str] {
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// The storage key prefix for this resource, ending in `/`: `/registry/pods/`.
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/", self.name)
    }

    /// The storage key prefix for one namespace's objects: `/registry/pods/default/`.
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        format!("/registry/{}/{}/", self.name, namespace)
    }

    /// The storage key of one object. Cluster-scoped resources ignore `namespace`.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match (self.namespaced, namespace) {
            (true, Some(ns)) => format!("/registry/{}/{}/{}", self.name, ns, name),
            _ => format!("/registry/{}/{}", self.name, name),
        }
    }
}

impl ResourceInfo {
    /// Decodes a stored value into the wire object: `kind`/`apiVersion` first, and `metadata.resourceVersion`
    /// set to `revision` (the store's mod_revision, or the delete revision for a DELETED event).
    pub fn decode(
        &self,
        bytes: &[u8],
        revision: i64,
    ) -> Result<serde_json::Value, serde_json::Error> {
        let stored: serde_json::Value = serde_json::from_slice(bytes)?;
        let mut out = serde_json::Map::new();
        out.insert("kind".into(), self.kind.into());
        out.insert("apiVersion".into(), "v1".into());
        if let serde_json::Value::Object(map) = stored {
            for (k, v) in map {
                if k != "kind" && k != "apiVersion" {
                    out.insert(k, v);
                }
            }
        }
        let meta = out
            .entry("metadata")
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), revision.to_string().into());
        }
        Ok(serde_json::Value::Object(out))
    }
}

/// Every resource we serve, in discovery order.
pub const RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        name: "configmaps",
        singular: "configmap",
        kind: "ConfigMap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
        subresources: &[],
    },
    ResourceInfo {
        name: "endpoints",
        singular: "endpoints",
        kind: "Endpoints",
        namespaced: true,
        short_names: &["ep"],
        categories: &[],
        subresources: &[],
    },
    ResourceInfo {
        name: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        subresources: &[],
    },
    ResourceInfo {
        name: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        subresources: &["finalize", "status"],
    },
    ResourceInfo {
        name: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        subresources: &["status"],
    },
    ResourceInfo {
        name: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        subresources: &["binding", "log", "status"],
    },
    ResourceInfo {
        name: "replicationcontrollers",
        singular: "replicationcontroller",
        kind: "ReplicationController",
        namespaced: true,
        short_names: &["rc"],
        categories: &["all"],
        subresources: &["scale", "status"],
    },
    ResourceInfo {
        name: "services",
        singular: "service",
        kind: "Service",
        namespaced: true,
        short_names: &["svc"],
        categories: &["all"],
        subresources: &["status"],
    },
];

/// Looks a resource up by its plural name (`pods`).
pub fn by_name(name: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.name == name)
}

/// Looks a resource up by its kind (`Pod`).
pub fn by_kind(kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_kubernetes_registry_layout() {
        let pods = by_name("pods").unwrap();
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/pods/default/web"
        );
        let ns = by_kind("Namespace").unwrap();
        assert_eq!(ns.key(None, "default"), "/registry/namespaces/default");
        assert_eq!(pods.list_kind(), "PodList");
    }
}
