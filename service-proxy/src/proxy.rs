//! The forwarding itself: one listener task per table entry (TCP accept loop or UDP relay) and one
//! task per proxied TCP connection, all owned by one [`TaskTracker`] and stopped by one token.
//!
//! Listeners bind with `SO_REUSEADDR` and `SO_REUSEPORT`, so several agents on one machine can all
//! serve the same clusterIP:port (the kernel spreads connections over them). A backend update
//! swaps the listener's balancer state in place: established connections are untouched. A removed
//! listener stops accepting at once, while its established TCP connections run to their end.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::balancer::Balancer;
use crate::table::{diff, Diff, ListenerKey, ListenerSpec, Protocol, Table};

/// Tunables of the forwarding.
#[derive(Debug, Clone, Copy)]
pub struct ProxyConfig {
    /// How long one connect to an endpoint may take before the next endpoint is tried.
    pub connect_timeout: Duration,
    /// A UDP client silent this long (both ways) loses its upstream socket (kube-proxy's
    /// `--udp-timeout` was 250 ms; a second suits loaded test machines better).
    pub udp_idle_timeout: Duration,
    /// Proxied TCP connections at once, over all listeners; beyond it, accepting waits.
    pub max_connections: usize,
    /// UDP clients with a session at once, per listener; datagrams of further clients are dropped.
    pub max_udp_sessions: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            connect_timeout: Duration::from_secs(2),
            udp_idle_timeout: Duration::from_secs(1),
            max_connections: 16_384,
            max_udp_sessions: 4_096,
        }
    }
}

/// A listener that could not be started.
#[derive(Debug)]
pub struct BindFailure {
    /// Where it should have listened.
    pub key: ListenerKey,
    /// What it was for.
    pub spec: ListenerSpec,
    /// Why it could not (EACCES below 1024 without privileges, EADDRINUSE, …).
    pub error: io::Error,
}

impl BindFailure {
    /// A one-line description, after kube-proxy's "can't open" message.
    pub fn message(&self) -> String {
        let what = if self.spec.node_port {
            "nodePort for"
        } else {
            "clusterIP for"
        };
        format!(
            "can't open \"{what} {}\" ({}), skipping it: {}",
            self.spec.describe(),
            self.key,
            self.error
        )
    }
}

/// The balancer is shared by the accept loop (picking) and connection tasks (recording affinity)
/// and replaced by updates; every critical section is a few map operations and never awaits, so a
/// std mutex fits.
type SharedBalancer = Arc<Mutex<Balancer>>;

fn lock(b: &SharedBalancer) -> std::sync::MutexGuard<'_, Balancer> {
    match b.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

struct Listener {
    spec: ListenerSpec,
    balancer: SharedBalancer,
    stop: CancellationToken,
}

/// The running listeners of one proxy. Owned by one reconcile loop; not shared.
pub struct Proxy {
    listeners: BTreeMap<ListenerKey, Listener>,
    tracker: TaskTracker,
    connections: Arc<Semaphore>,
    shutdown: CancellationToken,
    config: ProxyConfig,
}

impl Proxy {
    /// A proxy with no listeners; everything it starts stops when `shutdown` is cancelled.
    pub fn new(config: ProxyConfig, shutdown: CancellationToken) -> Proxy {
        Proxy {
            listeners: BTreeMap::new(),
            tracker: TaskTracker::new(),
            connections: Arc::new(Semaphore::new(config.max_connections.max(1))),
            shutdown,
            config,
        }
    }

    /// Makes the running listeners match `table`: stops removed ones, updates changed ones in place,
    /// starts new ones (and retries those that failed before). Returns the listeners that could not
    /// bind; the others run regardless. Must be called within a tokio runtime.
    pub fn apply(&mut self, table: &Table) -> Vec<BindFailure> {
        // What runs now (listeners that failed to bind are not running: they are started again).
        let running: Table = self
            .listeners
            .iter()
            .map(|(k, l)| (*k, l.spec.clone()))
            .collect();
        let Diff {
            start,
            stop,
            update,
        } = diff(&running, table);
        for key in stop {
            if let Some(l) = self.listeners.remove(&key) {
                tracing::debug!(listener = %key, service = %l.spec.describe(), "stopping listener");
                l.stop.cancel();
            }
        }
        for key in update {
            if let (Some(l), Some(spec)) = (self.listeners.get_mut(&key), table.get(&key)) {
                lock(&l.balancer).update(spec.backends.clone(), spec.affinity);
                l.spec = spec.clone();
            }
        }
        let mut failures = Vec::new();
        for key in start {
            let Some(spec) = table.get(&key) else {
                continue;
            };
            match self.start(key, spec) {
                Ok(l) => {
                    tracing::info!(listener = %key, service = %spec.describe(), "listening");
                    self.listeners.insert(key, l);
                }
                Err(error) => failures.push(BindFailure {
                    key,
                    spec: spec.clone(),
                    error,
                }),
            }
        }
        failures
    }

    /// Where the proxy listens now.
    pub fn listening(&self) -> Vec<ListenerKey> {
        self.listeners.keys().copied().collect()
    }

    /// Tasks alive: listeners, TCP connections, and listeners stopped but still finishing.
    pub fn tasks(&self) -> usize {
        self.tracker.len()
    }

    /// Stops every listener and connection and waits for their tasks.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    fn start(&self, key: ListenerKey, spec: &ListenerSpec) -> io::Result<Listener> {
        let balancer = Arc::new(Mutex::new(Balancer::new(
            spec.backends.clone(),
            spec.affinity,
        )));
        let stop = self.shutdown.child_token();
        let addr = SocketAddr::new(key.ip, key.port);
        match key.protocol {
            Protocol::Tcp => {
                let listener = bind_tcp(addr)?;
                let conns = Conns {
                    tracker: self.tracker.clone(),
                    permits: self.connections.clone(),
                    shutdown: self.shutdown.clone(),
                    config: self.config,
                };
                self.tracker
                    .spawn(accept_loop(listener, balancer.clone(), stop.clone(), conns));
            }
            Protocol::Udp => {
                let socket = bind_udp(addr)?;
                self.tracker.spawn(udp_relay(
                    socket,
                    balancer.clone(),
                    stop.clone(),
                    self.config,
                ));
            }
        }
        Ok(Listener {
            spec: spec.clone(),
            balancer,
            stop,
        })
    }
}

fn reusable_socket(addr: SocketAddr, ty: Type) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A TCP listener on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`.
pub fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = reusable_socket(addr, Type::STREAM)?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// A UDP socket on `addr` with `SO_REUSEADDR` and `SO_REUSEPORT`.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::from_std(reusable_socket(addr, Type::DGRAM)?.into())
}

/// What connection tasks need: where to register, when to stop, how long to wait for a connect.
#[derive(Clone)]
struct Conns {
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    config: ProxyConfig,
}

async fn accept_loop(
    listener: TcpListener,
    balancer: SharedBalancer,
    stop: CancellationToken,
    conns: Conns,
) {
    loop {
        // A permit first: at the cap, connections wait in the kernel's backlog.
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            p = conns.permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, peer)) => {
                let order = lock(&balancer).pick(peer.ip(), Instant::now());
                let c = conns.clone();
                let b = balancer.clone();
                conns.tracker.spawn(async move {
                    let _permit = permit;
                    tokio::select! {
                        _ = c.shutdown.cancelled() => {}
                        _ = forward_tcp(client, peer, order, b, c.config) => {}
                    }
                });
            }
            Err(err) => {
                // Out of descriptors or a connection reset before accept: wait a moment rather
                // than spin, unless stopped.
                tracing::warn!(%err, "accepting a connection");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
        }
    }
}

/// Connects to the first endpoint of `order` that accepts and copies both ways until either side
/// closes. With no endpoint reachable the client's connection is closed.
async fn forward_tcp(
    mut client: TcpStream,
    peer: SocketAddr,
    order: Vec<SocketAddr>,
    balancer: SharedBalancer,
    config: ProxyConfig,
) {
    for backend in order {
        match tokio::time::timeout(config.connect_timeout, TcpStream::connect(backend)).await {
            Ok(Ok(mut upstream)) => {
                lock(&balancer).connected(peer.ip(), backend, Instant::now());
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    tracing::debug!(%err, %peer, %backend, "proxied connection ended");
                }
                return;
            }
            Ok(Err(err)) => tracing::debug!(%err, %backend, "endpoint refused; trying the next"),
            Err(_) => tracing::debug!(%backend, "endpoint connect timed out; trying the next"),
        }
    }
    tracing::debug!(%peer, "no endpoint reachable; closing the connection");
}

/// Milliseconds since a fixed instant, for activity stamps shared without a lock.
struct Clock(Instant);

impl Clock {
    fn now(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

struct Session {
    id: u64,
    upstream: Arc<UdpSocket>,
    last_active: Arc<AtomicU64>,
}

/// Relays datagrams: each client address gets its own upstream socket connected to the endpoint
/// the balancer picks; replies go back from the listening socket. Sessions idle for
/// `udp_idle_timeout` end. Session tasks are owned by this task's JoinSet.
async fn udp_relay(
    socket: UdpSocket,
    balancer: SharedBalancer,
    stop: CancellationToken,
    config: ProxyConfig,
) {
    let socket = Arc::new(socket);
    let clock = Arc::new(Clock(Instant::now()));
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut tasks: JoinSet<(SocketAddr, u64)> = JoinSet::new();
    let mut next_id = 0u64;
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            Some(done) = tasks.join_next() => {
                // Only the session that ended: the client may have a newer one already.
                if let Ok((client, id)) = done {
                    if sessions.get(&client).is_some_and(|s| s.id == id) {
                        sessions.remove(&client);
                    }
                }
            }
            received = socket.recv_from(&mut buf) => {
                let (n, client) = match received {
                    Ok(r) => r,
                    Err(err) => {
                        tracing::debug!(%err, "udp receive");
                        continue;
                    }
                };
                if sessions.len() >= config.max_udp_sessions && !sessions.contains_key(&client) {
                    tracing::debug!(%client, "udp session limit reached; dropping a datagram");
                    continue;
                }
                if let Entry::Vacant(slot) = sessions.entry(client) {
                    let order = lock(&balancer).pick(client.ip(), Instant::now());
                    let Some(session) = open_session(&order).await else {
                        continue;
                    };
                    lock(&balancer).connected(client.ip(), session.1, Instant::now());
                    next_id += 1;
                    let s = Session {
                        id: next_id,
                        upstream: Arc::new(session.0),
                        last_active: Arc::new(AtomicU64::new(clock.now())),
                    };
                    tasks.spawn(udp_replies(
                        (client, next_id),
                        s.upstream.clone(),
                        socket.clone(),
                        s.last_active.clone(),
                        clock.clone(),
                        config.udp_idle_timeout,
                    ));
                    slot.insert(s);
                }
                if let Some(s) = sessions.get(&client) {
                    s.last_active.store(clock.now(), Ordering::Relaxed);
                    if let Err(err) = s.upstream.send(&buf[..n]).await {
                        // Typically ECONNREFUSED from an earlier ICMP error: a fresh session
                        // (and endpoint) for this client's next datagram.
                        tracing::debug!(%err, %client, "udp forward");
                        sessions.remove(&client);
                    }
                }
            }
        }
    }
    tasks.shutdown().await;
}

/// A socket connected to the first endpoint of `order` it can be connected to.
async fn open_session(order: &[SocketAddr]) -> Option<(UdpSocket, SocketAddr)> {
    for backend in order {
        let local: SocketAddr = match backend.ip() {
            IpAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
            IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(sock) = UdpSocket::bind(local).await else {
            continue;
        };
        if sock.connect(backend).await.is_ok() {
            return Some((sock, *backend));
        }
    }
    None
}

/// Copies replies from `upstream` to `client` until the session has been idle for `idle` or the
/// endpoint refuses; returns the session that ended.
async fn udp_replies(
    session: (SocketAddr, u64),
    upstream: Arc<UdpSocket>,
    socket: Arc<UdpSocket>,
    last_active: Arc<AtomicU64>,
    clock: Arc<Clock>,
    idle: Duration,
) -> (SocketAddr, u64) {
    let client = session.0;
    let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
    let mut buf = vec![0u8; 65_536];
    loop {
        let since = clock
            .now()
            .saturating_sub(last_active.load(Ordering::Relaxed));
        if since >= idle_ms {
            return session;
        }
        let wait = Duration::from_millis(idle_ms - since);
        match tokio::time::timeout(wait, upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                last_active.store(clock.now(), Ordering::Relaxed);
                if let Err(err) = socket.send_to(&buf[..n], client).await {
                    tracing::debug!(%err, %client, "udp reply");
                }
            }
            Ok(Err(err)) => {
                tracing::debug!(%err, %client, "udp endpoint");
                return session;
            }
            Err(_) => {} // re-check activity: the client may have sent meanwhile
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Affinity, ServiceRef};

    #[test]
    fn bind_failures_say_what_where_and_why() {
        let f = BindFailure {
            key: ListenerKey {
                ip: "127.0.0.1".parse().unwrap(),
                port: 80,
                protocol: Protocol::Tcp,
            },
            spec: ListenerSpec {
                service: ServiceRef {
                    namespace: "demo".into(),
                    name: "web".into(),
                    uid: None,
                },
                port_name: "http".into(),
                node_port: true,
                backends: Vec::new(),
                affinity: Affinity::None,
            },
            error: io::Error::from_raw_os_error(13),
        };
        assert_eq!(
            f.message(),
            "can't open \"nodePort for demo/web:http\" (127.0.0.1:80/tcp), skipping it: Permission denied (os error 13)"
        );
    }
}
