//! The audit log: every write and every read of person-level data, hash-chained.
//!
//! Each stored entry names the SHA-256 of the entry before it (`prev`); the hash of the newest
//! entry is kept as the head. Changing, removing or reordering any entry breaks a link that
//! [`verify`] reports. Entries hold pseudonyms and record ids, never identifiers.

use super::{StoreError, keys};
use serde::{Deserialize, Serialize};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, by whom, to what. Supplied by callers; the chain fields are added on sealing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub at: time::OffsetDateTime,
    /// The party (ambito id) or operator that acted.
    pub actor: String,
    /// e.g. `referral.create`, `referral.read.full`, `referral.read.triage`, `referral.status`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<String>,
    /// The person's pseudonym, when the action concerns a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Non-identifying detail: a status move, a policy decision and its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    pub seq: u64,
    pub prev: String,
    #[serde(flatten)]
    pub record: AuditRecord,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: String,
}

fn digest(bytes: &[u8]) -> String {
    crate::pki::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// The stored bytes of the next entry and the new head.
pub fn seal(
    seq: u64,
    head: &AuditHead,
    record: AuditRecord,
) -> Result<(Vec<u8>, AuditHead), StoreError> {
    let entry = AuditEntry {
        seq,
        prev: head.hash.clone(),
        record,
    };
    let bytes = serde_json::to_vec(&entry)?;
    let hash = digest(&bytes);
    Ok((bytes, AuditHead { seq, hash }))
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct VerifyReport {
    pub entries: u64,
    pub valid: bool,
    /// The first entry whose content no longer matches the chain, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_broken: Option<BrokenLink>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BrokenLink {
    pub seq: u64,
    pub reason: String,
}

pub fn verify(store: &super::Store) -> Result<VerifyReport, StoreError> {
    use super::Read;
    let head: Option<AuditHead> = match store.get_bytes(keys::META_AUDIT_HEAD)? {
        Some(v) => Some(serde_json::from_slice(&v)?),
        None => None,
    };
    let mut entries = 0u64;
    // The previous entry's sequence number and hash.
    let mut prev: Option<(u64, String)> = None;
    let broken = |seq: u64, reason: String, entries: u64| VerifyReport {
        entries,
        valid: false,
        first_broken: Some(BrokenLink { seq, reason }),
    };
    let mut start = keys::AUDIT.to_vec();
    loop {
        let page = store.range_raw(keys::AUDIT, &start, 10_000)?;
        let Some((last_key, _)) = page.last() else {
            break;
        };
        start = last_key.clone();
        start.push(0);
        for (key, bytes) in page {
            let key_seq = keys::decode_u64(&key);
            let entry: AuditEntry = match serde_json::from_slice(&bytes) {
                Ok(e) => e,
                Err(_) => {
                    return Ok(broken(key_seq, "entry is not readable".into(), entries));
                }
            };
            let expected_prev = prev.as_ref().map_or(GENESIS, |(_, h)| h.as_str());
            if entry.prev != expected_prev {
                // The link into this entry is broken: the entry before it was altered or removed.
                let at = prev.as_ref().map_or(key_seq, |(s, _)| *s);
                return Ok(broken(
                    at,
                    format!("entry {key_seq} does not follow from entry {at}"),
                    entries,
                ));
            }
            if entry.seq != key_seq {
                return Ok(broken(
                    key_seq,
                    "entry is stored under another sequence number".into(),
                    entries,
                ));
            }
            entries += 1;
            prev = Some((key_seq, digest(&bytes)));
        }
    }
    match (head, prev) {
        (None, None) => {}
        (Some(head), Some((seq, hash))) if head.seq == seq && head.hash == hash => {}
        (Some(head), Some((seq, _))) => {
            let at = seq.min(head.seq);
            return Ok(broken(
                at,
                "the newest entries do not match the recorded head".into(),
                entries,
            ));
        }
        (Some(head), None) => {
            return Ok(broken(
                head.seq,
                "entries recorded by the head are missing".into(),
                entries,
            ));
        }
        (None, Some((seq, _))) => {
            return Ok(broken(seq, "the head is missing".into(), entries));
        }
    }
    Ok(VerifyReport {
        entries,
        valid: true,
        first_broken: None,
    })
}

/// Opens a sled data directory (the gateway must be stopped: sled locks it) and verifies its
/// chain. Used by `raccordo audit verify`.
pub fn verify_data_dir(data_dir: &std::path::Path) -> Result<VerifyReport, StoreError> {
    let dir = data_dir.join("store");
    if !dir.exists() {
        return Err(StoreError::Unsupported(format!(
            "{} holds no store",
            data_dir.display()
        )));
    }
    super::Store::open(&dir)?.verify_audit()
}
