//! The embedded backend: one sled tree, one writer mutex, and group commit by the applier
//! thread (`applier.rs`).

use super::applier::{Durable, Staging};
use super::audit::AuditHead;
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

/// One key and its value from a merged range.
type Entry = Result<(Vec<u8>, Vec<u8>), StoreError>;

struct WriterState {
    last_seq: u64,
    audit_head: AuditHead,
}

pub(super) struct SledStore {
    pub(super) db: sled::Db,
    pub(super) tree: sled::Tree,
    writer: Mutex<WriterState>,
    staging: Arc<Staging>,
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
        let (staging, durable) = Staging::start(db.clone(), tree.clone(), last_seq);
        Ok((
            SledStore {
                db,
                tree,
                writer: Mutex::new(WriterState {
                    last_seq,
                    audit_head,
                }),
                staging,
            },
            durable,
        ))
    }

    /// Runs `f` as the only writer and stages what it wrote; the applier thread puts it into
    /// sled with the writes staged around it, so the returned sequence number becomes durable
    /// a little later (`Store::durable`).
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
            TxnReader::Sled(self),
            state.last_seq,
            state.audit_head.clone(),
        );
        let out = f(&mut txn)?;
        let Some((ops, last, head)) = txn.finish()? else {
            return Ok((out, state.last_seq));
        };
        self.staging.stage(ops, last)?;
        state.last_seq = last;
        state.audit_head = head;
        then(&out);
        Ok((out, last))
    }

    /// The newest value of `key`: staged, else in sled.
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.staging.lookup(key)? {
            Some(staged) => Ok(staged),
            None => Ok(self.tree.get(key)?.map(|v| v.to_vec())),
        }
    }

    /// Keys and values from `start` while keys begin with `prefix`, staged changes included.
    fn merged(
        &self,
        prefix: &[u8],
        start: &[u8],
    ) -> Result<impl Iterator<Item = Entry>, StoreError> {
        let end = super::prefix_end(prefix);
        // The staged part is copied first: whatever the applier moves into sled meanwhile is
        // then found twice, and the copy (newer or equal) wins.
        let staged = self.staging.range(start, end.as_deref())?;
        let stored = match &end {
            Some(end) => self.tree.range(start.to_vec()..end.clone()),
            None => self.tree.range(start.to_vec()..),
        };
        Ok(Merge {
            stored: stored.peekable(),
            staged: staged.into_iter().peekable(),
        })
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
        for item in self.merged(prefix, start)?.take(limit) {
            let (k, v) = item?;
            out.push((k, values.then_some(v)));
        }
        Ok(out)
    }

    pub(super) fn visit_prefix(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.merged(prefix, prefix)? {
            let (k, v) = item?;
            f(&k, &v)?;
        }
        Ok(())
    }

    /// Keeps every write out while `f` runs, with everything written so far in sled and on
    /// disk (a consistent instant for a backup).
    pub(super) fn exclusive<T>(&self, f: impl FnOnce() -> T) -> Result<T, StoreError> {
        let _writer = self.writer.lock().map_err(|_| StoreError::Poisoned)?;
        self.staging.drain()?;
        Ok(f())
    }

    pub(super) fn close(&self) -> Result<(), StoreError> {
        let drained = self.exclusive(|| ());
        self.staging.stop();
        self.db.flush()?;
        drained
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        self.staging.stop();
    }
}

/// sled's entries merged with the staged changes over the same keys, in key order; a staged
/// change replaces sled's entry and a staged removal hides it.
struct Merge<S, C>
where
    S: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    C: Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
{
    stored: std::iter::Peekable<S>,
    staged: std::iter::Peekable<C>,
}

impl<S, C> Iterator for Merge<S, C>
where
    S: Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    C: Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
{
    type Item = Entry;

    fn next(&mut self) -> Option<Self::Item> {
        use std::cmp::Ordering;
        loop {
            let order = match (self.stored.peek(), self.staged.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) | (Some(Ok(_)), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(Ok((stored, _))), Some((staged, _))) => {
                    stored.as_ref().cmp(staged.as_slice())
                }
            };
            if order == Ordering::Less {
                return self.stored.next().map(|item| match item {
                    Ok((k, v)) => Ok((k.to_vec(), v.to_vec())),
                    Err(e) => Err(StoreError::from(e)),
                });
            }
            if order == Ordering::Equal {
                self.stored.next();
            }
            if let Some((k, Some(v))) = self.staged.next() {
                return Some(Ok((k, v)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Read, Store};

    #[test]
    fn staged_changes_replace_and_hide_what_sled_holds() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        let tree = db.open_tree("t").unwrap();
        for (k, v) in [
            ("a/1", "old"),
            ("a/2", "old"),
            ("a/4", "old"),
            ("b/1", "other"),
        ] {
            tree.insert(k, v).unwrap();
        }
        let staged: super::super::applier::Changes = [
            ("a/1", None),
            ("a/2", Some("new")),
            ("a/3", Some("added")),
            ("a/5", None),
        ]
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
        .collect();
        let merged: Vec<(String, String)> = Merge {
            stored: tree.range(b"a/".to_vec()..b"a0".to_vec()).peekable(),
            staged: staged.into_iter().peekable(),
        }
        .map(|item| {
            let (k, v) = item.unwrap();
            (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
        })
        .collect();
        assert_eq!(
            merged,
            [("a/2", "new"), ("a/3", "added"), ("a/4", "old")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn writes_not_yet_awaited_are_readable_and_survive_a_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..200u32 {
            let ((), _ticket) = store
                .write(|txn| -> Result<(), StoreError> {
                    let previous: Option<u32> = txn.get(b"n/last")?;
                    assert_eq!(
                        previous,
                        i.checked_sub(1),
                        "each write reads the one before"
                    );
                    txn.put(format!("n/{i:04}").as_bytes(), &i)?;
                    txn.put(b"n/last", &i)
                })
                .unwrap();
        }
        assert_eq!(store.keys_with_prefix(b"n/").unwrap().len(), 201);
        store.close().unwrap();
        let after_close = store.write(|txn| -> Result<(), StoreError> { txn.put(b"n/late", &0) });
        assert!(
            matches!(after_close, Err(StoreError::Durability)),
            "a closed store refuses writes instead of leaving them waiting"
        );
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.get::<u32>(b"n/last").unwrap(), Some(199));
        assert_eq!(store.keys_with_prefix(b"n/").unwrap().len(), 201);
    }
}
