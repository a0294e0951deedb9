//! Group commit: one thread flushes sled for every waiter that committed before the flush began.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy)]
pub struct Durable {
    pub seq: u64,
    pub failed: bool,
}

#[derive(Default)]
struct Signal {
    requested: bool,
    stop: bool,
}

pub struct Flusher {
    committed: AtomicU64,
    signal: Mutex<Signal>,
    wake: Condvar,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Flusher {
    pub fn start(db: sled::Db, durable_seq: u64) -> (Arc<Flusher>, watch::Receiver<Durable>) {
        let flusher = Arc::new(Flusher {
            committed: AtomicU64::new(durable_seq),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            thread: Mutex::new(None),
        });
        let (tx, rx) = watch::channel(Durable {
            seq: durable_seq,
            failed: false,
        });
        let worker = Arc::clone(&flusher);
        match std::thread::Builder::new()
            .name("raccordo-flush".into())
            .spawn(move || worker.run(db, tx))
        {
            Ok(handle) => {
                if let Ok(mut t) = flusher.thread.lock() {
                    *t = Some(handle);
                }
            }
            Err(_) => {
                tracing::error!("could not start the flush thread; writes will report failure")
            }
        }
        (flusher, rx)
    }

    pub fn committed(&self, seq: u64) {
        self.committed.fetch_max(seq, Ordering::AcqRel);
    }

    pub fn request(&self) {
        if let Ok(mut s) = self.signal.lock() {
            s.requested = true;
            self.wake.notify_one();
        }
    }

    /// Stops the thread after a last flush and waits for it, so that its handle on the
    /// database is released when this returns.
    pub fn stop(&self) {
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

    fn run(&self, db: sled::Db, tx: watch::Sender<Durable>) {
        loop {
            let stop = {
                let Ok(mut s) = self.signal.lock() else { break };
                while !s.requested && !s.stop {
                    s = match self.wake.wait(s) {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                }
                s.requested = false;
                s.stop
            };
            // Everything committed up to here is in sled's buffers and goes out with this flush.
            let target = self.committed.load(Ordering::Acquire);
            match db.flush() {
                Ok(_) => {
                    tx.send_modify(|d| d.seq = d.seq.max(target));
                }
                Err(e) => {
                    tracing::error!(error = %e, "flush failed; refusing to acknowledge writes");
                    tx.send_modify(|d| d.failed = true);
                }
            }
            if stop {
                break;
            }
        }
    }
}
