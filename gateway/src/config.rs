//! Configuration: what operators write (`Settings`, strict: unknown options are an error) and
//! what the gateway runs on (`Config`, resolved: paths made absolute, durations typed).
//!
//! Layers, each overriding the one before: the defaults in `deploy/raccordo.toml` (compiled in,
//! so the documented file and the defaults cannot drift apart), an operator's file, then
//! environment variables `RACCORDO_<SECTION>__<OPTION>`.

use crate::secret::Secret;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The documented configuration file, which is also the set of defaults.
pub const DEFAULTS: &str = include_str!("../../deploy/raccordo.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub listen: ListenSettings,
    pub store: StoreSettings,
    pub tls: TlsSettings,
    pub keys: KeySettings,
    pub service_levels: ServiceLevelSettings,
    pub inbox: InboxSettings,
    pub telemetry: TelemetrySettings,
    pub linkage: LinkageSettings,
    pub retention: RetentionSettings,
    pub limits: LimitSettings,
    pub signatures: SignatureSettings,
    pub people: PeopleSettings,
    pub monitoring: crate::monitoring::MonitoringSettings,
    pub policy: Vec<crate::policy::PolicyRow>,
    pub ambiti: Vec<AmbitoSettings>,
}

/// Where records live: sled under `data_dir` (one gateway), or PostgreSQL (one or more gateways
/// sharing it); see the `[store]` section of `deploy/raccordo.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    /// PostgreSQL connection URL; meant for the environment (`RACCORDO_STORE__URL`), as it may
    /// carry a password.
    #[serde(default)]
    pub url: Secret<String>,
    pub ca_file: String,
    pub pool_size: usize,
    pub sled_cache_mib: u64,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Sled,
    Postgres,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSettings {
    pub audience: String,
}

/// People (regional staff, integrators) sign in through the Region's OpenID provider; see the
/// `[people]` section of `deploy/raccordo.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleSettings {
    pub listen: SocketAddr,
    pub public_url: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret_file: String,
    /// Takes precedence over the file; meant for the environment (`RACCORDO_PEOPLE__CLIENT_SECRET`).
    #[serde(default)]
    pub client_secret: Secret<String>,
    pub ca_file: String,
    pub audience: String,
    pub algorithms: Vec<String>,
    pub roles_claim: String,
    pub leeway_seconds: u64,
    pub session_hours: u64,
    pub jwks_min_refresh_seconds: u64,
    pub roles: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub requests_per_second: f64,
    pub burst: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    pub closed_referral_days: u64,
    pub sweep_interval_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkageSettings {
    pub auto_link_threshold: f64,
    pub review_threshold: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenSettings {
    pub address: SocketAddr,
    pub workers: usize,
    pub max_body_bytes: usize,
    pub client_request_timeout_ms: u64,
    /// Plain-HTTP listener for /healthz and /readyz only; empty: none.
    pub health: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    pub revoked_file: String,
    pub revocation_reload_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub master_key_file: String,
    /// 64 hexadecimal characters; takes precedence over the file. Meant for the environment
    /// (`RACCORDO_KEYS__MASTER_KEY`), never for a file under version control.
    #[serde(default)]
    pub master_key: Secret<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLevelSettings {
    pub immediate_minutes: u64,
    pub urgent_minutes: u64,
    pub ordinary_minutes: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSettings {
    pub max_wait_seconds: u64,
    pub page_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub log_filter: String,
    pub otlp_endpoint: String,
    pub service_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartyKind {
    Ambito,
    Region,
}

impl PartyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartyKind::Ambito => "ambito",
            PartyKind::Region => "region",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmbitoSettings {
    pub id: String,
    pub name: String,
    pub kind: PartyKind,
    pub istat_code: String,
    /// PEM files (relative to `data_dir`) or `sha256:<hex>` fingerprints of the certificates this
    /// party may present; two at once during a rotation.
    pub certificates: Vec<String>,
    /// Whether this party must sign request bodies (ModI INTEGRITY_REST_01).
    #[serde(default)]
    pub signed_requests: crate::signature::SignaturePolicy,
    /// Who to call about this party's integration.
    #[serde(default)]
    pub contacts: Vec<String>,
    /// The party's own endpoints (for callbacks, later stages).
    #[serde(default)]
    pub endpoints: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults, then the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "{} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        // RACCORDO_CONFIG is the command line's (`--config` from the environment), not an option.
        figment = figment.merge(Env::prefixed("RACCORDO_").ignore(&["config"]).split("__"));
        figment
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The defaults alone, ignoring the environment: what tests start from.
    pub fn defaults() -> Result<Settings, ConfigError> {
        Figment::from(Toml::string(DEFAULTS))
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

/// Where the server's TLS material comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// A development PKI under `<data_dir>/pki`, created on first start.
    Development,
    Files {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
    },
}

/// The resolved configuration the gateway runs on.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub store: crate::store::StoreConfig,
    pub listen: SocketAddr,
    /// The probe listener (plain HTTP, /healthz and /readyz only), when configured.
    pub health: Option<SocketAddr>,
    pub workers: usize,
    pub max_body_bytes: usize,
    pub client_request_timeout: Duration,
    pub tls: TlsSource,
    /// The Region's revocation list, and how often to look for changes.
    pub revoked_file: PathBuf,
    pub revocation_reload: Duration,
    pub master_key_file: PathBuf,
    pub master_key: Secret<String>,
    pub service_levels: ServiceLevels,
    pub inbox_max_wait: Duration,
    pub inbox_page_size: usize,
    pub telemetry: TelemetrySettings,
    pub linkage: LinkageSettings,
    /// How long the identifying part of a closed referral is kept, and how often to check.
    pub retention: Duration,
    pub retention_sweep: Duration,
    pub limits: crate::rate_limit::Limits,
    pub signature_audience: String,
    /// The people listener and its identity provider; `None` when no issuer is configured.
    pub people: Option<crate::people::PeopleConfig>,
    pub monitoring: crate::monitoring::MonitoringSettings,
    pub policy: crate::policy::PolicyTable,
    pub ambiti: Vec<AmbitoSettings>,
}

/// Time allowed for a first response, by urgency.
#[derive(Debug, Clone, Copy)]
pub struct ServiceLevels {
    pub immediate: Duration,
    pub urgent: Duration,
    pub ordinary: Duration,
}

impl ServiceLevels {
    pub fn for_urgency(&self, urgency: raccordo_schemas::Urgency) -> Duration {
        match urgency {
            raccordo_schemas::Urgency::Immediate => self.immediate,
            raccordo_schemas::Urgency::Urgent => self.urgent,
            raccordo_schemas::Urgency::Ordinary => self.ordinary,
        }
    }
}

fn store_config(
    s: &StoreSettings,
    data_dir: &Path,
) -> Result<crate::store::StoreConfig, ConfigError> {
    use crate::store::StoreConfig;
    Ok(match s.backend {
        StoreBackend::Sled => StoreConfig::Sled {
            dir: data_dir.join("store"),
            cache_bytes: s.sled_cache_mib.max(8).saturating_mul(1024 * 1024),
        },
        StoreBackend::Postgres => {
            if s.url.expose().is_empty() {
                return Err(ConfigError::Invalid(
                    "store: backend \"postgres\" needs a connection url (RACCORDO_STORE__URL)"
                        .into(),
                ));
            }
            StoreConfig::Postgres {
                url: s.url.clone(),
                ca_file: match s.ca_file.as_str() {
                    "" => None,
                    p if Path::new(p).is_absolute() => Some(PathBuf::from(p)),
                    p => Some(data_dir.join(p)),
                },
                pool_size: s.pool_size.clamp(1, 64),
            }
        }
    })
}

impl Config {
    pub fn from_settings(s: Settings) -> Result<Config, ConfigError> {
        let data_dir = s.data_dir;
        let resolve = |p: &str| -> PathBuf {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { data_dir.join(p) }
        };
        let tls_paths = [&s.tls.ca_file, &s.tls.cert_file, &s.tls.key_file];
        let tls = if tls_paths.iter().all(|p| p.is_empty()) {
            TlsSource::Development
        } else if tls_paths.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::Invalid(
                "tls: set all of ca_file, cert_file and key_file, or none for a development PKI"
                    .into(),
            ));
        } else {
            TlsSource::Files {
                ca: resolve(&s.tls.ca_file),
                cert: resolve(&s.tls.cert_file),
                key: resolve(&s.tls.key_file),
            }
        };
        let mut seen = std::collections::HashSet::new();
        for a in &s.ambiti {
            if !seen.insert(a.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "ambiti: {} appears twice",
                    a.id
                )));
            }
            if a.certificates.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "ambiti: {} has no certificates",
                    a.id
                )));
            }
        }
        let l = &s.linkage;
        if !(0.0..=1.0).contains(&l.review_threshold)
            || !(l.review_threshold..=1.0).contains(&l.auto_link_threshold)
        {
            return Err(ConfigError::Invalid(
                "linkage: need 0 <= review_threshold <= auto_link_threshold <= 1".into(),
            ));
        }
        if s.listen.max_body_bytes == 0 || s.inbox.page_size == 0 {
            return Err(ConfigError::Invalid(
                "listen.max_body_bytes and inbox.page_size must be positive".into(),
            ));
        }
        let minutes = |m: u64| Duration::from_secs(m.saturating_mul(60));
        let people = crate::people::PeopleConfig::from_settings(&s.people, &resolve)?;
        Ok(Config {
            people,
            master_key_file: resolve(if s.keys.master_key_file.is_empty() {
                "keys/master.key"
            } else {
                &s.keys.master_key_file
            }),
            master_key: s.keys.master_key,
            listen: s.listen.address,
            workers: s.listen.workers,
            max_body_bytes: s.listen.max_body_bytes,
            client_request_timeout: Duration::from_millis(s.listen.client_request_timeout_ms),
            tls,
            revoked_file: resolve(&s.tls.revoked_file),
            revocation_reload: Duration::from_secs(s.tls.revocation_reload_seconds.max(1)),
            service_levels: ServiceLevels {
                immediate: minutes(s.service_levels.immediate_minutes),
                urgent: minutes(s.service_levels.urgent_minutes),
                ordinary: minutes(s.service_levels.ordinary_minutes),
            },
            inbox_max_wait: Duration::from_secs(s.inbox.max_wait_seconds),
            inbox_page_size: s.inbox.page_size,
            telemetry: s.telemetry,
            linkage: s.linkage,
            retention: Duration::from_secs(s.retention.closed_referral_days.saturating_mul(86_400)),
            retention_sweep: Duration::from_secs(s.retention.sweep_interval_seconds.max(1)),
            signature_audience: s.signatures.audience,
            limits: crate::rate_limit::Limits {
                rate: s.limits.requests_per_second.max(0.0),
                burst: s.limits.burst.max(1.0),
            },
            monitoring: s.monitoring,
            store: store_config(&s.store, &data_dir)?,
            health: match s.listen.health.as_str() {
                "" => None,
                a => Some(a.parse().map_err(|_| {
                    ConfigError::Invalid(format!("listen.health: {a:?} is not an address:port"))
                })?),
            },
            policy: crate::policy::PolicyTable { rows: s.policy },
            ambiti: s.ambiti,
            data_dir,
        })
    }

    /// Resolves a path from the configuration against the data directory.
    pub fn data_path(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.data_dir.join(p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_is_the_default_and_resolves() {
        let settings = Settings::defaults().unwrap();
        assert_eq!(settings.listen.address.to_string(), "127.0.0.1:8443");
        assert_eq!(settings.ambiti.len(), 11);
        let config = Config::from_settings(settings).unwrap();
        assert!(matches!(config.tls, TlsSource::Development));
        assert_eq!(
            config.service_levels.immediate,
            Duration::from_secs(3 * 3600)
        );
        assert_eq!(
            config.service_levels.ordinary,
            Duration::from_secs(7 * 24 * 3600)
        );
        assert_eq!(
            config.master_key_file,
            PathBuf::from("./raccordo-data/keys/master.key")
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn files_and_environment_override_and_unknown_options_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("site.toml", "[listen]\naddress = \"0.0.0.0:9443\"\n")?;
            jail.set_env("RACCORDO_INBOX__PAGE_SIZE", "7");
            jail.set_env("RACCORDO_KEYS__MASTER_KEY", "ab".repeat(32));
            // The command line's own variable is not taken for an unknown option.
            jail.set_env("RACCORDO_CONFIG", "site.toml");
            let s = Settings::load(Some(Path::new("site.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(s.listen.address.to_string(), "0.0.0.0:9443");
            assert_eq!(s.inbox.page_size, 7);
            assert_eq!(s.listen.workers, 0, "unset options keep their defaults");
            assert!(
                !format!("{s:?}").contains("abab"),
                "the master key must never print"
            );

            jail.create_file("typo.toml", "[listen]\nadress = \"0.0.0.0:9443\"\n")?;
            let err = Settings::load(Some(Path::new("typo.toml")))
                .unwrap_err()
                .to_string();
            assert!(err.contains("adress"), "{err}");
            jail.set_env("RACCORDO_LISTEN__COLOUR", "red");
            assert!(Settings::load(None).is_err());
            assert!(Settings::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn half_configured_tls_is_refused() {
        let mut s = Settings::defaults().unwrap();
        s.tls.ca_file = "ca.crt".into();
        let err = Config::from_settings(s).unwrap_err().to_string();
        assert!(err.contains("cert_file"), "{err}");
    }
}
