//! A minimal DNS client for end-to-end tests of the cluster DNS: one question over UDP or TCP with
//! `hickory-proto` messages, and the answers' A and SRV records.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};

/// A loopback address whose port is free for both UDP and TCP.
pub fn free_dns_address() -> SocketAddr {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket");
        let addr = udp.local_addr().expect("local address");
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// A recursive question for `name` of type `rtype` with a fresh id.
pub fn request(name: &str, rtype: RecordType) -> Message {
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
pub fn udp_query(server: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
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
pub fn tcp_query(server: SocketAddr, name: &str, rtype: RecordType) -> Option<Message> {
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

/// The addresses of the A answers.
pub fn a_records(m: &Message) -> BTreeSet<Ipv4Addr> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

/// `(target, port)` of the SRV answers.
pub fn srv_records(m: &Message) -> BTreeSet<(String, u16)> {
    m.answers()
        .iter()
        .filter_map(|r| match r.data() {
            RData::SRV(s) => Some((s.target().to_ascii(), s.port())),
            _ => None,
        })
        .collect()
}
