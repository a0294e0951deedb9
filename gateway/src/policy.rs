//! The policy decision point: may this category of data about this person go to this recipient
//! for this purpose, now? One function answers for every release, and what it does not know, it
//! refuses. The table for legal bases other than consent is fixed here for now; it becomes
//! configuration with the consent registry.

use raccordo_schemas::{
    ConsentStatus, DataCategory, LegalBasis, LegalBasisKind, Purpose, Recipients,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Why, in words fit for the audit log and for the caller (no personal data).
    pub reason: String,
}

impl Decision {
    fn allow(reason: impl Into<String>) -> Decision {
        Decision {
            allowed: true,
            reason: reason.into(),
        }
    }
    fn deny(reason: impl Into<String>) -> Decision {
        Decision {
            allowed: false,
            reason: reason.into(),
        }
    }
}

/// What is being released.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub purpose: Purpose,
    pub recipient: &'a str,
    pub category: DataCategory,
    pub today: time::Date,
}

/// One row of the table: a legal basis other than consent, the special-category condition it
/// carries (None: any), and the purposes and categories it covers.
type PolicyRow = (
    LegalBasisKind,
    Option<&'static str>,
    &'static [Purpose],
    &'static [DataCategory],
);

const NON_CONSENT: &[PolicyRow] = &[
    (
        LegalBasisKind::PublicTask,
        Some("9_2_b"),
        &[Purpose::Referral, Purpose::CaseManagement],
        &[DataCategory::Identity, DataCategory::Social],
    ),
    (
        LegalBasisKind::PublicTask,
        Some("9_2_g"),
        &[Purpose::Referral, Purpose::CaseManagement],
        &[DataCategory::Identity, DataCategory::Social],
    ),
    (
        LegalBasisKind::PublicTask,
        Some("9_2_h"),
        &[
            Purpose::Referral,
            Purpose::CaseManagement,
            Purpose::HealthDataSharing,
        ],
        &[
            DataCategory::Identity,
            DataCategory::Social,
            DataCategory::Health,
        ],
    ),
    (
        LegalBasisKind::PublicTask,
        Some("none"),
        &[Purpose::Referral, Purpose::CaseManagement],
        &[DataCategory::Identity, DataCategory::Social],
    ),
    (
        LegalBasisKind::VitalInterest,
        None,
        &[Purpose::Referral],
        &[
            DataCategory::Identity,
            DataCategory::Social,
            DataCategory::Health,
        ],
    ),
];

pub fn decide(basis: &LegalBasis, release: Release<'_>) -> Decision {
    match basis.basis {
        LegalBasisKind::Consent => decide_consent(basis, release),
        kind => {
            let condition = basis.special_category_condition.as_deref();
            let row = NON_CONSENT
                .iter()
                .find(|(k, c, _, _)| *k == kind && (c.is_none() || *c == condition));
            match row {
                Some((_, _, purposes, categories))
                    if purposes.contains(&release.purpose)
                        && categories.contains(&release.category) =>
                {
                    Decision::allow(format!(
                        "{kind:?} ({}) covers {:?} data for {:?}",
                        condition.unwrap_or("-"),
                        release.category,
                        release.purpose
                    ))
                }
                Some(_) => Decision::deny(format!(
                    "the legal basis {kind:?} with condition {} does not cover {:?} data for {:?}",
                    condition.unwrap_or("-"),
                    release.category,
                    release.purpose
                )),
                None => Decision::deny(format!(
                    "no policy row for legal basis {kind:?} with condition {}",
                    condition.unwrap_or("-")
                )),
            }
        }
    }
}

fn decide_consent(c: &LegalBasis, r: Release<'_>) -> Decision {
    if c.status != Some(ConsentStatus::Active) {
        return Decision::deny("consent is not active");
    }
    if c.valid_from.is_none_or(|from| r.today < from) {
        return Decision::deny("consent is not yet valid");
    }
    if c.valid_until.is_some_and(|until| r.today > until) {
        return Decision::deny("consent has expired");
    }
    if !c.purposes.contains(&r.purpose) {
        return Decision::deny(format!(
            "consent does not cover the purpose {:?}",
            r.purpose
        ));
    }
    let recipient_ok = match &c.recipients {
        Some(Recipients::Any(_)) => true,
        Some(Recipients::Named(list)) => list.iter().any(|a| a == r.recipient),
        None => false,
    };
    if !recipient_ok {
        return Decision::deny("consent does not name this recipient");
    }
    if !c.data_categories.contains(&r.category) {
        return Decision::deny(format!("consent does not cover {:?} data", r.category));
    }
    Decision::allow(format!(
        "consent covers {:?} data for {:?}",
        r.category, r.purpose
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn consent() -> LegalBasis {
        serde_json::from_value(serde_json::json!({
            "basis": "consent", "purposes": ["referral"], "recipients": ["firenze"],
            "data_categories": ["social"], "valid_from": "2026-01-01", "valid_until": "2026-12-31",
            "status": "active", "evidence": {"kind": "document", "digest": format!("sha256:{}", "0".repeat(64))}
        }))
        .unwrap()
    }

    fn release(recipient: &str, category: DataCategory, today: time::Date) -> Release<'_> {
        Release {
            purpose: Purpose::Referral,
            recipient,
            category,
            today,
        }
    }

    #[test]
    fn consent_is_read_literally() {
        let c = consent();
        let today = date!(2026 - 06 - 01);
        assert!(decide(&c, release("firenze", DataCategory::Social, today)).allowed);
        assert!(!decide(&c, release("pisa", DataCategory::Social, today)).allowed);
        assert!(!decide(&c, release("firenze", DataCategory::Identity, today)).allowed);
        assert!(
            !decide(
                &c,
                release("firenze", DataCategory::Social, date!(2027 - 01 - 01))
            )
            .allowed
        );
        let mut withdrawn = c.clone();
        withdrawn.status = Some(ConsentStatus::Withdrawn);
        assert!(!decide(&withdrawn, release("firenze", DataCategory::Social, today)).allowed);
    }

    #[test]
    fn unknown_non_consent_rows_are_refused() {
        let b: LegalBasis =
            serde_json::from_value(serde_json::json!({"basis": "public_task"})).unwrap();
        let d = decide(
            &b,
            release("firenze", DataCategory::Social, date!(2026 - 06 - 01)),
        );
        assert!(!d.allowed, "{d:?}");
    }
}
