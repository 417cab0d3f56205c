//! Endpoints churn: 1,000 updates (backends added, removed, whole listeners coming and going) while
//! connections are made and held; afterwards the open file descriptors and the proxy's tasks are back
//! to their baseline. A test binary of its own, so no other test's sockets muddle the fd count.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use service_proxy::{
    Affinity, ListenerKey, ListenerSpec, Protocol, Proxy, ProxyConfig, ServiceRef, Table,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn spec(backends: Vec<SocketAddr>) -> ListenerSpec {
    ListenerSpec {
        service: ServiceRef {
            namespace: "churn".into(),
            name: "web".into(),
            uid: None,
        },
        port_name: String::new(),
        node_port: false,
        backends,
        affinity: Affinity::None,
    }
}

fn free_port(ip: IpAddr) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_endpoint_updates_leak_neither_descriptors_nor_tasks() {
    // Five echo backends (answering "ok\n" first).
    let mut backends = Vec::new();
    let mut servers = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        backends.push(l.local_addr().unwrap());
        servers.spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut s, _)) = l.accept().await {
                conns.spawn(async move {
                    let _ = s.write_all(b"ok\n").await;
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
    }
    backends.sort();
    let ip: IpAddr = "127.96.0.40".parse().unwrap();
    let stable = ListenerKey {
        ip,
        port: free_port(ip),
        protocol: Protocol::Tcp,
    };
    let flapping = ListenerKey {
        ip,
        port: free_port(ip),
        protocol: Protocol::Tcp,
    };

    let mut proxy = Proxy::new(ProxyConfig::default(), CancellationToken::new());
    let fds_before = open_fds();
    let tasks_before = proxy.tasks();

    let mut held = Vec::new();
    for i in 0..1000usize {
        // Backends: a window over the five, sometimes empty; the second listener comes and goes.
        let n = i % 6;
        let start = i % 5;
        let mut bs: Vec<SocketAddr> = (0..n).map(|j| backends[(start + j) % 5]).collect();
        bs.sort();
        let mut t: Table = [(stable, spec(bs.clone()))].into_iter().collect();
        if i % 3 != 0 {
            t.insert(flapping, spec(bs.clone()));
        }
        assert!(proxy.apply(&t).is_empty(), "update {i}");
        if i % 50 == 0 && !bs.is_empty() {
            // A connection held across the churn that follows.
            let mut s = TcpStream::connect((stable.ip, stable.port)).await.unwrap();
            let mut ok = [0u8; 3];
            s.read_exact(&mut ok).await.unwrap();
            assert_eq!(&ok, b"ok\n");
            held.push(s);
        } else if i % 7 == 0 {
            // A short connection, possibly to no endpoint at all (then closed by the proxy).
            let _ = TcpStream::connect((stable.ip, stable.port)).await;
        }
    }
    // Every held connection survived the churn.
    for s in &mut held {
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(&buf, b"ping");
    }
    assert!(held.len() >= 10, "{} held", held.len());
    drop(held);
    proxy.apply(&Table::new());
    wait_until("the proxy's tasks to end", || proxy.tasks() == tasks_before).await;
    wait_until("descriptors back to the baseline", || {
        open_fds() <= fds_before
    })
    .await;
    proxy.shutdown().await;
    servers.shutdown().await;
}
