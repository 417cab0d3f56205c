//! `paths` of the `/openapi/v3/api/v1` document: kube's operations (ids, actions, parameters, bodies) for
//! every resource and subresource in `resources::RESOURCES`.
//!
//! kubectl reads these: it checks that a kind's PATCH operation takes `fieldValidation` before relying on
//! server-side validation, and that it accepts strategic-merge patches before computing one.

use serde_json::{json, Map, Value};

use super::params::{
    body, content, delete_params, dry_run, field_manager, field_validation, force, list_params,
    patch_body, path_param, pretty, query, responses,
};
use super::schemas::{core_name, meta_name};
use crate::resources::{ResourceInfo, RESOURCES};

/// The group/version/kind an operation acts on, for `x-kubernetes-group-version-kind`.
struct Gvk {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
}

impl Gvk {
    fn core(kind: &'static str) -> Self {
        Gvk {
            group: "",
            version: "v1",
            kind,
        }
    }
    fn value(&self) -> Value {
        json!({"group": self.group, "kind": self.kind, "version": self.version})
    }
}

struct Op<'a> {
    action: &'a str,
    id: String,
    description: String,
    gvk: &'a Gvk,
    params: Vec<Value>,
    body: Option<Value>,
    responses: Value,
}

impl Op<'_> {
    fn build(self) -> Value {
        let mut op = json!({
            "tags": ["core_v1"],
            "description": self.description,
            "operationId": self.id,
            "responses": self.responses,
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk.value(),
        });
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params);
        }
        if let Some(body) = self.body {
            op["requestBody"] = body;
        }
        op
    }
}

/// The schema name of a kind's object (core/v1, or autoscaling/v1 Scale).
fn schema_of(gvk: &Gvk) -> String {
    match gvk.group {
        "autoscaling" => format!("io.k8s.api.autoscaling.{}.{}", gvk.version, gvk.kind),
        _ => core_name(gvk.kind),
    }
}

/// get/put/patch on an object or a subresource; `suffix` is appended to operation ids (`Status`).
fn object_ops(
    path: &mut Map<String, Value>,
    scope: &str,
    r: &ResourceInfo,
    gvk: &Gvk,
    suffix: &str,
    readable: bool,
) {
    let target = format!("{scope}{}{suffix}", r.kind);
    let schema = schema_of(gvk);
    let what = if suffix.is_empty() {
        format!("the specified {}", r.kind)
    } else {
        format!("{} of the specified {}", suffix.to_lowercase(), r.kind)
    };
    if readable {
        path.insert(
            "get".into(),
            Op {
                action: "get",
                id: format!("readCoreV1{target}"),
                description: format!("read {what}"),
                gvk,
                params: vec![],
                body: None,
                responses: responses(&["200"], &schema),
            }
            .build(),
        );
    }
    path.insert(
        "put".into(),
        Op {
            action: "put",
            id: format!("replaceCoreV1{target}"),
            description: format!("replace {what}"),
            gvk,
            params: vec![dry_run(), field_manager(), field_validation()],
            body: Some(body(&schema)),
            responses: responses(&["200", "201"], &schema),
        }
        .build(),
    );
    if readable {
        path.insert(
            "patch".into(),
            Op {
                action: "patch",
                id: format!("patchCoreV1{target}"),
                description: format!("partially update {what}"),
                gvk,
                params: vec![dry_run(), field_manager(), field_validation(), force()],
                body: Some(patch_body()),
                responses: responses(&["200", "201"], &schema),
            }
            .build(),
        );
    }
}

fn with_params(mut ops: Map<String, Value>, params: Vec<Value>) -> Value {
    ops.insert("parameters".into(), Value::Array(params));
    Value::Object(ops)
}

/// Paths for one resource.
fn resource_paths(r: &'static ResourceInfo, paths: &mut Map<String, Value>) {
    let gvk = Gvk::core(r.kind);
    let (base, scope, mut scope_params) = if r.namespaced {
        (
            format!("/api/v1/namespaces/{{namespace}}/{}", r.name),
            "Namespaced",
            vec![path_param(
                "namespace",
                "object name and auth scope, such as for teams and projects",
            )],
        )
    } else {
        (format!("/api/v1/{}", r.name), "", vec![])
    };
    let name_param = path_param("name", &format!("name of the {}", r.kind));
    let list = core_name(&r.list_kind());
    let object = core_name(r.kind);
    let status = meta_name("Status");

    // Collection: list, create, deletecollection.
    let mut coll = Map::new();
    coll.insert(
        "get".into(),
        Op {
            action: "list",
            id: format!("listCoreV1{scope}{}", r.kind),
            description: format!("list or watch objects of kind {}", r.kind),
            gvk: &gvk,
            params: list_params(true),
            body: None,
            responses: responses(&["200"], &list),
        }
        .build(),
    );
    coll.insert(
        "post".into(),
        Op {
            action: "post",
            id: format!("createCoreV1{scope}{}", r.kind),
            description: format!("create a {}", r.kind),
            gvk: &gvk,
            params: vec![dry_run(), field_manager(), field_validation()],
            body: Some(body(&object)),
            responses: responses(&["200", "201", "202"], &object),
        }
        .build(),
    );
    if r.verbs().contains(&"deletecollection") && r.name != "namespaces" {
        let mut params = list_params(false);
        params.extend(delete_params());
        params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        coll.insert(
            "delete".into(),
            Op {
                action: "deletecollection",
                id: format!("deleteCoreV1Collection{scope}{}", r.kind),
                description: format!("delete collection of {}", r.kind),
                gvk: &gvk,
                params,
                body: Some(body(&meta_name("DeleteOptions"))),
                responses: responses(&["200"], &status),
            }
            .build(),
        );
    }
    let mut params = scope_params.clone();
    params.push(pretty());
    paths.insert(base.clone(), with_params(coll, params));

    // Single object: read, replace, patch, delete.
    let mut single = Map::new();
    object_ops(&mut single, scope, r, &gvk, "", true);
    single.insert(
        "delete".into(),
        Op {
            action: "delete",
            id: format!("deleteCoreV1{scope}{}", r.kind),
            description: format!("delete a {}", r.kind),
            gvk: &gvk,
            params: delete_params(),
            body: Some(body(&meta_name("DeleteOptions"))),
            responses: responses(&["200", "202"], &object),
        }
        .build(),
    );
    scope_params.insert(0, name_param.clone());
    let mut params = scope_params.clone();
    params.push(pretty());
    paths.insert(
        format!("{base}/{{name}}"),
        with_params(single, params.clone()),
    );

    for sub in r.subresources {
        let mut ops = Map::new();
        match *sub {
            "status" => object_ops(&mut ops, scope, r, &gvk, "Status", true),
            "scale" => {
                let scale = Gvk {
                    group: "autoscaling",
                    version: "v1",
                    kind: "Scale",
                };
                object_ops(&mut ops, scope, r, &scale, "Scale", true);
            }
            "finalize" => object_ops(&mut ops, scope, r, &gvk, "Finalize", false),
            "binding" => {
                let binding = Gvk::core("Binding");
                let schema = core_name("Binding");
                ops.insert(
                    "post".into(),
                    Op {
                        action: "post",
                        id: format!("createCoreV1{scope}{}Binding", r.kind),
                        description: format!("create binding of a {}", r.kind),
                        gvk: &binding,
                        params: vec![dry_run(), field_manager(), field_validation()],
                        body: Some(body(&schema)),
                        responses: responses(&["200", "201", "202"], &schema),
                    }
                    .build(),
                );
            }
            "log" => {
                let mut log_params = vec![query("container", "string", "The container for which to stream logs. Defaults to only container if there is one container in the pod.")];
                for (name, ty, desc) in [
                    ("follow", "boolean", "Follow the log stream of the pod. Defaults to false."),
                    ("insecureSkipTLSVerifyBackend", "boolean", "insecureSkipTLSVerifyBackend indicates that the apiserver should not confirm the validity of the serving certificate of the backend it is connecting to."),
                    ("limitBytes", "integer", "If set, the number of bytes to read from the server before terminating the log output."),
                    ("previous", "boolean", "Return previous terminated container logs. Defaults to false."),
                    ("sinceSeconds", "integer", "A relative time in seconds before the current time from which to show logs."),
                    ("stream", "string", "Specify which container log stream to return to the client. Acceptable values are \"All\", \"Stdout\" and \"Stderr\"."),
                    ("tailLines", "integer", "If set, the number of lines from the end of the logs to show."),
                    ("timestamps", "boolean", "If true, add an RFC3339 or RFC3339Nano timestamp at the beginning of every line of log output. Defaults to false."),
                ] {
                    log_params.push(json!({"name": name, "in": "query", "description": desc, "schema": {"type": ty, "uniqueItems": true}}));
                }
                let text = json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}});
                ops.insert(
                    "get".into(),
                    Op {
                        action: "get",
                        id: format!("readCoreV1{scope}{}Log", r.kind),
                        description: format!("read log of the specified {}", r.kind),
                        gvk: &gvk,
                        params: log_params,
                        body: None,
                        responses: json!({"200": text, "401": {"description": "Unauthorized"}}),
                    }
                    .build(),
                );
            }
            _ => continue,
        }
        paths.insert(
            format!("{base}/{{name}}/{sub}"),
            with_params(ops, params.clone()),
        );
    }

    if r.namespaced {
        let mut all = Map::new();
        all.insert(
            "get".into(),
            Op {
                action: "list",
                id: format!("listCoreV1{}ForAllNamespaces", r.kind),
                description: format!("list or watch objects of kind {}", r.kind),
                gvk: &gvk,
                params: vec![],
                body: None,
                responses: responses(&["200"], &list),
            }
            .build(),
        );
        let mut params = list_params(true);
        params.push(pretty());
        params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        paths.insert(format!("/api/v1/{}", r.name), with_params(all, params));
    }
}

/// The deprecated `/api/v1/watch/...` paths kube still publishes (`watch` / `watchlist` actions).
fn watch_paths(r: &'static ResourceInfo, paths: &mut Map<String, Value>) {
    let gvk = Gvk::core(r.kind);
    let event = meta_name("WatchEvent");
    let ns_param = path_param(
        "namespace",
        "object name and auth scope, such as for teams and projects",
    );
    let name_param = path_param("name", &format!("name of the {}", r.kind));
    let mut add = |path: String, action: &str, id: String, scope: Vec<Value>| {
        let description = if action == "watch" {
            format!("watch changes to an object of kind {}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.", r.kind)
        } else {
            format!("watch individual changes to a list of {}. deprecated: use the 'watch' parameter with a list operation instead.", r.kind)
        };
        let mut ops = Map::new();
        ops.insert(
            "get".into(),
            Op {
                action,
                id,
                description,
                gvk: &gvk,
                params: vec![],
                body: None,
                responses: responses(&["200"], &event),
            }
            .build(),
        );
        let mut params = list_params(true);
        params.push(pretty());
        params.extend(scope);
        params.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        paths.insert(path, with_params(ops, params));
    };
    if r.namespaced {
        let base = format!("/api/v1/watch/namespaces/{{namespace}}/{}", r.name);
        add(
            base.clone(),
            "watchlist",
            format!("watchCoreV1Namespaced{}List", r.kind),
            vec![ns_param.clone()],
        );
        add(
            format!("{base}/{{name}}"),
            "watch",
            format!("watchCoreV1Namespaced{}", r.kind),
            vec![name_param, ns_param],
        );
        add(
            format!("/api/v1/watch/{}", r.name),
            "watchlist",
            format!("watchCoreV1{}ListForAllNamespaces", r.kind),
            vec![],
        );
    } else {
        let base = format!("/api/v1/watch/{}", r.name);
        add(
            base.clone(),
            "watchlist",
            format!("watchCoreV1{}List", r.kind),
            vec![],
        );
        add(
            format!("{base}/{{name}}"),
            "watch",
            format!("watchCoreV1{}", r.kind),
            vec![name_param],
        );
    }
}

/// Every path of the core/v1 document, sorted like kube's output.
pub(super) fn build() -> Map<String, Value> {
    let mut paths = Map::new();
    paths.insert("/api/v1/".into(), json!({"get": {
        "tags": ["core_v1"], "description": "get available resources", "operationId": "getCoreV1APIResources",
        "responses": {"200": {"description": "OK", "content": content(&meta_name("APIResourceList"))},
            "401": {"description": "Unauthorized"}}}}));
    for r in RESOURCES {
        resource_paths(r, &mut paths);
        watch_paths(r, &mut paths);
    }
    paths.sort_keys();
    paths
}
