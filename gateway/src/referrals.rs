//! Referrals: creation, the two views, status moves and history.
//!
//! At ingress the person's identity is split from the referral: the stored record holds the
//! pseudonym and the non-identifying profile; the identity, the free-text reason and the
//! sender's local case reference are sealed in the vault and opened only for the sender and,
//! once it has accepted and the legal basis covers identity, the receiver.

use crate::lifecycle::{self, MoveError, Side};
use crate::policy::Release;
use crate::problem::ApiError;
use crate::registry::Party;
use crate::state::AppState;
use crate::store::Read;
use crate::store::audit::AuditRecord;
use crate::store::{WriteTxn, keys};
use crate::vault::Ciphertext;
use raccordo_schemas::{
    Code, DataCategory, Entity, Identity, LegalBasis, Person, Profile, Purpose, Referral,
    ReferralStatus, StatusEntry, Urgency,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// A referral as stored: nothing in it identifies the person.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredReferral {
    pub id: String,
    pub sender: String,
    pub receiver: String,
    pub urgency: Urgency,
    pub requested_services: Vec<Code>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_structure: Option<String>,
    pub legal_basis: LegalBasis,
    /// The person's regional linkage id (never leaves the gateway).
    pub person: String,
    /// The consent registered from the legal basis, when the basis is consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
    pub profile: Profile,
    pub status: ReferralStatus,
    pub status_history: Vec<StatusEntry>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub first_response_at: Option<OffsetDateTime>,
}

/// What the vault holds for a referral.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sealed {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_case_ref: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdempotencyRecord {
    referral: String,
    body_digest: String,
}

/// An event in a party's inbox, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub referral: String,
    pub status: ReferralStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<ReferralStatus>,
    pub by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The view a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Full,
    Triage,
}

impl View {
    pub fn as_str(self) -> &'static str {
        match self {
            View::Full => "full",
            View::Triage => "triage",
        }
    }
}

const READ_ONLY: [&str; 6] = [
    "id",
    "status",
    "status_history",
    "created_at",
    "due_at",
    "overdue",
];

pub struct Created {
    pub referral: Value,
    pub id: String,
    pub replayed: bool,
}

impl StoredReferral {
    pub fn side_of(&self, party: &str) -> Option<Side> {
        if party == self.sender {
            Some(Side::Sender)
        } else if party == self.receiver && self.status != ReferralStatus::Draft {
            // Drafts are the sender's alone.
            Some(Side::Receiver)
        } else {
            None
        }
    }

    pub fn overdue(&self, now: OffsetDateTime) -> bool {
        lifecycle::awaits_response(self.status) && now > self.due_at
    }

    fn history_statuses(&self) -> Vec<ReferralStatus> {
        self.status_history.iter().map(|e| e.status).collect()
    }

    /// The triage view: what the receiver needs to decide, without identity or free text.
    pub fn triage(&self, now: OffsetDateTime) -> Value {
        serde_json::json!({
            "id": self.id,
            "sender": self.sender,
            "receiver": self.receiver,
            "urgency": self.urgency,
            "requested_services": self.requested_services,
            "target_structure": self.target_structure,
            "profile": self.profile,
            "status": self.status,
            "status_history": self.status_history,
            "created_at": rfc3339(self.created_at),
            "due_at": rfc3339(self.due_at),
            "overdue": self.overdue(now),
        })
    }

    /// The full view, in the shape of schema v1's referral, with the person's pseudonym in the
    /// viewer's domain.
    pub fn full(
        &self,
        sealed: Sealed,
        with_identity: bool,
        person_ref: String,
        now: OffsetDateTime,
    ) -> Result<Value, ApiError> {
        let referral = Referral {
            id: Some(self.id.clone()),
            sender: self.sender.clone(),
            receiver: self.receiver.clone(),
            urgency: self.urgency,
            requested_services: self.requested_services.clone(),
            target_structure: self.target_structure.clone(),
            reason: sealed.reason,
            local_case_ref: sealed.local_case_ref,
            legal_basis: self.legal_basis.clone(),
            person: Person {
                identity: if with_identity { sealed.identity } else { None },
                profile: self.profile.clone(),
            },
            status: Some(self.status),
            status_history: self.status_history.clone(),
            created_at: Some(self.created_at),
            due_at: Some(self.due_at),
            overdue: Some(self.overdue(now)),
            person_ref: Some(person_ref),
            consent_id: self.consent.clone(),
        };
        serde_json::to_value(referral).map_err(|_| ApiError::Internal)
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Parses a JSON body, reporting where it breaks.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson {
        line: e.line(),
        column: e.column(),
        message: match e.classify() {
            serde_json::error::Category::Eof => "the document ends early".into(),
            serde_json::error::Category::Syntax => "syntax error".into(),
            serde_json::error::Category::Data => "unexpected value".into(),
            serde_json::error::Category::Io => "read error".into(),
        },
    })
}

/// The idempotency key as stored: a digest, because keys may be made from local record ids.
fn idempotency_digest(key: &str) -> String {
    crate::pki::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes()).as_ref())
}

/// How a referral is to be created.
#[derive(Default)]
pub struct Options<'a> {
    pub idempotency_key: Option<&'a str>,
    pub as_draft: bool,
    /// The verified ModI signature of the request, kept as evidence.
    pub signature: Option<crate::signature::Verified>,
}

/// A referral body as sent, checked: no read-only member, valid against schema v1, and of the
/// referral type. What [`create`] does first with outside input (and what the fuzz targets run).
pub(crate) fn checked_input(body: &Value) -> Result<Referral, ApiError> {
    let read_only: Vec<_> = READ_ONLY
        .iter()
        .filter(|f| body.get(**f).is_some())
        .map(|f| raccordo_schemas::SchemaViolation {
            pointer: format!("/{f}"),
            keyword: "readOnly".into(),
            message: format!("'{f}' is set by the gateway; leave it out"),
        })
        .collect();
    if !read_only.is_empty() {
        return Err(ApiError::schema(read_only));
    }
    raccordo_schemas::validate(Entity::Referral, body).map_err(ApiError::schema)?;
    serde_json::from_value(body.clone()).map_err(|_| {
        ApiError::violation(
            "schema-violation",
            "The document does not conform to schema v1",
            "",
            "type",
            "the document does not match the referral type",
        )
    })
}

pub fn create(
    state: &AppState,
    caller: &Party,
    body: &Value,
    options: Options<'_>,
    now: OffsetDateTime,
) -> Result<(Created, crate::store::Ticket), ApiError> {
    let Options {
        idempotency_key,
        as_draft,
        signature,
    } = options;
    let input = checked_input(body)?;
    if input.sender != caller.id {
        return Err(ApiError::Forbidden {
            code: "sender-mismatch",
            message: format!(
                "/sender must be the calling party ('{}'): a party sends referrals only in its own name",
                caller.id
            ),
        });
    }
    if !state.registry.is_ambito(&input.receiver) {
        return Err(ApiError::violation(
            "unknown-receiver",
            "The receiver is not an ambito of the network",
            "/receiver",
            "x-registry",
            "the receiver must be an ambito in the gateway's registry",
        ));
    }
    if let Some(structure) = &input.target_structure
        && state
            .store
            .get_bytes(&keys::structure(&input.receiver, structure))?
            .is_none()
    {
        return Err(ApiError::violation(
            "unknown-structure",
            "The target structure is not published by the receiver",
            "/target_structure",
            "x-registry",
            "the receiver has published no structure with this id",
        ));
    }
    let initial = if as_draft {
        ReferralStatus::Draft
    } else {
        ReferralStatus::Requested
    };
    if initial == ReferralStatus::Requested {
        require_basis(state, &input.legal_basis, &input.receiver, now)?;
    }
    let body_digest = crate::canonical::digest(body);
    let idem_key = idempotency_key.map(|k| keys::idempotency(&caller.id, &idempotency_digest(k)));

    let id = crate::record_id::new(now);
    let due_at = now + state.service_levels.for_urgency(input.urgency);
    let sensitive = Sealed {
        identity: input.person.identity.clone(),
        reason: input.reason.clone(),
        local_case_ref: input.local_case_ref.clone(),
    };

    let (outcome, ticket) = state.store.write(|txn| -> Result<Result<StoredReferral, String>, ApiError> {
        if let Some(key) = &idem_key
            && let Some(previous) = txn.get::<IdempotencyRecord>(key)?
        {
            if previous.body_digest != body_digest {
                return Err(ApiError::Conflict {
                    code: "idempotency-key-reused",
                    message: "this Idempotency-Key was already used with a different body; use a new key for a new referral".into(),
                });
            }
            return Ok(Err(previous.referral));
        }
        if let Some(sig) = &signature {
            let jti = keys::jti(&caller.id, &sig.jti_digest);
            if txn.get::<i64>(&jti)?.is_some() {
                return Err(ApiError::Conflict {
                    code: "signature-replayed",
                    message: "this jti was already used: every signed request needs a new one".into(),
                });
            }
            txn.put(&jti, &sig.expires)?;
            txn.put(&keys::evidence(&id), &sig.token)?;
        }
        let linked = crate::persons::link(state, txn, input.person.identity.as_ref(), now)?;
        let mut person = linked.person;
        let person_key = person.key.clone().ok_or(ApiError::Internal)?;
        let sealed = state.vault.seal(&person_key, &person.id, &sensitive, &id)?;
        let consent = match input.legal_basis.basis {
            raccordo_schemas::LegalBasisKind::Consent => Some(crate::consents::register(
                txn,
                &person.id,
                &caller.id,
                &input.legal_basis,
                Some(&id),
                now,
            )?),
            _ => None,
        };
        let stored = StoredReferral {
            id: id.clone(),
            sender: input.sender.clone(),
            receiver: input.receiver.clone(),
            urgency: input.urgency,
            requested_services: input.requested_services.clone(),
            target_structure: input.target_structure.clone(),
            legal_basis: input.legal_basis.clone(),
            person: person.id.clone(),
            consent,
            profile: input.person.profile.clone(),
            status: initial,
            status_history: vec![StatusEntry { status: initial, at: now, by: caller.id.clone(), reason: None }],
            created_at: now,
            due_at,
            first_response_at: None,
        };
        txn.put(&keys::referral(&id), &stored)?;
        txn.put(&keys::vault(&id), &sealed)?;
        txn.put(&keys::person_referral(&person.id, &id), &())?;
        if let Some(key) = &idem_key {
            txn.put(key, &IdempotencyRecord { referral: id.clone(), body_digest: body_digest.clone() })?;
        }
        if initial == ReferralStatus::Requested {
            notify(txn, &stored.receiver, &stored, None, None, now)?;
            txn.put(&keys::awaiting(&id), &(stored.urgency, stored.due_at.unix_timestamp()))?;
        }
        let known_to = person.ambiti.len();
        person.ambiti.insert(stored.sender.clone());
        person.ambiti.insert(stored.receiver.clone());
        // The person record carries the encodings: rewrite it only when something changed.
        if linked.new || person.ambiti.len() != known_to {
            txn.put(&crate::persons::key(&person.id), &person)?;
        }
        txn.audit(AuditRecord {
            at: now,
            actor: caller.id.clone(),
            action: "referral.create".into(),
            referral: Some(id.clone()),
            subject: Some(person.id.clone()),
            detail: Some(format!(
                "status {} to {}; person {}",
                initial.as_str(),
                stored.receiver,
                if linked.new { "new" } else { "already known" }
            )),
        })?;
        if let Some(review) = &linked.review {
            txn.audit(AuditRecord {
                at: now,
                actor: "gateway".into(),
                action: "linkage.review-opened".into(),
                referral: Some(id.clone()),
                subject: Some(person.id.clone()),
                detail: Some(format!("review {} against {} (score {:.3})", review.id, review.candidate, review.score)),
            })?;
        }
        Ok(Ok(stored))
    })?;
    match outcome {
        Ok(stored) => {
            state.metrics.referral_moved(None, stored.status);
            let person_ref = state.pseudonyms.for_ambito(&caller.id, &stored.person)?;
            let full = stored.full(sensitive, true, person_ref, now)?;
            Ok((
                Created {
                    referral: full,
                    id,
                    replayed: false,
                },
                ticket,
            ))
        }
        Err(existing) => {
            let (view, _, ticket) = read(state, caller, &existing, now)?;
            Ok((
                Created {
                    referral: view,
                    id: existing,
                    replayed: true,
                },
                ticket,
            ))
        }
    }
}

fn require_basis(
    state: &AppState,
    basis: &LegalBasis,
    receiver: &str,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    let decision = state.policy.decide(
        basis,
        Release {
            purpose: Purpose::Referral,
            recipient: receiver,
            category: DataCategory::Social,
            today: now.date(),
        },
    );
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::violation(
            "legal-basis-insufficient",
            "The legal basis does not cover this referral",
            "/legal_basis",
            "x-policy",
            &decision.reason,
        ))
    }
}

/// Appends an inbox event for `to`.
fn notify(
    txn: &mut WriteTxn<'_>,
    to: &str,
    referral: &StoredReferral,
    previous: Option<ReferralStatus>,
    reason: Option<String>,
    now: OffsetDateTime,
) -> Result<(), ApiError> {
    let seq = txn.next_seq();
    let by = referral
        .status_history
        .last()
        .map(|e| e.by.clone())
        .unwrap_or_default();
    let event = InboxEvent {
        kind: if previous.is_none() || previous == Some(ReferralStatus::Draft) {
            "referral.requested".into()
        } else {
            "referral.status-changed".into()
        },
        referral: referral.id.clone(),
        status: referral.status,
        previous_status: previous,
        by,
        at: now,
        reason,
    };
    txn.put(&keys::inbox(to, seq), &event)?;
    Ok(())
}

/// Reads a referral as `caller` may see it; the read is audited, and the returned ticket must
/// be durable before the data leaves.
/// The person's pseudonym in `ambito`'s domain, after any merge decided in review.
fn person_ref(state: &AppState, ambito: &str, person: &str) -> Result<String, ApiError> {
    let canonical =
        crate::persons::resolve(&state.store, person)?.map_or_else(|| person.to_owned(), |p| p.id);
    Ok(state.pseudonyms.for_ambito(ambito, &canonical)?)
}

/// The sealed part of a referral, or a notice when the person's identity has been erased.
fn open_sealed(state: &AppState, stored: &StoredReferral) -> Result<Sealed, ApiError> {
    let person: Option<crate::persons::PersonRecord> =
        state.store.get(&crate::persons::key(&stored.person))?;
    let key = person.and_then(|p| p.key);
    let ciphertext: Option<Ciphertext> = state.store.get(&keys::vault(&stored.id))?;
    match (key, ciphertext) {
        (Some(key), Some(ciphertext)) => {
            Ok(state
                .vault
                .open(&key, &stored.person, &ciphertext, &stored.id)?)
        }
        _ => Ok(Sealed {
            identity: None,
            reason: ERASED.to_owned(),
            local_case_ref: None,
        }),
    }
}

/// What stands in for free text once the identity has been erased or purged.
pub const ERASED: &str = "[erased: the identifying part of this referral no longer exists]";

pub fn read(
    state: &AppState,
    caller: &Party,
    id: &str,
    now: OffsetDateTime,
) -> Result<(Value, View, crate::store::Ticket), ApiError> {
    let stored: StoredReferral = state
        .store
        .get(&keys::referral(id))?
        .ok_or(ApiError::NotFound { what: "referral" })?;
    let side = stored
        .side_of(&caller.id)
        .ok_or(ApiError::NotFound { what: "referral" })?;
    let (view, with_identity, detail) = match side {
        Side::Sender => (View::Full, true, "sender's own referral".to_owned()),
        Side::Receiver
            if lifecycle::identity_released(&stored.history_statuses(), stored.status) =>
        {
            let basis = crate::consents::effective_basis(state, &stored)?;
            let decision = state.policy.decide(
                &basis,
                Release {
                    purpose: Purpose::Referral,
                    recipient: &caller.id,
                    category: DataCategory::Identity,
                    today: now.date(),
                },
            );
            (
                View::Full,
                decision.allowed,
                format!(
                    "identity {}: {}",
                    if decision.allowed {
                        "released"
                    } else {
                        "withheld"
                    },
                    decision.reason
                ),
            )
        }
        Side::Receiver => (
            View::Triage,
            false,
            "before acceptance: triage view".to_owned(),
        ),
    };
    let body = match view {
        View::Triage => stored.triage(now),
        View::Full => {
            let sealed = open_sealed(state, &stored)?;
            stored.full(
                sealed,
                with_identity,
                person_ref(state, &caller.id, &stored.person)?,
                now,
            )?
        }
    };
    let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
        txn.audit(AuditRecord {
            at: now,
            actor: caller.id.clone(),
            action: format!("referral.read.{}", view.as_str()),
            referral: Some(stored.id.clone()),
            subject: Some(stored.person.clone()),
            detail: Some(detail),
        })?;
        Ok(())
    })?;
    Ok((body, view, ticket))
}

/// A requested status move.
#[derive(Debug)]
pub struct StatusChange {
    pub status: ReferralStatus,
    pub reason: Option<String>,
}

pub fn parse_status_change(body: &Value) -> Result<StatusChange, ApiError> {
    let bad = |pointer: &str, keyword: &str, message: &str| {
        ApiError::violation(
            "schema-violation",
            "The status change is malformed",
            pointer,
            keyword,
            message,
        )
    };
    let obj = body
        .as_object()
        .ok_or_else(|| bad("", "type", "the body must be an object"))?;
    if let Some(k) = obj.keys().find(|k| *k != "status" && *k != "reason") {
        return Err(bad(
            &format!("/{k}"),
            "additionalProperties",
            "only 'status' and 'reason' are allowed",
        ));
    }
    let status = obj
        .get("status")
        .ok_or_else(|| bad("", "required", "'status' is required"))?
        .as_str()
        .and_then(ReferralStatus::parse)
        .ok_or_else(|| {
            bad(
                "/status",
                "enum",
                "'status' must be a code of the referral-status list",
            )
        })?;
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 2000 => Some(s.clone()),
        Some(_) => {
            return Err(bad(
                "/reason",
                "type",
                "'reason' must be a string of 1 to 2000 characters",
            ));
        }
    };
    Ok(StatusChange { status, reason })
}

pub fn change_status(
    state: &AppState,
    caller: &Party,
    id: &str,
    change: StatusChange,
    now: OffsetDateTime,
) -> Result<(Value, crate::store::Ticket), ApiError> {
    let (moved, ticket) = state.store.write(
        |txn| -> Result<(StoredReferral, Option<ReferralStatus>), ApiError> {
            let mut stored: StoredReferral = txn
                .get(&keys::referral(id))?
                .ok_or(ApiError::NotFound { what: "referral" })?;
            let side = stored
                .side_of(&caller.id)
                .ok_or(ApiError::NotFound { what: "referral" })?;
            let from = stored.status;
            // A retried request that already took effect is answered as it was the first time.
            if from == change.status
                && stored
                    .status_history
                    .last()
                    .is_some_and(|e| e.by == caller.id && e.reason == change.reason)
            {
                return Ok((stored, None));
            }
            lifecycle::check(from, change.status, side, change.reason.as_deref()).map_err(|e| {
                match e {
                    MoveError::NoSuchMove => {
                        let allowed: Vec<String> = lifecycle::next(from)
                            .map(|(to, s)| format!("{} ({})", to.as_str(), s.as_str()))
                            .collect();
                        ApiError::Conflict {
                            code: "illegal-transition",
                            message: format!(
                                "a referral in status '{}' cannot move to '{}'; allowed next: {}",
                                from.as_str(),
                                change.status.as_str(),
                                if allowed.is_empty() {
                                    "none".to_owned()
                                } else {
                                    allowed.join(", ")
                                }
                            ),
                        }
                    }
                    MoveError::WrongSide { allowed } => ApiError::Forbidden {
                        code: "wrong-party",
                        message: format!(
                            "only the {} may move a referral from '{}' to '{}'; you are its {}",
                            allowed.as_str(),
                            from.as_str(),
                            change.status.as_str(),
                            side.as_str()
                        ),
                    },
                    MoveError::ReasonRequired => ApiError::violation(
                        "reason-required",
                        "A reason is required for this status",
                        "/reason",
                        "required",
                        &format!("moving to '{}' requires a reason", change.status.as_str()),
                    ),
                }
            })?;
            if from == ReferralStatus::Draft && change.status == ReferralStatus::Requested {
                let basis = crate::consents::effective_basis(state, &stored)?;
                require_basis(state, &basis, &stored.receiver, now)?;
                // The service level runs from when the request is actually sent.
                stored.due_at = now + state.service_levels.for_urgency(stored.urgency);
            }
            stored.status = change.status;
            stored.status_history.push(StatusEntry {
                status: change.status,
                at: now,
                by: caller.id.clone(),
                reason: change.reason.clone(),
            });
            if stored.first_response_at.is_none()
                && matches!(
                    change.status,
                    ReferralStatus::Accepted | ReferralStatus::Rejected
                )
            {
                stored.first_response_at = Some(now);
            }
            if lifecycle::awaits_response(change.status) {
                txn.put(
                    &keys::awaiting(id),
                    &(stored.urgency, stored.due_at.unix_timestamp()),
                )?;
            } else if lifecycle::awaits_response(from) {
                txn.remove(&keys::awaiting(id));
            }
            txn.put(&keys::referral(id), &stored)?;
            let other = match side {
                Side::Sender => stored.receiver.clone(),
                Side::Receiver => stored.sender.clone(),
            };
            notify(txn, &other, &stored, Some(from), change.reason.clone(), now)?;
            txn.audit(AuditRecord {
                at: now,
                actor: caller.id.clone(),
                action: "referral.status".into(),
                referral: Some(stored.id.clone()),
                subject: Some(stored.person.clone()),
                detail: Some(format!("{} -> {}", from.as_str(), change.status.as_str())),
            })?;
            Ok((stored, Some(from)))
        },
    )?;
    let (stored, from) = moved;
    if let Some(from) = from {
        state.metrics.referral_moved(Some(from), stored.status);
    }
    Ok((history_body(&stored, now), ticket))
}

pub fn history(
    state: &AppState,
    caller: &Party,
    id: &str,
    now: OffsetDateTime,
) -> Result<Value, ApiError> {
    let stored: StoredReferral = state
        .store
        .get(&keys::referral(id))?
        .ok_or(ApiError::NotFound { what: "referral" })?;
    stored
        .side_of(&caller.id)
        .ok_or(ApiError::NotFound { what: "referral" })?;
    Ok(history_body(&stored, now))
}

fn history_body(stored: &StoredReferral, now: OffsetDateTime) -> Value {
    serde_json::json!({
        "id": stored.id,
        "status": stored.status,
        "status_history": stored.status_history,
        "due_at": rfc3339(stored.due_at),
        "overdue": stored.overdue(now),
    })
}
