//! The proxy's forwarding against real TCP and UDP backends on 127.0.0.1: round-robin, skipping a
//! refusing endpoint, ClientIP affinity, updates that keep established connections, bind failures.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use service_proxy::proxy::bind_tcp;
use service_proxy::{
    Affinity, ListenerKey, ListenerSpec, Protocol, Proxy, ProxyConfig, ServiceRef, Table,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// A TCP backend that answers every connection with its name, then echoes what it reads.
async fn backend(name: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut s, _)) = l.accept().await {
            conns.spawn(async move {
                if s.write_all(format!("{name}\n").as_bytes()).await.is_err() {
                    return;
                }
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, h)
}

/// A free port on 127.0.0.1 nobody listens on (bound, then released).
fn refusing_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spec(backends: Vec<SocketAddr>, affinity: Affinity) -> ListenerSpec {
    let mut backends = backends;
    backends.sort();
    ListenerSpec {
        service: ServiceRef {
            namespace: "test".into(),
            name: "web".into(),
            uid: None,
        },
        port_name: "http".into(),
        node_port: false,
        backends,
        affinity,
    }
}

fn key(ip: &str, protocol: Protocol) -> ListenerKey {
    let ip: IpAddr = ip.parse().unwrap();
    ListenerKey {
        ip,
        port: free_port(ip),
        protocol,
    }
}

fn table(k: ListenerKey, s: ListenerSpec) -> Table {
    [(k, s)].into_iter().collect()
}

/// Connects through the proxy and reads the backend's name (None if the proxy closed the connection).
async fn hello(k: ListenerKey) -> Option<(String, TcpStream)> {
    let mut s = TcpStream::connect((k.ip, k.port)).await.ok()?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), s.read(&mut b)).await {
            Ok(Ok(1)) if b[0] == b'\n' => break,
            Ok(Ok(1)) => line.push(b[0]),
            _ => return None,
        }
    }
    Some((String::from_utf8(line).ok()?, s))
}

async fn name_of(k: ListenerKey) -> String {
    hello(k).await.expect("a proxied connection").0
}

#[tokio::test]
async fn round_robin_over_three_backends_on_a_cluster_ip() {
    let (a, _ha) = backend("a").await;
    let (b, _hb) = backend("b").await;
    let (c, _hc) = backend("c").await;
    let shutdown = CancellationToken::new();
    let mut proxy = Proxy::new(ProxyConfig::default(), shutdown.clone());
    let k = key("127.96.0.10", Protocol::Tcp);
    assert!(proxy
        .apply(&table(k, spec(vec![a, b, c], Affinity::None)))
        .is_empty());
    let mut seen = Vec::new();
    for _ in 0..30 {
        seen.push(name_of(k).await);
    }
    for n in ["a", "b", "c"] {
        assert_eq!(seen.iter().filter(|s| *s == n).count(), 10, "{seen:?}");
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_refusing_endpoint_is_skipped() {
    let (a, _ha) = backend("a").await;
    let dead = refusing_addr();
    let mut proxy = Proxy::new(ProxyConfig::default(), CancellationToken::new());
    let k = key("127.96.0.11", Protocol::Tcp);
    assert!(proxy
        .apply(&table(k, spec(vec![a, dead], Affinity::None)))
        .is_empty());
    for _ in 0..10 {
        assert_eq!(name_of(k).await, "a");
    }
    // Only refusing endpoints: the client's connection is closed, the proxy keeps going.
    proxy.apply(&table(k, spec(vec![dead], Affinity::None)));
    assert!(hello(k).await.is_none());
    proxy.apply(&table(k, spec(vec![a], Affinity::None)));
    assert_eq!(name_of(k).await, "a");
    proxy.shutdown().await;
}

#[tokio::test]
async fn client_ip_affinity_keeps_a_client_on_one_backend() {
    let (a, _ha) = backend("a").await;
    let (b, _hb) = backend("b").await;
    let (c, _hc) = backend("c").await;
    let mut proxy = Proxy::new(ProxyConfig::default(), CancellationToken::new());
    let k = key("127.96.0.12", Protocol::Tcp);
    let affinity = Affinity::ClientIp {
        timeout: Duration::from_secs(600),
    };
    proxy.apply(&table(k, spec(vec![a, b, c], affinity)));
    let first = name_of(k).await;
    for _ in 0..10 {
        assert_eq!(name_of(k).await, first);
    }
    // Its backend removed: the client moves on, and sticks to the new one.
    let remaining: Vec<SocketAddr> = [("a", a), ("b", b), ("c", c)]
        .into_iter()
        .filter(|(n, _)| *n != first)
        .map(|(_, x)| x)
        .collect();
    proxy.apply(&table(k, spec(remaining, affinity)));
    let second = name_of(k).await;
    assert_ne!(second, first);
    for _ in 0..5 {
        assert_eq!(name_of(k).await, second);
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn updates_keep_established_connections_and_removed_listeners_let_them_finish() {
    let (a, _ha) = backend("a").await;
    let (b, _hb) = backend("b").await;
    let mut proxy = Proxy::new(ProxyConfig::default(), CancellationToken::new());
    let k = key("127.96.0.13", Protocol::Tcp);
    proxy.apply(&table(k, spec(vec![a], Affinity::None)));
    let (name, mut held) = hello(k).await.unwrap();
    assert_eq!(name, "a");
    // Endpoints change to b only: new connections go to b, the held one still talks to a.
    proxy.apply(&table(k, spec(vec![b], Affinity::None)));
    assert_eq!(name_of(k).await, "b");
    echo(&mut held, b"still here").await;
    // The Service goes away: no new connections, the held one still works.
    proxy.apply(&Table::new());
    assert!(proxy.listening().is_empty());
    assert!(hello(k).await.is_none());
    echo(&mut held, b"and now").await;
    drop(held);
    proxy.shutdown().await;
}

async fn echo(s: &mut TcpStream, msg: &[u8]) {
    s.write_all(msg).await.unwrap();
    let mut buf = vec![0u8; msg.len()];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(buf, msg);
}

#[tokio::test]
async fn a_port_in_use_is_reported_and_the_other_listeners_run() {
    let (a, _ha) = backend("a").await;
    // Someone holds the port without SO_REUSEPORT.
    let taken = std::net::TcpListener::bind("127.96.0.14:0").unwrap();
    let busy = ListenerKey {
        ip: "127.96.0.14".parse().unwrap(),
        port: taken.local_addr().unwrap().port(),
        protocol: Protocol::Tcp,
    };
    let ok = key("127.96.0.15", Protocol::Tcp);
    let mut t = table(ok, spec(vec![a], Affinity::None));
    t.insert(busy, spec(vec![a], Affinity::None));
    let mut proxy = Proxy::new(ProxyConfig::default(), CancellationToken::new());
    let failures = proxy.apply(&t);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].key, busy);
    assert_eq!(failures[0].error.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        failures[0].message().contains("address already in use")
            || failures[0].message().contains("Address already in use"),
        "{}",
        failures[0].message()
    );
    assert_eq!(name_of(ok).await, "a");
    // Freed: the next apply binds it.
    drop(taken);
    assert!(proxy.apply(&t).is_empty());
    assert_eq!(name_of(busy).await, "a");
    proxy.shutdown().await;
}

#[tokio::test]
async fn two_proxies_share_one_cluster_ip_port() {
    let (a, _ha) = backend("a").await;
    let k = key("127.96.0.16", Protocol::Tcp);
    let mut p1 = Proxy::new(ProxyConfig::default(), CancellationToken::new());
    let mut p2 = Proxy::new(ProxyConfig::default(), CancellationToken::new());
    assert!(p1
        .apply(&table(k, spec(vec![a], Affinity::None)))
        .is_empty());
    assert!(p2
        .apply(&table(k, spec(vec![a], Affinity::None)))
        .is_empty());
    // A plain bind (no SO_REUSEPORT) conflicts with them.
    assert!(bind_tcp(SocketAddr::new(k.ip, k.port)).is_ok());
    assert!(std::net::TcpListener::bind((k.ip, k.port)).is_err());
    assert_eq!(name_of(k).await, "a");
    p1.shutdown().await;
    assert_eq!(name_of(k).await, "a");
    p2.shutdown().await;
}

/// A UDP backend that answers each datagram with `name:` and the datagram.
async fn udp_backend(name: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = s.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf).await {
            let mut reply = format!("{name}:").into_bytes();
            reply.extend_from_slice(&buf[..n]);
            let _ = s.send_to(&reply, from).await;
        }
    });
    (addr, h)
}

async fn udp_ask(k: ListenerKey, msg: &str) -> String {
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.connect((k.ip, k.port)).await.unwrap();
    udp_ask_on(&c, msg).await
}

async fn udp_ask_on(c: &UdpSocket, msg: &str) -> String {
    let mut buf = [0u8; 2048];
    for _ in 0..20 {
        c.send(msg.as_bytes()).await.unwrap();
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), c.recv(&mut buf)).await
        {
            return String::from_utf8_lossy(&buf[..n]).into_owned();
        }
    }
    panic!("no UDP reply through the proxy");
}

#[tokio::test]
async fn udp_round_robin_per_client_and_replies_from_the_service_address() {
    let (a, _ha) = udp_backend("a").await;
    let (b, _hb) = udp_backend("b").await;
    let mut proxy = Proxy::new(ProxyConfig::default(), CancellationToken::new());
    let k = key("127.96.0.17", Protocol::Udp);
    assert!(proxy
        .apply(&table(k, spec(vec![a, b], Affinity::None)))
        .is_empty());
    let mut seen = Vec::new();
    for i in 0..6 {
        seen.push(udp_ask(k, &format!("q{i}")).await);
    }
    assert_eq!(
        seen.iter().filter(|s| s.starts_with("a:")).count(),
        3,
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|s| s.starts_with("b:")).count(),
        3,
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .enumerate()
        .all(|(i, s)| s.ends_with(&format!("q{i}"))));
    // One client keeps its session (and endpoint) while it talks.
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.connect((k.ip, k.port)).await.unwrap();
    let first = udp_ask_on(&c, "x").await;
    for _ in 0..5 {
        assert_eq!(udp_ask_on(&c, "x").await, first);
    }
    proxy.shutdown().await;
}

#[tokio::test]
async fn connection_permits_are_released_when_connections_end() {
    let (a, _ha) = backend("a").await;
    let config = ProxyConfig {
        max_connections: 1,
        ..ProxyConfig::default()
    };
    let mut proxy = Proxy::new(config, CancellationToken::new());
    let k = key("127.96.0.18", Protocol::Tcp);
    proxy.apply(&table(k, spec(vec![a], Affinity::None)));
    // One connection at a time: each is served only if the previous one gave its permit back.
    for _ in 0..10 {
        let (name, s) = hello(k).await.expect("served");
        assert_eq!(name, "a");
        drop(s);
    }
    proxy.shutdown().await;
}
