//! Issue 7, acceptance 4: service cluster IPs and node ports from small configured ranges, through the
//! real kubectl against `kumos server`: fill both ranges, one more fails with kube-apiserver's exact
//! error, a restart on the same data directory keeps every allocation, a delete frees one.

use std::path::Path;

use conformance::{kubectl_binaries, Kubectl, KumosServer, Store};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

/// `name clusterIP nodePort` of every service in `default`, sorted by name.
fn allocations(k: &Kubectl) -> Vec<String> {
    let out = k.ok(&[
        "get",
        "services",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.clusterIP} {.spec.ports[0].nodePort}{\"\\n\"}{end}",
    ]);
    let mut lines: Vec<String> = out.lines().map(|l| l.trim().to_string()).collect();
    lines.sort();
    lines
}

#[test]
fn ranges_fill_up_refuse_and_survive_a_restart() -> anyhow::Result<()> {
    // 127.50.0.8/29 leaves five service addresses (.10-.14); three node ports.
    let mut server = KumosServer::start_with(
        bin(),
        Store::Embedded,
        &[
            "--agents",
            "0",
            "--service-cluster-ip-range",
            "127.50.0.8/29",
            "--service-node-port-range",
            "30100-30102",
        ],
    )?;
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());

    // Requests outside the ranges: 422 with the allocators' texts.
    let err = k.fails(&[
        "create",
        "service",
        "clusterip",
        "outside",
        "--clusterip=10.0.0.1",
        "--tcp=80",
    ]);
    assert!(
        err.contains(
            "Service \"outside\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.0.0.1\"}: failed to \
             allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs \
             is 127.50.0.8/29"
        ),
        "{err}"
    );
    let err = k.fails(&[
        "create",
        "service",
        "nodeport",
        "far",
        "--tcp=80",
        "--node-port=31000",
    ]);
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 31000: provided port is not in the valid range. The range \
             of valid ports is 30100-30102"
        ),
        "{err}"
    );

    // A chosen address, then the same one again.
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "c1",
        "--clusterip=127.50.0.10",
        "--tcp=80",
    ]);
    let err = k.fails(&[
        "create",
        "service",
        "clusterip",
        "again",
        "--clusterip=127.50.0.10",
        "--tcp=80",
    ]);
    assert!(
        err.contains("failed to allocate IP 127.50.0.10: provided IP is already allocated"),
        "{err}"
    );
    // Headless services take no address.
    k.ok(&[
        "create",
        "service",
        "clusterip",
        "headless",
        "--clusterip=None",
        "--tcp=80",
    ]);
    assert_eq!(
        k.ok(&["get", "svc", "headless", "-o", "jsonpath={.spec.clusterIP}"]),
        "None"
    );

    // Every node port, one requested.
    k.ok(&[
        "create",
        "service",
        "nodeport",
        "np1",
        "--tcp=80:8080",
        "--node-port=30100",
    ]);
    k.ok(&["create", "service", "nodeport", "np2", "--tcp=80:8080"]);
    k.ok(&["create", "service", "nodeport", "np3", "--tcp=80:8080"]);
    let table = k.ok(&["get", "svc", "np1"]);
    assert!(
        table.contains("NodePort") && table.contains("80:30100/TCP"),
        "{table}"
    );
    let err = k.fails(&[
        "create",
        "service",
        "nodeport",
        "dup",
        "--tcp=80",
        "--node-port=30100",
    ]);
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30100: provided port is already allocated"
        ),
        "{err}"
    );
    let err = k.fails(&["create", "service", "nodeport", "np4", "--tcp=80"]);
    assert!(
        err.contains("Internal error occurred: failed to allocate a nodePort: range is full"),
        "{err}"
    );

    // The last address (np4's was given back), then one more.
    k.ok(&["create", "service", "clusterip", "c2", "--tcp=80"]);
    let err = k.fails(&["create", "service", "clusterip", "c3", "--tcp=80"]);
    assert!(
        err.contains("Internal error occurred: failed to allocate a serviceIP: range is full"),
        "{err}"
    );
    let before = allocations(&k);
    assert_eq!(before.len(), 6, "{before:?}");
    let ports: Vec<&str> = before
        .iter()
        .filter(|l| l.starts_with("np"))
        .filter_map(|l| l.split(' ').nth(2))
        .collect();
    let mut sorted = ports.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["30100", "30101", "30102"], "{before:?}");

    // A restart on the same data directory keeps every allocation and still refuses.
    server.restart()?;
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    assert_eq!(allocations(&k), before);
    let err = k.fails(&["create", "service", "clusterip", "c3", "--tcp=80"]);
    assert!(
        err.contains("failed to allocate a serviceIP: range is full"),
        "{err}"
    );
    let err = k.fails(&["create", "service", "nodeport", "np4", "--tcp=80"]);
    assert!(err.contains("range is full"), "{err}");

    // A delete frees an address for the next service.
    k.ok(&["delete", "service", "c2"]);
    k.ok(&["create", "service", "clusterip", "c3", "--tcp=80"]);
    let ip = k.ok(&["get", "svc", "c3", "-o", "jsonpath={.spec.clusterIP}"]);
    assert!(ip.starts_with("127.50.0."), "{ip}");

    // NodePort → ClusterIP releases the node port, which a new NodePort service then gets.
    k.ok(&[
        "patch",
        "svc",
        "np1",
        "-p",
        r#"{"spec":{"type":"ClusterIP"}}"#,
    ]);
    assert_eq!(
        k.ok(&[
            "get",
            "svc",
            "np1",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}"
        ]),
        ""
    );
    k.ok(&["delete", "service", "c1"]);
    k.ok(&["create", "service", "nodeport", "np4", "--tcp=80"]);
    assert_eq!(
        k.ok(&[
            "get",
            "svc",
            "np4",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}"
        ]),
        "30100"
    );
    server.stop()
}
