//! The statistical records in memory, compact: what every release reads.
//!
//! The store (sled) is the durable copy: one entry per record, so a correction replaces exactly
//! what it corrects. But reading a million entries back from sled takes over a second, most of a
//! release's budget, so the gateway keeps the records it has filed here as well: loaded once at
//! start, updated by every ingest inside the store's writer, right after its batch is applied
//! (so the cube never holds what the store does not, and follows the store's order of writes).
//! A compact record is 40 bytes, plus its index entry (about 70 bytes in all).

use super::records::StatRecord;
use super::tables::{Compact, Dims};
use crate::store::{Store, StoreError};
use std::collections::HashMap;

pub struct Cube {
    rows: Vec<Compact>,
    /// Row of each record, by a 64-bit digest of its store key (a collision among a million
    /// records has odds of about 1 in 30 million).
    index: HashMap<u64, u32, foldhash::fast::FixedState>,
    ambiti: Vec<String>,
    ambito_index: HashMap<String, u16>,
    dims: Dims,
}

fn key_digest(key: &[u8]) -> u64 {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key);
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(b)
}

impl Default for Cube {
    fn default() -> Cube {
        Cube {
            rows: Vec::new(),
            index: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0)),
            ambiti: Vec::new(),
            ambito_index: HashMap::new(),
            dims: Dims::new(),
        }
    }
}

impl Cube {
    fn ambito(&mut self, name: &str) -> u16 {
        if let Some(i) = self.ambito_index.get(name) {
            return *i;
        }
        let i = u16::try_from(self.ambiti.len()).unwrap_or(u16::MAX);
        self.ambiti.push(name.to_owned());
        self.ambito_index.insert(name.to_owned(), i);
        i
    }

    /// Files a record under its store key, replacing the one there.
    pub fn upsert(&mut self, key: &[u8], record: &StatRecord) {
        let ambito = self.ambito(&record.ambito);
        let compact = Compact::from_record(record, ambito, &self.dims);
        let digest = key_digest(key);
        match self.index.get(&digest) {
            Some(&row) => {
                if let Some(slot) = self.rows.get_mut(row as usize) {
                    *slot = compact;
                }
            }
            None => {
                self.index.insert(digest, self.rows.len() as u32);
                self.rows.push(compact);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Memory held by the rows and the index (hashbrown: one control byte per bucket).
    pub fn approx_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<Compact>()
            + self.index.capacity() * (std::mem::size_of::<(u64, u32)>() + 1)
    }

    pub fn rows(&self) -> &[Compact] {
        &self.rows
    }

    pub fn ambiti(&self) -> &[String] {
        &self.ambiti
    }

    /// The rows and the ambiti they index, without copying them.
    pub fn into_parts(self) -> (Vec<Compact>, Vec<String>) {
        (self.rows, self.ambiti)
    }

    /// Reads every statistical record in the store, with `threads` threads: records are filed
    /// by kind and ambito, and each (kind, ambito) range is read by one thread.
    pub fn load(store: &Store, threads: usize) -> Result<Cube, StoreError> {
        let ranges = stat_ranges(store)?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        type Part = Vec<(Vec<u8>, StatRecord)>;
        let work = || -> Result<Part, StoreError> {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(prefix) = ranges.get(i) else {
                    return Ok(out);
                };
                store.visit_prefix(prefix, |k, v| {
                    match StatRecord::decode(v) {
                        Some(r) => out.push((k.to_vec(), r)),
                        // Left out and said, never guessed at.
                        None => tracing::error!("a statistical record does not decode"),
                    }
                    Ok(())
                })?;
            }
        };
        let parts: Vec<Result<Part, StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads.clamp(1, 16)).map(|_| s.spawn(work)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(StoreError::Poisoned)))
                .collect()
        });
        let mut cube = Cube::default();
        for part in parts {
            for (k, r) in part? {
                cube.upsert(&k, &r);
            }
        }
        Ok(cube)
    }

    /// For tests and the bench: a cube of records under made-up keys.
    pub fn from_records(records: &[StatRecord]) -> Cube {
        let mut cube = Cube::default();
        for (i, r) in records.iter().enumerate() {
            cube.upsert(&super::ingest::key(r.kind, &r.ambito, &i.to_string()), r);
        }
        cube
    }
}

/// The `stat/<kind>/<ambito>/` prefixes present, found by skipping from one to the next.
fn stat_ranges(store: &Store) -> Result<Vec<Vec<u8>>, StoreError> {
    let prefix_all = super::ingest::PREFIX;
    let mut out = Vec::new();
    let mut from = prefix_all.to_vec();
    while let Some(k) = store.first_key_from(&from)? {
        if !k.starts_with(prefix_all) {
            break;
        }
        // stat/<kind>/<ambito>/...: the prefix ends at the third '/'.
        let Some(end) = k
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .nth(2)
            .map(|(i, _)| i)
        else {
            break;
        };
        let prefix = k[..=end].to_vec();
        // The first key after every key with this prefix: the prefix with its '/' made '0'.
        from = prefix.clone();
        if let Some(last) = from.last_mut() {
            *last = b'/' + 1;
        }
        out.push(prefix);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correction_replaces_its_record() {
        let (records, _, _) = super::super::bench::synthetic(10, 3, &["prato".to_owned()]);
        let mut cube = Cube::default();
        cube.upsert(b"stat/episode/prato/a", &records[0]);
        cube.upsert(b"stat/episode/prato/b", &records[1]);
        let mut corrected = records[0].clone();
        corrected.quantity = 9;
        cube.upsert(b"stat/episode/prato/a", &corrected);
        assert_eq!(cube.len(), 2);
        assert_eq!(cube.rows()[0].quantity, 9);
    }
}
