//! The load generator behind `raccordo bench`: referrals sent over mTLS with N concurrent
//! connections against a real gateway, and, as the baseline in the same run, a bare mTLS echo
//! server on the same TLS configuration. Figures are reported as JSON, with the machine.
//!
//! The gateway runs as a process of its own (`raccordo serve`), so that its resident memory is
//! measured apart from the load generator's; on sled, or on PostgreSQL in a schema of its own.

use crate::client;
use crate::config::{Config, Settings};
use crate::pki::DevPki;
use crate::startup::StartupError;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    /// The `raccordo` executable, started as `raccordo serve` for the gateway under test.
    pub gateway_exe: std::path::PathBuf,
    /// A PostgreSQL server to run the gateway's store on; `None`: sled.
    pub postgres_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_kib: u64,
}

#[derive(Debug, Serialize)]
pub struct Phase {
    pub requests: u64,
    pub errors: u64,
    /// The first unexpected answer, to make a failing run explain itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    pub throughput_rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    /// "sled" or "postgres".
    pub store: &'static str,
    pub connections: usize,
    pub duration_s: f64,
    pub baseline_mtls_echo: Phase,
    pub referrals: Phase,
    /// referrals throughput / baseline throughput, measured in this run.
    pub throughput_ratio: f64,
    /// Peak resident memory of the gateway process over its whole run, KiB.
    pub gateway_peak_rss_kib: u64,
    /// Peak resident memory of the load generator and echo server (this process), KiB.
    pub load_generator_peak_rss_kib: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("bench: {0}")]
    Setup(String),
}

const REFERRAL: &str =
    include_str!("../../schemas/examples/referral/valid/prato-to-firenze-with-consent.json");
const STRUCTURE: &str = include_str!("../../schemas/examples/structure/valid/night-shelter.json");

pub async fn run(options: BenchOptions, scratch: &Path) -> Result<BenchReport, BenchError> {
    let setup = |e: &dyn std::fmt::Display| BenchError::Setup(e.to_string());
    let gateway_port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| setup(&e))?
        .port();
    let store_url = match &options.postgres_url {
        Some(url) => Some(fresh_schema(url).await?),
        None => None,
    };
    let mut command = std::process::Command::new(&options.gateway_exe);
    command
        .arg("serve")
        .env("RACCORDO_DATA_DIR", scratch)
        .env(
            "RACCORDO_LISTEN__ADDRESS",
            format!("127.0.0.1:{gateway_port}"),
        )
        // One party sends everything here; its rate limit is not what is being measured.
        .env("RACCORDO_LIMITS__REQUESTS_PER_SECOND", "1000000000.0")
        .env("RACCORDO_LIMITS__BURST", "1000000000.0")
        .env("RACCORDO_TELEMETRY__LOG_FILTER", "warn")
        .stdout(std::process::Stdio::null());
    if let Some((url, _)) = &store_url {
        command
            .env("RACCORDO_STORE__BACKEND", "postgres")
            .env("RACCORDO_STORE__URL", url);
    }
    let mut gateway = Gateway(command.spawn().map_err(|e| setup(&e))?);
    let pki = DevPki::new(scratch);
    let ready = wait_ready(&mut gateway, &pki, gateway_port).await;
    let report = match ready {
        Ok(()) => measure(&options, scratch, &pki, gateway_port, &gateway).await,
        Err(e) => Err(e),
    };
    drop(gateway);
    if let Some((_, drop_schema)) = store_url {
        drop_schema.await;
    }
    report
}

/// The gateway's process, killed when dropped.
struct Gateway(std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the gateway has made its development PKI and answers /readyz.
async fn wait_ready(gateway: &mut Gateway, pki: &DevPki, port: u16) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = gateway.0.try_wait() {
            return Err(BenchError::Setup(format!("the gateway exited: {status}")));
        }
        if pki.client_key("prato").exists()
            && let Ok(c) = client::mtls_client(
                &pki.ca_cert(),
                &pki.client_cert("prato"),
                &pki.client_key("prato"),
            )
            && c.get(format!("https://localhost:{port}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(BenchError::Setup("the gateway did not become ready".into()))
}

/// A schema of its own for this run, and the means to drop it afterwards.
async fn fresh_schema(
    url: &str,
) -> Result<(String, impl std::future::Future<Output = ()>), BenchError> {
    let setup = |e: tokio_postgres::Error| BenchError::Setup(format!("PostgreSQL: {e}"));
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(setup)?;
    tokio::spawn(conn);
    let schema = format!("raccordo_bench_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .map_err(setup)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    let with_schema = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    let drop_schema = async move {
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
    };
    Ok((with_schema, drop_schema))
}

async fn measure(
    options: &BenchOptions,
    scratch: &Path,
    pki: &DevPki,
    gateway_port: u16,
    gateway: &Gateway,
) -> Result<BenchReport, BenchError> {
    let mut settings = Settings::defaults().map_err(|e| BenchError::Setup(e.to_string()))?;
    settings.data_dir = scratch.to_owned();
    let config = Config::from_settings(settings).map_err(|e| BenchError::Setup(e.to_string()))?;
    let tls = crate::tls::server_config(&config, time::OffsetDateTime::now_utc())?;

    let echo_listener = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let echo_port = echo_listener
        .local_addr()
        .map_err(|e| BenchError::Setup(e.to_string()))?
        .port();
    let echo = HttpServer::new(|| {
        App::new().route(
            "/echo",
            web::post().to(|body: web::Bytes| async move { HttpResponse::Ok().body(body) }),
        )
    })
    .listen_rustls_0_23(echo_listener, tls)
    .map_err(|e| BenchError::Setup(e.to_string()))?
    .run();
    let echo_handle = echo.handle();
    let echo_task = tokio::spawn(echo);

    let clients: Vec<reqwest::Client> = (0..options.connections)
        .map(|_| {
            client::mtls_client(
                &pki.ca_cert(),
                &pki.client_cert("prato"),
                &pki.client_key("prato"),
            )
        })
        .collect::<Result<_, _>>()?;
    // The example referral targets Firenze's night shelter, so Firenze publishes it first.
    let firenze = client::mtls_client(
        &pki.ca_cert(),
        &pki.client_cert("firenze"),
        &pki.client_key("firenze"),
    )?;
    let published = firenze
        .put(format!(
            "https://localhost:{gateway_port}/v1/structures/firenze-asilo-notturno-1"
        ))
        .header("content-type", "application/json")
        .body(STRUCTURE)
        .send()
        .await
        .map_err(|e| BenchError::Setup(format!("publishing the structure: {e}")))?;
    if !published.status().is_success() {
        return Err(BenchError::Setup(format!(
            "publishing the structure: {}",
            published.status()
        )));
    }
    let body = Arc::new(REFERRAL.as_bytes().to_vec());

    let echo_url = Arc::new(format!("https://localhost:{echo_port}/echo"));
    let baseline = phase(
        &clients,
        options,
        {
            let body = Arc::clone(&body);
            move |client: &reqwest::Client, _n: u64| {
                client
                    .post(echo_url.as_str())
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
            }
        },
        200,
    )
    .await;

    let url = Arc::new(format!("https://localhost:{gateway_port}/v1/referrals"));
    let run_id = uuid::Uuid::new_v4();
    let referrals = phase(
        &clients,
        options,
        move |client: &reqwest::Client, n: u64| {
            client
                .post(url.as_str())
                .header("content-type", "application/json")
                .header("Idempotency-Key", format!("bench-{run_id}-{n}"))
                .body(body.as_ref().clone())
        },
        201,
    )
    .await;

    echo_handle.stop(true).await;
    let _ = echo_task.await;
    let gateway_peak_rss_kib = proc_status_kib(gateway.0.id(), "VmHWM:");

    let throughput_ratio = if baseline.throughput_rps > 0.0 {
        referrals.throughput_rps / baseline.throughput_rps
    } else {
        0.0
    };
    Ok(BenchReport {
        machine: machine(),
        store: if options.postgres_url.is_some() {
            "postgres"
        } else {
            "sled"
        },
        connections: options.connections,
        duration_s: options.duration.as_secs_f64(),
        baseline_mtls_echo: baseline,
        referrals,
        throughput_ratio,
        gateway_peak_rss_kib,
        load_generator_peak_rss_kib: proc_status_kib(std::process::id(), "VmHWM:"),
    })
}

/// Runs `request` on every client concurrently: first a warm-up, then the measured window.
async fn phase<F>(
    clients: &[reqwest::Client],
    options: &BenchOptions,
    request: F,
    expect: u16,
) -> Phase
where
    F: Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let request = Arc::new(request);
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    let started = Instant::now();
    let measure_from = started + options.warmup;
    let end = measure_from + options.duration;
    for client in clients {
        let client = client.clone();
        let request = Arc::clone(&request);
        let counter = Arc::clone(&counter);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(16 * 1024);
            let mut errors = 0u64;
            let mut first_error = None;
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let ok = match request(&client, n).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body = r.bytes().await;
                        if status != expect && first_error.is_none() {
                            let body = body
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                                .unwrap_or_default();
                            first_error = Some(format!("{status}: {body}"));
                        }
                        status == expect
                    }
                    Err(e) => {
                        if first_error.is_none() {
                            first_error = Some(e.to_string());
                        }
                        false
                    }
                };
                if sent >= measure_from {
                    if ok {
                        latencies.push(sent.elapsed().as_micros() as u32);
                    } else {
                        errors += 1;
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        if let Ok((l, e, f)) = t.await {
            all.extend(l);
            errors += e;
            first_error = first_error.or(f);
        }
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all[i.min(all.len() - 1)]) / 1000.0
    };
    Phase {
        requests: all.len() as u64,
        errors,
        first_error,
        throughput_rps: all.len() as f64 / options.duration.as_secs_f64(),
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: pct(1.0),
    }
}

pub(crate) fn machine() -> Machine {
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    Machine {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model,
        memory_kib,
    }
}

/// A field of a process's status (Linux), in KiB; 0 where there is none.
pub(crate) fn proc_status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}
