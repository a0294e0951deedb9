//! Releases: the tables of a period, made once and never changed, kept in a ledger.
//!
//! Invariants:
//! - A release is written in one store batch: its tables, its manifest (the SHA-256 of every
//!   table as published), the manifest's signature (Ed25519, a key derived from the master
//!   secret; public key at `GET /v1/releases/signing-key`) and its ledger entry, whose hash
//!   chains to the previous entry. Nothing ever rewrites them: there is no route that could.
//! - Before a new release is written, every cell it shares with an earlier release and that was
//!   computed from the same units and values must publish the same value; otherwise the release
//!   is refused (`release-inconsistent`): a changed perturbation table or key would let an
//!   attacker difference the noise away.
//! - Serving a table recomputes its digest and refuses (`integrity-check-failed`) if it does not
//!   match the signed manifest.

use super::catalogue::Catalogue;
use super::records::day_number;
use super::tables::{self, Input, Period, ReferralFacts, Table};
use crate::problem::ApiError;
use crate::referrals::StoredReferral;
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::store::{Read, Ticket, keys};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use raccordo_schemas::ReferralStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::HashMap;
use time::OffsetDateTime;

const HEAD: &[u8] = b"meta/release-head";
const GENESIS: &str = "raccordo-release-ledger-genesis";

fn entry_key(seq: u64) -> Vec<u8> {
    let mut k = b"release/".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn id_key(id: &str) -> Vec<u8> {
    format!("release-id/{id}").into_bytes()
}

fn table_key(id: &str, indicator: &str) -> Vec<u8> {
    format!("release-table/{id}/{indicator}").into_bytes()
}

/// The key releases are signed with.
pub struct Signer {
    pair: Ed25519KeyPair,
    kid: String,
}

impl Signer {
    pub fn new(seed: &[u8; 32]) -> Option<Signer> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).ok()?;
        let kid = crate::canonical::sha256_hex(pair.public_key().as_ref())[..16].to_owned();
        Some(Signer { pair, kid })
    }

    /// The public key as a JWK (RFC 8037).
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": self.kid,
            "x": B64.encode(self.pair.public_key().as_ref()),
        })
    }

    /// A compact JWS (EdDSA) over the canonical form of `payload`.
    pub fn sign(&self, payload: &Value) -> String {
        let header = json!({"alg": "EdDSA", "typ": "raccordo-release+jws", "kid": self.kid});
        let input = format!(
            "{}.{}",
            B64.encode(crate::canonical::bytes(&header)),
            B64.encode(crate::canonical::bytes(payload))
        );
        let signature = self.pair.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature.as_ref()))
    }
}

/// A ledger entry as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub id: String,
    pub period: String,
    pub manifest: Value,
    pub signature: String,
    /// SHA-256 of (previous entry's hash, this signature).
    pub hash: String,
    pub previous: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    seq: u64,
    hash: String,
}

/// What a release is computed from beside the statistical records (which are in the cube).
pub struct Loaded {
    pub referrals: Vec<ReferralFacts>,
    pub places: HashMap<(String, String), u64>,
}

/// Reads the statistical records, the referrals and the published places.
pub fn load(state: &AppState) -> Result<Loaded, ApiError> {
    let mut referrals = Vec::new();
    state.store.visit_prefix(keys::REFERRAL, |_, v| {
        let r: StoredReferral = serde_json::from_slice(v)?;
        referrals.push(facts(state, &r));
        Ok(())
    })?;
    let mut places = HashMap::new();
    state
        .store
        .visit_prefix(&keys::structure_prefix(), |_, v| {
            let s: raccordo_schemas::Structure = serde_json::from_slice(v)?;
            if let Some(c) = &s.capacity {
                *places
                    .entry((s.ambito.clone(), s.service_type.clone()))
                    .or_insert(0) += u64::from(c.places);
            }
            Ok(())
        })?;
    Ok(Loaded { referrals, places })
}

/// What the monitoring takes from a referral: when it was sent, accepted or rejected, and its
/// receiver's first response; each referral is its own unit.
pub fn facts(state: &AppState, r: &StoredReferral) -> ReferralFacts {
    let at = |s: ReferralStatus| {
        r.status_history
            .iter()
            .find(|e| e.status == s)
            .map(|e| e.at)
    };
    let sent = at(ReferralStatus::Requested);
    let accepted = at(ReferralStatus::Accepted);
    let minutes = |from: Option<OffsetDateTime>, to: Option<OffsetDateTime>| {
        Some(u32::try_from((to? - from?).whole_minutes().max(0)).unwrap_or(u32::MAX))
    };
    let day = |t: OffsetDateTime| day_number(t.to_offset(super::records::rome_offset(t)).date());
    let unit = state.monitoring.units.record("referral", &r.sender, &r.id);
    ReferralFacts {
        fingerprint: unit.fingerprint,
        key: unit.key,
        sender: r.sender.clone(),
        receiver: r.receiver.clone(),
        urgency: r.urgency.as_str().to_owned(),
        sent_day: sent.map(day),
        accepted_day: accepted.map(day),
        rejected_day: at(ReferralStatus::Rejected).map(day),
        minutes_to_acceptance: minutes(sent, accepted),
        minutes_to_first_response: minutes(sent, r.first_response_at),
        sex: r.profile.sex.clone(),
        age_band: r.profile.age_band.clone(),
        citizenship_group: r.profile.citizenship_group.clone(),
        ethos_light: raccordo_schemas::codelist::ethos_light(&r.profile.ethos).map(str::to_owned),
    }
}

/// The ambiti tables list, in registry order.
pub fn ambiti(state: &AppState) -> Vec<String> {
    state.registry.ambito_ids()
}

/// The form of a table its digest is over: its SDMX-CSV, exactly as
/// `GET /v1/releases/{id}/data?indicator=<id>` serves it, so that anyone can check it.
pub fn published_bytes(catalogue: &Catalogue, table: &Table) -> Vec<u8> {
    super::formats::sdmx_csv(catalogue, std::slice::from_ref(table))
}

fn bad_period() -> ApiError {
    ApiError::violation(
        "invalid-period",
        "The period is not one a release can be made for",
        "/period",
        "pattern",
        "a year (e.g. 2026) or a quarter (e.g. 2026-Q3), between 2000 and 2100",
    )
}

/// Computes the tables of `period` from what the store holds now.
pub fn compute(
    state: &AppState,
    periods: &[Period],
    now: OffsetDateTime,
) -> Result<(Vec<Table>, Value), ApiError> {
    let loaded = load(state)?;
    let ambiti = ambiti(state);
    let m = &state.monitoring;
    // A copy of the cube's rows, so that ingest goes on while the tables are computed. When
    // other gateways write to the same store, this one's cube misses their records: the
    // tables are then computed from the store itself.
    let (records, record_ambiti) = if state.store.is_shared() {
        super::cube::Cube::load(&state.store, m.threads)?.into_parts()
    } else {
        let cube = m.cube.read().map_err(|_| ApiError::Internal)?;
        (cube.rows().to_vec(), cube.ambiti().to_vec())
    };
    let input = Input {
        records: &records,
        record_ambiti: &record_ambiti,
        referrals: &loaded.referrals,
        places: &loaded.places,
        ambiti: &ambiti,
        periods,
        as_of: day_number(now.date()),
    };
    let tables = tables::compute(&m.catalogue, &input, &m.ptable, m.protection, m.threads);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &records {
        *counts.entry(r.kind.as_str()).or_default() += 1;
    }
    let inputs = json!({
        "episodes": counts.get("episode").copied().unwrap_or(0),
        "distributions": counts.get("distribution").copied().unwrap_or(0),
        "interventions": counts.get("intervention").copied().unwrap_or(0),
        "referrals": loaded.referrals.len(),
    });
    Ok((tables, inputs))
}

/// Compares the new tables with every earlier release: where a cell was computed from the same
/// units and values, the published value must be the same.
/// Also returns the latest earlier release of `period`, which the new one revises: both come
/// from one pass over the ledger.
fn consistency<R: Read>(
    reader: &R,
    tables: &[Table],
    period: &str,
) -> Result<(Value, Option<String>), ApiError> {
    type CellKey = (
        String,
        String,
        String,
        Option<(super::catalogue::Dim, String)>,
    );
    let mut earlier: HashMap<CellKey, (u64, Option<f64>)> = HashMap::new();
    let mut releases = 0;
    let mut revision_of = None;
    for k in reader.keys_with_prefix(b"release/")? {
        let Some(entry) = reader.get::<Entry>(&k)? else {
            continue;
        };
        releases += 1;
        if entry.period == period {
            revision_of = Some(entry.id.clone());
        }
        for t in tables {
            let Some(old) = reader.get::<Table>(&table_key(&entry.id, &t.indicator))? else {
                continue;
            };
            for (o, input) in old.observations.iter().zip(&old.inputs) {
                earlier.insert(
                    (
                        t.indicator.clone(),
                        o.ambito.clone(),
                        o.time_period.clone(),
                        o.breakdown.clone(),
                    ),
                    (*input, o.value),
                );
            }
        }
    }
    let (mut compared, mut unchanged, mut differing) = (0u64, 0u64, Vec::new());
    for t in tables {
        for (o, input) in t.observations.iter().zip(&t.inputs) {
            let key = (
                t.indicator.clone(),
                o.ambito.clone(),
                o.time_period.clone(),
                o.breakdown.clone(),
            );
            if let Some((old_input, old_value)) = earlier.get(&key) {
                compared += 1;
                if old_input == input {
                    unchanged += 1;
                    if *old_value != o.value {
                        differing.push(format!("{} {} {}", t.indicator, o.ambito, o.time_period));
                    }
                }
            }
        }
    }
    if !differing.is_empty() {
        return Err(ApiError::Conflict {
            code: "release-inconsistent",
            message: format!(
                "{} unchanged cells would publish a different value than in an earlier release (first: {}); the perturbation settings or keys changed since then, and publishing would let the noise be differenced away",
                differing.len(),
                differing[0]
            ),
        });
    }
    Ok((
        json!({
            "earlier_releases": releases,
            "cells_compared": compared,
            "cells_unchanged": unchanged,
            "unchanged_cells_kept_their_values": true,
        }),
        revision_of,
    ))
}

/// Makes a release of `period`; returns its ledger entry.
pub fn create(
    state: &AppState,
    created_by: &str,
    body: &Value,
    now: OffsetDateTime,
) -> Result<(Entry, Ticket), ApiError> {
    let period = match body.get("period") {
        Some(Value::String(p)) => p.as_str(),
        Some(_) => {
            return Err(ApiError::violation(
                "schema-violation",
                "The document does not conform to schema v1",
                "/period",
                "type",
                "'period' is a string: a year (\"2026\") or a quarter (\"2026-Q3\")",
            ));
        }
        None => {
            return Err(ApiError::violation(
                "schema-violation",
                "The document does not conform to schema v1",
                "",
                "required",
                "'period' is required: a year (2026) or a quarter (2026-Q3)",
            ));
        }
    };
    if let Some(extra) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "period"))
    {
        return Err(ApiError::violation(
            "schema-violation",
            "The document does not conform to schema v1",
            &format!("/{extra}"),
            "additionalProperties",
            "only 'period' may be given",
        ));
    }
    let periods = tables::periods(period).ok_or_else(bad_period)?;
    let (tables, inputs) = compute(state, &periods, now)?;
    let m = &state.monitoring;
    let id = uuid::Uuid::new_v4().to_string();
    let summaries: Vec<Value> = tables
        .iter()
        .map(|t| {
            json!({
                "indicator": t.indicator,
                "observations": t.observations.len(),
                "sha256": crate::canonical::sha256_hex(&published_bytes(&m.catalogue, t)),
            })
        })
        .collect();
    let created_at = now
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::Internal)?;
    state.store.write(|txn| -> Result<Entry, ApiError> {
        let (checked, revision_of) = consistency(txn, &tables, period)?;
        let head = txn.get::<Head>(HEAD)?.unwrap_or(Head {
            seq: 0,
            hash: GENESIS.to_owned(),
        });
        let seq = head.seq + 1;
        let manifest = json!({
            "format": "raccordo-release/1",
            "id": id,
            "seq": seq,
            "period": period,
            "time_periods": periods.iter().map(|p| p.label.clone()).collect::<Vec<_>>(),
            "created_at": created_at,
            "created_by": created_by,
            "revision_of": revision_of,
            "catalogue": {
                "id": m.catalogue.id,
                "version": m.catalogue.version,
                "sha256": m.catalogue.digest(),
            },
            "disclosure_control": {
                "method": "cell-key",
                "key_range": "2^32",
                "threshold": m.ptable.params.threshold,
                "max_noise": m.ptable.params.max_noise,
                "variance": m.ptable.params.variance,
                "magnitude_noise": m.protection.magnitude_noise,
                "ptable_sha256": m.ptable.digest(),
            },
            "inputs": inputs,
            "tables": summaries,
            "consistency": checked,
            "ledger_previous": head.hash,
        });
        let signature = m.signer.sign(&manifest);
        let hash = crate::canonical::sha256_hex(format!("{}\n{signature}", head.hash).as_bytes());
        let entry = Entry {
            seq,
            id: id.clone(),
            period: period.to_owned(),
            manifest,
            signature,
            hash: hash.clone(),
            previous: head.hash,
        };
        for t in &tables {
            txn.put(&table_key(&id, &t.indicator), t)?;
        }
        txn.put(&entry_key(seq), &entry)?;
        txn.put(&id_key(&id), &seq)?;
        txn.put(HEAD, &Head { seq, hash })?;
        txn.audit(AuditRecord {
            at: now,
            actor: created_by.to_owned(),
            action: "release.create".into(),
            referral: None,
            subject: None,
            detail: Some(format!("release {id} of {period}, ledger entry {seq}")),
        })?;
        Ok(entry)
    })
}

pub fn entry(state: &AppState, id: &str) -> Result<Entry, ApiError> {
    let seq: Option<u64> = state.store.get(&id_key(id))?;
    let seq = seq.ok_or(ApiError::NotFound { what: "release" })?;
    state
        .store
        .get::<Entry>(&entry_key(seq))?
        .ok_or(ApiError::NotFound { what: "release" })
}

/// The ledger, oldest first, each entry checked against the one before.
pub fn list(state: &AppState) -> Result<(Vec<Entry>, bool), ApiError> {
    let entries: Vec<Entry> = state
        .store
        .scan::<Entry>(b"release/", None, usize::MAX)?
        .into_iter()
        .map(|(_, e)| e)
        .collect();
    let verified = verify_chain(&entries);
    Ok((entries, verified))
}

/// Whether every entry chains to the one before and hashes to what it says.
pub fn verify_chain(entries: &[Entry]) -> bool {
    let mut previous = GENESIS.to_owned();
    for e in entries {
        let hash =
            crate::canonical::sha256_hex(format!("{}\n{}", e.previous, e.signature).as_bytes());
        if e.previous != previous || e.hash != hash || e.manifest["ledger_previous"] != previous {
            return false;
        }
        previous = e.hash.clone();
    }
    true
}

/// The tables of a release, each checked against the signed manifest.
pub fn tables_of(state: &AppState, entry: &Entry) -> Result<Vec<Table>, ApiError> {
    let mut out = Vec::new();
    let listed = entry.manifest["tables"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for t in listed {
        let indicator = t["indicator"].as_str().unwrap_or_default();
        let table: Table = state
            .store
            .get(&table_key(&entry.id, indicator))?
            .ok_or_else(|| ApiError::Integrity {
                message: format!("table {indicator} of this release is missing"),
            })?;
        if crate::canonical::sha256_hex(&published_bytes(&state.monitoring.catalogue, &table))
            != t["sha256"].as_str().unwrap_or("")
        {
            tracing::error!(release = %entry.id, indicator, "release table does not match its signed digest");
            return Err(ApiError::Integrity {
                message: format!(
                    "table {indicator} does not match the digest in the signed manifest; it must not be published"
                ),
            });
        }
        out.push(table);
    }
    Ok(out)
}

pub fn period_of(entry: &Entry) -> Vec<String> {
    entry.manifest["time_periods"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
