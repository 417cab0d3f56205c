//! Issue 7, acceptance 1–3: an RC of three busybox httpd pods on the docker runtime behind a NodePort
//! Service, reached through its cluster IP, through the address the cluster DNS resolves its name to,
//! and through 127.0.0.1:nodePort via the service proxy `kumos server` runs for its agents; a pod deleted while requests stream; a scale
//! down to one pod; a NodePort already taken elsewhere (a Warning event, the other ports served).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::dns::{a_records, free_dns_address, udp_query};
use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use hickory_proto::rr::RecordType;
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(180);
const NS: &str = "svcproxy";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

/// Each pod serves a random id of its own (also printed to its log, so a body names its pod).
const RC: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata:
  name: web
spec:
  replicas: 3
  selector: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: httpd
          image: busybox
          command: ["sh", "-c", "id=$(cat /proc/sys/kernel/random/uuid); echo serving $id; mkdir -p /tmp/www; echo $id > /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www"]
          ports:
            - name: http
              containerPort: 8080
          readinessProbe:
            httpGet: {path: /, port: 8080}
            periodSeconds: 1
          resources:
            requests: {cpu: 100m, memory: 32Mi}
"#;

fn service(node_port: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector: {{app: web}}
  ports:
    - name: http
      port: 80
      targetPort: http
      nodePort: {node_port}
"#
    )
}

/// One request of the stream: whether it started after the Endpoints update, and its body or error.
type Outcome = (bool, Result<String, String>);

/// One HTTP/1.0 GET of `/`: the body, or why it failed.
fn get(addr: SocketAddr) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .map_err(|e| format!("read: {e}"))?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response: {resp:?}"))?;
    if !head.starts_with("HTTP/1.") || !head.lines().next().unwrap_or("").contains(" 200") {
        return Err(format!("not 200: {head:?}"));
    }
    Ok(body.trim().to_string())
}

/// `n` GETs, each of which must succeed; the bodies.
fn get_all(addr: SocketAddr, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| get(addr).unwrap_or_else(|e| panic!("request {i} to {addr}: {e}")))
        .collect()
}

fn json(k: &Kubectl, args: &[&str]) -> Option<Json> {
    serde_json::from_str(&k.try_ok(args)?).ok()
}

/// Ready pod name → the id it serves (from its log).
fn pod_ids(k: &Kubectl, n: usize) -> anyhow::Result<BTreeMap<String, String>> {
    let found = eventually(WAIT, &format!("{n} ready pods serving their ids"), || {
        let pods = json(k, &["get", "pods", "-n", NS, "-l", "app=web", "-o", "json"])?;
        let mut out = BTreeMap::new();
        for p in pods["items"].as_array()? {
            if !p["metadata"]["deletionTimestamp"].is_null() {
                continue;
            }
            let ready = p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            });
            if !ready {
                continue;
            }
            let name = p["metadata"]["name"].as_str()?.to_string();
            let log = k.try_ok(&["logs", "-n", NS, &name])?;
            let id = log
                .lines()
                .find_map(|l| l.strip_prefix("serving "))?
                .trim()
                .to_string();
            out.insert(name, id);
        }
        (out.len() == n).then_some(out)
    });
    if found.is_err() {
        eprintln!(
            "{}",
            k.try_ok(&["describe", "pods", "-n", NS])
                .unwrap_or_default()
        );
    }
    found
}

/// The ready addresses (ip:port) of the Service's Endpoints.
fn endpoints(k: &Kubectl) -> Vec<String> {
    let Some(ep) = json(k, &["get", "endpoints", "-n", NS, "web", "-o", "json"]) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in ep["subsets"].as_array().into_iter().flatten() {
        for a in s["addresses"].as_array().into_iter().flatten() {
            for p in s["ports"].as_array().into_iter().flatten() {
                out.push(format!("{}:{}", a["ip"].as_str().unwrap_or(""), p["port"]));
            }
        }
    }
    out.sort();
    out
}

fn wait_endpoints(k: &Kubectl, n: usize) -> anyhow::Result<Vec<String>> {
    eventually(WAIT, &format!("{n} ready endpoints"), || {
        let e = endpoints(k);
        (e.len() == n).then_some(e)
    })
}

#[test]
fn service_traffic_through_cluster_ip_and_node_port_with_docker_pods() -> anyhow::Result<()> {
    let socket = conformance::docker::socket().display().to_string();
    let dns = free_dns_address();
    let server = KumosServer::start_with(
        bin(),
        Store::Embedded,
        &[
            "--agents",
            "1",
            "--agent-resources",
            "cpus:2;mem:2048",
            "--runtime",
            "docker",
            "--docker-socket",
            &socket,
            "--cluster-dns-address",
            &dns.to_string(),
        ],
    )?;
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    k.ok(&["create", "namespace", NS]);
    // A NodePort of our own (the agents offer host ports from 20000), unlikely to meet another
    // test server's on this machine.
    let node_port = 30000 + (std::process::id() % 1000) as u16;
    for manifest in [RC.to_string(), service(node_port)] {
        let out = k.run_stdin(&["apply", "-n", NS, "-f", "-"], &manifest);
        assert!(
            out.status.success(),
            "apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let svc = json(&k, &["get", "service", "-n", NS, "web", "-o", "json"]).expect("the Service");
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], node_port, "{svc}");
    let cluster_ip: std::net::IpAddr = svc["spec"]["clusterIP"]
        .as_str()
        .expect("a cluster IP")
        .parse()?;
    let via_cluster_ip = SocketAddr::new(cluster_ip, 80);
    let via_node_port = SocketAddr::from(([127, 0, 0, 1], node_port));

    // A NodePort someone else holds: a Warning event on that Service, the others keep working.
    let held = std::net::TcpListener::bind(("127.0.0.1", node_port + 1))?;
    let blocked = service(node_port + 1).replace("name: web\n", "name: blocked\n");
    let out = k.run_stdin(&["apply", "-n", NS, "-f", "-"], &blocked);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let event = eventually(
        WAIT,
        "a FailedToListen event on the blocked Service",
        || {
            let events = json(&k, &["get", "events", "-n", NS, "-o", "json"])?;
            events["items"]
                .as_array()?
                .iter()
                .find(|e| {
                    e["involvedObject"]["name"] == "blocked"
                        && e["reason"] == "FailedToListen"
                        && e["type"] == "Warning"
                })
                .cloned()
        },
    )?;
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("127.0.0.1:{}/tcp", node_port + 1)),
        "{message}"
    );
    drop(held);

    let pods = pod_ids(&k, 3)?;
    wait_endpoints(&k, 3)?;
    let ids: BTreeSet<String> = pods.values().cloned().collect();
    // The proxy follows the Endpoints within moments; wait until it answers at all.
    eventually(WAIT, "the proxy to serve the cluster IP", || {
        get(via_cluster_ip).ok()
    })?;

    // 1. Thirty requests to clusterIP:port all succeed and reach all three pods.
    let bodies = get_all(via_cluster_ip, 30);
    let seen: BTreeSet<String> = bodies.iter().cloned().collect();
    assert_eq!(seen, ids, "cluster IP bodies {bodies:?}");

    // 2. The same through the name the cluster DNS gives the Service.
    let name = format!("web.{NS}.svc.cluster.local");
    let resolved = eventually(WAIT, "the cluster DNS to know the Service", || {
        let answer = udp_query(dns, &name, RecordType::A)?;
        a_records(&answer).into_iter().next()
    })?;
    assert_eq!(std::net::IpAddr::from(resolved), cluster_ip, "{name}");
    let bodies = get_all(SocketAddr::new(resolved.into(), 80), 30);
    let seen: BTreeSet<String> = bodies.iter().cloned().collect();
    assert_eq!(seen, ids, "bodies via {name} {bodies:?}");

    // 2. The same through the NodePort on the agent's address.
    eventually(WAIT, "the proxy to serve the NodePort", || {
        get(via_node_port).ok()
    })?;
    let bodies = get_all(via_node_port, 30);
    let seen: BTreeSet<String> = bodies.iter().cloned().collect();
    assert_eq!(seen, ids, "NodePort bodies {bodies:?}");

    // 3. A pod deleted while requests stream: once the Endpoints drop it, every new connection
    //    goes to the others and succeeds.
    let (victim, victim_id) = pods
        .iter()
        .next()
        .map(|(n, i)| (n.clone(), i.clone()))
        .unwrap();
    let before = endpoints(&k);
    let log: Arc<Mutex<Vec<Outcome>>> = Arc::default();
    let after_update = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let streamer = {
        let (log, after_update, stop) = (log.clone(), after_update.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let phase = after_update.load(Ordering::SeqCst);
                let r = get(via_cluster_ip);
                log.lock().unwrap().push((phase, r));
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    k.ok(&["delete", "pod", "-n", NS, &victim, "--wait=false"]);
    eventually(WAIT, "the deleted pod to leave the Endpoints", || {
        let now = endpoints(&k);
        (now.len() < before.len() || now.iter().any(|e| !before.contains(e))).then_some(())
    })?;
    // Give the proxy its debounce, then judge only connections made afterwards.
    std::thread::sleep(Duration::from_secs(1));
    after_update.store(true, Ordering::SeqCst);
    let more = |n: usize| {
        eventually(WAIT, "requests after the update", || {
            let l = log.lock().unwrap();
            (l.iter().filter(|(after, _)| *after).count() >= n).then_some(())
        })
    };
    more(30)?;
    stop.store(true, Ordering::SeqCst);
    streamer.join().expect("the request stream");
    let log = log.lock().unwrap();
    let during_failures = log.iter().filter(|(a, r)| !*a && r.is_err()).count();
    let after: Vec<&Result<String, String>> =
        log.iter().filter(|(a, _)| *a).map(|(_, r)| r).collect();
    for r in &after {
        match r {
            Ok(body) => assert_ne!(body, &victim_id, "a new connection reached the deleted pod"),
            Err(e) => panic!("a request after the Endpoints update failed: {e}"),
        }
    }
    eprintln!(
        "pod deletion: {} requests before the Endpoints update ({during_failures} failed), {} after (all succeeded, none to the deleted pod)",
        log.len() - after.len(),
        after.len()
    );
    drop(log);

    // 1 (continued). Scale to one: once the Endpoints list one address, every request reaches it.
    pod_ids(&k, 3)?;
    k.ok(&["scale", "-n", NS, "rc/web", "--replicas=1"]);
    wait_endpoints(&k, 1)?;
    let remaining = pod_ids(&k, 1)?;
    let only = remaining.values().next().cloned().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    for addr in [via_cluster_ip, via_node_port] {
        let bodies = get_all(addr, 30);
        assert!(
            bodies.iter().all(|b| *b == only),
            "after scaling to 1 via {addr}: {bodies:?} (expected {only})"
        );
    }
    Ok(())
}
