//! The conformance kit integrators run before they join (`raccordo conformance`).
//!
//! - [`model`]: tests with stable ids and requirement levels, results, verdicts, exit codes.
//! - [`profiles`]: the plans: `adapter` (a mapping and its samples) and `gateway` (a gateway
//!   deployment's protocol).
//! - [`report`]: JSON, JUnit XML, TAP and HTML.
//! - [`redact`]: what is recorded of the traffic never holds an identifier.
//! - [`bundle`]: the signed evidence bundle and its offline verification.

pub mod bundle;
pub mod model;
pub mod profiles;
pub mod redact;
pub mod report;

use model::{Case, Verdict};
use report::{REPORT_FORMAT, Report};

pub const KIT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The SHA-256 of a plan: its ids, levels and requirements, in order. A report names the plan
/// it followed, so two reports can be compared.
pub fn plan_digest(cases: &[Case]) -> String {
    let text: String = cases
        .iter()
        .map(|c| format!("{}|{:?}|{}\n", c.id, c.level, c.requirement))
        .collect();
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    format!("sha256:{}", raccordo_gateway::pki::hex(d.as_ref()))
}

/// Assembles the report of a run.
pub fn report(
    profile: &str,
    cases: &[Case],
    target: &str,
    seed: u64,
    results: Vec<model::TestResult>,
) -> Report {
    Report {
        format: REPORT_FORMAT.into(),
        kit_version: KIT_VERSION.into(),
        profile: profile.into(),
        plan_digest: plan_digest(cases),
        target: target.into(),
        seed,
        started: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        verdict: Verdict::of(&results),
        results,
    }
}
