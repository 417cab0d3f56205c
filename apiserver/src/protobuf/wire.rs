//! A minimal protobuf wire-format reader: tags, varints, fixed-width and length-delimited fields.

/// A malformed protobuf message (the decoder turns it into a 400 BadRequest).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input ended in the middle of a tag or value.
    #[error("unexpected EOF")]
    UnexpectedEof,
    /// A varint longer than 10 bytes.
    #[error("proto: integer overflow")]
    Overflow,
    /// A wire type that is not 0, 1, 2 or 5 (groups are not used by Kubernetes).
    #[error("proto: illegal wireType {0}")]
    IllegalWireType(u8),
    /// Field number 0, which protobuf reserves.
    #[error("proto: illegal tag 0")]
    IllegalTag,
}

/// One field value as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireValue<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (little-endian 8 bytes).
    Fixed64(u64),
    /// Wire type 2 (strings, bytes, embedded messages, packed repeated scalars).
    Bytes(&'a [u8]),
    /// Wire type 5 (little-endian 4 bytes).
    Fixed32(u32),
}

impl WireValue<'_> {
    /// The wire type number, for error messages.
    pub fn wire_type(&self) -> u8 {
        match self {
            WireValue::Varint(_) => 0,
            WireValue::Fixed64(_) => 1,
            WireValue::Bytes(_) => 2,
            WireValue::Fixed32(_) => 5,
        }
    }
}

/// Reads a base-128 varint from the front of `buf`, advancing it.
pub fn read_varint(buf: &mut &[u8]) -> Result<u64, WireError> {
    let mut value: u64 = 0;
    for i in 0..10 {
        let (&byte, rest) = buf.split_first().ok_or(WireError::UnexpectedEof)?;
        *buf = rest;
        // The 10th byte may only contribute the top bit of a u64.
        if i == 9 && byte > 1 {
            return Err(WireError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError::Overflow)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], WireError> {
    if buf.len() < n {
        return Err(WireError::UnexpectedEof);
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// Iterates over the `(field number, value)` pairs of one message; stops at the first error.
pub struct Fields<'a> {
    buf: &'a [u8],
    failed: bool,
}

impl<'a> Fields<'a> {
    /// Starts reading the fields of the message encoded in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Fields { buf, failed: false }
    }

    fn read_one(&mut self) -> Result<(u32, WireValue<'a>), WireError> {
        let tag = read_varint(&mut self.buf)?;
        let number = u32::try_from(tag >> 3).map_err(|_| WireError::Overflow)?;
        if number == 0 {
            return Err(WireError::IllegalTag);
        }
        let value = match tag & 7 {
            0 => WireValue::Varint(read_varint(&mut self.buf)?),
            1 => {
                let bytes = take(&mut self.buf, 8)?;
                let mut raw = [0u8; 8];
                raw.copy_from_slice(bytes);
                WireValue::Fixed64(u64::from_le_bytes(raw))
            }
            2 => {
                let len = read_varint(&mut self.buf)?;
                let len = usize::try_from(len).map_err(|_| WireError::UnexpectedEof)?;
                WireValue::Bytes(take(&mut self.buf, len)?)
            }
            5 => {
                let bytes = take(&mut self.buf, 4)?;
                let mut raw = [0u8; 4];
                raw.copy_from_slice(bytes);
                WireValue::Fixed32(u32::from_le_bytes(raw))
            }
            other => return Err(WireError::IllegalWireType(other as u8)),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, WireValue<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        let item = self.read_one();
        self.failed = item.is_err();
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        assert_eq!(read_varint(&mut &[0x96, 0x01][..]), Ok(150));
        assert_eq!(read_varint(&mut &[0x80][..]), Err(WireError::UnexpectedEof));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read_varint(&mut &max[..]), Ok(u64::MAX));
        let long = [0xff; 11];
        assert_eq!(read_varint(&mut &long[..]), Err(WireError::Overflow));
    }

    #[test]
    fn fields_and_errors() {
        // field 1 varint 8, field 2 bytes "hi", field 3 fixed32, field 4 fixed64
        let msg = [
            0x08, 0x08, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0, 0,
        ];
        let fields: Vec<_> = Fields::new(&msg)
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        assert_eq!(
            fields,
            vec![
                (1, WireValue::Varint(8)),
                (2, WireValue::Bytes(b"hi")),
                (3, WireValue::Fixed32(1)),
                (4, WireValue::Fixed64(2)),
            ]
        );
        let bad: Vec<_> = Fields::new(&[0x0b]).collect();
        assert_eq!(bad, vec![Err(WireError::IllegalWireType(3))]);
        let short: Vec<_> = Fields::new(&[0x12, 0x05, b'a']).collect();
        assert_eq!(short, vec![Err(WireError::UnexpectedEof)]);
        let zero: Vec<_> = Fields::new(&[0x00, 0x00]).collect();
        assert_eq!(zero, vec![Err(WireError::IllegalTag)]);
    }
}
