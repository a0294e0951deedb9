//! Building and running the gateway. `Application::build` binds its listener before returning,
//! so tests can ask for port 0 and drive the real server as a black box.

use crate::api;
use crate::config::Config;
use crate::keys::{KeyError, MasterKey};
use crate::metrics::{Metrics, MetricsError};
use crate::pseudonym::Pseudonymiser;
use crate::referrals::StoredReferral;
use crate::registry::{Registry, RegistryError};
use crate::state::AppState;
use crate::store::{Read, Store, StoreError, keys};
use crate::tls::{self, TlsError};
use crate::vault::{Vault, VaultError};
use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::time::Instant;
use tracing_actix_web::TracingLogger;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("{0}")]
    Monitoring(String),
    #[error("{0}")]
    Schema(String),
    #[error(transparent)]
    People(#[from] crate::people::provider::ProviderError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    people_port: Option<u16>,
    health_port: Option<u16>,
    server: Server,
    /// The probe listener's server, stopped when the main one stops.
    health: Option<Server>,
    state: web::Data<AppState>,
    background: Background,
}

/// Periods of the work the gateway does on its own while it serves.
struct Background {
    retention_keep: std::time::Duration,
    retention_every: std::time::Duration,
    revocation_every: std::time::Duration,
}

impl Application {
    pub fn build(config: Config) -> Result<Application, StartupError> {
        let now = time::OffsetDateTime::now_utc();
        raccordo_schemas::validate::warm_up().map_err(|e| StartupError::Schema(e.to_string()))?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartupError::Io {
            what: format!("creating {}", config.data_dir.display()),
            source,
        })?;
        let tls_config = tls::server_config(&config, now)?;
        let registry = Registry::load(&config)?;
        let master = MasterKey::load_or_create(&config.master_key, &config.master_key_file)?;
        let vault = Vault::new(master.derive("raccordo/v1/vault-kek")?)?;
        let people = match &config.people {
            Some(p) => Some(std::sync::Arc::new(
                crate::people::provider::IdentityProvider::new(
                    p.clone(),
                    master.derive("raccordo/v1/staff-actor")?,
                )?,
            )),
            None => None,
        };
        let monitoring = crate::monitoring::Monitoring::new(&config.monitoring, &master)
            .map_err(|e| StartupError::Monitoring(e.to_string()))?;
        let store = Store::open_with(&config.store)?;
        // On a shared store releases read the records from the store (invariant 18), so this
        // process's cube would only cost start-up time and memory.
        if !store.is_shared()
            && let Ok(mut cube) = monitoring.cube.write()
        {
            *cube = crate::monitoring::cube::Cube::load(&store, monitoring.threads)?;
        }
        let epoch = store.get::<u32>(crate::persons::EPOCH_KEY)?.unwrap_or(1);
        let encoder = crate::linkage::keys::encoder(&master, epoch)?;
        let pseudonyms = Pseudonymiser::new(master, epoch)?;
        let metrics = Metrics::new()?;
        for (_, r) in store.scan::<StoredReferral>(keys::REFERRAL, None, usize::MAX)? {
            metrics.referral_moved(None, r.status);
        }
        let state = web::Data::new(AppState {
            store,
            vault,
            pseudonyms,
            registry,
            encoder,
            thresholds: crate::persons::Thresholds {
                auto_link: config.linkage.auto_link_threshold,
                review: config.linkage.review_threshold,
            },
            service_levels: config.service_levels,
            policy: config.policy.clone(),
            inbox_max_wait: config.inbox_max_wait,
            inbox_page_size: config.inbox_page_size,
            max_body_bytes: config.max_body_bytes,
            signature_audience: config.signature_audience.clone(),
            metrics,
            rate_limiter: crate::rate_limit::RateLimiter::new(config.limits),
            revocations: crate::revocation::Revocations::new(config.revoked_file.clone()),
            people,
            monitoring,
        });
        let (listener, port) = bind(config.listen, "the mTLS listener")?;
        let people_listener = match &config.people {
            Some(p) => {
                let (l, port) = bind(p.listen, "the people listener")?;
                Some((l, port, tls::people_server_config(&config, now)?))
            }
            None => None,
        };
        let people_port = people_listener.as_ref().map(|(_, port, _)| *port);
        let app_state = state.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(actix_web::middleware::from_fn(api::authorize))
                .wrap_fn(|req, srv| {
                    let started = Instant::now();
                    // Route templates only: ids in paths never become metric labels.
                    let route = req
                        .match_pattern()
                        .unwrap_or_else(|| "unmatched".to_owned());
                    let method = req.method().as_str().to_owned();
                    let state = req.app_data::<api::State>().cloned();
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        if let Some(state) = state {
                            state.metrics.observe_request(
                                &route,
                                &method,
                                res.status().as_u16(),
                                started.elapsed().as_secs_f64(),
                            );
                        }
                        Ok(res)
                    }
                })
                .wrap(TracingLogger::default())
                .configure(api::configure)
                .configure(crate::console::configure)
                .default_service(web::to(api::not_found))
        })
        .on_connect(move |conn, ext| tls::on_connect(conn, ext, people_port))
        .client_request_timeout(config.client_request_timeout)
        .shutdown_timeout(5);
        if config.workers > 0 {
            server = server.workers(config.workers);
        }
        let mut server = server
            .listen_rustls_0_23(listener, tls_config)
            .map_err(|source| StartupError::Io {
                what: "starting the TLS listener".into(),
                source,
            })?;
        if let Some((l, _, people_tls)) = people_listener {
            server =
                server
                    .listen_rustls_0_23(l, people_tls)
                    .map_err(|source| StartupError::Io {
                        what: "starting the people listener".into(),
                        source,
                    })?;
        }
        let server = server.run();
        let (health, health_port) = match config.health {
            Some(address) => {
                let (l, port) = bind(address, "the health listener")?;
                (Some(health_server(l, state.clone())?), Some(port))
            }
            None => (None, None),
        };
        Ok(Application {
            port,
            people_port,
            health_port,
            server,
            health,
            state,
            background: Background {
                retention_keep: config.retention,
                retention_every: config.retention_sweep,
                revocation_every: config.revocation_reload,
            },
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the people listener (console and bearer tokens), when one is configured.
    pub fn people_port(&self) -> Option<u16> {
        self.people_port
    }

    /// The port of the probe listener (/healthz, /readyz over plain HTTP), when configured.
    pub fn health_port(&self) -> Option<u16> {
        self.health_port
    }

    /// A handle to stop the server from elsewhere (tests, signal handlers).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped, then flushes and releases the store: when this returns, the data
    /// directory can be opened again (a restart in the same process, `raccordo audit verify`).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let b = &self.background;
        let tasks = [
            tokio::spawn(crate::retention::run(
                self.state.clone(),
                b.retention_keep,
                b.retention_every,
            )),
            tokio::spawn(reload_revocations(self.state.clone(), b.revocation_every)),
        ];
        let health = self.health.map(|h| {
            let handle = h.handle();
            (handle, tokio::spawn(h))
        });
        let result = self.server.await;
        if let Some((handle, task)) = health {
            handle.stop(true).await;
            let _ = task.await;
        }
        for task in tasks {
            task.abort();
            let _ = task.await;
        }
        if let Err(e) = self.state.store.close() {
            tracing::error!(error = %e, "closing the store");
        }
        // Worker threads drop their copies of the state as they wind down.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let state = self.state.into_inner();
        while std::sync::Arc::strong_count(&state) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        drop(state);
        result
    }
}

/// The probe listener: plain HTTP, two routes that say whether the process and its store answer,
/// and nothing else; no identity is asked for because nothing is disclosed.
fn health_server(
    listener: TcpListener,
    state: web::Data<AppState>,
) -> Result<Server, StartupError> {
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/healthz", web::get().to(api::healthz))
            .route("/readyz", web::get().to(api::readyz))
    })
    .workers(1)
    .shutdown_timeout(1)
    .listen(listener)
    .map_err(|source| StartupError::Io {
        what: "starting the health listener".into(),
        source,
    })?
    .run())
}

/// Binds a listener (port 0: any free port) and says which port it got.
fn bind(address: std::net::SocketAddr, what: &str) -> Result<(TcpListener, u16), StartupError> {
    let io = |source| StartupError::Io {
        what: format!("binding {what} on {address}"),
        source,
    };
    let listener = TcpListener::bind(address).map_err(io)?;
    let port = listener.local_addr().map_err(io)?.port();
    Ok((listener, port))
}

async fn reload_revocations(state: web::Data<AppState>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        state.revocations.reload();
    }
}
