//! What the runner remembers across restarts, in a small sled database in its state
//! directory, flushed before the runner relies on it: how far into each file it got, the inbox
//! cursor, and which records from a polled API it already submitted unchanged.

use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("runner state: {0}")]
pub struct StateError(String);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileCheckpoint {
    /// Size and a digest of the file's start: a different file under the same name starts over.
    pub fingerprint: String,
    /// Records before this index are accounted for (submitted or quarantined).
    pub next: u64,
}

pub struct State {
    db: sled::Db,
}

fn fail(e: impl std::fmt::Display) -> StateError {
    StateError(e.to_string())
}

impl State {
    pub fn open(dir: &Path) -> Result<State, StateError> {
        let db = sled::open(dir.join("runner")).map_err(fail)?;
        Ok(State { db })
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, StateError> {
        match self.db.get(key).map_err(fail)? {
            Some(v) => serde_json::from_slice(&v).map(Some).map_err(fail),
            None => Ok(None),
        }
    }

    fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StateError> {
        self.db
            .insert(key, serde_json::to_vec(value).map_err(fail)?)
            .map_err(fail)?;
        self.db.flush().map_err(fail)?;
        Ok(())
    }

    pub fn checkpoint(&self, file: &str) -> Result<Option<FileCheckpoint>, StateError> {
        self.get(&format!("file/{file}"))
    }

    pub fn set_checkpoint(&self, file: &str, cp: &FileCheckpoint) -> Result<(), StateError> {
        self.put(&format!("file/{file}"), cp)
    }

    pub fn forget(&self, file: &str) -> Result<(), StateError> {
        self.db.remove(format!("file/{file}")).map_err(fail)?;
        self.db.flush().map_err(fail)?;
        Ok(())
    }

    pub fn cursor(&self) -> Result<Option<String>, StateError> {
        self.get("inbox/cursor")
    }

    pub fn set_cursor(&self, cursor: &str) -> Result<(), StateError> {
        self.put("inbox/cursor", &cursor)
    }

    /// The local record id of a referral the gateway accepted from this runner.
    pub fn local_id(&self, gateway_id: &str) -> Result<Option<String>, StateError> {
        self.get(&format!("ref/{gateway_id}"))
    }

    pub fn set_local_id(&self, gateway_id: &str, local_id: &str) -> Result<(), StateError> {
        self.put(&format!("ref/{gateway_id}"), &local_id)
    }

    /// The digest of the body last submitted under an idempotency key.
    pub fn sent(&self, key: &str) -> Result<Option<String>, StateError> {
        self.get(&format!("sent/{key}"))
    }

    pub fn set_sent(&self, key: &str, digest: &str) -> Result<(), StateError> {
        self.put(&format!("sent/{key}"), &digest)
    }
}

/// Size and the SHA-256 of the first 64 KiB.
pub fn fingerprint(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let meta = std::fs::metadata(path)?;
    let mut head = vec![0u8; 65536];
    let mut f = std::fs::File::open(path)?;
    let n = f.read(&mut head)?;
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &head[..n]);
    Ok(format!(
        "{}:{}",
        meta.len(),
        raccordo_gateway::pki::hex(d.as_ref())
    ))
}
