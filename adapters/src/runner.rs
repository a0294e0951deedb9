//! `raccordo adapter run`: beside the local system, forever (or `--once`). Each cycle:
//!
//! 1. every file in the export folder, in name order: each record converted and submitted over
//!    mTLS with an idempotency key derived from the local record id, or quarantined with its
//!    reason; a checkpoint every few records, so a restart resumes where it stopped (and what it
//!    sends again, the gateway recognises by the key); the file moves to `done/` only when every
//!    record in it is accounted for;
//! 2. the local JSON API, when one is polled, the same way (unchanged records are not resent);
//! 3. the inbox: each referral addressed to this ambito, and each status event, written in the
//!    local format to the inbound folder before the cursor moves past it.
//!
//! A gateway that is down, slow or rate-limiting is retried with exponential backoff (honouring
//! `Retry-After`); nothing is skipped.

use crate::codec::{self, LocalRecord};
use crate::convert::{self, Rejection};
use crate::mapping::MappingFile;
use crate::quarantine::Quarantine;
use crate::state::{FileCheckpoint, State, fingerprint};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct RunnerConfig {
    pub mapping: MappingFile,
    /// The gateway's base URL, e.g. https://raccordo.example:8443
    pub gateway: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Export folder to watch; `done/` is created inside it.
    pub watch: Option<PathBuf>,
    /// A local JSON API to poll for records.
    pub poll: Option<String>,
    /// Where inbound referrals and status events are written in the local format.
    pub inbound: PathBuf,
    pub quarantine: PathBuf,
    pub state: PathBuf,
    pub interval: Duration,
    /// Longest wait between two retries.
    pub max_backoff: Duration,
    /// Checkpoint after this many records.
    pub checkpoint_every: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Codec(#[from] codec::CodecError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// What one cycle did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Cycle {
    pub submitted: u64,
    pub replayed: u64,
    pub quarantined: u64,
    pub files_done: u64,
    pub inbound_written: u64,
}

pub struct Runner {
    cfg: RunnerConfig,
    http: reqwest::Client,
    state: State,
    quarantine: Quarantine,
}

enum Submitted {
    /// Accepted by the gateway, which named it with this id.
    Created(String),
    Replayed(String),
    Refused(Vec<Rejection>),
}

fn idempotency_key(ambito: &str, entity: &str, local_id: &str) -> String {
    let d = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{ambito}\u{1f}{entity}\u{1f}{local_id}").as_bytes(),
    );
    // A digest, not the local id: proxies log headers, and local ids can be case numbers.
    format!("ad-{}", &raccordo_gateway::pki::hex(d.as_ref())[..40])
}

fn body_digest(body: &[u8]) -> String {
    raccordo_gateway::pki::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body).as_ref())
}

/// The gateway route an entity is submitted to. Referrals are answered with the gateway's id;
/// the monitoring's records are filed by their local id (a second submission replaces the
/// first with the same content, which is what a replay is for them).
fn route(entity: &str) -> Option<&'static str> {
    match entity {
        "referral" => Some("/v1/referrals"),
        "episode" => Some("/v1/episodes"),
        "distribution" => Some("/v1/distributions"),
        "intervention" => Some("/v1/interventions"),
        _ => None,
    }
}

impl Runner {
    pub fn new(cfg: RunnerConfig) -> Result<Runner, RunnerError> {
        if route(&cfg.mapping.adapter.entity).is_none() {
            return Err(RunnerError::Setup(format!(
                "the runner submits referrals, episodes, distributions and interventions; entity {:?} has no gateway route",
                cfg.mapping.adapter.entity
            )));
        }
        let http = raccordo_gateway::client::mtls_client(&cfg.ca, &cfg.cert, &cfg.key)
            .map_err(|e| RunnerError::Setup(e.to_string()))?;
        for dir in [&cfg.inbound, &cfg.state] {
            std::fs::create_dir_all(dir)?;
        }
        let state = State::open(&cfg.state)?;
        let quarantine = Quarantine::new(&cfg.quarantine)?;
        Ok(Runner {
            cfg,
            http,
            state,
            quarantine,
        })
    }

    /// Runs cycles until `stop` resolves; a cycle in progress is abandoned at its next wait
    /// (the checkpoint makes that safe).
    pub async fn run(
        &self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), RunnerError> {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                r = self.cycle() => {
                    let c = r?;
                    tracing::info!(submitted = c.submitted, replayed = c.replayed, quarantined = c.quarantined, files = c.files_done, inbound = c.inbound_written, "adapter cycle");
                }
            }
            tokio::select! {
                _ = &mut stop => return Ok(()),
                _ = tokio::time::sleep(self.cfg.interval) => {}
            }
        }
    }

    pub async fn cycle(&self) -> Result<Cycle, RunnerError> {
        let mut c = Cycle::default();
        if let Some(dir) = &self.cfg.watch {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    // Files still being written are named so by convention.
                    !name.starts_with('.') && !name.ends_with(".part") && !name.ends_with(".tmp")
                })
                .collect();
            files.sort();
            for f in files {
                self.file(&f, &mut c).await?;
            }
        }
        if let Some(url) = &self.cfg.poll {
            self.poll(url, &mut c).await?;
        }
        // The inbox carries referrals and their status events: only a referral runner writes
        // it back, so that an ambito running one runner per entity gets each item once.
        if self.cfg.mapping.adapter.entity == "referral" {
            self.inbox(&mut c).await?;
        }
        Ok(c)
    }

    async fn file(&self, path: &Path, c: &mut Cycle) -> Result<(), RunnerError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let print = fingerprint(path)?;
        let mut next = match self.state.checkpoint(&name)? {
            Some(cp) if cp.fingerprint == print => cp.next,
            _ => 0,
        };
        let mut since_checkpoint = 0;
        for item in codec::read(&self.cfg.mapping, path)? {
            let index = match &item {
                Ok(r) => r.location.index,
                Err(u) => u.location.index,
            };
            if index < next {
                continue;
            }
            match item {
                Err(u) => {
                    let r = Rejection {
                        field: None,
                        pointer: None,
                        rule: "unreadable".into(),
                        reason: u.reason,
                    };
                    if self
                        .quarantine
                        .put(&u.location, None, vec![r], Default::default())?
                    {
                        c.quarantined += 1;
                    }
                }
                Ok(record) => self.record(&record, c).await?,
            }
            next = index + 1;
            since_checkpoint += 1;
            if since_checkpoint >= self.cfg.checkpoint_every {
                self.state.set_checkpoint(
                    &name,
                    &FileCheckpoint {
                        fingerprint: print.clone(),
                        next,
                    },
                )?;
                since_checkpoint = 0;
            }
        }
        self.state.set_checkpoint(
            &name,
            &FileCheckpoint {
                fingerprint: print,
                next,
            },
        )?;
        // Every record is accounted for: only now does the file leave the export folder.
        let done = path.parent().unwrap_or(Path::new(".")).join("done");
        std::fs::create_dir_all(&done)?;
        std::fs::rename(path, done.join(&name))?;
        self.state.forget(&name)?;
        c.files_done += 1;
        Ok(())
    }

    async fn record(&self, record: &LocalRecord, c: &mut Cycle) -> Result<(), RunnerError> {
        let m = &self.cfg.mapping;
        let local_id = record.value(&m.record.id).map(str::to_owned);
        let year = time::OffsetDateTime::now_utc().year();
        let outcome = match (&local_id, convert::to_canonical(m, record, year)) {
            (None, _) => Err(vec![Rejection {
                field: Some(m.record.id.clone()),
                pointer: None,
                rule: "required".into(),
                reason: "the record has no local id, so it cannot be sent exactly once".into(),
            }]),
            (_, Err(r)) => Err(r),
            (Some(id), Ok(doc)) => {
                let key = idempotency_key(&m.adapter.ambito, &m.adapter.entity, id);
                match self.submit(&key, &doc).await {
                    Submitted::Created(gateway_id) => {
                        c.submitted += 1;
                        if !gateway_id.is_empty() {
                            self.state.set_local_id(&gateway_id, id)?;
                        }
                        Ok(())
                    }
                    Submitted::Replayed(gateway_id) => {
                        c.replayed += 1;
                        if !gateway_id.is_empty() {
                            self.state.set_local_id(&gateway_id, id)?;
                        }
                        Ok(())
                    }
                    Submitted::Refused(r) => Err(r),
                }
            }
        };
        if let Err(rejections) = outcome
            && self.quarantine.put(
                &record.location,
                local_id,
                rejections,
                record.fields.clone(),
            )?
        {
            c.quarantined += 1;
        }
        Ok(())
    }

    /// Submits until the gateway answers for this record: created, replayed, or refused (4xx).
    async fn submit(&self, key: &str, doc: &Value) -> Submitted {
        let body = serde_json::to_vec(doc).unwrap_or_default();
        let mut wait = Duration::from_millis(200);
        loop {
            let sent = self
                .http
                .post(format!(
                    "{}{}",
                    self.cfg.gateway,
                    route(&self.cfg.mapping.adapter.entity).unwrap_or("/v1/referrals")
                ))
                .header("Idempotency-Key", key)
                .header("Content-Type", "application/json")
                .body(body.clone())
                .timeout(Duration::from_secs(30))
                .send()
                .await;
            let retry_after = match sent {
                Ok(r) if r.status().is_success() => {
                    let replayed = r.headers().contains_key("idempotent-replayed")
                        || r.status().as_u16() == 200;
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    let id = body["id"].as_str().unwrap_or_default().to_owned();
                    return if replayed {
                        Submitted::Replayed(id)
                    } else {
                        Submitted::Created(id)
                    };
                }
                Ok(r)
                    if r.status().as_u16() == 429
                        || r.status().is_server_error()
                        || r.status().as_u16() == 408 =>
                {
                    r.headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_secs)
                }
                Ok(r) => {
                    let status = r.status().as_u16();
                    let problem: Value = r.json().await.unwrap_or(Value::Null);
                    return Submitted::Refused(refusal(&self.cfg.mapping, status, &problem));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "gateway unreachable; retrying");
                    None
                }
            };
            tokio::time::sleep(retry_after.unwrap_or(wait).min(self.cfg.max_backoff)).await;
            wait = (wait * 2).min(self.cfg.max_backoff);
        }
    }

    async fn poll(&self, url: &str, c: &mut Cycle) -> Result<(), RunnerError> {
        let response = match reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(
                    status = r.status().as_u16(),
                    "local API answered with an error; next cycle"
                );
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "local API unreachable; next cycle");
                return Ok(());
            }
        };
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RunnerError::Setup(e.to_string()))?;
        let tmp = self.cfg.state.join("poll.json");
        std::fs::write(&tmp, &bytes)?;
        let m = &self.cfg.mapping;
        for item in codec::read(m, &tmp)? {
            let Ok(mut record) = item else { continue };
            record.location.file = "local-api".into();
            let Some(id) = record.value(&m.record.id).map(str::to_owned) else {
                self.record(&record, c).await?;
                continue;
            };
            // The same record, unchanged, is not sent again at every poll.
            let digest = body_digest(
                serde_json::to_string(&record.fields)
                    .unwrap_or_default()
                    .as_bytes(),
            );
            let key = idempotency_key(&m.adapter.ambito, &m.adapter.entity, &id);
            if self.state.sent(&key)?.as_deref() == Some(digest.as_str()) {
                continue;
            }
            // An API page has no stable positions: the content's digest stands for the record's
            // index, so the quarantine keeps one entry per version of a refused record.
            record.location.index = u64::from_str_radix(&digest[..12], 16).unwrap_or(0);
            self.record(&record, c).await?;
            self.state.set_sent(&key, &digest)?;
        }
        Ok(())
    }

    async fn inbox(&self, c: &mut Cycle) -> Result<(), RunnerError> {
        let m = &self.cfg.mapping;
        loop {
            let mut url = format!("{}/v1/inbox", self.cfg.gateway);
            if let Some(cursor) = self.state.cursor()? {
                url.push_str(&format!("?after={cursor}"));
            }
            let page: Value = match self
                .http
                .get(&url)
                .timeout(Duration::from_secs(30))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
                Ok(r) => {
                    tracing::warn!(
                        status = r.status().as_u16(),
                        "inbox unavailable; next cycle"
                    );
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "gateway unreachable for the inbox; next cycle");
                    return Ok(());
                }
            };
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                return Ok(());
            }
            for item in items {
                let cursor = item["cursor"].as_str().unwrap_or_default().to_owned();
                let (name, fields) = if item["type"] == "referral.requested" {
                    let id = item["referral"].as_str().unwrap_or_default();
                    let r = self
                        .http
                        .get(format!("{}/v1/referrals/{id}", self.cfg.gateway))
                        .send()
                        .await;
                    let doc: Value = match r {
                        Ok(r) if r.status().is_success() => r.json().await.unwrap_or(Value::Null),
                        _ => return Ok(()),
                    };
                    (
                        format!("referral-{cursor:0>12}"),
                        convert::to_local(m, &m.fields, &doc),
                    )
                } else {
                    // The local system knows its referrals by its own ids: name it so.
                    let mut event = item.clone();
                    let referral = item["referral"].as_str().unwrap_or_default();
                    if let Some(local) = self.state.local_id(referral)? {
                        event["local_case_ref"] = Value::String(local);
                    }
                    (
                        format!("status-{cursor:0>12}"),
                        convert::to_local(m, &m.status_fields, &event),
                    )
                };
                let rules = if name.starts_with("referral") {
                    &m.fields
                } else {
                    &m.status_fields
                };
                match fields {
                    Ok(fields) => {
                        let bytes = codec::write(m, rules, &[fields])?;
                        let path = self
                            .cfg
                            .inbound
                            .join(format!("{name}.{}", codec::extension(m)));
                        let tmp = path.with_extension("part");
                        std::fs::write(&tmp, bytes)?;
                        std::fs::File::open(&tmp)?.sync_all()?;
                        std::fs::rename(&tmp, &path)?;
                        c.inbound_written += 1;
                    }
                    Err(problems) => {
                        let location = codec::Location {
                            file: "inbox".into(),
                            line: None,
                            element: Some(name),
                            index: cursor.parse().unwrap_or(0),
                        };
                        if self.quarantine.put(
                            &location,
                            item["referral"].as_str().map(str::to_owned),
                            problems,
                            Default::default(),
                        )? {
                            c.quarantined += 1;
                        }
                    }
                }
                self.state.set_cursor(&cursor)?;
            }
        }
    }
}

/// A gateway refusal, with each violation's pointer traced back to the local field.
fn refusal(m: &MappingFile, status: u16, problem: &Value) -> Vec<Rejection> {
    let code = problem["code"].as_str().unwrap_or("refused").to_owned();
    let errors = problem["errors"].as_array().cloned().unwrap_or_default();
    if errors.is_empty() {
        return vec![Rejection {
            field: None,
            pointer: None,
            rule: code,
            reason: format!(
                "gateway {status}: {}",
                problem["detail"].as_str().unwrap_or("")
            ),
        }];
    }
    errors
        .iter()
        .map(|e| {
            let pointer = e["pointer"].as_str().unwrap_or("").to_owned();
            Rejection {
                field: convert::local_field_for(m, &pointer),
                pointer: Some(pointer),
                rule: format!("{code}/{}", e["keyword"].as_str().unwrap_or("")),
                reason: e["message"].as_str().unwrap_or("").to_owned(),
            }
        })
        .collect()
}
