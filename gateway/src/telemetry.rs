//! Logs and traces. Every request gets a span (tracing-actix-web) whose parent is taken from the
//! W3C `traceparent` header; spans are exported over OTLP/HTTP only when an endpoint is
//! configured. Request bodies are never logged.

use crate::config::{LogFormat, TelemetrySettings};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry: {0}")]
    Setup(String),
}

/// Keeps the exporter alive; dropping it flushes pending spans.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("telemetry: shutdown: {e}");
        }
    }
}

/// Installs the global subscriber; call once, from `main`.
pub fn init(settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    // The OTLP exporter's HTTP client asks rustls for the process default provider.
    crate::tls::install_default_provider();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_filter))
        .map_err(|e| TelemetryError::Setup(format!("log_filter: {e}")))?;
    // The log filter chooses what is printed; it must not switch off request spans for tracing.
    let fmt = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_filter(filter).boxed(),
    };
    let (otel, provider) = if settings.otlp_endpoint.is_empty() {
        (None, None)
    } else {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(&settings.otlp_endpoint)
            .build()
            .map_err(|e| TelemetryError::Setup(format!("otlp_endpoint: {e}")))?;
        let resource = opentelemetry_sdk::Resource::builder()
            .with_service_name(settings.service_name.clone())
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("raccordo-gateway");
        opentelemetry::global::set_tracer_provider(provider.clone());
        (
            Some(tracing_opentelemetry::layer().with_tracer(tracer)),
            Some(provider),
        )
    };
    tracing_subscriber::registry()
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError::Setup(e.to_string()))?;
    Ok(TelemetryGuard { provider })
}
