//! Group commit for sled: writers stage their changes here and return; one thread puts
//! everything staged so far into sled as a single batch, flushes, and only then reports the
//! writes durable.
//!
//! Why: applying each request's write on the request's thread, under the writer lock, made
//! sled's cost per write serial (about 300 µs a referral, most of it sled's). Staged, the
//! writer lock covers only the write's own logic, and sled sees one group per round, whatever
//! the number of writes in it.
//!
//! Until a write is in sled, reads find it here: staged changes are the newest state of their
//! keys, so every read looks here first (see `SledStore`).

use super::{Op, StoreError};
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use tokio::sync::watch;

/// The durable point, as published to waiters.
#[derive(Debug, Clone, Copy)]
pub struct Durable {
    pub seq: u64,
    pub failed: bool,
}

/// Keys with their newest staged value, or `None` for a staged removal.
pub(super) type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

#[derive(Default)]
struct Overlay {
    /// Staged since the apply thread last took a group.
    pending: Changes,
    /// The last sequence number of the writes in `pending`.
    pending_last: u64,
    /// The group the apply thread is putting into sled now.
    applying: Option<Arc<Changes>>,
}

/// How long a group may wait to grow as large as the one before it.
///
/// Why: every flush costs sled a write task that wakes each thread of its I/O pool, whatever
/// the size of the group, so fewer and larger groups leave more of the machine to requests
/// (`raccordo bench`: 3,640 and 3,920 referrals/s without waiting, 3,970 and 4,560 with it,
/// p99 lower too). Under light load the last group held one write and nothing waits.
const GATHER_AT_MOST: std::time::Duration = std::time::Duration::from_millis(1);

#[derive(Default)]
struct Signal {
    /// Something was staged since the apply thread last looked.
    staged: bool,
    /// Writes staged since the apply thread last took a group.
    writes: usize,
    stop: bool,
}

pub(super) struct Staging {
    overlay: RwLock<Overlay>,
    signal: Mutex<Signal>,
    /// Wakes the apply thread: something was staged, or stop.
    wake: Condvar,
    /// Notified after every round and on failure (for `drain`).
    round: Condvar,
    durable_tx: watch::Sender<Durable>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Staging {
    /// Starts the apply thread for `tree` in `db`, with everything up to `durable_seq` already
    /// on disk.
    pub(super) fn start(
        db: sled::Db,
        tree: sled::Tree,
        durable_seq: u64,
    ) -> (Arc<Staging>, watch::Receiver<Durable>) {
        let (durable_tx, rx) = watch::channel(Durable {
            seq: durable_seq,
            failed: false,
        });
        let staging = Arc::new(Staging {
            overlay: RwLock::new(Overlay {
                pending_last: durable_seq,
                ..Overlay::default()
            }),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            round: Condvar::new(),
            durable_tx,
            thread: Mutex::new(None),
        });
        let worker = Arc::clone(&staging);
        match std::thread::Builder::new()
            .name("raccordo-apply".into())
            .spawn(move || {
                // A panic in sled must not leave requests waiting for a flush that will never
                // come: the store fails instead, and every waiter is told.
                let run = std::panic::AssertUnwindSafe(|| worker.run(&db, &tree));
                if std::panic::catch_unwind(run).is_err() {
                    worker.fail(&StoreError::Unsupported(
                        "the store's apply thread stopped".into(),
                    ));
                }
            }) {
            Ok(handle) => {
                if let Ok(mut t) = staging.thread.lock() {
                    *t = Some(handle);
                }
            }
            Err(e) => staging.fail(&StoreError::Unsupported(format!(
                "the store's apply thread could not start: {e}"
            ))),
        }
        (staging, rx)
    }

    /// Stages one write's changes, which end at sequence number `last`. The caller holds the
    /// writer lock, so writes are staged in the order of their sequence numbers.
    /// Refused once the store has failed or been closed: nothing would make the write durable.
    pub(super) fn stage(&self, ops: Vec<Op>, last: u64) -> Result<(), StoreError> {
        // Held throughout, so that `stop` cannot slip in between the check and the staging.
        let mut s = self.signal.lock().map_err(|_| StoreError::Poisoned)?;
        if s.stop || self.has_failed() {
            return Err(StoreError::Durability);
        }
        {
            let mut o = self.overlay.write().map_err(|_| StoreError::Poisoned)?;
            for (k, v) in ops {
                o.pending.insert(k, v);
            }
            o.pending_last = last;
        }
        s.staged = true;
        s.writes += 1;
        self.wake.notify_one();
        Ok(())
    }

    /// The staged state of `key`: `Some(None)` when its removal is staged, `None` when nothing
    /// about it is staged (sled has its newest value).
    pub(super) fn lookup(&self, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let o = self.overlay.read().map_err(|_| StoreError::Poisoned)?;
        if let Some(v) = o.pending.get(key) {
            return Ok(Some(v.clone()));
        }
        Ok(o.applying.as_ref().and_then(|g| g.get(key).cloned()))
    }

    /// A copy of the staged changes with keys from `start` up to `end` (exclusive; no bound when
    /// `None`), the newest of each.
    pub(super) fn range(&self, start: &[u8], end: Option<&[u8]>) -> Result<Changes, StoreError> {
        let o = self.overlay.read().map_err(|_| StoreError::Poisoned)?;
        let bounds = (
            Bound::Included(start),
            end.map_or(Bound::Unbounded, Bound::Excluded),
        );
        let mut out = Changes::new();
        if let Some(g) = &o.applying {
            for (k, v) in g.range::<[u8], _>(bounds) {
                out.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in o.pending.range::<[u8], _>(bounds) {
            out.insert(k.clone(), v.clone());
        }
        Ok(out)
    }

    /// Waits until everything staged so far is in sled and on disk. The caller holds the writer
    /// lock, so nothing new is staged meanwhile.
    pub(super) fn drain(&self) -> Result<(), StoreError> {
        let target = self
            .overlay
            .read()
            .map_err(|_| StoreError::Poisoned)?
            .pending_last;
        let mut s = self.signal.lock().map_err(|_| StoreError::Poisoned)?;
        s.staged = true;
        self.wake.notify_one();
        while self.durable_tx.borrow().seq < target {
            if self.has_failed() {
                return Err(StoreError::Durability);
            }
            s = self
                .round
                .wait_timeout(s, std::time::Duration::from_millis(100))
                .map_err(|_| StoreError::Poisoned)?
                .0;
        }
        Ok(())
    }

    /// Stops the thread after everything staged is applied and flushed, and waits for it, so
    /// that its handle on the database is released when this returns.
    pub(super) fn stop(&self) {
        if let Ok(mut s) = self.signal.lock() {
            s.stop = true;
            self.wake.notify_one();
        }
        let handle = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }

    /// Set when sled refused a write or a flush: from then on nothing more is staged.
    fn has_failed(&self) -> bool {
        self.durable_tx.borrow().failed
    }

    fn fail(&self, e: &StoreError) {
        tracing::error!(error = %e, "the store could not write or flush; refusing writes");
        self.durable_tx.send_modify(|d| d.failed = true);
        self.round.notify_all();
    }

    fn run(&self, db: &sled::Db, tree: &sled::Tree) {
        // Writes in the last group: under load, the next group waits a moment to be as large.
        let mut last_group = 0;
        loop {
            let stop = {
                let Ok(mut s) = self.signal.lock() else { break };
                while !s.staged && !s.stop {
                    s = match self.wake.wait(s) {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                }
                let deadline = std::time::Instant::now() + GATHER_AT_MOST;
                while s.writes < last_group && !s.stop {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    s = match self.wake.wait_timeout(s, left) {
                        Ok((s, _)) => s,
                        Err(_) => return,
                    };
                }
                last_group = s.writes;
                s.writes = 0;
                s.staged = false;
                s.stop
            };
            match self.apply_round(db, tree) {
                Ok(Some(last)) => {
                    self.durable_tx.send_modify(|d| d.seq = d.seq.max(last));
                    // Under the lock `drain` checks under, so its wait cannot miss this.
                    let _signal = self.signal.lock();
                    self.round.notify_all();
                }
                Ok(None) => {}
                Err(e) => {
                    self.fail(&e);
                    return;
                }
            }
            // A write staged during the round set `staged` again, so the loop comes back for
            // it; after `stop`, the loop ends only once nothing is left.
            let more = self
                .overlay
                .read()
                .map(|o| !o.pending.is_empty())
                .unwrap_or(false);
            if stop && !more {
                break;
            }
        }
    }

    /// Takes everything staged, puts it into sled as one batch and flushes; the last sequence
    /// number in it, now durable, or `None` when nothing was staged.
    fn apply_round(&self, db: &sled::Db, tree: &sled::Tree) -> Result<Option<u64>, StoreError> {
        let (group, last) = {
            let mut o = self.overlay.write().map_err(|_| StoreError::Poisoned)?;
            if o.pending.is_empty() {
                return Ok(None);
            }
            let group = Arc::new(std::mem::take(&mut o.pending));
            o.applying = Some(Arc::clone(&group));
            (group, o.pending_last)
        };
        // One batch: sled applies it whole or not at all, after a crash too.
        let mut batch = sled::Batch::default();
        for (k, v) in group.iter() {
            match v {
                Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                None => batch.remove(k.as_slice()),
            }
        }
        tree.apply_batch(batch)?;
        // Readers find the group in sled from here on.
        self.overlay
            .write()
            .map_err(|_| StoreError::Poisoned)?
            .applying = None;
        db.flush()?;
        Ok(Some(last))
    }
}
