//! The test plans. Each profile lists its cases (stable ids, requirement, level) and runs them.

pub mod adapter;
pub mod client;
pub mod gateway;

use crate::model::{Case, Exchange, Finding, TestResult};
use std::time::Instant;

/// A real gateway for the kit's sandboxes: the embedded defaults on a throw-away `data` folder
/// (development PKI included), on a free port. Returns its URL, the mTLS configuration it
/// serves (for a proxy in front of it) and a handle to stop it.
pub async fn sandbox_gateway(
    data: &std::path::Path,
) -> Result<(String, rustls::ServerConfig, actix_web::dev::ServerHandle), String> {
    let mut s = raccordo_gateway::Settings::defaults().map_err(|e| e.to_string())?;
    s.data_dir = data.to_owned();
    s.listen.address = ([127, 0, 0, 1], 0).into();
    s.listen.workers = 2;
    let config = raccordo_gateway::Config::from_settings(s).map_err(|e| e.to_string())?;
    let tls = raccordo_gateway::tls::server_config(&config, time::OffsetDateTime::now_utc())
        .map_err(|e| e.to_string())?;
    let app = raccordo_gateway::Application::build(config).map_err(|e| e.to_string())?;
    let url = format!("https://localhost:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    Ok((url, tls, handle))
}

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
