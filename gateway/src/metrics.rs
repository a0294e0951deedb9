//! Prometheus metrics. Labels are route templates, methods, statuses and urgencies: never ids,
//! never anything about a person.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use raccordo_schemas::{ReferralStatus, Urgency};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    referrals: IntGaugeVec,
    overdue: IntGaugeVec,
    provider_fetches: IntCounterVec,
    token_refusals: IntCounterVec,
}

#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn provider_fetched(&self, document: &str, ok: bool) {
        self.provider_fetches
            .with_label_values(&[document, if ok { "ok" } else { "failed" }])
            .inc();
    }

    pub fn token_refused(&self, code: &str) {
        self.token_refusals.with_label_values(&[code]).inc();
    }

    pub fn new() -> Result<Metrics, MetricsError> {
        let registry = Registry::new_custom(Some("raccordo".into()), None)?;
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route template, method and status",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route template",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                30.0, 65.0,
            ]),
            &["route", "method"],
        )?;
        let referrals = IntGaugeVec::new(
            Opts::new("referrals", "Referrals by current status"),
            &["status"],
        )?;
        let overdue = IntGaugeVec::new(
            Opts::new(
                "referrals_overdue",
                "Referrals past their service level without a first response",
            ),
            &["urgency"],
        )?;
        let provider_fetches = IntCounterVec::new(
            Opts::new(
                "identity_provider_fetches_total",
                "Documents fetched from the identity provider (discovery, jwks) by outcome",
            ),
            &["document", "outcome"],
        )?;
        let token_refusals = IntCounterVec::new(
            Opts::new(
                "bearer_token_refusals_total",
                "Bearer tokens refused, by the rule that failed",
            ),
            &["code"],
        )?;
        registry.register(Box::new(provider_fetches.clone()))?;
        registry.register(Box::new(token_refusals.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(referrals.clone()))?;
        registry.register(Box::new(overdue.clone()))?;
        for status in ReferralStatus::ALL {
            referrals.with_label_values(&[status.as_str()]).set(0);
        }
        Ok(Metrics {
            provider_fetches,
            token_refusals,
            registry,
            requests,
            latency,
            referrals,
            overdue,
        })
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    pub fn referral_moved(&self, from: Option<ReferralStatus>, to: ReferralStatus) {
        if let Some(from) = from {
            self.referrals.with_label_values(&[from.as_str()]).dec();
        }
        self.referrals.with_label_values(&[to.as_str()]).inc();
    }

    pub fn set_overdue(&self, counts: &[(Urgency, i64)]) {
        for (urgency, n) in counts {
            self.overdue.with_label_values(&[urgency.as_str()]).set(*n);
        }
    }

    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .is_err()
        {
            out.clear();
        }
        out
    }
}
