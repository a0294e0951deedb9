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
use crate::store::{Read, WriteTxn};
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
    /// Set when a regional operator decided this is the same person as another record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
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

pub fn cf_key(epoch: u32, pseudonym: &str) -> Vec<u8> {
    format!("cfidx/{epoch}/{pseudonym}").into_bytes()
}

pub fn block_prefix(epoch: u32, block: u64) -> Vec<u8> {
    format!("blk/{epoch}/{block:016x}/").into_bytes()
}

/// The identity a person was first registered with, sealed under the person's key.
pub fn identity_key(id: &str) -> Vec<u8> {
    format!("pident/{id}").into_bytes()
}

fn identity_context(id: &str) -> String {
    format!("person:{id}")
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

/// What the index knows of an identity, before anything is written.
pub struct Found {
    /// The person it links to automatically (already resolved through merges).
    pub person: Option<PersonRecord>,
    /// The best candidate in the review band, when there is no automatic link.
    pub review: Option<(String, f64)>,
    cf: Option<String>,
    encoding: Option<Encoded>,
    blocks: Vec<u64>,
}

/// Follows merges made by review decisions to the person a record now stands for.
pub fn resolve<R: Read>(reader: &R, id: &str) -> Result<Option<PersonRecord>, ApiError> {
    let mut current: Option<PersonRecord> = reader.get(&key(id))?;
    for _ in 0..16 {
        match current.as_ref().and_then(|p| p.merged_into.clone()) {
            Some(next) => current = reader.get(&key(&next))?,
            None => break,
        }
    }
    Ok(current)
}

/// Looks an identity up without changing anything.
pub fn find<R: Read>(
    state: &AppState,
    reader: &R,
    identity: Option<&Identity>,
) -> Result<Found, ApiError> {
    let epoch = state.pseudonyms.epoch;
    let cf = identity
        .and_then(|i| i.codice_fiscale.as_deref())
        .and_then(|c| state.pseudonyms.codice_fiscale(c));
    let mut found = Found {
        person: None,
        review: None,
        cf: cf.clone(),
        encoding: None,
        blocks: Vec::new(),
    };
    if let Some(cf) = &cf
        && let Some(id) = reader.get::<String>(&cf_key(epoch, cf))?
    {
        found.person = resolve(reader, &id)?;
        if found.person.is_some() {
            return Ok(found);
        }
    }
    let record = identity.map(LinkRecord::from_identity);
    let Some(prepared) = record
        .as_ref()
        .map(Prepared::new)
        .filter(|p| !p.names.is_empty())
    else {
        return Ok(found);
    };
    let own = state.encoder.encode(&prepared, prepared.birth.year);
    found.blocks = state.encoder.blocks(&prepared);
    let mut candidates = BTreeSet::new();
    for b in &found.blocks {
        let prefix = block_prefix(epoch, *b);
        for k in reader.keys_with_prefix(&prefix)? {
            if let Ok(id) = std::str::from_utf8(&k[prefix.len()..]) {
                candidates.insert(id.to_owned());
            }
        }
    }
    let mut best: Option<(f64, PersonRecord)> = None;
    for id in candidates {
        let Some(person) = reader.get::<PersonRecord>(&key(&id))? else {
            continue;
        };
        let Some(stored) = &person.encoding else {
            continue;
        };
        let score = matcher::score_against(&state.encoder, &prepared, &own, stored);
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, person));
        }
    }
    if let Some((score, person)) = best {
        if score >= state.thresholds.auto_link {
            found.person = resolve(reader, &person.id)?;
        } else if score >= state.thresholds.review {
            found.review = Some((person.id, score));
        }
    }
    found.encoding = Some(own);
    Ok(found)
}

/// Finds or creates the person an identity belongs to, inside a write.
pub fn link(
    state: &AppState,
    txn: &mut WriteTxn<'_>,
    identity: Option<&Identity>,
    now: OffsetDateTime,
) -> Result<Linked, ApiError> {
    let found = find(state, txn, identity)?;
    if let Some(person) = found.person {
        return Ok(Linked {
            person,
            new: false,
            review: None,
        });
    }
    let epoch = state.pseudonyms.epoch;
    let id = new_id();
    let person = PersonRecord {
        key: Some(state.vault.new_data_key(&id)?),
        id: id.clone(),
        epoch,
        cf: found.cf.clone(),
        encoding: found.encoding,
        blocks: found.blocks.clone(),
        ambiti: BTreeSet::new(),
        merged_into: None,
        created_at: now,
    };
    if let Some(identity) = identity {
        // Kept sealed so that key rotation can re-derive pseudonyms and encodings.
        let key = person.key.as_ref().ok_or(ApiError::Internal)?;
        txn.put(
            &identity_key(&id),
            &state
                .vault
                .seal(key, &id, identity, &identity_context(&id))?,
        )?;
    }
    if let Some(cf) = &found.cf {
        txn.put(&cf_key(epoch, cf), &id)?;
    }
    for b in &found.blocks {
        let mut k = block_prefix(epoch, *b);
        k.extend_from_slice(id.as_bytes());
        txn.put(&k, &())?;
    }
    let review = match found.review {
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

/// "Is this person already known somewhere else in the network?": yes or no and in how many
/// other ambiti, never which, nor any record. Looking up creates nothing; the question is audited.
pub fn known_elsewhere(
    state: &AppState,
    caller: &crate::registry::Party,
    identity: &Identity,
    now: OffsetDateTime,
) -> Result<(serde_json::Value, crate::store::Ticket), ApiError> {
    let found = find(state, &state.store, Some(identity))?;
    let others = found
        .person
        .as_ref()
        .map(|p| p.ambiti.iter().filter(|a| **a != caller.id).count())
        .unwrap_or(0);
    let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
        txn.audit(crate::store::audit::AuditRecord {
            at: now,
            actor: caller.id.clone(),
            action: "linkage.known-elsewhere".into(),
            referral: None,
            subject: found.person.as_ref().map(|p| p.id.clone()),
            detail: Some(format!("answered {others} other ambiti")),
        })?;
        Ok(())
    })?;
    Ok((
        serde_json::json!({"known": others > 0, "ambiti": others}),
        ticket,
    ))
}

/// The identities behind a person, newest referral first, for a regional operator.
fn identities(state: &AppState, person: &PersonRecord) -> Result<Vec<Identity>, ApiError> {
    let Some(key) = &person.key else {
        return Ok(vec![]);
    };
    let prefix = crate::store::keys::person_referral_prefix(&person.id);
    let mut out = Vec::new();
    for k in state.store.keys_with_prefix(&prefix)? {
        let Ok(rid) = std::str::from_utf8(&k[prefix.len()..]) else {
            continue;
        };
        let Some(ct) = state
            .store
            .get::<crate::vault::Ciphertext>(&crate::store::keys::vault(rid))?
        else {
            continue;
        };
        let sealed: crate::referrals::Sealed = state.vault.open(key, &person.id, &ct, rid)?;
        if let Some(i) = sealed.identity
            && !out.contains(&i)
        {
            out.push(i);
        }
    }
    Ok(out)
}

/// Pending reviews with the identities on each side: Region only, and audited.
pub fn reviews(
    state: &AppState,
    caller: &crate::registry::Party,
    now: OffsetDateTime,
) -> Result<(serde_json::Value, crate::store::Ticket), ApiError> {
    let pending: Vec<(Vec<u8>, Review)> = state.store.scan(b"review/", None, 1000)?;
    let mut items = Vec::new();
    let mut subjects = Vec::new();
    for (_, r) in pending {
        let (Some(a), Some(b)) = (
            resolve(&state.store, &r.new)?,
            resolve(&state.store, &r.candidate)?,
        ) else {
            continue;
        };
        items.push(serde_json::json!({
            "id": r.id,
            "score": r.score,
            "at": r.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "new": identities(state, &a)?,
            "candidate": identities(state, &b)?,
        }));
        subjects.push((r.id.clone(), a.id, b.id));
    }
    let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
        for (review, a, b) in &subjects {
            for subject in [a, b] {
                txn.audit(crate::store::audit::AuditRecord {
                    at: now,
                    actor: caller.id.clone(),
                    action: "linkage.review.read".into(),
                    referral: None,
                    subject: Some(subject.clone()),
                    detail: Some(format!("review {review}")),
                })?;
            }
        }
        Ok(())
    })?;
    Ok((serde_json::json!({"items": items}), ticket))
}

/// A regional operator's decision on a review: the same person (link) or two (separate).
pub fn decide(
    state: &AppState,
    caller: &crate::registry::Party,
    review: &str,
    same_person: bool,
    now: OffsetDateTime,
) -> Result<crate::store::Ticket, ApiError> {
    let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
        let r: Review = txn
            .get(&review_key(review))?
            .ok_or(ApiError::NotFound { what: "review" })?;
        txn.remove(&review_key(review));
        let (Some(mut new), Some(mut candidate)) =
            (resolve(txn, &r.new)?, resolve(txn, &r.candidate)?)
        else {
            return Err(ApiError::NotFound { what: "review" });
        };
        if same_person && new.id != candidate.id {
            // The newer record now stands for the older one; its data key stays, so what was
            // sealed under it still opens.
            new.merged_into = Some(candidate.id.clone());
            candidate.ambiti.extend(new.ambiti.iter().cloned());
            txn.put(&key(&new.id), &new)?;
            txn.put(&key(&candidate.id), &candidate)?;
        }
        for subject in [&new.id, &candidate.id] {
            txn.audit(crate::store::audit::AuditRecord {
                at: now,
                actor: caller.id.clone(),
                action: if same_person {
                    "linkage.review.link"
                } else {
                    "linkage.review.separate"
                }
                .into(),
                referral: None,
                subject: Some(subject.clone()),
                detail: Some(format!("review {review} (score {:.3})", r.score)),
            })?;
        }
        Ok(())
    })?;
    Ok(ticket)
}

/// Erases the identity of the person behind a referral: the person's data key is destroyed, so
/// every identity and free text sealed under it is unreadable everywhere; the codice fiscale
/// pseudonym, encodings and blocking keys are removed, so nothing links to the person any more.
/// Profiles, statuses and the audit trail (pseudonymous) stay, and so do the statistics.
pub fn erase(
    state: &AppState,
    caller: &crate::registry::Party,
    person: &str,
    now: OffsetDateTime,
) -> Result<crate::store::Ticket, ApiError> {
    let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
        let own: PersonRecord = txn
            .get(&key(person))?
            .ok_or(ApiError::NotFound { what: "person" })?;
        let canonical = resolve(txn, person)?;
        // The record named and the one it was merged into, if any.
        let mut group = vec![own];
        if let Some(c) = canonical.filter(|c| c.id != person) {
            group.push(c);
        }
        for mut person in group {
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
                referral: None,
                subject: Some(person.id.clone()),
                detail: Some("identity crypto-shredded; linkage data removed".into()),
            })?;
        }
        Ok(())
    })?;
    Ok(ticket)
}

/// Moves every person to the keys of `to`: codice fiscale pseudonyms, encodings and blocking
/// keys are derived again from each person's sealed identity. The old epoch's index stays whole
/// until every person has moved, so an interrupted rotation leaves the gateway working on the
/// old epoch, and running it again resumes. Linkage ids, and with them every link, do not change.
pub fn rotate(
    store: &crate::store::Store,
    vault: &crate::vault::Vault,
    from: &crate::pseudonym::Pseudonymiser,
    to: &crate::pseudonym::Pseudonymiser,
    encoder: &crate::linkage::Encoder,
    now: OffsetDateTime,
) -> Result<RotationReport, ApiError> {
    let people: Vec<(Vec<u8>, PersonRecord)> = store.scan(b"person/", None, usize::MAX)?;
    let mut report = RotationReport {
        moved: 0,
        without_identity: 0,
        erased: 0,
    };
    for (_, mut person) in people {
        if person.epoch == to.epoch {
            continue;
        }
        let identity: Option<Identity> = match (
            &person.key,
            store.get::<crate::vault::Ciphertext>(&identity_key(&person.id))?,
        ) {
            (Some(key), Some(ct)) => {
                Some(vault.open(key, &person.id, &ct, &identity_context(&person.id))?)
            }
            _ => None,
        };
        if person.key.is_none() {
            report.erased += 1;
        } else if identity.is_none() {
            report.without_identity += 1;
        }
        let cf = identity
            .as_ref()
            .and_then(|i| i.codice_fiscale.as_deref())
            .and_then(|c| to.codice_fiscale(c));
        let prepared = identity
            .as_ref()
            .map(|i| Prepared::new(&LinkRecord::from_identity(i)))
            .filter(|p| !p.names.is_empty());
        let ((), _ticket) = store.write(|txn| -> Result<(), ApiError> {
            if let Some(cf) = &cf {
                txn.put(&cf_key(to.epoch, cf), &person.id)?;
            }
            person.encoding = prepared.as_ref().map(|p| encoder.encode(p, p.birth.year));
            person.blocks = prepared
                .as_ref()
                .map(|p| encoder.blocks(p))
                .unwrap_or_default();
            for b in &person.blocks {
                let mut k = block_prefix(to.epoch, *b);
                k.extend_from_slice(person.id.as_bytes());
                txn.put(&k, &())?;
            }
            person.cf = cf.clone();
            person.epoch = to.epoch;
            txn.put(&key(&person.id), &person)?;
            Ok(())
        })?;
        report.moved += 1;
    }
    // Every person has moved: switch, then drop the old epoch's index.
    let ((), _ticket) = store.write(|txn| -> Result<(), ApiError> {
        txn.put(EPOCH_KEY, &to.epoch)?;
        for prefix in [
            format!("cfidx/{}/", from.epoch),
            format!("blk/{}/", from.epoch),
        ] {
            for k in txn.keys_with_prefix(prefix.as_bytes())? {
                txn.remove(&k);
            }
        }
        txn.audit(crate::store::audit::AuditRecord {
            at: now,
            actor: "operator".into(),
            action: "keys.rotate".into(),
            referral: None,
            subject: None,
            detail: Some(format!(
                "linkage epoch {} -> {}: {} people moved",
                from.epoch, to.epoch, report.moved
            )),
        })?;
        Ok(())
    })?;
    Ok(report)
}

/// Where the store keeps the linkage key epoch in force.
pub const EPOCH_KEY: &[u8] = b"meta/linkage-epoch";

#[derive(Debug, serde::Serialize)]
pub struct RotationReport {
    pub moved: usize,
    /// People registered without an identity to derive from (nothing to re-link by).
    pub without_identity: usize,
    pub erased: usize,
}
