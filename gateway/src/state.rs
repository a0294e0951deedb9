//! What every request handler shares: the store, the vault, the pseudonymiser, the registry and
//! the service levels. Time is not in here: handlers read the clock once and pass `now` down,
//! so the core logic can be tested at any instant.

use crate::config::ServiceLevels;
use crate::metrics::Metrics;
use crate::pseudonym::Pseudonymiser;
use crate::registry::Registry;
use crate::store::Store;
use crate::vault::Vault;
use std::time::Duration;

pub struct AppState {
    pub store: Store,
    pub vault: Vault,
    pub pseudonyms: Pseudonymiser,
    pub registry: Registry,
    pub encoder: crate::linkage::Encoder,
    pub thresholds: crate::persons::Thresholds,
    pub service_levels: ServiceLevels,
    pub policy: crate::policy::PolicyTable,
    pub inbox_max_wait: Duration,
    pub inbox_page_size: usize,
    pub max_body_bytes: usize,
    pub signature_audience: String,
    pub metrics: Metrics,
    pub rate_limiter: crate::rate_limit::RateLimiter,
    pub revocations: crate::revocation::Revocations,
    /// The identity provider people sign in with; `None` when none is configured.
    pub people: Option<std::sync::Arc<crate::people::provider::IdentityProvider>>,
    /// Statistical records, indicator tables and releases.
    pub monitoring: crate::monitoring::Monitoring,
}
