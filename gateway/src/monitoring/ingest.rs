//! Receiving episodes, distributions and street-unit interventions: validated against schema v1,
//! reduced to statistical records at once, filed by (ambito, kind, local id) so that a
//! correction replaces what it corrects.
//!
//! A body is one record or an array of up to `MAX_BATCH`; each record of a batch is accepted or
//! refused on its own (a refusal names the pointer from the batch's root), and the rest goes on.

use super::records::{self, Kind, Reduced};
use crate::problem::ApiError;
use crate::registry::Party;
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::store::{Read, Ticket};
use raccordo_schemas::Entity;
use serde_json::{Value, json};
use time::OffsetDateTime;

pub const MAX_BATCH: usize = 1000;
pub const PREFIX: &[u8] = b"stat/";

/// Where a statistical record is filed: `stat/<kind>/<ambito>/` and the first 16 bytes of the
/// SHA-256 of the local id (it may echo a case number), raw to keep keys short.
pub fn key(kind: Kind, ambito: &str, local_id: &str) -> Vec<u8> {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, local_id.as_bytes());
    let mut k = format!("stat/{}/{ambito}/", kind.as_str()).into_bytes();
    k.extend_from_slice(&digest.as_ref()[..16]);
    k
}

fn entity(kind: Kind) -> Entity {
    match kind {
        Kind::Episode => Entity::Episode,
        Kind::Distribution => Entity::Distribution,
        Kind::Intervention => Entity::Intervention,
    }
}

pub(crate) fn reduce(kind: Kind, body: &Value) -> Result<Reduced, ApiError> {
    raccordo_schemas::validate(entity(kind), body).map_err(ApiError::schema)?;
    let typed = |_| {
        ApiError::violation(
            "schema-violation",
            "The document does not conform to schema v1",
            "",
            "type",
            "the document does not match its type",
        )
    };
    match kind {
        Kind::Episode => {
            records::from_episode(serde_json::from_value(body.clone()).map_err(typed)?)
        }
        Kind::Distribution => {
            records::from_distribution(serde_json::from_value(body.clone()).map_err(typed)?)
        }
        Kind::Intervention => {
            records::from_intervention(serde_json::from_value(body.clone()).map_err(typed)?)
        }
    }
}

/// Files one record; returns whether it replaced an earlier one.
fn file_one(
    state: &AppState,
    caller: &Party,
    kind: Kind,
    body: &Value,
    now: OffsetDateTime,
) -> Result<(bool, Ticket), ApiError> {
    let mut reduced = reduce(kind, body)?;
    if reduced.record.ambito != caller.id {
        return Err(ApiError::Forbidden {
            code: "not-owner",
            message: format!(
                "/ambito must be the calling party ('{}'): an ambito reports only its own services",
                caller.id
            ),
        });
    }
    let monitoring = &state.monitoring;
    let key = key(kind, &caller.id, &reduced.local_id);
    let identity = reduced.person.as_ref().and_then(|p| p.identity.clone());
    let (replaced, ticket) = state.store.write_then(
        |txn| -> Result<(bool, records::StatRecord), ApiError> {
            let subject = match &identity {
                Some(identity) => {
                    let linked = crate::persons::link(state, txn, Some(identity), now)?;
                    let mut person = linked.person;
                    // Interventions are counted as signals (the indicator is a share of
                    // signals): each is its own unit, even when it names a person.
                    reduced.set_unit(if kind == Kind::Intervention {
                        monitoring
                            .units
                            .record(kind.as_str(), &caller.id, &reduced.local_id)
                    } else {
                        monitoring.units.person(&person.id)
                    });
                    if person.ambiti.insert(caller.id.clone()) || linked.new {
                        txn.put(&crate::persons::key(&person.id), &person)?;
                    }
                    Some(person.id)
                }
                None => {
                    reduced.set_unit(monitoring.units.record(
                        kind.as_str(),
                        &caller.id,
                        &reduced.local_id,
                    ));
                    None
                }
            };
            let replaced = txn.get_bytes(&key)?.is_some();
            txn.put_bytes(&key, reduced.record.encode());
            txn.audit(AuditRecord {
                at: now,
                actor: caller.id.clone(),
                action: format!("statistics.{}", kind.as_str()),
                referral: None,
                subject,
                detail: Some(if replaced { "replaced" } else { "recorded" }.into()),
            })?;
            Ok((replaced, reduced.record.clone()))
        },
        |(_, record)| {
            if state.store.is_shared() {
                return;
            }
            if let Ok(mut cube) = monitoring.cube.write() {
                cube.upsert(&key, record);
            }
        },
    )?;
    Ok((replaced.0, ticket))
}

/// What the API answers, and the ticket to wait for before answering (none if nothing was
/// written).
pub struct Outcome {
    pub status: u16,
    pub body: Value,
    pub ticket: Option<Ticket>,
}

pub fn submit(
    state: &AppState,
    caller: &Party,
    kind: Kind,
    body: &Value,
    now: OffsetDateTime,
) -> Result<Outcome, ApiError> {
    let Some(items) = body.as_array() else {
        let (replaced, ticket) = file_one(state, caller, kind, body, now)?;
        return Ok(Outcome {
            status: if replaced { 200 } else { 201 },
            body: json!({"kind": kind.as_str(), "result": if replaced { "replaced" } else { "recorded" }}),
            ticket: Some(ticket),
        });
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::violation(
            "batch-size",
            "A batch holds 1 to 1000 records",
            "",
            "maxItems",
            &format!("send between 1 and {MAX_BATCH} records per request"),
        ));
    }
    let mut results = Vec::with_capacity(items.len());
    let mut last = None;
    let (mut recorded, mut replaced, mut refused) = (0, 0, 0);
    for (i, item) in items.iter().enumerate() {
        match file_one(state, caller, kind, item, now) {
            Ok((was, ticket)) => {
                last = Some(ticket);
                if was {
                    replaced += 1;
                } else {
                    recorded += 1;
                }
                results
                    .push(json!({"index": i, "result": if was { "replaced" } else { "recorded" }}));
            }
            Err(e @ (ApiError::Unavailable | ApiError::Internal)) => return Err(e),
            Err(e) => {
                refused += 1;
                results.push(json!({"index": i, "result": "refused", "problem": e.problem_at(&format!("/{i}"))}));
            }
        }
    }
    Ok(Outcome {
        status: 200,
        body: json!({
            "kind": kind.as_str(),
            "recorded": recorded,
            "replaced": replaced,
            "refused": refused,
            "results": results,
        }),
        ticket: last,
    })
}
