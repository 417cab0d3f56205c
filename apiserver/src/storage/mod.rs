//! The key-value contract every storage backend satisfies (etcd semantics), and its backends.
//!
//! One global, monotonically increasing revision; every write bumps it; an object's resourceVersion is its
//! `mod_revision`. Writes are compare-and-swap on revision. Watches replay history from any retained
//! revision, in order, without gaps or duplicates; older revisions answer [`StorageError::Compacted`].

pub mod embedded;
pub mod etcd;

use async_trait::async_trait;
use futures::stream::BoxStream;

/// A store revision (etcd's `int64` revision).
pub type Revision = i64;

/// One stored key and its value at some revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The full key, e.g. `/registry/pods/default/web`.
    pub key: String,
    /// The serialized object (JSON bytes).
    pub value: Vec<u8>,
    /// The revision at which the key was created (since its last deletion).
    pub create_revision: Revision,
    /// The revision of the last write to the key.
    pub mod_revision: Revision,
}

/// One page of a range read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListResult {
    /// The matching keys in ascending key order.
    pub items: Vec<KeyValue>,
    /// The revision the read was served at.
    pub revision: Revision,
    /// Whether more keys matched than `limit` allowed.
    pub more: bool,
}

/// A deleted key: the revision of the deletion and the last value it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The revision the delete was committed at.
    pub revision: Revision,
    /// The key and value just before deletion.
    pub prev: KeyValue,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A create (`prev` is `None`) or update of a key.
    Put {
        /// The key after the write; `kv.mod_revision` is the event revision.
        kv: KeyValue,
        /// The value before the write, when there was one.
        prev: Option<KeyValue>,
    },
    /// A delete.
    Delete(Deleted),
}

impl WatchEvent {
    /// The revision at which this change was committed.
    pub fn revision(&self) -> Revision {
        match self {
            WatchEvent::Put { kv, .. } => kv.mod_revision,
            WatchEvent::Delete(d) => d.revision,
        }
    }

    /// The key this change touched.
    pub fn key(&self) -> &str {
        match self {
            WatchEvent::Put { kv, .. } => &kv.key,
            WatchEvent::Delete(d) => &d.prev.key,
        }
    }
}

/// A stream of changes, in revision order.
pub type WatchStream = BoxStream<'static, Result<WatchEvent, StorageError>>;

/// Errors of the storage contract.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A create found the key already present.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// An update or delete found no such key.
    #[error("key {0} not found")]
    NotFound(String),
    /// A compare-and-swap found a different revision than expected.
    #[error("key {key}: expected revision {expected}, found {actual}")]
    Conflict {
        /// The key written.
        key: String,
        /// The revision the caller expected.
        expected: Revision,
        /// The revision actually stored.
        actual: Revision,
    },
    /// The requested revision is older than the oldest retained one.
    #[error("required revision {requested} has been compacted (oldest retained is {compacted})")]
    Compacted {
        /// The revision asked for.
        requested: Revision,
        /// The compaction revision: the oldest revision still served.
        compacted: Revision,
    },
    /// The requested revision has not happened yet.
    #[error("required revision {requested} is a future revision (current is {current})")]
    FutureRevision {
        /// The revision asked for.
        requested: Revision,
        /// The store's current revision.
        current: Revision,
    },
    /// The backend failed (I/O, network, corruption).
    #[error("storage backend error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for storage operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The contract both backends satisfy; one suite (`tests/storage_contract.rs`) checks it against each.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads one key at the latest revision.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Reads keys starting with `prefix`, in key order, beginning at `start` (inclusive) when given, at most
    /// `limit` of them (0 = no limit), at `revision` (0 = the latest; a compacted revision is an error).
    async fn list(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
        revision: Revision,
    ) -> Result<ListResult>;

    /// Creates a key that must not exist.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Replaces a key whose `mod_revision` must equal `expected`.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue>;

    /// Deletes a key; when `expected` is given its `mod_revision` must equal it.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Deleted>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Streams every change to keys under `prefix` with a revision greater than `after`, then live changes.
    /// An `after` older than the compaction revision fails with [`StorageError::Compacted`].
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// Discards history before `revision`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}
