//! The consent registry. A consent given for a referral is registered when the referral is
//! created; the policy decision point reads the registry, so a withdrawal takes effect on the
//! next release. Withdrawing puts the referrals that relied on the consent on hold and tells every
//! ambito that received data through them.

use crate::lifecycle;
use crate::problem::ApiError;
use crate::referrals::{InboxEvent, StoredReferral};
use crate::registry::Party;
use crate::state::AppState;
use crate::store::Read;
use crate::store::audit::AuditRecord;
use crate::store::{Ticket, WriteTxn, keys};
use raccordo_schemas::{ConsentStatus, LegalBasis, LegalBasisKind, ReferralStatus, StatusEntry};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub id: String,
    /// The person's linkage id.
    pub person: String,
    pub recorded_by: String,
    pub basis: LegalBasis,
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub withdrawn_at: Option<OffsetDateTime>,
}

pub fn key(id: &str) -> Vec<u8> {
    format!("consent/{id}").into_bytes()
}

fn reliance_prefix(consent: &str) -> Vec<u8> {
    format!("consent-ref/{consent}/").into_bytes()
}

/// Registers a consent for `person`; `referral` relies on it when given.
pub fn register(
    txn: &mut WriteTxn<'_>,
    person: &str,
    recorded_by: &str,
    basis: &LegalBasis,
    referral: Option<&str>,
    now: OffsetDateTime,
) -> Result<String, ApiError> {
    let id = crate::record_id::new(now);
    let record = ConsentRecord {
        id: id.clone(),
        person: person.to_owned(),
        recorded_by: recorded_by.to_owned(),
        basis: basis.clone(),
        recorded_at: now,
        withdrawn_at: None,
    };
    txn.put(&key(&id), &record)?;
    if let Some(r) = referral {
        let mut k = reliance_prefix(&id);
        k.extend_from_slice(r.as_bytes());
        txn.put(&k, &())?;
    }
    txn.audit(AuditRecord {
        at: now,
        actor: recorded_by.to_owned(),
        action: "consent.register".into(),
        referral: referral.map(str::to_owned),
        subject: Some(person.to_owned()),
        detail: None,
    })?;
    Ok(id)
}

/// The legal basis in force for a referral now: its registered consent as it stands (withdrawn
/// or not), or the non-consent basis it was sent with.
pub fn effective_basis(
    state: &AppState,
    referral: &StoredReferral,
) -> Result<LegalBasis, ApiError> {
    match &referral.consent {
        Some(id) => {
            let record: ConsentRecord = state.store.get(&key(id))?.ok_or(ApiError::Internal)?;
            let mut basis = record.basis;
            if record.withdrawn_at.is_some() {
                basis.status = Some(ConsentStatus::Withdrawn);
            }
            Ok(basis)
        }
        None => Ok(referral.legal_basis.clone()),
    }
}

fn visible(record: &ConsentRecord, caller: &Party) -> bool {
    record.recorded_by == caller.id || caller.kind == crate::config::PartyKind::Region
}

/// POST /v1/consents: a consent recorded by an ambito outside a referral.
pub fn record(
    state: &AppState,
    caller: &Party,
    body: &Value,
    now: OffsetDateTime,
) -> Result<(Value, Ticket), ApiError> {
    let obj = body.as_object().ok_or_else(|| {
        ApiError::violation(
            "schema-violation",
            "The consent is malformed",
            "",
            "type",
            "the body must be an object",
        )
    })?;
    if let Some(k) = obj.keys().find(|k| *k != "person" && *k != "consent") {
        return Err(ApiError::violation(
            "schema-violation",
            "The consent is malformed",
            &format!("/{k}"),
            "additionalProperties",
            "only 'person' and 'consent' are allowed",
        ));
    }

    let person = obj.get("person").cloned().unwrap_or(Value::Null);
    raccordo_schemas::validate(raccordo_schemas::Entity::Person, &person)
        .map_err(|v| ApiError::schema_at("/person", v))?;
    let consent = obj.get("consent").cloned().unwrap_or(Value::Null);
    raccordo_schemas::validate(raccordo_schemas::Entity::Consent, &consent)
        .map_err(|v| ApiError::schema_at("/consent", v))?;
    let person: raccordo_schemas::Person =
        serde_json::from_value(person).map_err(|_| ApiError::Internal)?;
    let basis: LegalBasis = serde_json::from_value(consent).map_err(|_| ApiError::Internal)?;
    if basis.basis != LegalBasisKind::Consent {
        return Err(ApiError::violation(
            "schema-violation",
            "Only consents are registered",
            "/consent/basis",
            "const",
            "the registry holds consents; other legal bases come from the policy table",
        ));
    }
    if person.identity.is_none() {
        return Err(ApiError::violation(
            "schema-violation",
            "A consent needs the person's identity",
            "/person/identity",
            "required",
            "the registry links the consent to the person by identity",
        ));
    }
    let ((id, person_id), ticket) =
        state
            .store
            .write(|txn| -> Result<(String, String), ApiError> {
                let linked = crate::persons::link(state, txn, person.identity.as_ref(), now)?;
                let mut p = linked.person;
                p.ambiti.insert(caller.id.clone());
                txn.put(&crate::persons::key(&p.id), &p)?;
                let id = register(txn, &p.id, &caller.id, &basis, None, now)?;
                Ok((id, p.id))
            })?;
    let person_ref = state.pseudonyms.for_ambito(&caller.id, &person_id)?;
    Ok((
        json!({"id": id, "person_ref": person_ref, "status": basis.status, "recorded_at": fmt(now)}),
        ticket,
    ))
}

fn fmt(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// GET /v1/consents/{id}: for the ambito that recorded it and the Region.
pub fn get(state: &AppState, caller: &Party, id: &str) -> Result<Value, ApiError> {
    let record: ConsentRecord = state
        .store
        .get(&key(id))?
        .ok_or(ApiError::NotFound { what: "consent" })?;
    if !visible(&record, caller) {
        return Err(ApiError::NotFound { what: "consent" });
    }
    let relying: Vec<(Vec<u8>, ())> = state.store.scan(&reliance_prefix(id), None, usize::MAX)?;
    let mut basis = record.basis.clone();
    if record.withdrawn_at.is_some() {
        basis.status = Some(ConsentStatus::Withdrawn);
    }
    Ok(json!({
        "id": record.id,
        "person_ref": state.pseudonyms.for_ambito(&caller.id, &record.person)?,
        "consent": basis,
        "recorded_by": record.recorded_by,
        "recorded_at": fmt(record.recorded_at),
        "withdrawn_at": record.withdrawn_at.map(fmt),
        "referrals_relying": relying.len(),
    }))
}

/// POST /v1/consents/{id}/withdraw: takes effect at once.
pub fn withdraw(
    state: &AppState,
    caller: &Party,
    id: &str,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<(Value, Ticket), ApiError> {
    let reason = reason.unwrap_or_else(|| "consent withdrawn".into());
    let (held, ticket) = state.store.write(
        |txn| -> Result<Vec<(ReferralStatus, ReferralStatus)>, ApiError> {
            let mut record: ConsentRecord = txn
                .get(&key(id))?
                .ok_or(ApiError::NotFound { what: "consent" })?;
            if !visible(&record, caller) {
                return Err(ApiError::NotFound { what: "consent" });
            }
            if record.withdrawn_at.is_some() {
                return Ok(vec![]);
            }
            record.withdrawn_at = Some(now);
            txn.put(&key(id), &record)?;
            txn.audit(AuditRecord {
                at: now,
                actor: caller.id.clone(),
                action: "consent.withdraw".into(),
                referral: None,
                subject: Some(record.person.clone()),
                detail: Some(reason.clone()),
            })?;
            let prefix = reliance_prefix(id);
            let mut moved = Vec::new();
            for k in txn.keys_with_prefix(&prefix)? {
                let Ok(rid) = std::str::from_utf8(&k[prefix.len()..]) else {
                    continue;
                };
                let Some(mut referral) = txn.get::<StoredReferral>(&keys::referral(rid))? else {
                    continue;
                };
                let from = referral.status;
                let hold = lifecycle::held_on_withdrawal(from);
                if hold {
                    referral.status = ReferralStatus::OnHold;
                    referral.status_history.push(StatusEntry {
                        status: ReferralStatus::OnHold,
                        at: now,
                        by: "gateway".into(),
                        reason: Some(format!("consent withdrawn: {reason}")),
                    });
                    if lifecycle::awaits_response(from) {
                        txn.remove(&keys::awaiting(rid));
                    }
                    txn.put(&keys::referral(rid), &referral)?;
                    moved.push((from, ReferralStatus::OnHold));
                }
                // Both parties hear of it, whether or not the referral could still move.
                for party in [&referral.sender, &referral.receiver] {
                    if *party == referral.receiver && from == ReferralStatus::Draft {
                        continue;
                    }
                    let seq = txn.next_seq();
                    txn.put(
                        &keys::inbox(party, seq),
                        &InboxEvent {
                            kind: "consent.withdrawn".into(),
                            referral: rid.to_owned(),
                            status: referral.status,
                            previous_status: hold.then_some(from),
                            by: "gateway".into(),
                            at: now,
                            reason: Some(reason.clone()),
                        },
                    )?;
                }
                txn.audit(AuditRecord {
                    at: now,
                    actor: "gateway".into(),
                    action: "referral.status".into(),
                    referral: Some(rid.to_owned()),
                    subject: Some(record.person.clone()),
                    detail: Some(if hold {
                        format!("{} -> on-hold: consent withdrawn", from.as_str())
                    } else {
                        "consent withdrawn; status unchanged".into()
                    }),
                })?;
            }
            Ok(moved)
        },
    )?;
    for (from, to) in &held {
        state.metrics.referral_moved(Some(*from), *to);
    }
    Ok((
        json!({"id": id, "status": "withdrawn", "referrals_on_hold": held.len()}),
        ticket,
    ))
}
