//! Issue 7: the cluster DNS of `kumos server` (process runtime), queried with real DNS messages over UDP
//! and TCP: a ClusterIP service's A and SRV records, a headless service's endpoint addresses and
//! per-pod SRV records, NXDOMAIN for missing names (and for a deleted service), REFUSED outside the zone.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use conformance::{eventually, kubectl_binaries, Kubectl, KumosServer, Store};
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::Value as Json;

const WAIT: Duration = Duration::from_secs(120);
const NS: &str = "dnstest";

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_kumos"))
}

fn manifests() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/manifests/journey")
}

/// A loopback address whose port is free for both UDP and TCP.
fn free_dns_address() -> SocketAddr {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket");
        let addr = udp.local_addr().expect("local address");
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

fn request(name: &str, rtype: RecordType) -> Message {
    let mut m = Message::new();
    m.set_id(rand_id()).set_recursion_desired(true);
    m.add_query(Query::query(
        Name::from_ascii(name).expect("a DNS name"),
        rtype,
    ));
    m
}

fn rand_id() -> u16 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos()
        & 0xffff) as u16
}

/// One question over UDP; `None` when no answer came back in time.
fn udp_query(server: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let req = request(name, rtype);
    socket.send_to(&req.to_vec().ok()?, server).ok()?;
    let mut buf = [0u8; 4096];
    let (len, _) = socket.recv_from(&mut buf).ok()?;
    let reply = Message::from_vec(&buf[..len]).ok()?;
    (reply.id() == req.id()).then_some(reply)
}

/// One question over TCP (length-prefixed).
fn tcp_query(server: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let bytes = request(name, rtype).to_vec().ok()?;
    stream.write_all(&(bytes.len() as u16).to_be_bytes()).ok()?;
    stream.write_all(&bytes).ok()?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).ok()?;
    Message::from_vec(&reply).ok()
}

fn a_records(m: &Message) -> BTreeSet<Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// `(target, port)` of the SRV answers.
fn srv_records(m: &Message) -> BTreeSet<(String, u16)> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::SRV(s) => Some((s.target().to_ascii(), s.port())),
            _ => None,
        })
        .collect()
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
