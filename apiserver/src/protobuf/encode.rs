//! Test-only protobuf writer for hand-built request bodies.

/// A message under construction; fields are appended in call order.
#[derive(Debug, Clone, Default)]
pub struct Msg(pub Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Msg {
    /// An empty message.
    pub fn new() -> Self {
        Msg::default()
    }

    fn tag(mut self, number: u32, wire_type: u8) -> Self {
        varint(&mut self.0, (u64::from(number) << 3) | u64::from(wire_type));
        self
    }

    /// A varint field (negative numbers as 10-byte two's complement, like Go).
    pub fn int(self, number: u32, v: i64) -> Self {
        let mut m = self.tag(number, 0);
        varint(&mut m.0, v as u64);
        m
    }

    /// A length-delimited field.
    pub fn bytes(self, number: u32, b: &[u8]) -> Self {
        let mut m = self.tag(number, 2);
        varint(&mut m.0, b.len() as u64);
        m.0.extend_from_slice(b);
        m
    }

    /// A string field.
    pub fn str(self, number: u32, s: &str) -> Self {
        self.bytes(number, s.as_bytes())
    }

    /// An embedded message field.
    pub fn msg(self, number: u32, m: Msg) -> Self {
        self.bytes(number, &m.0)
    }

    /// One `map<string,string>` entry.
    pub fn entry(self, number: u32, key: &str, value: &str) -> Self {
        self.msg(number, Msg::new().str(1, key).str(2, value))
    }

    /// The full request body: magic plus `runtime.Unknown` around `raw`.
    pub fn body(api_version: &str, kind: &str, raw: Msg) -> Vec<u8> {
        let type_meta = Msg::new().str(1, api_version).str(2, kind);
        let unknown = Msg::new().msg(1, type_meta).msg(2, raw);
        [&super::MAGIC[..], &unknown.0].concat()
    }
}
