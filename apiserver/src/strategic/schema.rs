//! Patch metadata looked up in the published OpenAPI schema: the schema node under a field, its patch
//! strategy and merge key.

use std::sync::OnceLock;

use serde_json::Value;

fn schemas() -> &'static Value {
    static SCHEMAS: OnceLock<Value> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        crate::openapi::core_v1_doc()
            .pointer("/components/schemas")
            .cloned()
            .unwrap_or(Value::Null)
    })
}

/// A position in the schema (or nowhere, for fields the schema does not describe).
#[derive(Debug, Clone, Copy)]
pub struct Node {
    schema: Option<&'static Value>,
}

fn resolve(mut schema: &'static Value) -> &'static Value {
    for _ in 0..8 {
        let reference = schema.get("$ref").and_then(Value::as_str).or_else(|| {
            schema
                .get("allOf")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(|f| f.get("$ref"))
                .and_then(Value::as_str)
        });
        let Some(name) = reference.and_then(|r| r.strip_prefix("#/components/schemas/")) else {
            return schema;
        };
        match schemas().get(name) {
            Some(next) => schema = next,
            None => return schema,
        }
    }
    schema
}

impl Node {
    /// The schema of a core/v1 kind (`Pod`).
    pub fn kind(kind: &str) -> Node {
        Node {
            schema: schemas().get(format!("io.k8s.api.core.v1.{kind}")),
        }
    }

    /// The schema of a field of this object.
    pub fn field(&self, name: &str) -> Node {
        let resolved = self.schema.map(resolve);
        let schema = resolved
            .and_then(|s| s.get("properties"))
            .and_then(|p| p.get(name))
            .or_else(|| {
                // Maps (`additionalProperties`) give every key the same schema.
                resolved
                    .and_then(|s| s.get("additionalProperties"))
                    .filter(|a| a.is_object())
            });
        Node { schema }
    }

    /// The schema of this list's items.
    pub fn item(&self) -> Node {
        Node {
            schema: self.schema.map(resolve).and_then(|s| s.get("items")),
        }
    }

    fn extension(&self, name: &str) -> Option<&'static str> {
        self.schema
            .and_then(|s| s.get(name))
            .and_then(Value::as_str)
    }

    /// Whether this list merges (patch strategy contains `merge`) rather than being replaced.
    pub fn merges(&self) -> bool {
        self.extension("x-kubernetes-patch-strategy")
            .is_some_and(|s| s.split(',').any(|p| p == "merge"))
    }

    /// The merge key of a merging list of objects.
    pub fn merge_key(&self) -> Option<&'static str> {
        self.extension("x-kubernetes-patch-merge-key")
    }
}
