//! Row tests: each resource's cells as kube-apiserver prints them.

use super::*;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2024-05-01 12:00:00 UTC);

fn cells(resource: &str, obj: Value) -> Vec<Value> {
    print(resource, &obj, NOW).cells
}

#[test]
fn running_pod() {
    let pod = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:57:57Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.5"}],
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}
            ]}
    });
    assert_eq!(
        cells("pods", pod),
        vec![
            json!("web"),
            json!("1/2"),
            json!("Running"),
            json!("0"),
            json!("2m3s"),
            json!("10.0.0.5"),
            json!("n1"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn pending_pod_without_status() {
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Pending"}});
    let c = cells("pods", pod);
    assert_eq!(c[1], "0/1");
    assert_eq!(c[2], "Pending");
    assert_eq!(c[3], "0");
    assert_eq!(c[4], "<unknown>");
    assert_eq!(c[5], "<none>");
    assert_eq!(c[6], "<none>");
}

#[test]
fn waiting_reason_and_restarts_with_last_termination() {
    let pod = json!({
        "metadata": {"name": "crash", "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Running", "containerStatuses": [{
            "name": "a", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:30Z"}}
        }]}
    });
    let c = cells("pods", pod);
    assert_eq!(c[2], "CrashLoopBackOff");
    assert_eq!(c[3], "4 (30s ago)");
    assert_eq!(c[4], "120m");
}

#[test]
fn terminated_without_reason_and_terminating() {
    let pod = json!({
        "metadata": {"name": "x", "deletionTimestamp": "2024-05-01T12:00:00Z"},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "a", "restartCount": 0,
            "state": {"terminated": {"exitCode": 137}}}]}
    });
    assert_eq!(cells("pods", pod)[2], "Terminating");
    let pod = json!({
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "a", "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "signal": 9}}}]}
    });
    assert_eq!(cells("pods", pod)[2], "Signal:9");
}

#[test]
fn succeeded_pod_gets_completed_condition() {
    let pod = json!({
        "metadata": {"name": "done"},
        "spec": {"containers": [{"name": "a"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [{"name": "a", "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}
    });
    let printed = print("pods", &pod, NOW);
    assert_eq!(printed.cells[2], "Completed");
    assert_eq!(printed.cells[1], "0/1");
    assert_eq!(printed.conditions.unwrap()[0]["reason"], "Succeeded");
}

#[test]
fn init_containers_progress() {
    let pod = json!({
        "metadata": {"name": "i"},
        "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
            {"name": "i2", "restartCount": 0, "state": {"running": {}}}
        ]}
    });
    assert_eq!(cells("pods", pod)[2], "Init:1/2");
    let pod = json!({
        "metadata": {"name": "i"},
        "spec": {"initContainers": [{"name": "i1"}], "containers": [{"name": "a"}]},
        "status": {"phase": "Pending", "initContainerStatuses": [
            {"name": "i1", "restartCount": 2, "state": {"waiting": {"reason": "ImagePullBackOff"}}}
        ]}
    });
    let c = cells("pods", pod);
    assert_eq!(c[2], "Init:ImagePullBackOff");
    assert_eq!(c[3], "2");
}

#[test]
fn readiness_gates_count_true_conditions() {
    let pod = json!({
        "metadata": {"name": "g"},
        "spec": {"containers": [], "readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
        "status": {"phase": "Running", "conditions": [{"type": "a", "status": "True"}]}
    });
    assert_eq!(cells("pods", pod)[8], "1/2");
}

#[test]
fn replication_controller_row() {
    let rc = json!({
        "metadata": {"name": "rc", "creationTimestamp": "2024-05-01T11:00:00Z"},
        "spec": {"replicas": 3, "selector": {"app": "web"},
            "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}},
        "status": {"replicas": 2, "readyReplicas": 1}
    });
    assert_eq!(
        cells("replicationcontrollers", rc),
        vec![
            json!("rc"),
            json!(3),
            json!(2),
            json!(1),
            json!("60m"),
            json!("a,b"),
            json!("nginx,busybox"),
            json!("app=web")
        ]
    );
}

#[test]
fn service_rows() {
    let svc = json!({
        "metadata": {"name": "s", "creationTimestamp": "2024-05-01T11:59:55Z"},
        "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "x"}}
    });
    assert_eq!(
        cells("services", svc),
        vec![
            json!("s"),
            json!("NodePort"),
            json!("10.96.0.10"),
            json!("<none>"),
            json!("80:30080/TCP,53/UDP"),
            json!("5s"),
            json!("app=x")
        ]
    );
    let lb = json!({"metadata": {"name": "lb"}, "spec": {"type": "LoadBalancer", "clusterIPs": ["None"]}});
    let c = cells("services", lb);
    assert_eq!(c[2], "None");
    assert_eq!(c[3], "<pending>");
    assert_eq!(c[4], "<none>");
    assert_eq!(c[6], "<none>");
    let ext = json!({"metadata": {"name": "e"}, "spec": {"type": "ExternalName", "externalName": "example.com"}});
    assert_eq!(cells("services", ext)[3], "example.com");
}

#[test]
fn endpoints_rows() {
    let ep = json!({"metadata": {"name": "e"}, "subsets": [
        {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}], "ports": [{"port": 80}, {"port": 443}]}
    ]});
    assert_eq!(
        cells("endpoints", ep)[1],
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more..."
    );
    let none = json!({"metadata": {"name": "e"}});
    assert_eq!(cells("endpoints", none)[1], "<none>");
    let headless =
        json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "fd00::1"}]}]});
    assert_eq!(cells("endpoints", headless)[1], "fd00::1");
}

#[test]
fn namespace_and_configmap_rows() {
    let ns = json!({"metadata": {"name": "default", "creationTimestamp": "2024-04-29T09:00:00Z"},
        "status": {"phase": "Active"}});
    assert_eq!(
        cells("namespaces", ns),
        vec![json!("default"), json!("Active"), json!("2d3h")]
    );
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(cells("configmaps", cm)[1], 3);
}

#[test]
fn node_rows() {
    let node = json!({
        "metadata": {"name": "n1", "creationTimestamp": "2024-05-01T11:00:00Z",
            "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker"}},
        "spec": {"unschedulable": true},
        "status": {"conditions": [{"type": "Ready", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "192.168.1.2"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "Debian"}}
    });
    assert_eq!(
        cells("nodes", node),
        vec![
            json!("n1"),
            json!("NotReady,SchedulingDisabled"),
            json!("control-plane,worker"),
            json!("60m"),
            json!("v1.33.0"),
            json!("192.168.1.2"),
            json!("<none>"),
            json!("Debian"),
            json!("<unknown>"),
            json!("<unknown>")
        ]
    );
    let bare = json!({"metadata": {"name": "n2"}});
    let c = cells("nodes", bare);
    assert_eq!(c[1], "Unknown");
    assert_eq!(c[2], "<none>");
}

#[test]
fn event_rows() {
    let ev = json!({
        "metadata": {"name": "web.17a"},
        "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{a}"},
        "reason": "Pulled", "message": "  Image pulled \n", "type": "Normal",
        "source": {"component": "kubelet", "host": "n1"},
        "firstTimestamp": "2024-05-01T11:50:00Z", "lastTimestamp": "2024-05-01T11:59:00Z", "count": 3
    });
    assert_eq!(
        cells("events", ev),
        vec![
            json!("60s"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web"),
            json!("spec.containers{a}"),
            json!("kubelet, n1"),
            json!("Image pulled"),
            json!("10m"),
            json!(3),
            json!("web.17a")
        ]
    );
    let new_style = json!({
        "metadata": {"name": "e"}, "involvedObject": {"kind": "Node"},
        "eventTime": "2024-05-01T11:59:58.000000Z", "reportingComponent": "sched"
    });
    let c = cells("events", new_style);
    assert_eq!(c[0], "2s");
    assert_eq!(c[3], "node");
    assert_eq!(c[5], "sched");
    assert_eq!(c[7], "2s");
    assert_eq!(c[8], 1);
}
