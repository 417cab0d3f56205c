//! Ports below 1024 without privileges: the listener fails with EACCES and a clear message, the
//! proxy keeps serving its other ports. Run as root, the test re-runs itself as `nobody` without
//! capabilities (setpriv), since root may bind anything.

use std::net::IpAddr;
use std::process::Command;

use service_proxy::{
    Affinity, ListenerKey, ListenerSpec, Protocol, Proxy, ProxyConfig, ServiceRef, Table,
};
use tokio_util::sync::CancellationToken;

const CHILD: &str = "KUMOS_PROXY_UNPRIVILEGED_CHILD";
const NAME: &str = "low_ports_fail_without_privileges_and_the_rest_runs";

fn spec() -> ListenerSpec {
    ListenerSpec {
        service: ServiceRef {
            namespace: "demo".into(),
            name: "web".into(),
            uid: None,
        },
        port_name: String::new(),
        node_port: false,
        backends: Vec::new(),
        affinity: Affinity::None,
    }
}

#[test]
fn low_ports_fail_without_privileges_and_the_rest_runs() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if root && std::env::var_os(CHILD).is_none() {
        let exe = std::env::current_exe().expect("the test binary");
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ])
            .arg(exe)
            .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("setpriv (util-linux) runs the test unprivileged");
        assert!(
            out.status.success(),
            "unprivileged run failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let ip: IpAddr = "127.96.0.60".parse().unwrap();
        let high = std::net::TcpListener::bind((ip, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let low = ListenerKey {
            ip,
            port: 80,
            protocol: Protocol::Tcp,
        };
        let ok = ListenerKey {
            ip,
            port: high,
            protocol: Protocol::Tcp,
        };
        let t: Table = [(low, spec()), (ok, spec())].into_iter().collect();
        let mut proxy = Proxy::new(ProxyConfig::default(), CancellationToken::new());
        let failures = proxy.apply(&t);
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].key, low);
        assert_eq!(
            failures[0].error.kind(),
            std::io::ErrorKind::PermissionDenied
        );
        assert!(failures[0].message().contains("127.96.0.60:80/tcp"));
        assert_eq!(proxy.listening(), vec![ok]);
        assert!(tokio::net::TcpStream::connect((ip, high)).await.is_ok());
        proxy.shutdown().await;
    });
}
