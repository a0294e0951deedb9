//! The per-person access report for the data protection officer (GDPR art. 15): who read or
//! received what about the person, when, and for which purpose, from the audit log.

use crate::persons::{self, PersonRecord};
use crate::problem::ApiError;
use crate::registry::Party;
use crate::state::AppState;
use crate::store::audit::AuditEntry;
use crate::store::{Read, keys};
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Debug, Serialize)]
pub struct AccessEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The ambito, the Region or the gateway itself.
    pub who: String,
    pub what: String,
    pub purpose: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn describe(action: &str) -> (&'static str, &'static str) {
    match action {
        "referral.create" => ("sent a referral about the person", "referral"),
        "referral.read.full" => ("read the referral with its identifying part", "referral"),
        "referral.read.triage" => ("read the referral's triage view (no identity)", "referral"),
        "referral.status" => ("changed the referral's status", "referral"),
        "consent.register" => ("registered a consent", "consent management"),
        "consent.withdraw" => ("recorded the withdrawal of a consent", "consent management"),
        "linkage.known-elsewhere" => ("asked whether the person is known elsewhere", "linkage"),
        "linkage.review-opened" => ("opened a linkage review", "linkage"),
        "linkage.review.read" => ("read identities for a linkage review", "linkage"),
        "linkage.review.link" | "linkage.review.separate" => {
            ("decided a linkage review", "linkage")
        }
        "person.erase" => ("erased the person's identity", "erasure"),
        "retention.purge" => (
            "purged identifying data past its retention period",
            "retention",
        ),
        _ => ("other processing", "other"),
    }
}

/// The report for a person (by linkage id). Reading it is itself audited.
pub fn report(
    state: &AppState,
    caller: &Party,
    person: &str,
    now: OffsetDateTime,
) -> Result<(Vec<AccessEntry>, crate::store::Ticket), ApiError> {
    let mut ids = vec![person.to_owned()];
    if let Some(PersonRecord { id, .. }) = persons::resolve(&state.store, person)?
        && id != person
    {
        ids.push(id);
    }
    let mut entries = Vec::new();
    for id in &ids {
        let prefix = keys::subject_prefix(id);
        for k in state.store.keys_with_prefix(&prefix)? {
            let seq = keys::decode_u64(&k);
            let Some(e) = state.store.get::<AuditEntry>(&keys::audit(seq))? else {
                continue;
            };
            let (what, purpose) = describe(&e.record.action);
            entries.push((
                seq,
                AccessEntry {
                    at: e.record.at,
                    who: e.record.actor,
                    what: what.to_owned(),
                    purpose,
                    referral: e.record.referral,
                    detail: e.record.detail,
                },
            ));
        }
    }
    entries.sort_by_key(|(seq, _)| *seq);
    let ((), ticket) = state.store.write(|txn| -> Result<(), ApiError> {
        txn.audit(crate::store::audit::AuditRecord {
            at: now,
            actor: caller.id.clone(),
            action: "dpo.access-report".into(),
            referral: None,
            subject: Some(person.to_owned()),
            detail: None,
        })?;
        Ok(())
    })?;
    Ok((entries.into_iter().map(|(_, e)| e).collect(), ticket))
}

/// The same report as plain text, for a person to read.
pub fn text(entries: &[AccessEntry]) -> String {
    let mut out = String::from(
        "Registro degli accessi ai dati personali (art. 15 GDPR) / Access report (GDPR art. 15)\n\n",
    );
    out.push_str("quando / when                  chi / who    cosa / what  [finalità / purpose]\n");
    for e in entries {
        let at =
            e.at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
        out.push_str(&format!(
            "{at:<30} {:<12} {} [{}]\n",
            e.who, e.what, e.purpose
        ));
    }
    if entries.is_empty() {
        out.push_str("(nessun accesso registrato / no access recorded)\n");
    }
    out
}
