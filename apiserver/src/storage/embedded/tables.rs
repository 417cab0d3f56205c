//! The redb table layout of the embedded store, record encodings, and the read queries over them.
//!
//! Layout: `meta` holds the current and compaction revisions; `latest` maps each live key to its newest
//! value (serves reads at the head cheaply); `history` maps `(key, revision)` to the put or tombstone written
//! at that revision (serves reads at past revisions and the previous values of watch events); `log` maps
//! each revision to the key it touched (serves watches from a revision, in order).

use redb::{ReadableTable, TableDefinition};

use crate::storage::{Deleted, KeyValue, Revision, StorageError, WatchEvent};

/// Scalar bookkeeping: [`REVISION`] and [`COMPACTED`].
pub(super) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
/// Live keys → [`encode_latest`] records.
pub(super) const LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("latest");
/// `(key, revision)` → [`encode_history`] records (puts and tombstones).
pub(super) const HISTORY: TableDefinition<(&str, i64), &[u8]> = TableDefinition::new("history");
/// Revision → the key written at that revision.
pub(super) const LOG: TableDefinition<i64, &str> = TableDefinition::new("log");

/// `meta` key of the store's current revision.
pub(super) const REVISION: &str = "revision";
/// `meta` key of the compaction revision: the oldest revision still readable.
pub(super) const COMPACTED: &str = "compacted";

/// The revision of a fresh store, as in etcd: the first write is revision 2.
pub(super) const INITIAL_REVISION: Revision = 1;

const TAG_TOMBSTONE: u8 = 0;
const TAG_PUT: u8 = 1;

/// Wraps any backend failure.
pub(super) fn backend<E: std::error::Error + Send + Sync + 'static>(e: E) -> StorageError {
    StorageError::Backend(Box::new(e))
}

/// A backend failure described by a message.
pub(super) fn backend_msg(msg: impl Into<String>) -> StorageError {
    StorageError::Backend(msg.into().into())
}

fn corrupt(key: &str) -> StorageError {
    backend_msg(format!("embedded store: corrupt record for key {key}"))
}

fn read_i64(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// `latest` record: create revision, mod revision, value.
pub(super) fn encode_latest(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + kv.value.len());
    out.extend_from_slice(&kv.create_revision.to_le_bytes());
    out.extend_from_slice(&kv.mod_revision.to_le_bytes());
    out.extend_from_slice(&kv.value);
    out
}

/// Decodes a `latest` record of `key`.
pub(super) fn decode_latest(key: &str, bytes: &[u8]) -> Result<KeyValue, StorageError> {
    let (Some(create_revision), Some(mod_revision)) =
        (read_i64(bytes), bytes.get(8..).and_then(read_i64))
    else {
        return Err(corrupt(key));
    };
    Ok(KeyValue {
        key: key.to_owned(),
        value: bytes[16..].to_vec(),
        create_revision,
        mod_revision,
    })
}

/// `history` record of a put: tag, create revision, value.
pub(super) fn encode_put(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + kv.value.len());
    out.push(TAG_PUT);
    out.extend_from_slice(&kv.create_revision.to_le_bytes());
    out.extend_from_slice(&kv.value);
    out
}

/// `history` record of a delete.
pub(super) fn encode_tombstone() -> Vec<u8> {
    vec![TAG_TOMBSTONE]
}

/// Whether a `history` record is a put (rather than a tombstone).
pub(super) fn is_put(bytes: &[u8]) -> bool {
    bytes.first() == Some(&TAG_PUT)
}

/// Decodes a `history` record of `key` written at `revision`: `None` for a tombstone.
pub(super) fn decode_history(
    key: &str,
    revision: Revision,
    bytes: &[u8],
) -> Result<Option<KeyValue>, StorageError> {
    match bytes.first() {
        Some(&TAG_TOMBSTONE) => Ok(None),
        Some(&TAG_PUT) => {
            let create_revision = bytes
                .get(1..)
                .and_then(read_i64)
                .ok_or_else(|| corrupt(key))?;
            Ok(Some(KeyValue {
                key: key.to_owned(),
                value: bytes[9..].to_vec(),
                create_revision,
                mod_revision: revision,
            }))
        }
        _ => Err(corrupt(key)),
    }
}

/// Reads a `meta` scalar (0 when unset).
pub(super) fn meta(
    table: &impl ReadableTable<&'static str, i64>,
    name: &str,
) -> Result<i64, StorageError> {
    Ok(table
        .get(name)
        .map_err(backend)?
        .map(|v| v.value())
        .unwrap_or(0))
}

/// The value `key` held at `revision` (the newest history record at or before it), if it existed then.
pub(super) fn value_at(
    history: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    key: &str,
    revision: Revision,
) -> Result<Option<KeyValue>, StorageError> {
    let mut range = history.range((key, 0)..=(key, revision)).map_err(backend)?;
    match range.next_back() {
        Some(entry) => {
            let (k, v) = entry.map_err(backend)?;
            decode_history(key, k.value().1, v.value())
        }
        None => Ok(None),
    }
}

/// Where a range read begins: `start` when it lies after `prefix`, else `prefix` itself.
fn range_start<'a>(prefix: &'a str, start: Option<&'a str>) -> &'a str {
    match start {
        Some(s) if s > prefix => s,
        _ => prefix,
    }
}

/// Reads live keys under `prefix` from `start`, at most `limit` (0 = all); returns the page and `more`.
pub(super) fn list_latest(
    latest: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
    start: Option<&str>,
    limit: usize,
) -> Result<(Vec<KeyValue>, bool), StorageError> {
    let mut items = Vec::new();
    for entry in latest
        .range(range_start(prefix, start)..)
        .map_err(backend)?
    {
        let (k, v) = entry.map_err(backend)?;
        let key = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        if limit != 0 && items.len() == limit {
            return Ok((items, true));
        }
        items.push(decode_latest(key, v.value())?);
    }
    Ok((items, false))
}

/// Reads keys under `prefix` from `start` as they were at `revision`, at most `limit` (0 = all).
pub(super) fn list_at(
    history: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    prefix: &str,
    start: Option<&str>,
    limit: usize,
    revision: Revision,
) -> Result<(Vec<KeyValue>, bool), StorageError> {
    let mut items = Vec::new();
    // History is ordered by (key, revision): remember the newest record ≤ `revision` of the current key and
    // emit it when the key changes.
    let mut current: Option<(String, Revision, Vec<u8>)> = None;
    let from = range_start(prefix, start);
    for entry in history.range((from, 0)..).map_err(backend)? {
        let (k, v) = entry.map_err(backend)?;
        let (key, rev) = k.value();
        if !key.starts_with(prefix) {
            break;
        }
        if current.as_ref().is_some_and(|(cur, _, _)| cur != key)
            && flush(&mut current, &mut items, limit)?
        {
            return Ok((items, true));
        }
        if rev <= revision {
            current = Some((key.to_owned(), rev, v.value().to_vec()));
        }
    }
    let more = flush(&mut current, &mut items, limit)?;
    Ok((items, more))
}

/// Emits the remembered record of one key into a page; `Ok(true)` when it exists but the page is full.
fn flush(
    current: &mut Option<(String, Revision, Vec<u8>)>,
    items: &mut Vec<KeyValue>,
    limit: usize,
) -> Result<bool, StorageError> {
    if let Some((key, rev, bytes)) = current.take() {
        if let Some(kv) = decode_history(&key, rev, &bytes)? {
            if limit != 0 && items.len() == limit {
                return Ok(true);
            }
            items.push(kv);
        }
    }
    Ok(false)
}

/// The watch event committed at `revision` to `key`, rebuilt from history.
pub(super) fn event_at(
    history: &impl ReadableTable<(&'static str, i64), &'static [u8]>,
    key: &str,
    revision: Revision,
) -> Result<WatchEvent, StorageError> {
    let record = history
        .get((key, revision))
        .map_err(backend)?
        .ok_or_else(|| corrupt(key))?;
    let now = decode_history(key, revision, record.value())?;
    let prev = value_at(history, key, revision - 1)?;
    match now {
        Some(kv) => Ok(WatchEvent::Put { kv, prev }),
        None => Ok(WatchEvent::Delete(Deleted {
            revision,
            prev: prev.ok_or_else(|| corrupt(key))?,
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(value: &[u8]) -> KeyValue {
        KeyValue {
            key: "/k".into(),
            value: value.to_vec(),
            create_revision: 3,
            mod_revision: 7,
        }
    }

    #[test]
    fn latest_records_round_trip() {
        for value in [&b""[..], b"{\"a\":1}"] {
            let kv = sample(value);
            assert_eq!(decode_latest("/k", &encode_latest(&kv)).ok(), Some(kv));
        }
        assert!(decode_latest("/k", &[1, 2, 3]).is_err());
    }

    #[test]
    fn history_records_round_trip() {
        let kv = sample(b"v");
        assert_eq!(
            decode_history("/k", 7, &encode_put(&kv)).ok(),
            Some(Some(kv))
        );
        assert_eq!(
            decode_history("/k", 9, &encode_tombstone()).ok(),
            Some(None)
        );
        assert!(is_put(&encode_put(&sample(b""))) && !is_put(&encode_tombstone()));
        assert!(decode_history("/k", 7, &[]).is_err());
        assert!(decode_history("/k", 7, &[TAG_PUT, 1]).is_err());
    }

    #[test]
    fn range_start_never_precedes_the_prefix() {
        assert_eq!(range_start("/p/", None), "/p/");
        assert_eq!(range_start("/p/", Some("/a")), "/p/");
        assert_eq!(range_start("/p/", Some("/p/x")), "/p/x");
    }
}
