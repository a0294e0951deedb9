//! The store: one ordered key-value space with atomic writes, on sled (embedded, the default)
//! or PostgreSQL (shared by several gateways). Callers see one interface; the backends differ
//! only in where the bytes go.
//!
//! Invariants:
//! - Every write goes through [`Store::write`]: one writer at a time (a mutex on sled; a row lock
//!   on PostgreSQL, which also holds across gateway processes), and everything a write stages is
//!   applied at once, so a crash leaves each write whole or absent.
//! - Nothing is acknowledged before it is durable: a write returns a [`Ticket`], and
//!   [`Store::durable`] waits until it is on disk. On sled a write is staged in memory and one
//!   apply thread puts everything staged into sled as one batch and flushes it (group commit,
//!   `applier.rs`); reads see staged writes as soon as they are staged, as they would see a
//!   write applied but not yet flushed. On PostgreSQL the commit is the flush.
//! - Readers of the inbox see only durable events (`durable_seq`), so no party acts on an event
//!   that a crash could take back.
//! - Sequence numbers come from one counter, stored in the same write that uses them; they order
//!   inbox events and audit entries. On PostgreSQL the counter is read under the writer's lock,
//!   so two gateways never hand out the same number.
//! - Keys start with an ASCII prefix (`ref/`, `audit/`, ...); prefix ranges rely on it.

mod applier;
pub mod audit;
pub mod backup;
pub mod keys;
mod postgres;
mod sled_store;

use crate::secret::Secret;
use applier::Durable;
use audit::{AuditHead, AuditRecord, GENESIS};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use tokio::sync::watch;

/// The one sled tree everything lives in.
pub const TREE: &str = "raccordo-v1";

/// The default sled cache for stores opened outside the gateway (commands, benches).
const DEFAULT_SLED_CACHE: u64 = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store (PostgreSQL): {0}")]
    Postgres(String),
    #[error("store: a record could not be encoded or decoded: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("store: the write could not be made durable")]
    Durability,
    #[error("store: the writer lock was poisoned by an earlier panic")]
    Poisoned,
    #[error("store: the system's random number generator failed")]
    Random,
    #[error("store: {0}")]
    Unsupported(String),
}

/// Which store, and how to reach it (resolved configuration).
#[derive(Debug, Clone)]
pub enum StoreConfig {
    Sled {
        dir: PathBuf,
        cache_bytes: u64,
    },
    Postgres {
        url: Secret<String>,
        ca_file: Option<PathBuf>,
        pool_size: usize,
    },
}

/// Proof that a write was applied; await [`Store::durable`] before acknowledging it.
#[derive(Debug, Clone, Copy)]
#[must_use = "a write is acknowledged only once it is durable"]
pub struct Ticket(u64);

// One per process: boxing would only add an indirection to every call.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Sled(sled_store::SledStore),
    Postgres(postgres::PgStore),
}

pub struct Store {
    backend: Backend,
    durable: watch::Receiver<Durable>,
}

/// A staged change: a value to put, or `None` to remove the key.
type Op = (Vec<u8>, Option<Vec<u8>>);

/// Keys with their values, or with `None` where only keys were asked for.
type Rows = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Keys with their values.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

impl Store {
    /// Opens (creating if needed) a sled store in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Self::open_with(&StoreConfig::Sled {
            dir: dir.to_owned(),
            cache_bytes: DEFAULT_SLED_CACHE,
        })
    }

    pub fn open_with(config: &StoreConfig) -> Result<Store, StoreError> {
        match config {
            StoreConfig::Sled { dir, cache_bytes } => {
                let (s, durable) = sled_store::SledStore::open(dir, *cache_bytes)?;
                Ok(Store {
                    backend: Backend::Sled(s),
                    durable,
                })
            }
            StoreConfig::Postgres {
                url,
                ca_file,
                pool_size,
            } => {
                let (s, durable) =
                    postgres::PgStore::open(url.expose(), ca_file.as_deref(), *pool_size)?;
                Ok(Store {
                    backend: Backend::Postgres(s),
                    durable,
                })
            }
        }
    }

    /// True when other gateway processes may write to the same store, so in-memory views built
    /// from it must be refreshed before they are trusted.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Runs `f` as the only writer and applies what it staged as one atomic write.
    pub fn write<T, E>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
    ) -> Result<(T, Ticket), E>
    where
        E: From<StoreError>,
    {
        self.write_then(f, |_| {})
    }

    /// As `write`, and runs `then` once the write is applied, still as the only writer (of this
    /// process): for in-memory views of the store that must follow its order of writes.
    pub fn write_then<T, E>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
        then: impl FnOnce(&T),
    ) -> Result<(T, Ticket), E>
    where
        E: From<StoreError>,
    {
        let (out, seq) = match &self.backend {
            Backend::Sled(s) => s.write_then(f, then)?,
            Backend::Postgres(p) => p.write_then(f, then)?,
        };
        Ok((out, Ticket(seq)))
    }

    /// Waits until the write behind `ticket` is on disk.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        let mut rx = self.durable.clone();
        let state = rx
            .wait_for(|d| d.failed || d.seq >= ticket.0)
            .await
            .map_err(|_| StoreError::Durability)?;
        if state.failed {
            return Err(StoreError::Durability);
        }
        Ok(())
    }

    /// The highest sequence number known to be on disk.
    pub fn durable_seq(&self) -> u64 {
        self.durable.borrow().seq
    }

    /// Resolves when the durable sequence moves past `seq`, or never if it does not; callers
    /// bound it with a timeout (long-poll).
    pub async fn wait_durable_past(&self, seq: u64) {
        let mut rx = self.durable.clone();
        let _ = rx.wait_for(|d| d.seq > seq).await;
    }

    /// Key-ordered records under `prefix`, starting after `after` (exclusive) when given.
    pub fn scan<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, T)>, StoreError> {
        let start = match after {
            Some(after) => {
                let mut start = after.to_vec();
                start.push(0);
                start
            }
            None => prefix.to_vec(),
        };
        self.range_raw(prefix, &start, limit)?
            .into_iter()
            .map(|(k, v)| Ok((k, serde_json::from_slice(&v)?)))
            .collect()
    }

    /// Calls `f` with every key and value under `prefix`, in key order, without holding them all
    /// in memory.
    pub fn visit_prefix(
        &self,
        prefix: &[u8],
        f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.visit_prefix(prefix, f),
            Backend::Postgres(p) => p.visit_prefix(prefix, f),
        }
    }

    /// Up to `limit` keys and values from `start` while keys begin with `prefix`.
    pub(crate) fn range_raw(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Entries, StoreError> {
        let rows = match &self.backend {
            Backend::Sled(s) => s.range(prefix, start, limit, true)?,
            Backend::Postgres(p) => p.range(prefix, start, limit, true)?,
        };
        Ok(rows
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect())
    }

    /// The first key at or after `from`, if any.
    pub fn first_key_from(&self, from: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let rows = match &self.backend {
            Backend::Sled(s) => s.range(b"", from, 1, false)?,
            Backend::Postgres(p) => p.range(b"", from, 1, false)?,
        };
        Ok(rows.into_iter().next().map(|(k, _)| k))
    }

    /// Verifies the audit chain as it is now.
    pub fn verify_audit(&self) -> Result<audit::VerifyReport, StoreError> {
        audit::verify(self)
    }

    /// Makes everything durable and stops background work; the store stays readable.
    pub fn close(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.close(),
            Backend::Postgres(_) => Ok(()),
        }
    }

    /// Checks that the store answers (readiness).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.get_bytes(keys::META_SEQ)?;
        if self.durable.borrow().failed {
            return Err(StoreError::Durability);
        }
        Ok(())
    }

    /// The sled store, for what only sled has (its backup format).
    fn sled(&self) -> Result<&sled_store::SledStore, StoreError> {
        match &self.backend {
            Backend::Sled(s) => Ok(s),
            Backend::Postgres(_) => Err(StoreError::Unsupported(
                "this is a PostgreSQL store: back it up with PostgreSQL's own tools (pg_dump, \
                 base backups), as docs/operations.md explains"
                    .into(),
            )),
        }
    }
}

/// Reading records, the same way from the store and from inside a write (where it sees the
/// store as it was before the write).
pub trait Read {
    fn get_bytes(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError>;

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.get_bytes(key)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }
}

impl Read for Store {
    fn get_bytes(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.backend {
            Backend::Sled(s) => s.get(key),
            Backend::Postgres(p) => p.get(key),
        }
    }

    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = match &self.backend {
            Backend::Sled(s) => s.range(prefix, prefix, usize::MAX, false)?,
            Backend::Postgres(p) => p.range(prefix, prefix, usize::MAX, false)?,
        };
        Ok(rows.into_iter().map(|(k, _)| k).collect())
    }
}

/// Where a write reads from: the store as it was when the write began.
enum TxnReader<'a> {
    Sled(&'a sled_store::SledStore),
    Postgres(&'a postgres::Session),
}

impl Read for WriteTxn<'_> {
    fn get_bytes(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.reader {
            TxnReader::Sled(s) => s.get(key),
            TxnReader::Postgres(s) => s.get(key),
        }
    }

    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>, StoreError> {
        let rows = match &self.reader {
            TxnReader::Sled(s) => s.range(prefix, prefix, usize::MAX, false)?,
            TxnReader::Postgres(s) => s.range(prefix, prefix, usize::MAX, false)?,
        };
        Ok(rows.into_iter().map(|(k, _)| k).collect())
    }
}

/// One write in progress: reads see the store as it was before this write (staged changes are
/// not visible to `get`), which is all our writes need.
pub struct WriteTxn<'a> {
    reader: TxnReader<'a>,
    ops: Vec<Op>,
    next_seq: u64,
    audit_head: AuditHead,
    dirty: bool,
}

impl<'a> WriteTxn<'a> {
    fn new(reader: TxnReader<'a>, last_seq: u64, audit_head: AuditHead) -> WriteTxn<'a> {
        WriteTxn {
            reader,
            ops: Vec::new(),
            next_seq: last_seq.saturating_add(1),
            audit_head,
            dirty: false,
        }
    }

    pub fn put<T: Serialize>(&mut self, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.ops
            .push((key.to_vec(), Some(serde_json::to_vec(value)?)));
        self.dirty = true;
        Ok(())
    }

    /// Stores bytes as they are (records with their own encoding).
    pub fn put_bytes(&mut self, key: &[u8], value: Vec<u8>) {
        self.ops.push((key.to_vec(), Some(value)));
        self.dirty = true;
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.ops.push((key.to_vec(), None));
        self.dirty = true;
    }

    /// The next number of the global sequence.
    pub fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.dirty = true;
        seq
    }

    /// Appends an entry to the hash-chained audit log, in this write.
    pub fn audit(&mut self, record: AuditRecord) -> Result<(), StoreError> {
        let seq = self.next_seq();
        if let Some(subject) = &record.subject {
            // Per-person index of the log, for the access report (GDPR art. 15).
            let mut k = keys::subject_prefix(subject);
            k.extend_from_slice(&seq.to_be_bytes());
            self.ops.push((k, Some(Vec::new())));
        }
        let (bytes, head) = audit::seal(seq, &self.audit_head, record)?;
        self.ops.push((keys::audit(seq), Some(bytes)));
        self.audit_head = head;
        Ok(())
    }

    /// What the write leaves behind: its changes with the counter and audit head appended, the
    /// last sequence number it used, and the new head. `None` when it changed nothing.
    fn finish(self) -> Result<Option<(Vec<Op>, u64, AuditHead)>, StoreError> {
        if !self.dirty {
            return Ok(None);
        }
        let last = self.next_seq.saturating_sub(1);
        let mut ops = self.ops;
        ops.push((keys::META_SEQ.to_vec(), Some(last.to_be_bytes().to_vec())));
        ops.push((
            keys::META_AUDIT_HEAD.to_vec(),
            Some(serde_json::to_vec(&self.audit_head)?),
        ));
        Ok(Some((ops, last, self.audit_head)))
    }
}

/// The counter and audit head as stored (absent in a new store).
fn decode_meta(seq: Option<&[u8]>, head: Option<&[u8]>) -> Result<(u64, AuditHead), StoreError> {
    let last = seq.map(keys::decode_u64).unwrap_or(0);
    let head = match head {
        Some(v) => serde_json::from_slice(v)?,
        None => AuditHead {
            seq: 0,
            hash: GENESIS.to_owned(),
        },
    };
    Ok((last, head))
}

/// The first key after every key that starts with `prefix` (keys start with ASCII, so the last
/// byte can always be raised); `None` for an empty prefix (no bound).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefix_end_bounds_exactly_the_prefix() {
        assert_eq!(super::prefix_end(b"ref/"), Some(b"ref0".to_vec()));
        assert_eq!(super::prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(super::prefix_end(b""), None);
    }
}
