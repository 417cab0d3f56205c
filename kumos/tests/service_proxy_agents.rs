//! The service proxy of separate `kumos agent` processes (`--kubeconfig`): two agents on this machine
//! serve the same cluster IP and NodePort (SO_REUSEPORT) for a Service without a selector whose
//! Endpoints the test writes, pointing at TCP backends the test runs; `kumos server --proxy=false`
//! runs none of its own, so every answer came through an agent's proxy.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use conformance::mesos::AgentProcess;
use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(120);
const NS: &str = "agentproxy";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

/// A backend answering each connection with `name` and a newline.
fn backend(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a backend port");
    let port = l.local_addr().expect("its address").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let _ = s.write_all(format!("{name}\n").as_bytes());
        }
    });
    port
}

fn ask(addr: SocketAddr) -> Result<String, String> {
    let s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    match line.trim() {
        "" => Err("closed without an answer".into()),
        name => Ok(name.to_string()),
    }
}

fn ask_all(addr: SocketAddr, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| ask(addr).unwrap_or_else(|e| panic!("request {i} to {addr}: {e}")))
        .collect()
}

fn endpoints(ports: &[u16]) -> String {
    let subsets: Vec<Json> = ports
        .iter()
        .map(|p| {
            serde_json::json!({"addresses": [{"ip": "127.0.0.1"}],
                               "ports": [{"name": "echo", "port": p, "protocol": "TCP"}]})
        })
        .collect();
    serde_json::json!({"apiVersion": "v1", "kind": "Endpoints",
                       "metadata": {"name": "echo", "namespace": NS}, "subsets": subsets})
    .to_string()
}

fn apply(k: &Kubectl, manifest: &str) {
    let out = k.run_stdin(&["apply", "-n", NS, "-f", "-"], manifest);
    assert!(
        out.status.success(),
        "apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn two_agents_proxy_one_selectorless_service() -> anyhow::Result<()> {
    let server =
        KumosServer::start_with(bin(), Store::Embedded, &["--agents", "0", "--proxy=false"])?;
    let master = server
        .master_url()
        .expect("the server's master")
        .to_string();
    let secret = server.data_dir().join("agent-secret");
    let kubeconfig = server.kubeconfig().display().to_string();
    let extra = [
        "--kubeconfig",
        kubeconfig.as_str(),
        "--ip",
        "127.0.0.1",
        "--runtime",
        "simulated",
    ];
    let _a1 =
        AgentProcess::start_with(bin(), &master, &secret, "cpus:1;mem:512", "proxy-1", &extra)?;
    let mut a2 =
        AgentProcess::start_with(bin(), &master, &secret, "cpus:1;mem:512", "proxy-2", &extra)?;

    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    k.ok(&["create", "namespace", NS]);
    let node_port = 30000 + ((std::process::id() + 500) % 1000) as u16;
    apply(
        &k,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: echo}}\nspec:\n  type: NodePort\n  ports:\n  - {{name: echo, port: 7000, nodePort: {node_port}}}\n"
        ),
    );
    let ports = [backend("a"), backend("b"), backend("c")];
    apply(&k, &endpoints(&ports));
    let ip = k.ok(&[
        "get",
        "service",
        "-n",
        NS,
        "echo",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let via_cluster_ip = SocketAddr::new(ip.trim().parse()?, 7000);
    let via_node_port = SocketAddr::from(([127, 0, 0, 1], node_port));

    // Both agents' proxies follow the Endpoints: wait until answers come, then all succeed and
    // every backend is reached (each proxy balances round-robin over all three).
    for addr in [via_cluster_ip, via_node_port] {
        eventually(WAIT, "the agents' proxies to answer", || ask(addr).ok())?;
        let seen: BTreeSet<String> = ask_all(addr, 30).into_iter().collect();
        assert_eq!(seen, ["a", "b", "c"].map(String::from).into(), "via {addr}");
    }

    // Endpoints down to one backend: once both proxies have it, every request reaches it.
    apply(&k, &endpoints(&ports[1..2]));
    eventually(WAIT, "both proxies to use the one endpoint", || {
        ask_all(via_cluster_ip, 20)
            .iter()
            .all(|n| n == "b")
            .then_some(())
    })?;

    // One agent killed: the other still serves both addresses.
    a2.kill9();
    for addr in [via_cluster_ip, via_node_port] {
        eventually(WAIT, "the surviving proxy to answer", || ask(addr).ok())?;
        assert!(ask_all(addr, 30).iter().all(|n| n == "b"), "via {addr}");
    }
    Ok(())
}
