//! The embedded backend: one sled tree, one writer mutex, group commit by the flusher thread.

use super::audit::AuditHead;
use super::flusher::{Durable, Flusher};
use super::{Rows, StoreError, TxnReader, WriteTxn, keys};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// How long to wait for a store whose previous user is still letting go of it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Opens sled, waiting a little when its file lock is still held: sled releases the lock only
/// when its last background I/O task of a just-closed instance ends (the same process reopening
/// a store, or a restarted gateway whose old process is still exiting). sled reports this only
/// as an I/O error with this text, so that is what is matched.
fn open_db(dir: &Path, cache_bytes: u64) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        let opened = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // The default (1 GiB) would let the page cache grow past the gateway's memory
            // budget; what is not cached is read back from the OS page cache.
            .cache_capacity(cache_bytes)
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

struct WriterState {
    last_seq: u64,
    audit_head: AuditHead,
}

pub(super) struct SledStore {
    pub(super) db: sled::Db,
    pub(super) tree: sled::Tree,
    writer: Mutex<WriterState>,
    flusher: Arc<Flusher>,
}

impl SledStore {
    pub(super) fn open(
        dir: &Path,
        cache_bytes: u64,
    ) -> Result<(SledStore, watch::Receiver<Durable>), StoreError> {
        let db = open_db(dir, cache_bytes)?;
        let tree = db.open_tree(super::TREE)?;
        let (last_seq, audit_head) = super::decode_meta(
            tree.get(keys::META_SEQ)?.as_deref(),
            tree.get(keys::META_AUDIT_HEAD)?.as_deref(),
        )?;
        let (flusher, durable) = Flusher::start(db.clone(), last_seq);
        Ok((
            SledStore {
                db,
                tree,
                writer: Mutex::new(WriterState {
                    last_seq,
                    audit_head,
                }),
                flusher,
            },
            durable,
        ))
    }

    pub(super) fn write_then<T, E>(
        &self,
        f: impl FnOnce(&mut WriteTxn<'_>) -> Result<T, E>,
        then: impl FnOnce(&T),
    ) -> Result<(T, u64), E>
    where
        E: From<StoreError>,
    {
        let mut state = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        let mut txn = WriteTxn::new(
            TxnReader::Sled(&self.tree),
            state.last_seq,
            state.audit_head.clone(),
        );
        let out = f(&mut txn)?;
        let Some((ops, last, head)) = txn.finish()? else {
            return Ok((out, state.last_seq));
        };
        let mut batch = sled::Batch::default();
        for (k, v) in ops {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.tree.apply_batch(batch).map_err(StoreError::from)?;
        state.last_seq = last;
        state.audit_head = head;
        then(&out);
        drop(state);
        self.flusher.committed(last);
        Ok((out, last))
    }

    pub(super) fn request_flush(&self) {
        self.flusher.request();
    }

    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.tree.get(key)?.map(|v| v.to_vec()))
    }

    /// Up to `limit` entries from `start` while keys begin with `prefix`.
    pub(super) fn range(
        &self,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
        values: bool,
    ) -> Result<Rows, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.range(start.to_vec()..) {
            let (k, v) = item?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), values.then(|| v.to_vec())));
        }
        Ok(out)
    }

    pub(super) fn visit_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.tree.scan_prefix(prefix) {
            let (k, v) = item?;
            f(&k, &v)?;
        }
        Ok(())
    }

    /// Keeps every write out while `f` runs (a consistent instant for a backup).
    pub(super) fn exclusive<T>(&self, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        Ok(f())
    }

    pub(super) fn close(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.flusher.stop();
        Ok(())
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.flusher.stop();
    }
}
