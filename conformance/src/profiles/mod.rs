//! The test plans. Each profile lists its cases (stable ids, requirement, level) and runs them.

pub mod adapter;
pub mod client;
pub mod gateway;

use crate::model::{Case, Exchange, Finding, TestResult};
use std::time::Instant;

/// Runs one case's check, timing it, unless `only` names another case.
pub(crate) fn run_case(
    case: &Case,
    only: Option<&str>,
    results: &mut Vec<TestResult>,
    check: impl FnOnce(&mut Vec<Exchange>) -> Finding,
) {
    if only.is_some_and(|o| o != case.id) {
        return;
    }
    let started = Instant::now();
    let mut exchanges = Vec::new();
    let finding = check(&mut exchanges);
    results.push(case.judge(finding, started.elapsed().as_secs_f64(), exchanges));
}
