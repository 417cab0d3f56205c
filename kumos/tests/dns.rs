//! Issue 7: the cluster DNS of `kumos server` (process runtime), queried with real DNS messages over UDP
//! and TCP: a ClusterIP service's A and SRV records, a headless service's endpoint addresses and
//! per-pod SRV records, NXDOMAIN for missing names (and for a deleted service), REFUSED outside the zone.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use conformance::dns::{a_records, free_dns_address, srv_records, tcp_query, udp_query};
use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(120);
const NS: &str = "dnstest";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

fn manifests() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/manifests/journey")
}

fn json(k: &Kubectl, args: &[&str]) -> Option<Json> {
    serde_json::from_str(&k.try_ok(args)?).ok()
}

/// `(pod name, port)` of the ready addresses of an Endpoints object.
fn endpoint_ports(k: &Kubectl, name: &str) -> BTreeSet<(String, u16)> {
    let Some(eps) = json(k, &["get", "endpoints", "-n", NS, name, "-o", "json"]) else {
        return BTreeSet::new();
    };
    let mut out = BTreeSet::new();
    for subset in eps["subsets"].as_array().into_iter().flatten() {
        for address in subset["addresses"].as_array().into_iter().flatten() {
            for port in subset["ports"].as_array().into_iter().flatten() {
                let pod = address["targetRef"]["name"].as_str().unwrap_or_default();
                let number = port["port"].as_u64().unwrap_or(0) as u16;
                out.insert((pod.to_string(), number));
            }
        }
    }
    out
}

const HEADLESS: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: sleeper-direct
spec:
  clusterIP: None
  selector:
    app: sleeper
  ports:
    - name: http
      port: 8080
      targetPort: http
"#;

#[test]
fn cluster_dns_answers_for_services_and_endpoints() -> anyhow::Result<()> {
    let dns = free_dns_address();
    let dns_flag = dns.to_string();
    let server = KumosServer::start_with(
        bin(),
        Store::Embedded,
        &[
            "--agents",
            "1",
            "--agent-resources",
            "cpus:2;mem:2048",
            "--cluster-dns-address",
            &dns_flag,
        ],
    )?;
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    k.ok(&["create", "namespace", NS]);
    let dir = manifests();
    for file in ["rc.yaml", "service.yaml"] {
        k.ok(&[
            "apply",
            "-n",
            NS,
            "-f",
            &dir.join(file).display().to_string(),
        ]);
    }
    let out = k.run_stdin(&["apply", "-n", NS, "-f", "-"], HEADLESS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The zone answers at once: the schema version, and NXDOMAIN for a missing service.
    let version = eventually(WAIT, "dns-version TXT", || {
        udp_query(dns, "dns-version.cluster.local.", RecordType::TXT)
            .filter(|m| m.response_code() == ResponseCode::NoError && !m.answers().is_empty())
    })?;
    assert!(version.authoritative());
    let missing = udp_query(dns, "nope.dnstest.svc.cluster.local.", RecordType::A)
        .expect("an answer for a missing service");
    assert_eq!(missing.response_code(), ResponseCode::NXDomain);
    let outside =
        udp_query(dns, "example.com.", RecordType::A).expect("an answer outside the zone");
    assert_eq!(outside.response_code(), ResponseCode::Refused);

    // ClusterIP service: A = its cluster IP (any case), SRV for its named port.
    let cluster_ip: Ipv4Addr = k
        .ok(&[
            "get",
            "svc",
            "-n",
            NS,
            "sleeper",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .parse()?;
    eventually(WAIT, "the service's A record", || {
        let m = udp_query(dns, "Sleeper.DNSTEST.svc.cluster.local.", RecordType::A)?;
        (a_records(&m) == BTreeSet::from([cluster_ip])).then_some(())
    })?;
    let srv = udp_query(
        dns,
        "_http._tcp.sleeper.dnstest.svc.cluster.local.",
        RecordType::SRV,
    )
    .expect("an SRV answer");
    assert_eq!(
        srv_records(&srv),
        BTreeSet::from([("sleeper.dnstest.svc.cluster.local.".to_string(), 80)])
    );
    let over_tcp = tcp_query(dns, "sleeper.dnstest.svc.cluster.local.", RecordType::A)
        .expect("an answer over TCP");
    assert_eq!(a_records(&over_tcp), BTreeSet::from([cluster_ip]));

    // Headless service: A = the ready endpoints' addresses, one SRV per ready pod on its host port.
    k.ok(&[
        "wait",
        "-n",
        NS,
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=sleeper",
        "--timeout=120s",
    ]);
    let expected = eventually(WAIT, "three ready endpoints", || {
        let eps = endpoint_ports(&k, "sleeper-direct");
        (eps.len() == 3).then_some(eps)
    })?;
    let expected: BTreeSet<(String, u16)> = expected
        .into_iter()
        .map(|(pod, port)| {
            (
                format!("{pod}.sleeper-direct.dnstest.svc.cluster.local."),
                port,
            )
        })
        .collect();
    eventually(WAIT, "the headless SRV records", || {
        let m = udp_query(
            dns,
            "_http._tcp.sleeper-direct.dnstest.svc.cluster.local.",
            RecordType::SRV,
        )?;
        (srv_records(&m) == expected).then_some(())
    })?;
    let headless = udp_query(
        dns,
        "sleeper-direct.dnstest.svc.cluster.local.",
        RecordType::A,
    )
    .expect("a headless answer");
    assert_eq!(
        a_records(&headless),
        BTreeSet::from([Ipv4Addr::LOCALHOST]),
        "every Kumos pod is on 127.0.0.1"
    );
    let (first_pod, _) = expected.iter().next().expect("an endpoint");
    let per_pod = udp_query(dns, first_pod, RecordType::A).expect("a per-pod answer");
    assert_eq!(a_records(&per_pod), BTreeSet::from([Ipv4Addr::LOCALHOST]));

    // A deleted service's name becomes NXDOMAIN.
    k.ok(&["delete", "svc", "-n", NS, "sleeper"]);
    eventually(WAIT, "NXDOMAIN after the delete", || {
        let m = udp_query(dns, "sleeper.dnstest.svc.cluster.local.", RecordType::A)?;
        (m.response_code() == ResponseCode::NXDomain).then_some(())
    })?;
    Ok(())
}

#[test]
fn an_address_that_cannot_be_bound_leaves_kumos_running() -> anyhow::Result<()> {
    // Hold the port ourselves: the server logs the failure and serves the API anyway.
    let taken = UdpSocket::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let server = KumosServer::start_with(
        bin(),
        Store::Embedded,
        &["--agents", "0", "--cluster-dns-address", &addr],
    )?;
    let k = Kubectl::new(&kubectl_binaries()[0], &server.kubeconfig());
    k.ok(&["create", "service", "clusterip", "still-up", "--tcp=80"]);
    k.ok(&["get", "svc", "still-up"]);
    Ok(())
}
