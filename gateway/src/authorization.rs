//! Who may call which route: one table, checked for every request before any handler runs.
//! What is unknown is refused. Rules about a particular object (the sender and the receiver of
//! a referral, the ambito that recorded a consent) live with the objects, in the core.

use crate::config::PartyKind::{self, Ambito, Region};

/// Method, route template, and the kinds of party that may call it.
pub const RULES: &[(&str, &str, &[PartyKind])] = &[
    ("POST", "/v1/referrals", &[Ambito]),
    ("GET", "/v1/referrals/{id}", &[Ambito]),
    ("POST", "/v1/referrals/{id}/status", &[Ambito]),
    ("GET", "/v1/referrals/{id}/history", &[Ambito]),
    ("GET", "/v1/inbox", &[Ambito]),
    ("POST", "/v1/consents", &[Ambito]),
    ("GET", "/v1/consents/{id}", &[Ambito, Region]),
    ("POST", "/v1/consents/{id}/withdraw", &[Ambito, Region]),
    ("POST", "/v1/erasures", &[Region]),
    ("POST", "/v1/linkage/known", &[Ambito]),
    ("GET", "/v1/linkage/reviews", &[Region]),
    ("POST", "/v1/linkage/reviews/{id}", &[Region]),
    ("POST", "/v1/access-reports", &[Region]),
    ("GET", "/v1/structures", &[Ambito, Region]),
    ("PUT", "/v1/structures/{id}", &[Ambito]),
    ("GET", "/v1/openapi.json", &[Ambito, Region]),
    ("GET", "/healthz", &[Ambito, Region]),
    ("GET", "/readyz", &[Ambito, Region]),
    ("GET", "/metrics", &[Ambito, Region]),
];

/// Why a call is refused, before it reaches a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The route exists but this kind of party may not call it.
    NotPermitted { allowed: Vec<PartyKind> },
    /// The table has no rule for the route: refused, because unknown means no.
    NoRule,
}

pub fn check(method: &str, route: &str, kind: PartyKind) -> Result<(), Refusal> {
    match RULES.iter().find(|(m, r, _)| *m == method && *r == route) {
        Some((_, _, kinds)) if kinds.contains(&kind) => Ok(()),
        Some((_, _, kinds)) => Err(Refusal::NotPermitted {
            allowed: kinds.to_vec(),
        }),
        None => Err(Refusal::NoRule),
    }
}
