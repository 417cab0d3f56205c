//! The etcd v3 backend: compare-and-swap transactions on `mod_revision`, ranged reads at a revision, and
//! watches with previous values, mapping etcd's failures onto [`StorageError`].

mod watch;

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, GetOptions,
    KvClient, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse, WatchClient,
};

use super::{Deleted, KeyValue, ListResult, Result, Revision, Storage, StorageError, WatchStream};

/// Settings of the etcd backend.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Prepended to every key on the wire and stripped from keys read back (default empty).
    pub key_prefix: String,
    /// The largest gRPC message sent or received (default 256 MiB): etcd-client's 4 MiB default is too
    /// small for listing a large collection in one range.
    pub max_message_bytes: usize,
    /// How long connecting to the endpoints may take.
    pub connect_timeout: Duration,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        EtcdConfig {
            key_prefix: String::new(),
            max_message_bytes: 256 * 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A [`Storage`] on an etcd v3 cluster. Clones share the connection.
#[derive(Clone)]
pub struct EtcdStore {
    kv: KvClient,
    watch: WatchClient,
    key_prefix: String,
}

/// Wraps an etcd client failure.
fn backend(e: etcd_client::Error) -> StorageError {
    StorageError::Backend(Box::new(e))
}

fn backend_msg(msg: impl Into<String>) -> StorageError {
    StorageError::Backend(msg.into().into())
}

/// The end of the key range holding every key that starts with `prefix` (etcd's `GetPrefixRangeEnd`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff (or the prefix was empty): "\0" means "to the end of the keyspace".
    vec![0]
}

/// etcd's text for reads and compactions below the compaction revision.
fn is_compacted(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision has been compacted")
}

/// etcd's text for reads and compactions beyond the current revision.
fn is_future(e: &etcd_client::Error) -> bool {
    e.to_string()
        .contains("required revision is a future revision")
}

impl EtcdStore {
    /// Connects to `endpoints` (e.g. `http://127.0.0.1:2379`) and checks that the cluster answers.
    pub async fn connect(endpoints: &[String], config: EtcdConfig) -> Result<Self, StorageError> {
        let options = ConnectOptions::new().with_connect_timeout(config.connect_timeout);
        let client = tokio::time::timeout(
            config.connect_timeout,
            Client::connect(endpoints, Some(options)),
        )
        .await
        .map_err(|_| backend_msg(format!("connecting to etcd at {endpoints:?} timed out")))?
        .map_err(backend)?;
        let limit = config.max_message_bytes;
        let store = EtcdStore {
            kv: client
                .kv_client()
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            watch: client.watch_client().max_decoding_message_size(limit),
            key_prefix: config.key_prefix,
        };
        tokio::time::timeout(config.connect_timeout, store.current_revision())
            .await
            .map_err(|_| backend_msg(format!("etcd at {endpoints:?} did not answer")))??;
        Ok(store)
    }

    fn full(&self, key: &str) -> Vec<u8> {
        let mut full = Vec::with_capacity(self.key_prefix.len() + key.len());
        full.extend_from_slice(self.key_prefix.as_bytes());
        full.extend_from_slice(key.as_bytes());
        full
    }

    /// Converts an etcd key-value, stripping the key prefix.
    fn to_kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        let key = kv
            .key()
            .strip_prefix(self.key_prefix.as_bytes())
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or_else(|| {
                backend_msg(format!("etcd returned an unexpected key {:?}", kv.key()))
            })?;
        Ok(KeyValue {
            key: key.to_owned(),
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// Maps an etcd failure of an operation at `requested`.
    async fn classify(&self, e: etcd_client::Error, requested: Revision) -> StorageError {
        if is_compacted(&e) {
            let compacted = self.compacted_revision(requested).await;
            StorageError::Compacted {
                requested,
                compacted,
            }
        } else if is_future(&e) {
            match self.current_revision().await {
                Ok(current) => StorageError::FutureRevision { requested, current },
                Err(_) => backend(e),
            }
        } else {
            backend(e)
        }
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.kv.clone().txn(txn).await.map_err(backend)
    }

    /// The key as read in a failed transaction's `get` branch.
    fn failed_get(&self, resp: &TxnResponse) -> Result<Option<KeyValue>> {
        for op in resp.op_responses() {
            if let TxnOpResponse::Get(get) = op {
                return get.kvs().first().map(|kv| self.to_kv(kv)).transpose();
            }
        }
        Err(backend_msg("etcd transaction returned no read"))
    }
}

fn header_revision(resp: &TxnResponse) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| backend_msg("etcd response without header"))
}

/// Why a guarded write of `key` failed, from the current value read in the same transaction.
fn refusal(key: &str, expected: Revision, current: Option<KeyValue>) -> StorageError {
    match current {
        None => StorageError::NotFound(key.to_owned()),
        Some(kv) => StorageError::Conflict {
            key: key.to_owned(),
            expected,
            actual: kv.mod_revision,
        },
    }
}

#[async_trait]
impl Storage for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let resp = self
            .kv
            .clone()
            .get(self.full(key), None)
            .await
            .map_err(backend)?;
        resp.kvs().first().map(|kv| self.to_kv(kv)).transpose()
    }

    async fn list(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
        revision: Revision,
    ) -> Result<ListResult> {
        let from = match start {
            Some(s) if s > prefix => s,
            _ => prefix,
        };
        let options = GetOptions::new()
            .with_range(prefix_end(&self.full(prefix)))
            .with_limit(i64::try_from(limit).unwrap_or(i64::MAX))
            .with_revision(revision);
        let resp = match self.kv.clone().get(self.full(from), Some(options)).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.classify(e, revision).await),
        };
        let items = resp
            .kvs()
            .iter()
            .map(|kv| self.to_kv(kv))
            .collect::<Result<Vec<_>>>()?;
        let served = match revision {
            0 => resp
                .header()
                .map(|h| h.revision())
                .ok_or_else(|| backend_msg("etcd response without header"))?,
            r => r,
        };
        Ok(ListResult {
            items,
            revision: served,
            more: resp.more(),
        })
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let full = self.full(key);
        let txn = Txn::new()
            .when([Compare::mod_revision(full.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(full.clone(), value.clone(), None)])
            .or_else([TxnOp::get(full, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists(key.to_owned()));
        }
        let rev = header_revision(&resp)?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: rev,
            mod_revision: rev,
        })
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        let full = self.full(key);
        // `version > 0` keeps an update with `expected == 0` from creating a missing key.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(full.clone(), CompareOp::Equal, expected),
                Compare::version(full.clone(), CompareOp::Greater, 0),
            ])
            .and_then([TxnOp::put(
                full.clone(),
                value.clone(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            return Err(refusal(key, expected, self.failed_get(&resp)?));
        }
        let rev = header_revision(&resp)?;
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Put(put) => put.prev_key().map(|kv| kv.create_revision()),
            _ => None,
        });
        let create_revision =
            prev.ok_or_else(|| backend_msg("etcd put returned no previous value"))?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: rev,
        })
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted> {
        let full = self.full(key);
        let mut guards = vec![Compare::version(full.clone(), CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            guards.push(Compare::mod_revision(
                full.clone(),
                CompareOp::Equal,
                expected,
            ));
        }
        let txn = Txn::new()
            .when(guards)
            .and_then([TxnOp::delete(
                full.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(full, None)]);
        let resp = self.txn(txn).await?;
        if !resp.succeeded() {
            let current = self.failed_get(&resp)?;
            return Err(refusal(key, expected.unwrap_or_default(), current));
        }
        let revision = header_revision(&resp)?;
        let prev = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(del) => del.prev_kvs().first().cloned(),
            _ => None,
        });
        let prev = prev.ok_or_else(|| backend_msg("etcd delete returned no previous value"))?;
        Ok(Deleted {
            revision,
            prev: self.to_kv(&prev)?,
        })
    }

    async fn current_revision(&self) -> Result<Revision> {
        let options = GetOptions::new().with_count_only();
        let resp = self
            .kv
            .clone()
            .get(vec![0u8], Some(options))
            .await
            .map_err(backend)?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| backend_msg("etcd response without header"))
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        self.watch_prefix(prefix, after).await
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        // Physical: return only once the history is really gone, so later reads see the compaction.
        let options = CompactionOptions::new().with_physical();
        match self.kv.clone().compact(revision, Some(options)).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.classify(e, revision).await),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_end(b""), vec![0]);
    }
}
