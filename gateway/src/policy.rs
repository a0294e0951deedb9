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

/// One row of the policy table (configuration): a legal basis other than consent, the
/// special-category condition it carries (absent: any), and the purposes and data categories it
/// covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRow {
    pub basis: LegalBasisKind,
    #[serde(default)]
    pub condition: Option<String>,
    pub purposes: Vec<Purpose>,
    pub categories: Vec<DataCategory>,
}

/// The table for legal bases other than consent.
#[derive(Debug, Clone, Default)]
pub struct PolicyTable {
    pub rows: Vec<PolicyRow>,
}

impl PolicyTable {
    pub fn decide(&self, basis: &LegalBasis, release: Release<'_>) -> Decision {
        match basis.basis {
            LegalBasisKind::Consent => decide_consent(basis, release),
            kind => {
                let condition = basis.special_category_condition.as_deref();
                let row = self.rows.iter().find(|r| {
                    r.basis == kind
                        && (r.condition.is_none() || r.condition.as_deref() == condition)
                });
                match row {
                    Some(r)
                        if r.purposes.contains(&release.purpose)
                            && r.categories.contains(&release.category) =>
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

    fn table() -> PolicyTable {
        PolicyTable {
            rows: crate::config::Settings::defaults().unwrap().policy,
        }
    }

    fn basis(v: serde_json::Value) -> LegalBasis {
        serde_json::from_value(v).unwrap()
    }

    fn consent() -> LegalBasis {
        basis(serde_json::json!({
            "basis": "consent", "purposes": ["referral"], "recipients": ["firenze"],
            "data_categories": ["social"], "valid_from": "2026-01-01", "valid_until": "2026-12-31",
            "status": "active", "evidence": {"kind": "document", "digest": format!("sha256:{}", "0".repeat(64))}
        }))
    }

    fn release(
        purpose: Purpose,
        recipient: &str,
        category: DataCategory,
        today: time::Date,
    ) -> Release<'_> {
        Release {
            purpose,
            recipient,
            category,
            today,
        }
    }

    #[test]
    fn consent_is_read_literally() {
        let t = table();
        let c = consent();
        let today = date!(2026 - 06 - 01);
        let r = |rec, cat, day| {
            t.decide(&c, release(Purpose::Referral, rec, cat, day))
                .allowed
        };
        assert!(r("firenze", DataCategory::Social, today));
        assert!(!r("pisa", DataCategory::Social, today), "another recipient");
        assert!(
            !r("firenze", DataCategory::Identity, today),
            "another category"
        );
        assert!(
            !r("firenze", DataCategory::Social, date!(2027 - 01 - 01)),
            "expired"
        );
        assert!(
            !r("firenze", DataCategory::Social, date!(2025 - 12 - 31)),
            "not yet valid"
        );
        assert!(
            !t.decide(
                &c,
                release(Purpose::Statistics, "firenze", DataCategory::Social, today)
            )
            .allowed
        );
        for status in ["withdrawn", "refused", "expired"] {
            let mut other = c.clone();
            other.status = serde_json::from_value(serde_json::json!(status)).unwrap();
            assert!(
                !t.decide(
                    &other,
                    release(Purpose::Referral, "firenze", DataCategory::Social, today)
                )
                .allowed
            );
        }
    }

    /// Every row of the shipped table allows exactly what it lists, and nothing else.
    #[test]
    fn each_row_of_the_policy_table_allows_and_refuses_what_it_should() {
        let t = table();
        assert!(!t.rows.is_empty());
        let today = date!(2026 - 06 - 01);
        for row in &t.rows {
            let b = basis(serde_json::json!({
                "basis": row.basis, "special_category_condition": row.condition.clone().unwrap_or_else(|| "none".into())
            }));
            for purpose in [
                Purpose::Referral,
                Purpose::CaseManagement,
                Purpose::HealthDataSharing,
                Purpose::Statistics,
            ] {
                for category in [
                    DataCategory::Identity,
                    DataCategory::Social,
                    DataCategory::Health,
                ] {
                    let d = t.decide(&b, release(purpose, "firenze", category, today));
                    let expected =
                        row.purposes.contains(&purpose) && row.categories.contains(&category);
                    assert_eq!(
                        d.allowed, expected,
                        "{row:?} {purpose:?} {category:?}: {}",
                        d.reason
                    );
                }
            }
        }
    }

    #[test]
    fn what_the_table_does_not_know_is_refused() {
        let t = table();
        let b = basis(
            serde_json::json!({"basis": "public_task", "special_category_condition": "9_2_x"}),
        );
        let d = t.decide(
            &b,
            release(
                Purpose::Referral,
                "firenze",
                DataCategory::Social,
                date!(2026 - 06 - 01),
            ),
        );
        assert!(!d.allowed, "{d:?}");
        assert!(
            !PolicyTable::default()
                .decide(
                    &b,
                    release(
                        Purpose::Referral,
                        "firenze",
                        DataCategory::Social,
                        date!(2026 - 06 - 01)
                    )
                )
                .allowed
        );
    }
}
