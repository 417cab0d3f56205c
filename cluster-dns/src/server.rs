//! The DNS listeners: one UDP socket and one TCP listener on the same address, answering from the latest
//! table. Every task is owned (a `JoinSet`) and stops when the shutdown token is cancelled.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::answer::{respond, Transport};
use crate::table::Table;

/// TCP connections served at once; more wait in the kernel's backlog.
const MAX_TCP_CONNECTIONS: usize = 64;
/// A TCP connection idle this long is closed (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The bound sockets of a DNS server, not serving yet.
pub struct Listeners {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl Listeners {
    /// Binds UDP and TCP on `addr` (port 0: the UDP socket's port is reused for TCP).
    pub async fn bind(addr: SocketAddr) -> io::Result<Listeners> {
        let udp = UdpSocket::bind(addr).await?;
        let tcp = TcpListener::bind(udp.local_addr()?).await?;
        Ok(Listeners { udp, tcp })
    }

    /// The bound address (UDP and TCP share it).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Serves until `shutdown` is cancelled, answering from the latest value of `table`.
    pub async fn serve(self, table: watch::Receiver<Arc<Table>>, shutdown: CancellationToken) {
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(self.udp, table.clone(), shutdown.clone()));
        tasks.spawn(serve_tcp(self.tcp, table, shutdown.clone()));
        while let Some(done) = tasks.join_next().await {
            if let Err(err) = done {
                tracing::warn!(%err, "a DNS listener task failed");
            }
        }
    }
}

/// The current table (the borrow is released at once; nothing is held across an await).
fn current(table: &watch::Receiver<Arc<Table>>) -> Arc<Table> {
    table.borrow().clone()
}

async fn serve_udp(
    socket: UdpSocket,
    table: watch::Receiver<Arc<Table>>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (len, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            received = socket.recv_from(&mut buf) => match received {
                Ok(r) => r,
                Err(err) => {
                    // ICMP errors from earlier replies surface here; keep serving.
                    tracing::debug!(%err, "DNS UDP receive failed");
                    continue;
                }
            },
        };
        // Answering is a lookup in memory: no task per datagram.
        if let Some(reply) = respond(&current(&table), &buf[..len], Transport::Udp) {
            if let Err(err) = socket.send_to(&reply, peer).await {
                tracing::debug!(%peer, %err, "DNS UDP reply failed");
            }
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    table: watch::Receiver<Arc<Table>>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::debug!(%err, "DNS TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let table = table.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                result = serve_connection(stream, table) => {
                    if let Err(err) = result {
                        tracing::debug!(%err, "DNS TCP connection ended");
                    }
                }
            }
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    connections.shutdown().await;
}

/// Length-prefixed messages (RFC 1035 4.2.2) until the client closes or stays idle.
async fn serve_connection(
    mut stream: TcpStream,
    table: watch::Receiver<Arc<Table>>,
) -> io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Err(_) => return Ok(()),
            Ok(Err(err)) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(err)) => return Err(err),
            Ok(Ok(_)) => {}
        }
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut request))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request body"))??;
        let Some(reply) = respond(&current(&table), &request, Transport::Tcp) else {
            continue;
        };
        let Ok(size) = u16::try_from(reply.len()) else {
            continue;
        };
        stream.write_all(&size.to_be_bytes()).await?;
        stream.write_all(&reply).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    fn question(name: &str) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    #[tokio::test]
    async fn answers_over_udp_and_tcp_then_stops() {
        let listeners = Listeners::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listeners.local_addr().unwrap();
        let (tx, rx) = watch::channel(Arc::new(Table::empty("cluster.local")));
        let shutdown = CancellationToken::new();
        let serving = tokio::spawn(listeners.serve(rx, shutdown.clone()));

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client
            .send_to(&question("x.default.svc.cluster.local."), addr)
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let (len, _) = client.recv_from(&mut buf).await.unwrap();
        let reply = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(reply.response_code(), ResponseCode::NXDomain);

        // A new table is used by the next question.
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "namespace": "default"}, "spec": {"clusterIP": "127.96.0.9"}}))
        .unwrap();
        tx.send_replace(Arc::new(Table::build("cluster.local", [&svc], [])));
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let q = question("x.default.svc.cluster.local.");
        tcp.write_all(&(q.len() as u16).to_be_bytes())
            .await
            .unwrap();
        tcp.write_all(&q).await.unwrap();
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        tcp.read_exact(&mut body).await.unwrap();
        let reply = Message::from_vec(&body).unwrap();
        assert_eq!(reply.response_code(), ResponseCode::NoError);
        assert_eq!(reply.answers().len(), 1);

        // Shutdown ends every task, the open connection's included.
        shutdown.cancel();
        serving.await.unwrap();
    }
}
