//! Who may call which route: one table, checked for every request before any handler runs.
//! What is unknown is refused. Rules about a particular object (the sender and the receiver of
//! a referral, the ambito that recorded a consent) live with the objects, in the core.
//!
//! Callers hold roles. Systems authenticated by certificate hold the role of their kind
//! (`ambito`, `region`); people authenticated by the Region's identity provider hold the roles
//! their token grants (`analyst`, `admin`, `dpo`, `integrator`).

use Role::{Admin, Ambito, Analyst, Dpo, Integrator, Region};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An ambito's case-management system (certificate).
    Ambito,
    /// The Region's own systems (certificate).
    Region,
    /// A regional analyst: monitoring and figures.
    Analyst,
    /// A regional administrator: the network's registry and record-linkage reviews.
    Admin,
    /// The data protection officer: access reports, erasures, consents.
    Dpo,
    /// A vendor's integrator: the API description and the conformance kit.
    Integrator,
}

impl Role {
    /// The roles a person may hold.
    pub const PEOPLE: [Role; 4] = [Analyst, Admin, Dpo, Integrator];

    pub fn as_str(self) -> &'static str {
        match self {
            Ambito => "ambito",
            Region => "region",
            Analyst => "analyst",
            Admin => "admin",
            Dpo => "dpo",
            Integrator => "integrator",
        }
    }

    /// A person's role by name; the system roles are never granted by a token.
    pub fn person_role(name: &str) -> Option<Role> {
        Role::PEOPLE.into_iter().find(|r| r.as_str() == name)
    }
}

const EVERYONE: &[Role] = &[Ambito, Region, Analyst, Admin, Dpo, Integrator];

/// Method, route template, and the roles that may call it.
pub const RULES: &[(&str, &str, &[Role])] = &[
    ("POST", "/v1/referrals", &[Ambito]),
    ("GET", "/v1/referrals/{id}", &[Ambito]),
    ("POST", "/v1/referrals/{id}/status", &[Ambito]),
    ("GET", "/v1/referrals/{id}/history", &[Ambito]),
    ("GET", "/v1/inbox", &[Ambito]),
    ("POST", "/v1/consents", &[Ambito]),
    ("GET", "/v1/consents/{id}", &[Ambito, Region, Dpo]),
    ("POST", "/v1/consents/{id}/withdraw", &[Ambito, Region, Dpo]),
    ("POST", "/v1/erasures", &[Region, Dpo]),
    ("POST", "/v1/linkage/known", &[Ambito]),
    ("GET", "/v1/linkage/reviews", &[Region, Admin]),
    ("POST", "/v1/linkage/reviews/{id}", &[Region, Admin]),
    ("POST", "/v1/access-reports", &[Region, Dpo]),
    (
        "GET",
        "/v1/structures",
        &[Ambito, Region, Analyst, Admin, Integrator],
    ),
    ("PUT", "/v1/structures/{id}", &[Ambito]),
    ("POST", "/v1/episodes", &[Ambito]),
    ("POST", "/v1/distributions", &[Ambito]),
    ("POST", "/v1/interventions", &[Ambito]),
    ("GET", "/v1/indicators", EVERYONE),
    ("POST", "/v1/releases", &[Region, Analyst]),
    ("GET", "/v1/releases", &[Region, Analyst, Admin]),
    ("GET", "/v1/releases/signing-key", EVERYONE),
    ("GET", "/v1/releases/{id}", &[Region, Analyst, Admin]),
    ("GET", "/v1/releases/{id}/data", &[Region, Analyst, Admin]),
    ("GET", "/v1/me", EVERYONE),
    ("GET", "/v1/openapi.json", EVERYONE),
    ("GET", "/healthz", &[Ambito, Region, Admin]),
    ("GET", "/readyz", &[Ambito, Region, Admin]),
    ("GET", "/metrics", &[Ambito, Region, Admin, Analyst]),
];

/// Why a call is refused, before it reaches a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The route exists but none of the caller's roles may call it.
    NotPermitted { allowed: Vec<Role> },
    /// The table has no rule for the route: refused, because unknown means no.
    NoRule,
}

pub fn check(method: &str, route: &str, roles: &[Role]) -> Result<(), Refusal> {
    match RULES.iter().find(|(m, r, _)| *m == method && *r == route) {
        Some((_, _, allowed)) if roles.iter().any(|r| allowed.contains(r)) => Ok(()),
        Some((_, _, allowed)) => Err(Refusal::NotPermitted {
            allowed: allowed.to_vec(),
        }),
        None => Err(Refusal::NoRule),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_never_gets_a_system_role_and_no_role_opens_nothing() {
        assert_eq!(Role::person_role("region"), None);
        assert_eq!(Role::person_role("ambito"), None);
        assert_eq!(Role::person_role("dpo"), Some(Dpo));
        for (method, route, _) in RULES {
            assert!(check(method, route, &[]).is_err(), "{method} {route}");
        }
        assert_eq!(
            check("DELETE", "/v1/referrals", &[Ambito]),
            Err(Refusal::NoRule)
        );
    }
}
