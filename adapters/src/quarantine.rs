//! Records that could not go through, kept beside the local system with where they came from
//! and why, one JSON line each, in `<quarantine>/<source file>.jsonl` (mode 0600: they hold the
//! local record as read). An entry is written once per record, even when a restart reads the
//! record again.

use crate::codec::{Fields, Location};
use crate::convert::Rejection;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub file: String,
    /// 0-based position of the record in its file.
    pub index: u64,
    /// "file:line" or "file element".
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    pub rejections: Vec<Rejection>,
    /// The local record as read, to fix and resubmit.
    #[serde(default)]
    pub fields: Fields,
    pub at: String,
}

pub struct Quarantine {
    dir: PathBuf,
    /// Record indexes already quarantined, per source file, loaded on first use.
    known: std::sync::Mutex<std::collections::HashMap<String, HashSet<u64>>>,
}

impl Quarantine {
    pub fn new(dir: &Path) -> std::io::Result<Quarantine> {
        std::fs::create_dir_all(dir)?;
        Ok(Quarantine {
            dir: dir.to_owned(),
            known: std::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(format!("{file}.jsonl"))
    }

    /// The entries for one source file.
    pub fn entries(&self, file: &str) -> std::io::Result<Vec<Entry>> {
        match std::fs::read_to_string(self.path(file)) {
            Ok(text) => Ok(text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Appends an entry unless this record of this file is already there; durable on return.
    pub fn put(
        &self,
        location: &Location,
        record_id: Option<String>,
        rejections: Vec<Rejection>,
        fields: Fields,
    ) -> std::io::Result<bool> {
        let mut known = self
            .known
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        if !known.contains_key(&location.file) {
            let seen = self
                .entries(&location.file)?
                .iter()
                .map(|e| e.index)
                .collect();
            known.insert(location.file.clone(), seen);
        }
        let seen = known.entry(location.file.clone()).or_default();
        if !seen.insert(location.index) {
            return Ok(false);
        }
        let entry = Entry {
            file: location.file.clone(),
            index: location.index,
            location: location.to_string(),
            record_id,
            rejections,
            fields,
            at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(self.path(&location.file))?;
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        f.write_all(&line)?;
        f.sync_data()?;
        Ok(true)
    }
}
