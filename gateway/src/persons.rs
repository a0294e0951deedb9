//! The regional person index: who is the same person across ambiti, without identifiers.
//!
//! Each person has a regional linkage id (random, held by the gateway alone), a data key for the
//! vault, and what linkage needs: the regional pseudonym of the codice fiscale when there is one,
//! and otherwise the Bloom-filter encoding and keyed blocking keys. A new registration is linked
//! by the codice fiscale pseudonym first, then by the encodings: at or above the automatic
//! threshold to the best candidate, in the review band to a new person with a review for a
//! regional operator, below it to a new person.

use crate::linkage::encode::{Encoded, LinkRecord, Prepared};
use crate::linkage::matcher;
use crate::problem::ApiError;
use crate::state::AppState;
use crate::store::WriteTxn;
use crate::vault::WrappedKey;
use raccordo_schemas::Identity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PersonRecord {
    pub id: String,
    pub epoch: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cf: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoded>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<u64>,
    /// The person's vault key; gone once the person's identity has been erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<WrappedKey>,
    /// Ambiti that sent or received data about the person.
    #[serde(default)]
    pub ambiti: BTreeSet<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A pair of records a regional operator must decide on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Review {
    pub id: String,
    pub new: String,
    pub candidate: String,
    pub score: f64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

pub fn key(id: &str) -> Vec<u8> {
    format!("person/{id}").into_bytes()
}

fn cf_key(epoch: u32, pseudonym: &str) -> Vec<u8> {
    format!("cfidx/{epoch}/{pseudonym}").into_bytes()
}

fn block_prefix(epoch: u32, block: u64) -> Vec<u8> {
    format!("blk/{epoch}/{block:016x}/").into_bytes()
}

pub fn review_key(id: &str) -> Vec<u8> {
    format!("review/{id}").into_bytes()
}

/// Thresholds of automatic linkage and review.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub auto_link: f64,
    pub review: f64,
}

pub struct Linked {
    pub person: PersonRecord,
    pub new: bool,
    /// A review opened for this registration: (review id, candidate, score).
    pub review: Option<Review>,
}

fn new_id() -> String {
    crate::pseudonym::encode(*uuid::Uuid::new_v4().as_bytes())
}

/// Finds or creates the person an identity belongs to, inside a write.
pub fn link(
    state: &AppState,
    txn: &mut WriteTxn<'_>,
    identity: Option<&Identity>,
    now: OffsetDateTime,
) -> Result<Linked, ApiError> {
    let epoch = state.pseudonyms.epoch;
    let cf = identity
        .and_then(|i| i.codice_fiscale.as_deref())
        .and_then(|c| state.pseudonyms.codice_fiscale(c));
    if let Some(cf) = &cf
        && let Some(id) = txn.get::<String>(&cf_key(epoch, cf))?
        && let Some(person) = txn.get::<PersonRecord>(&key(&id))?
    {
        return Ok(Linked {
            person,
            new: false,
            review: None,
        });
    }
    let record = identity.map(LinkRecord::from_identity);
    let prepared = record
        .as_ref()
        .map(Prepared::new)
        .filter(|p| !p.names.is_empty());
    let mut encoding = None;
    let mut blocks = Vec::new();
    let mut review = None;
    if let Some(prepared) = &prepared {
        let own = state.encoder.encode(prepared, prepared.birth.year);
        blocks = state.encoder.blocks(prepared);
        let mut candidates = BTreeSet::new();
        for b in &blocks {
            let prefix = block_prefix(epoch, *b);
            for k in txn.keys_with_prefix(&prefix)? {
                if let Ok(id) = std::str::from_utf8(&k[prefix.len()..]) {
                    candidates.insert(id.to_owned());
                }
            }
        }
        let mut best: Option<(f64, PersonRecord)> = None;
        for id in candidates {
            let Some(person) = txn.get::<PersonRecord>(&key(&id))? else {
                continue;
            };
            let Some(stored) = &person.encoding else {
                continue;
            };
            let score = matcher::score_against(&state.encoder, prepared, &own, stored);
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, person));
            }
        }
        if let Some((score, person)) = best {
            if score >= state.thresholds.auto_link {
                return Ok(Linked {
                    person,
                    new: false,
                    review: None,
                });
            }
            if score >= state.thresholds.review {
                review = Some((person.id, score));
            }
        }
        encoding = Some(own);
    }
    let id = new_id();
    let person = PersonRecord {
        key: Some(state.vault.new_data_key(&id)?),
        id: id.clone(),
        epoch,
        cf: cf.clone(),
        encoding,
        blocks: blocks.clone(),
        ambiti: BTreeSet::new(),
        created_at: now,
    };
    if let Some(cf) = &cf {
        txn.put(&cf_key(epoch, cf), &id)?;
    }
    for b in &blocks {
        let mut k = block_prefix(epoch, *b);
        k.extend_from_slice(id.as_bytes());
        txn.put(&k, &())?;
    }
    let review = match review {
        Some((candidate, score)) => {
            let r = Review {
                id: new_id(),
                new: id.clone(),
                candidate,
                score,
                at: now,
            };
            txn.put(&review_key(&r.id), &r)?;
            Some(r)
        }
        None => None,
    };
    Ok(Linked {
        person,
        new: true,
        review,
    })
}

/// Erases the identity of the person behind a referral: the person's data key is destroyed, so
/// every identity and free text sealed under it is unreadable everywhere; the codice fiscale
/// pseudonym, encodings and blocking keys are removed, so nothing links to the person any more.
/// Profiles, statuses and the audit trail (pseudonymous) stay, and so do the statistics.
pub fn erase(
    state: &AppState,
    caller: &crate::registry::Party,
    referral: &str,
    now: OffsetDateTime,
) -> Result<crate::store::Ticket, ApiError> {
    if caller.kind != crate::config::PartyKind::Region {
        return Err(ApiError::Forbidden {
            code: "region-only",
            message: "erasure is requested through the Region's data protection officer".into(),
        });
    }
    let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
        let stored: crate::referrals::StoredReferral = txn
            .get(&crate::store::keys::referral(referral))?
            .ok_or(ApiError::NotFound { what: "referral" })?;
        let mut person: PersonRecord = txn.get(&key(&stored.person))?.ok_or(ApiError::Internal)?;
        if let Some(cf) = &person.cf {
            txn.remove(&cf_key(person.epoch, cf));
        }
        for b in &person.blocks {
            let mut k = block_prefix(person.epoch, *b);
            k.extend_from_slice(person.id.as_bytes());
            txn.remove(&k);
        }
        person.key = None;
        person.cf = None;
        person.encoding = None;
        person.blocks.clear();
        txn.put(&key(&person.id), &person)?;
        txn.audit(crate::store::audit::AuditRecord {
            at: now,
            actor: caller.id.clone(),
            action: "person.erase".into(),
            referral: Some(referral.to_owned()),
            subject: Some(person.id.clone()),
            detail: Some("identity crypto-shredded; linkage data removed".into()),
        })?;
        Ok(())
    })?;
    Ok(ticket)
}
