//! DNS messages in, DNS messages out: one request (wire bytes) answered from a [`Table`]. Pure.
//!
//! Authoritative answers for the cluster zone (NXDOMAIN for unknown names), REFUSED for every other
//! name (there is no upstream resolver here), FORMERR for undecodable or multi-question requests,
//! NOTIMP for other opcodes. UDP answers larger than the client's limit (512 bytes, or its EDNS payload
//! size) come back truncated, so the client retries over TCP.

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, PTR, SRV, TXT};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::table::{Data, Kind, Lookup, Table};

/// Seconds clients may cache an answer: short, since services and endpoints change.
pub const TTL: u32 = 5;

/// The largest UDP answer to a client that did not say (RFC 1035).
const CLASSIC_UDP: usize = 512;

/// How the request arrived (bounds the answer's size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram.
    Udp,
    /// Length-prefixed over a stream.
    Tcp,
}

fn kind_of(t: RecordType) -> Kind {
    match t {
        RecordType::A => Kind::A,
        RecordType::SRV => Kind::Srv,
        RecordType::CNAME => Kind::Cname,
        RecordType::TXT => Kind::Txt,
        RecordType::PTR => Kind::Ptr,
        RecordType::ANY => Kind::Any,
        _ => Kind::Other,
    }
}

fn name(text: &str) -> Option<Name> {
    Name::from_ascii(format!("{text}.")).ok()
}

fn rdata(data: &Data) -> Option<RData> {
    Some(match data {
        Data::A(ip) => RData::A(A(*ip)),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, name(target)?)),
        Data::Cname(target) => RData::CNAME(CNAME(name(target)?)),
        Data::Txt(text) => RData::TXT(TXT::new(vec![text.clone()])),
        Data::Ptr(target) => RData::PTR(PTR(name(target)?)),
    })
}

/// A response to `request` with the header fields a reply echoes.
fn reply_to(request: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(false)
        .set_response_code(code);
    reply.add_queries(request.queries().iter().cloned());
    reply
}

/// The FORMERR answer to bytes that do not decode (only the id is echoed); `None` when not even a
/// header is there.
fn format_error(request: &[u8]) -> Option<Vec<u8>> {
    if request.len() < 12 {
        return None;
    }
    let id = u16::from_be_bytes([request[0], request[1]]);
    Message::error_msg(id, OpCode::Query, ResponseCode::FormErr)
        .to_vec()
        .ok()
}

/// Answers one request; `None` when nothing should be sent back (a response, or garbage).
pub fn respond(table: &Table, request: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let Ok(request) = Message::from_vec(request) else {
        return format_error(request);
    };
    if request.message_type() != MessageType::Query {
        return None;
    }
    let mut reply = answer(table, &request);
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => request
            .extensions()
            .as_ref()
            .map(|e| usize::from(e.max_payload()).max(CLASSIC_UDP))
            .unwrap_or(CLASSIC_UDP),
    };
    if let Some(edns) = request.extensions() {
        let mut ours = Edns::new();
        ours.set_max_payload(edns.max_payload().max(CLASSIC_UDP as u16));
        reply.set_edns(ours);
    }
    let bytes = reply.to_vec().ok()?;
    if bytes.len() <= limit {
        return Some(bytes);
    }
    // Too big for the datagram: the header and question only, truncated.
    reply.take_answers();
    reply.take_additionals();
    reply.set_truncated(true);
    reply.to_vec().ok()
}

/// The response message to a decoded query.
pub fn answer(table: &Table, request: &Message) -> Message {
    if request.op_code() != OpCode::Query {
        return reply_to(request, ResponseCode::NotImp);
    }
    let [query] = request.queries() else {
        return reply_to(request, ResponseCode::FormErr);
    };
    if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
        return reply_to(request, ResponseCode::Refused);
    }
    let asked = query.name().to_ascii();
    let lookup = table.lookup(&asked, kind_of(query.query_type()));
    let code = match &lookup {
        Lookup::Found(_) | Lookup::NoData => ResponseCode::NoError,
        Lookup::NxDomain => ResponseCode::NXDomain,
        Lookup::NotOurs => ResponseCode::Refused,
    };
    let mut reply = reply_to(request, code);
    reply.set_authoritative(!matches!(lookup, Lookup::NotOurs));
    let Lookup::Found(records) = lookup else {
        return reply;
    };
    // Answers carry the question's own spelling of the name (clients may randomize its case).
    let owner = query.name().clone();
    let mut extra: Vec<(String, Ipv4Addr)> = Vec::new();
    for data in &records {
        if let Data::Srv { target, .. } = data {
            for ip in table.addresses(target) {
                extra.push((target.clone(), ip));
            }
        }
        if let Some(rdata) = rdata(data) {
            reply.add_answer(Record::from_rdata(owner.clone(), TTL, rdata));
        }
    }
    extra.sort();
    extra.dedup();
    for (target, ip) in extra {
        if let Some(target) = name(&target) {
            reply.add_additional(Record::from_rdata(target, TTL, RData::A(A(ip))));
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;

    fn table() -> Table {
        let mut services = Vec::new();
        for i in 0..40 {
            let svc: Service = serde_json::from_value(json!({
                "metadata": {"name": format!("s{i}"), "namespace": "default"},
                "spec": {"clusterIP": format!("127.96.1.{i}"), "ports": [{"name": "http", "port": 80}]}}))
            .unwrap();
            services.push(svc);
        }
        Table::build("cluster.local", &services, &[])
    }

    fn ask(name: &str, t: RecordType) -> Message {
        let mut m = Message::new();
        m.set_id(4242).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        m
    }

    fn roundtrip(table: &Table, req: &Message, transport: Transport) -> Message {
        let bytes = respond(table, &req.to_vec().unwrap(), transport).unwrap();
        Message::from_vec(&bytes).unwrap()
    }

    #[test]
    fn answers_are_authoritative_and_echo_the_question() {
        let t = table();
        let r = roundtrip(
            &t,
            &ask("S3.default.svc.cluster.local.", RecordType::A),
            Transport::Udp,
        );
        assert_eq!(r.id(), 4242);
        assert_eq!(r.message_type(), MessageType::Response);
        assert!(r.authoritative() && r.recursion_desired() && !r.recursion_available());
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(r.answers().len(), 1);
        assert_eq!(
            r.answers()[0].name().to_ascii(),
            "S3.default.svc.cluster.local."
        );
        assert_eq!(r.answers()[0].ttl(), TTL);
        assert_eq!(
            r.answers()[0].data(),
            &RData::A(A(Ipv4Addr::new(127, 96, 1, 3)))
        );
    }

    #[test]
    fn srv_answers_carry_the_target_address() {
        let t = table();
        let r = roundtrip(
            &t,
            &ask("_http._tcp.s1.default.svc.cluster.local.", RecordType::SRV),
            Transport::Udp,
        );
        let RData::SRV(srv) = r.answers()[0].data() else {
            panic!("{r:?}");
        };
        assert_eq!(srv.port(), 80);
        assert_eq!(srv.target().to_ascii(), "s1.default.svc.cluster.local.");
        assert_eq!(r.additionals().len(), 1);
    }

    #[test]
    fn unknown_outside_and_malformed() {
        let t = table();
        let nx = roundtrip(
            &t,
            &ask("nope.default.svc.cluster.local.", RecordType::A),
            Transport::Udp,
        );
        assert_eq!(nx.response_code(), ResponseCode::NXDomain);
        assert!(nx.answers().is_empty() && nx.authoritative());
        let nodata = roundtrip(
            &t,
            &ask("s1.default.svc.cluster.local.", RecordType::AAAA),
            Transport::Udp,
        );
        assert_eq!(nodata.response_code(), ResponseCode::NoError);
        assert!(nodata.answers().is_empty());
        let out = roundtrip(&t, &ask("example.com.", RecordType::A), Transport::Udp);
        assert_eq!(out.response_code(), ResponseCode::Refused);
        assert!(!out.authoritative());
        let mut two = ask("a.cluster.local.", RecordType::A);
        two.add_query(Query::query(
            Name::from_ascii("b.cluster.local.").unwrap(),
            RecordType::A,
        ));
        assert_eq!(
            roundtrip(&t, &two, Transport::Udp).response_code(),
            ResponseCode::FormErr
        );
        let mut update = ask("a.cluster.local.", RecordType::A);
        update.set_op_code(OpCode::Update);
        assert_eq!(
            roundtrip(&t, &update, Transport::Udp).response_code(),
            ResponseCode::NotImp
        );
        let garbage = [0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xff];
        let formerr = Message::from_vec(&respond(&t, &garbage, Transport::Udp).unwrap()).unwrap();
        assert_eq!(
            (formerr.id(), formerr.response_code()),
            (0x1234, ResponseCode::FormErr)
        );
        assert_eq!(respond(&t, &[1, 2, 3], Transport::Udp), None);
        // Responses are never answered (no loops between two servers).
        let mut response = ask("a.cluster.local.", RecordType::A);
        response.set_message_type(MessageType::Response);
        assert_eq!(
            respond(&t, &response.to_vec().unwrap(), Transport::Udp),
            None
        );
    }

    #[test]
    fn big_udp_answers_are_truncated_but_not_over_tcp() {
        let services: Vec<Service> = (0..60)
            .map(|i| {
                serde_json::from_value(json!({
                    "metadata": {"name": "big", "namespace": format!("n{i}")},
                    "spec": {"clusterIP": "None"}}))
                .unwrap()
            })
            .collect();
        let endpoints: Vec<k8s_openapi::api::core::v1::Endpoints> = vec![serde_json::from_value(json!({
            "metadata": {"name": "big", "namespace": "n0"},
            "subsets": [{"addresses": (0..100).map(|i| json!({"ip": format!("10.0.0.{i}")})).collect::<Vec<_>>()}]}))
        .unwrap()];
        let t = Table::build("cluster.local", &services, &endpoints);
        let q = ask("big.n0.svc.cluster.local.", RecordType::A);
        let udp = roundtrip(&t, &q, Transport::Udp);
        assert!(udp.truncated() && udp.answers().is_empty());
        let tcp = roundtrip(&t, &q, Transport::Tcp);
        assert!(!tcp.truncated());
        assert_eq!(tcp.answers().len(), 100);
    }
}
