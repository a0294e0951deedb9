//! Revoked client certificates, reloaded from the Region's revocation list while the gateway
//! runs: revocation takes effect without a restart.

use crate::region_ca::RevocationList;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

pub struct Revocations {
    path: PathBuf,
    revoked: RwLock<HashSet<String>>,
    seen: Mutex<Option<SystemTime>>,
}

impl Revocations {
    pub fn new(path: PathBuf) -> Revocations {
        let r = Revocations {
            path,
            revoked: RwLock::default(),
            seen: Mutex::new(None),
        };
        r.reload();
        r
    }

    pub fn is_revoked(&self, fingerprint: &str) -> bool {
        self.revoked
            .read()
            .map(|s| s.contains(fingerprint))
            .unwrap_or(true)
    }

    /// Reads the list again if the file changed. A missing file means nothing is revoked; a
    /// file that cannot be read keeps the last list in force (and says so in the log).
    pub fn reload(&self) {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if modified == *seen {
            return;
        }
        let list = match modified {
            None => Ok(RevocationList::default()),
            Some(_) => std::fs::read_to_string(&self.path)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_json::from_str::<RevocationList>(&t).map_err(|e| e.to_string())
                }),
        };
        match list {
            Ok(list) => {
                if let Ok(mut set) = self.revoked.write() {
                    *set = list
                        .fingerprints
                        .into_iter()
                        .map(|f| f.to_ascii_lowercase())
                        .collect();
                    *seen = modified;
                    tracing::info!(revoked = set.len(), "revocation list loaded");
                }
            }
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "revocation list unreadable; keeping the previous one")
            }
        }
    }
}
