//! Reusable pieces of OpenAPI operations: kube's query/path parameters, request bodies and responses.

use serde_json::{json, Map, Value};

use super::schemas::{meta_name, schema_ref};

/// A query parameter with a string-ish schema.
pub(super) fn query(name: &str, ty: &str, description: &str) -> Value {
    let schema = json!({"type": ty, "uniqueItems": true});
    json!({"name": name, "in": "query", "description": description, "schema": schema})
}

/// A required path parameter (`name`, `namespace`).
pub(super) fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "description": description, "required": true,
        "schema": {"type": "string", "uniqueItems": true}})
}

/// The `pretty` parameter every kube path carries.
pub(super) fn pretty() -> Value {
    query("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).")
}

/// `dryRun` (create, update, patch, delete).
pub(super) fn dry_run() -> Value {
    query("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed")
}

/// `fieldManager` (create, update, patch).
pub(super) fn field_manager() -> Value {
    query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.")
}

/// `fieldValidation`: kubectl looks for it on PATCH before trusting server-side validation.
pub(super) fn field_validation() -> Value {
    query("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.")
}

/// `force` (apply patches only).
pub(super) fn force() -> Value {
    json!({"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.",
        "schema": {"type": "boolean", "uniqueItems": true}})
}

/// The list/watch query parameters; `watch` adds the `watch` flag itself.
pub(super) fn list_params(watch: bool) -> Vec<Value> {
    let mut params = vec![
        json!({"name": "allowWatchBookmarks", "in": "query", "description": "allowWatchBookmarks requests watch events with type \"BOOKMARK\". Servers that do not implement bookmarks may ignore this flag and bookmarks are sent at the server's discretion.", "schema": {"type": "boolean", "uniqueItems": true}}),
        query("continue", "string", "The continue option should be set when retrieving more results from the server."),
        query("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        query("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        query("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        query("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from. Defaults to unset"),
        query("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls. Defaults to unset"),
        json!({"name": "sendInitialEvents", "in": "query", "description": "`sendInitialEvents=true` may be set together with `watch=true`.", "schema": {"type": "boolean", "uniqueItems": true}}),
        query("timeoutSeconds", "integer", "Timeout for the list/watch call. This limits the duration of the call, regardless of any activity or inactivity."),
    ];
    if watch {
        params.push(json!({"name": "watch", "in": "query", "description": "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications. Specify resourceVersion.", "schema": {"type": "boolean", "uniqueItems": true}}));
    }
    params
}

/// The query parameters of a delete.
pub(super) fn delete_params() -> Vec<Value> {
    vec![
        dry_run(),
        query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted. Value must be non-negative integer. The value zero indicates delete immediately."),
        json!({"name": "ignoreStoreReadErrorWithClusterBreakingPotential", "in": "query", "description": "if set to true, it will trigger an unsafe deletion of the resource in case the normal deletion flow fails with a corrupt object error.", "schema": {"type": "boolean", "uniqueItems": true}}),
        json!({"name": "orphanDependents", "in": "query", "description": "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent objects be orphaned.", "schema": {"type": "boolean", "uniqueItems": true}}),
        query("propagationPolicy", "string", "Whether and how garbage collection will be performed. Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
    ]
}

/// `{"application/json": {schema}, ...}` for the media types kube answers with.
pub(super) fn content(schema_name: &str) -> Value {
    let schema = json!({"$ref": schema_ref(schema_name)});
    json!({
        "application/json": {"schema": schema},
        "application/vnd.kubernetes.protobuf": {"schema": schema},
        "application/yaml": {"schema": schema},
    })
}

/// Success responses with the given codes returning `schema_name`, plus 401.
pub(super) fn responses(codes: &[&str], schema_name: &str) -> Value {
    let mut map = Map::new();
    for code in codes {
        let description = match *code {
            "201" => "Created",
            "202" => "Accepted",
            _ => "OK",
        };
        map.insert(
            (*code).into(),
            json!({"description": description, "content": content(schema_name)}),
        );
    }
    map.insert("401".into(), json!({"description": "Unauthorized"}));
    Value::Object(map)
}

/// A required request body of the given schema.
pub(super) fn body(schema_name: &str) -> Value {
    json!({"content": {"*/*": {"schema": {"$ref": schema_ref(schema_name)}}}, "required": true})
}

/// The PATCH request body: the four patch media types kube accepts.
pub(super) fn patch_body() -> Value {
    let schema = json!({"$ref": schema_ref(&meta_name("Patch"))});
    json!({"content": {
        "application/apply-patch+yaml": {"schema": schema},
        "application/json-patch+json": {"schema": schema},
        "application/merge-patch+json": {"schema": schema},
        "application/strategic-merge-patch+json": {"schema": schema},
    }, "required": true})
}
