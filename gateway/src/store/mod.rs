//! The embedded store (sled) and its write discipline.
//!
//! Invariants:
//! - Every write goes through [`Store::write`]: one writer at a time, one atomic sled batch per
//!   write, so a crash leaves each write whole or absent.
//! - Nothing is acknowledged before it is durable: a write returns a [`Ticket`], and
//!   [`Store::durable`] waits until a flush that started after the write has completed. One
//!   flusher thread serves every waiter, so concurrent requests share flushes (group commit).
//! - Readers of the inbox see only durable events (`durable_seq`), so no party acts on an event
//!   that a crash could take back.
//! - Sequence numbers come from one counter, persisted in the same batch as the write that uses
//!   them; they order inbox events and audit entries.

pub mod audit;
pub mod backup;
mod flusher;
pub mod keys;

use audit::{AuditHead, AuditRecord, GENESIS};
use flusher::Flusher;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// The one tree everything lives in.
pub const TREE: &str = "raccordo-v1";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    #[error("store: a record could not be encoded or decoded: {0}")]
    Codec(#[from] serde_json::Error),
    #[error("store: the write could not be made durable")]
    Durability,
    #[error("store: the writer lock was poisoned by an earlier panic")]
    Poisoned,
    #[error("store: the system's random number generator failed")]
    Random,
}

/// How long to wait for a store whose previous user is still letting go of it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled, waiting a little when its file lock is still held: sled releases the lock only
/// when its last background I/O task of a just-closed instance ends (the same process reopening
/// a store, or a restarted gateway whose old process is still exiting). sled reports this only
/// as an I/O error with this text, so that is what is matched.
fn open_db(dir: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // Durability is ours to decide (group commit); sled's timer flush would only add
            // unaligned flushes.
            .flush_every_ms(None)
            .open();
        match opened {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return Ok(other?),
        }
    }
}

/// Proof that a write was applied; await [`Store::durable`] before acknowledging it.
#[derive(Debug, Clone, Copy)]
#[must_use = "a write is acknowledged only once it is durable"]
pub struct Ticket(u64);

struct WriterState {
    next_seq: u64,
    audit_head: AuditHead,
}

pub struct Store {
    db: sled::Db,
    tree: sled::Tree,
    writer: Mutex<WriterState>,
    flusher: Arc<Flusher>,
    durable: watch::Receiver<flusher::Durable>,
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let db = open_db(dir)?;
        let tree = db.open_tree(TREE)?;
        let next_seq = match tree.get(keys::META_SEQ)? {
            Some(v) => keys::decode_u64(&v).saturating_add(1),
            None => 1,
        };
        let audit_head = match tree.get(keys::META_AUDIT_HEAD)? {
            Some(v) => serde_json::from_slice(&v)?,
            None => AuditHead {
                seq: 0,
                hash: GENESIS.to_owned(),
            },
        };
        let (flusher, durable) = Flusher::start(db.clone(), next_seq.saturating_sub(1));
        Ok(Store {
            db,
            tree,
            writer: Mutex::new(WriterState {
                next_seq,
                audit_head,
            }),
            flusher,
            durable,
        })
    }

    /// Runs `f` as the only writer and applies what it staged as one atomic batch.
    pub fn write<T, E>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
    ) -> Result<(T, Ticket), E>
    where
        E: From<StoreError>,
    {
        self.write_then(f, |_| {})
    }

    /// As `write`, and runs `then` once the batch is applied, still as the only writer: for
    /// in-memory views of the store that must follow its order of writes.
    pub fn write_then<T, E>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
        then: impl FnOnce(&T),
    ) -> Result<(T, Ticket), E>
    where
        E: From<StoreError>,
    {
        let mut state = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let mut txn = WriteTxn {
            tree: &self.tree,
            batch: sled::Batch::default(),
            next_seq: state.next_seq,
            audit_head: state.audit_head.clone(),
            dirty: false,
        };
        let out = f(&mut txn)?;
        if !txn.dirty {
            let seq = state.next_seq.saturating_sub(1);
            return Ok((out, Ticket(seq)));
        }
        let last = txn.next_seq.saturating_sub(1);
        txn.batch.insert(keys::META_SEQ, &last.to_be_bytes());
        txn.batch.insert(
            keys::META_AUDIT_HEAD,
            serde_json::to_vec(&txn.audit_head).map_err(StoreError::from)?,
        );
        let (batch, next_seq, audit_head) = (txn.batch, txn.next_seq, txn.audit_head);
        self.tree.apply_batch(batch).map_err(StoreError::from)?;
        state.next_seq = next_seq;
        state.audit_head = audit_head;
        then(&out);
        drop(state);
        self.flusher.committed(last);
        Ok((out, Ticket(last)))
    }

    /// Waits until the write behind `ticket` is on disk.
    pub async fn durable(&self, ticket: Ticket) -> Result<(), StoreError> {
        self.flusher.request();
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

    pub fn get_raw(&self, key: &[u8]) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.tree.get(key)?)
    }

    /// Key-ordered records under `prefix`, starting after `after` (exclusive) when given.
    pub fn scan<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(sled::IVec, T)>, StoreError> {
        let iter = match after {
            Some(after) => {
                let mut start = after.to_vec();
                start.push(0);
                self.tree.range(start..)
            }
            None => self.tree.range(prefix.to_vec()..),
        };
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k, serde_json::from_slice(&v)?));
        }
        Ok(out)
    }

    /// Verifies the audit chain as it is now.
    pub fn verify_audit(&self) -> Result<audit::VerifyReport, StoreError> {
        audit::verify(&self.tree)
    }

    /// Flushes and stops the flusher; the store stays readable.
    pub fn close(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.flusher.stop();
        Ok(())
    }

    /// Checks that the store answers (readiness).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.tree.get(keys::META_SEQ)?;
        if self.durable.borrow().failed {
            return Err(StoreError::Durability);
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.flusher.stop();
    }
}

/// Reading records, the same way from the store and from inside a write (where it sees the
/// store as it was before the write).
pub trait Read {
    fn tree(&self) -> &sled::Tree;

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.tree().get(key)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    fn keys_with_prefix(&self, prefix: &[u8]) -> Result<Vec<sled::IVec>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree().scan_prefix(prefix).keys() {
            out.push(item?);
        }
        Ok(out)
    }
}

impl Read for Store {
    fn tree(&self) -> &sled::Tree {
        &self.tree
    }
}

impl Read for WriteTxn<'_> {
    fn tree(&self) -> &sled::Tree {
        self.tree
    }
}

/// One write in progress: reads see the store as it was before this write (staged changes are
/// not visible to `get`), which is all our writes need.
pub struct WriteTxn<'a> {
    tree: &'a sled::Tree,
    batch: sled::Batch,
    next_seq: u64,
    audit_head: AuditHead,
    dirty: bool,
}

impl WriteTxn<'_> {
    pub fn put<T: Serialize>(&mut self, key: &[u8], value: &T) -> Result<(), StoreError> {
        self.batch.insert(key, serde_json::to_vec(value)?);
        self.dirty = true;
        Ok(())
    }

    /// Stores bytes as they are (records with their own encoding).
    pub fn put_bytes(&mut self, key: &[u8], value: Vec<u8>) {
        self.batch.insert(key, value);
        self.dirty = true;
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.batch.remove(key);
        self.dirty = true;
    }

    /// The next number of the global sequence.
    pub fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.dirty = true;
        seq
    }

    /// Appends an entry to the hash-chained audit log, in this write's batch.
    pub fn audit(&mut self, record: AuditRecord) -> Result<(), StoreError> {
        let seq = self.next_seq();
        if let Some(subject) = &record.subject {
            // Per-person index of the log, for the access report (GDPR art. 15).
            let mut k = keys::subject_prefix(subject);
            k.extend_from_slice(&seq.to_be_bytes());
            self.batch.insert(k, &[][..]);
        }
        let (bytes, head) = audit::seal(seq, &self.audit_head, record)?;
        self.batch.insert(keys::audit(seq), bytes);
        self.audit_head = head;
        Ok(())
    }
}
