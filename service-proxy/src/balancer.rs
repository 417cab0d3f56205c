//! Choosing a backend for a new connection, free of I/O: round-robin over the ready endpoints, an
//! order of fallbacks for endpoints that refuse, and ClientIP session affinity that expires after a
//! client has been idle. Time is passed in, so tests never sleep.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::table::Affinity;

/// At most this many endpoints are tried for one connection before it is dropped.
pub const MAX_ATTEMPTS: usize = 8;

/// Affinity entries kept before expired ones are swept.
const SWEEP_AT: usize = 1024;

#[derive(Debug, Clone, Copy)]
struct Sticky {
    backend: SocketAddr,
    last_used: Instant,
}

/// The balancing state of one listener.
#[derive(Debug)]
pub struct Balancer {
    backends: Vec<SocketAddr>,
    next: usize,
    affinity: Affinity,
    sticky: HashMap<IpAddr, Sticky>,
}

impl Balancer {
    /// A balancer over `backends` with `affinity`.
    pub fn new(backends: Vec<SocketAddr>, affinity: Affinity) -> Balancer {
        Balancer {
            backends,
            next: 0,
            affinity,
            sticky: HashMap::new(),
        }
    }

    /// The current backends.
    pub fn backends(&self) -> &[SocketAddr] {
        &self.backends
    }

    /// Replaces the backends and affinity. Clients stuck to a backend that is gone start over; the
    /// round-robin position is kept (modulo the new length).
    pub fn update(&mut self, backends: Vec<SocketAddr>, affinity: Affinity) {
        if affinity != self.affinity {
            self.sticky.clear();
        }
        self.sticky.retain(|_, s| backends.contains(&s.backend));
        self.next = if backends.is_empty() {
            0
        } else {
            self.next % backends.len()
        };
        self.backends = backends;
        self.affinity = affinity;
    }

    /// The endpoints to try, in order, for a new connection from `client` at `now`: the client's
    /// affine endpoint first when it has a live one, then the round-robin order (each endpoint once,
    /// at most [`MAX_ATTEMPTS`]). Empty when there are no endpoints.
    pub fn pick(&mut self, client: IpAddr, now: Instant) -> Vec<SocketAddr> {
        let n = self.backends.len();
        if n == 0 {
            return Vec::new();
        }
        let mut order = Vec::with_capacity(n.min(MAX_ATTEMPTS));
        if let Some(b) = self.affine(client, now) {
            order.push(b);
        }
        let start = self.next % n;
        if order.is_empty() {
            self.next = (start + 1) % n;
        }
        for i in 0..n {
            if order.len() >= MAX_ATTEMPTS {
                break;
            }
            let b = self.backends[(start + i) % n];
            if !order.contains(&b) {
                order.push(b);
            }
        }
        order
    }

    /// Records that `client` reached `backend` at `now` (the affinity for its next connections).
    pub fn connected(&mut self, client: IpAddr, backend: SocketAddr, now: Instant) {
        let Affinity::ClientIp { timeout } = self.affinity else {
            return;
        };
        if self.sticky.len() >= SWEEP_AT {
            self.sticky
                .retain(|_, s| now.saturating_duration_since(s.last_used) < timeout);
        }
        self.sticky.insert(
            client,
            Sticky {
                backend,
                last_used: now,
            },
        );
    }

    /// Clients with an affinity entry (expired or not): bounded by the sweep.
    pub fn affinity_entries(&self) -> usize {
        self.sticky.len()
    }

    fn affine(&mut self, client: IpAddr, now: Instant) -> Option<SocketAddr> {
        let Affinity::ClientIp { timeout } = self.affinity else {
            return None;
        };
        let s = self.sticky.get(&client)?;
        if now.saturating_duration_since(s.last_used) >= timeout {
            self.sticky.remove(&client);
            return None;
        }
        Some(s.backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }

    fn client(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn round_robin_visits_every_backend_in_turn_with_the_rest_as_fallbacks() {
        let mut b = Balancer::new(addrs(&[1, 2, 3]), Affinity::None);
        let now = Instant::now();
        assert_eq!(b.pick(client(1), now), addrs(&[1, 2, 3]));
        assert_eq!(b.pick(client(1), now), addrs(&[2, 3, 1]));
        assert_eq!(b.pick(client(2), now), addrs(&[3, 1, 2]));
        assert_eq!(b.pick(client(1), now), addrs(&[1, 2, 3]));
    }

    #[test]
    fn no_backends_means_nothing_to_try() {
        let mut b = Balancer::new(Vec::new(), Affinity::None);
        assert!(b.pick(client(1), Instant::now()).is_empty());
    }

    #[test]
    fn attempts_are_bounded() {
        let ports: Vec<u16> = (1..=20).collect();
        let mut b = Balancer::new(addrs(&ports), Affinity::None);
        assert_eq!(b.pick(client(1), Instant::now()).len(), MAX_ATTEMPTS);
    }

    #[test]
    fn update_keeps_position_and_shrinks_to_the_remaining_backend() {
        let mut b = Balancer::new(addrs(&[1, 2, 3]), Affinity::None);
        let now = Instant::now();
        b.pick(client(1), now);
        b.pick(client(1), now);
        b.update(addrs(&[1, 2, 3, 4]), Affinity::None);
        assert_eq!(b.pick(client(1), now)[0], addrs(&[3])[0]);
        b.update(addrs(&[4]), Affinity::None);
        for _ in 0..5 {
            assert_eq!(b.pick(client(1), now), addrs(&[4]));
        }
        b.update(Vec::new(), Affinity::None);
        assert!(b.pick(client(1), now).is_empty());
    }

    #[test]
    fn client_ip_affinity_sticks_until_idle_for_the_timeout() {
        let affinity = Affinity::ClientIp {
            timeout: Duration::from_secs(60),
        };
        let mut b = Balancer::new(addrs(&[1, 2, 3]), affinity);
        let t0 = Instant::now();
        let first = b.pick(client(1), t0)[0];
        b.connected(client(1), first, t0);
        // Other clients still rotate; client 1 keeps its backend, each use renewing it.
        let other = b.pick(client(2), t0)[0];
        assert_ne!(other, first);
        for i in 1..=5 {
            let now = t0 + Duration::from_secs(50 * i);
            let order = b.pick(client(1), now);
            assert_eq!(order[0], first);
            assert_eq!(order.len(), 3, "the others remain fallbacks");
            b.connected(client(1), order[0], now);
        }
        // Idle for the timeout: balanced again.
        let later = t0 + Duration::from_secs(250 + 60);
        let order = b.pick(client(1), later);
        assert_eq!(order.len(), 3);
        assert_eq!(b.affinity_entries(), 0);
    }

    #[test]
    fn affinity_to_a_removed_backend_or_after_affinity_is_turned_off_is_forgotten() {
        let affinity = Affinity::ClientIp {
            timeout: Duration::from_secs(60),
        };
        let mut b = Balancer::new(addrs(&[1, 2]), affinity);
        let now = Instant::now();
        b.connected(client(1), addrs(&[2])[0], now);
        b.update(addrs(&[1, 3]), affinity);
        assert_eq!(b.affinity_entries(), 0);
        b.connected(client(1), addrs(&[3])[0], now);
        assert_eq!(b.pick(client(1), now)[0], addrs(&[3])[0]);
        b.update(addrs(&[1, 3]), Affinity::None);
        assert_eq!(b.affinity_entries(), 0);
        b.connected(client(1), addrs(&[3])[0], now);
        assert_eq!(b.affinity_entries(), 0, "no affinity, nothing recorded");
    }

    #[test]
    fn the_affinity_map_is_swept_of_expired_clients() {
        let affinity = Affinity::ClientIp {
            timeout: Duration::from_secs(1),
        };
        let mut b = Balancer::new(addrs(&[1]), affinity);
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            let ip = IpAddr::from([10, 0, (i / 256) as u8, (i % 256) as u8]);
            b.connected(ip, addrs(&[1])[0], t0);
        }
        b.connected(client(1), addrs(&[1])[0], t0 + Duration::from_secs(2));
        assert_eq!(b.affinity_entries(), 1);
    }
}
