//! Request spans continue the caller's W3C trace and reach an OTLP/HTTP collector when one is
//! configured. The collector here is a plain HTTP endpoint that keeps what it receives.
//!
//! The subscriber and tracer provider are process-wide, so the check runs in a process of its
//! own (this test binary again, running the ignored `telemetry_child`). In the shared test
//! process every other test's requests filled the exporter's batches and queue, and the
//! caller's span could be dropped or lost in an oversized export.

use crate::harness::TestApp;
use actix_web::{App, HttpServer, web};
use raccordo_gateway::config::{LogFormat, TelemetrySettings};
use std::process::Command;
use std::sync::{Arc, Mutex};

const CHILD: &str = "RACCORDO_TELEMETRY_CHILD";

#[test]
fn request_spans_join_the_callers_trace_and_are_exported() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "telemetry::telemetry_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the telemetry check failed in its own process:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The body of the test above; does nothing unless that test starts it.
#[tokio::test]
#[ignore = "run in a process of its own by request_spans_join_the_callers_trace_and_are_exported"]
async fn telemetry_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let sink = Arc::clone(&received);
    let collector = HttpServer::new(move || {
        let sink = Arc::clone(&sink);
        // A real collector takes large batches; 256 kB (actix's default) would refuse some.
        App::new()
            .app_data(web::PayloadConfig::new(64 << 20))
            .route(
                "/v1/traces",
                web::post().to(move |body: web::Bytes| {
                    let sink = Arc::clone(&sink);
                    async move {
                        sink.lock().unwrap().push(body.to_vec());
                        actix_web::HttpResponse::Ok().finish()
                    }
                }),
            )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = collector.addrs()[0].port();
    let collector = collector.run();
    let collector_handle = collector.handle();
    tokio::spawn(collector);

    let guard = raccordo_gateway::telemetry::init(&TelemetrySettings {
        log_format: LogFormat::Pretty,
        log_filter: "warn".into(),
        otlp_endpoint: format!("http://127.0.0.1:{port}/v1/traces"),
        service_name: "raccordo-test".into(),
    })
    .unwrap();

    let app = TestApp::spawn().await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = app
        .client("prato")
        .get(app.url("/healthz"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Shutting the provider down exports what is pending; the exporter blocks, so off the runtime.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let wanted: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let bodies = received.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "nothing was exported");
    assert!(
        bodies
            .iter()
            .any(|b| b.windows(16).any(|w| w == wanted.as_slice())),
        "no exported span carries the caller's trace id"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.windows(13).any(|w| w == b"raccordo-test")),
        "service name missing"
    );
    collector_handle.stop(true).await;
}
