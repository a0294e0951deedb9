//! Starts gateways for tests and speaks to them as the parties would.

use raccordo_gateway::pki::DevPki;
use raccordo_gateway::{Application, Config, Settings, client};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

pub const PARTIES: [&str; 11] = [
    "arezzo", "carrara", "firenze", "grosseto", "livorno", "lucca", "pisa", "pistoia", "prato",
    "siena", "region",
];

pub struct TestApp {
    pub dir: TempDir,
    pub port: u16,
    /// The people listener (console and bearer tokens), when the test configured one.
    pub people_port: Option<u16>,
    /// The plain-HTTP probe listener, when the test configured one.
    pub health_port: Option<u16>,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    clients: HashMap<&'static str, reqwest::Client>,
}

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_in(TempDir::new().unwrap(), |_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        Self::spawn_in(TempDir::new().unwrap(), adjust).await
    }

    /// Starts a gateway on `dir` (which may hold a previous run's data).
    pub async fn spawn_in(dir: TempDir, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        raccordo_gateway::tls::install_default_provider();
        let mut settings = settings_for(dir.path()).await;
        settings.listen.address = ([127, 0, 0, 1], 0).into();
        settings.listen.workers = 2;
        adjust(&mut settings);
        let app = Application::build(Config::from_settings(settings).unwrap()).unwrap();
        let port = app.port();
        let people_port = app.people_port();
        let health_port = app.health_port();
        let handle = app.handle();
        let task = tokio::spawn(app.run_until_stopped());
        let pki = DevPki::new(dir.path());
        let clients = PARTIES
            .iter()
            .map(|p| {
                (
                    *p,
                    client::mtls_client(&pki.ca_cert(), &pki.client_cert(p), &pki.client_key(p))
                        .unwrap(),
                )
            })
            .collect();
        TestApp {
            dir,
            port,
            people_port,
            health_port,
            handle,
            task,
            clients,
        }
    }

    /// Stops the server gracefully and hands back its data directory.
    pub async fn stop(self) -> TempDir {
        self.handle.stop(true).await;
        self.task.await.unwrap().unwrap();
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// A URL on the people listener.
    pub fn people_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.people_port.unwrap())
    }

    /// A client for the people listener: trusts the development CA, presents no certificate,
    /// follows no redirects.
    pub fn people_client(&self) -> reqwest::Client {
        let tls = client::tls_config(&self.pki().ca_cert(), None).unwrap();
        reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// GET on the people listener with a bearer token.
    pub async fn get_as(&self, token: &str, path: &str) -> Response {
        read(
            self.people_client()
                .get(self.people_url(path))
                .bearer_auth(token)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub fn pki(&self) -> DevPki {
        DevPki::new(self.dir.path())
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub fn client(&self, party: &str) -> &reqwest::Client {
        &self.clients[party]
    }

    pub async fn get(&self, party: &str, path: &str) -> Response {
        read(self.client(party).get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post(&self, party: &str, path: &str, body: &Value) -> Response {
        read(
            self.client(party)
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn put(&self, party: &str, path: &str, body: &Value) -> Response {
        read(
            self.client(party)
                .put(self.url(path))
                .json(body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn send_referral(&self, party: &str, body: &Value, key: Option<&str>) -> Response {
        let mut req = self
            .client(party)
            .post(self.url("/v1/referrals"))
            .json(body);
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        read(req.send().await.unwrap()).await
    }

    /// Creates a referral from `sender` to `receiver` and returns its id.
    pub async fn create(&self, sender: &str, receiver: &str) -> String {
        let r = self
            .send_referral(sender, &referral(sender, receiver), None)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// GET /v1/referrals/{id} as `party`.
    pub async fn referral(&self, party: &str, id: &str) -> Response {
        self.get(party, &format!("/v1/referrals/{id}")).await
    }

    pub async fn set_status(
        &self,
        party: &str,
        id: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Response {
        let mut body = json!({ "status": status });
        if let Some(r) = reason {
            body["reason"] = r.into();
        }
        self.post(party, &format!("/v1/referrals/{id}/status"), &body)
            .await
    }

    pub async fn metrics(&self) -> String {
        self.get("region", "/metrics").await.text
    }
}

pub async fn read(response: reqwest::Response) -> Response {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Response {
        status,
        headers,
        body,
        text,
    }
}

pub fn example(path: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/examples")
        .join(path);
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// The Prato -> Firenze example, re-addressed, with consent naming the receiver.
pub fn referral(sender: &str, receiver: &str) -> Value {
    let mut r = example("referral/valid/prato-to-firenze-with-consent.json");
    r.as_object_mut().unwrap().remove("target_structure");
    r["sender"] = sender.into();
    r["receiver"] = receiver.into();
    r["legal_basis"]["recipients"] = json!([receiver]);
    r
}

/// Identifiers planted in the example, which must never be stored in clear.
pub const PLANTED: [&str; 4] = ["MHMSLM85T10Z330X", "Salim", "Mohamed", "Salem"];

pub fn assert_problem(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{}",
        r.text
    );
    assert_eq!(r.body["code"], code, "{}", r.text);
    assert_eq!(r.body["status"], status);
    assert!(r.body["type"].as_str().unwrap().ends_with(code));
    for planted in PLANTED {
        assert!(
            !r.text.contains(planted),
            "problem leaks {planted}: {}",
            r.text
        );
    }
}

/// The PostgreSQL server the suite runs against instead of sled, when `RACCORDO_TEST_POSTGRES`
/// names one (`.ci/test` runs the suite once on each store).
pub fn postgres() -> Option<String> {
    std::env::var("RACCORDO_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Each data directory gets its own schema, named in a file beside the data so that a restarted
/// gateway finds its records again; `None` on sled.
pub async fn postgres_url(dir: &Path) -> Option<String> {
    let base = postgres()?;
    let file = dir.join("pg-schema");
    let schema = match std::fs::read_to_string(&file) {
        Ok(s) => s,
        Err(_) => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let client = pg_connect(&base).await;
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            std::fs::write(&file, &schema).unwrap();
            schema
        }
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
}

async fn pg_connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// The referral of every event in a party's inbox, read page by page to the end, in order.
pub async fn inbox_referrals(client: &reqwest::Client, base: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(c) => format!("{base}/v1/inbox?after={c}"),
            None => format!("{base}/v1/inbox"),
        };
        let page = read(client.get(url).send().await.unwrap()).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let items = page.body["items"].as_array().unwrap();
        if items.is_empty() {
            return seen;
        }
        seen.extend(
            items
                .iter()
                .map(|i| i["referral"].as_str().unwrap().to_owned()),
        );
        after = page.body["next_cursor"].as_str().map(str::to_owned);
    }
}

/// The default settings on `dir`, with the store the suite runs on.
pub async fn settings_for(dir: &Path) -> Settings {
    let mut settings = Settings::defaults().unwrap();
    settings.data_dir = dir.to_owned();
    if let Some(url) = postgres_url(dir).await {
        settings.store.backend = raccordo_gateway::config::StoreBackend::Postgres;
        settings.store.url = raccordo_gateway::secret::Secret::new(url);
    }
    settings
}

/// The store of a stopped gateway's data directory, opened as the gateway would.
pub async fn open_store(dir: &Path) -> raccordo_gateway::store::Store {
    use raccordo_gateway::store::{Store, StoreConfig};
    match postgres_url(dir).await {
        Some(url) => Store::open_with(&StoreConfig::Postgres {
            url: raccordo_gateway::secret::Secret::new(url),
            ca_file: None,
            pool_size: 1,
        })
        .unwrap(),
        None => Store::open(&dir.join("store")).unwrap(),
    }
}

/// Verifies the audit chain of a stopped gateway's store.
pub async fn verify_audit(dir: &Path) -> raccordo_gateway::store::audit::VerifyReport {
    open_store(dir).await.verify_audit().unwrap()
}

/// The store's records as bytes on disk, reached around the gateway: what someone with the
/// files or the database in hand sees, to tamper with them or look for planted values.
pub enum RawStore {
    Sled(PathBuf, sled::Db, sled::Tree),
    Postgres(tokio_postgres::Client),
}

impl RawStore {
    pub async fn open(dir: &Path) -> RawStore {
        match postgres_url(dir).await {
            Some(url) => RawStore::Postgres(pg_connect(&url).await),
            None => {
                let db = sled::open(dir.join("store")).unwrap();
                let tree = db.open_tree("raccordo-v1").unwrap();
                RawStore::Sled(dir.join("store"), db, tree)
            }
        }
    }

    pub async fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self {
            RawStore::Sled(_, _, t) => t.get(key).unwrap().map(|v| v.to_vec()),
            RawStore::Postgres(c) => c
                .query_opt("SELECT v FROM raccordo_kv WHERE k = $1", &[&key])
                .await
                .unwrap()
                .map(|r| r.get(0)),
        }
    }

    pub async fn put(&self, key: &[u8], value: Vec<u8>) {
        match self {
            RawStore::Sled(_, db, t) => {
                t.insert(key, value).unwrap();
                db.flush().unwrap();
            }
            RawStore::Postgres(c) => {
                c.execute(
                    "INSERT INTO raccordo_kv (k, v) VALUES ($1, $2) \
                     ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                    &[&key, &value],
                )
                .await
                .unwrap();
            }
        }
    }

    pub async fn remove(&self, key: &[u8]) {
        match self {
            RawStore::Sled(_, db, t) => {
                t.remove(key).unwrap();
                db.flush().unwrap();
            }
            RawStore::Postgres(c) => {
                c.execute("DELETE FROM raccordo_kv WHERE k = $1", &[&key])
                    .await
                    .unwrap();
            }
        }
    }

    /// Keys and values under `prefix`, in key order.
    pub async fn prefix(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        match self {
            RawStore::Sled(_, _, t) => t
                .scan_prefix(prefix)
                .map(|kv| {
                    let (k, v) = kv.unwrap();
                    (k.to_vec(), v.to_vec())
                })
                .collect(),
            RawStore::Postgres(c) => c
                .query(
                    "SELECT k, v FROM raccordo_kv WHERE substring(k from 1 for $2) = $1 ORDER BY k",
                    &[&prefix, &i32::try_from(prefix.len()).unwrap()],
                )
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect(),
        }
    }

    /// Everything stored, as one byte string: sled's files, or every key and value.
    pub async fn all_bytes(&self) -> Vec<u8> {
        match self {
            RawStore::Sled(dir, db, _) => {
                db.flush().unwrap();
                let mut raw = Vec::new();
                for entry in files_under(dir) {
                    raw.extend(std::fs::read(entry).unwrap());
                }
                raw
            }
            RawStore::Postgres(_) => self
                .prefix(b"")
                .await
                .into_iter()
                .flat_map(|(k, v)| k.into_iter().chain(v))
                .collect(),
        }
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// A second data directory for another gateway process of the same deployment: the same master
/// key, PKI and (on PostgreSQL) the same database schema; no sled store of its own.
pub fn twin_dir(of: &Path) -> TempDir {
    let twin = TempDir::new().unwrap();
    copy_dir(&of.join("keys"), &twin.path().join("keys"));
    copy_dir(&of.join("pki"), &twin.path().join("pki"));
    if let Ok(schema) = std::fs::read_to_string(of.join("pg-schema")) {
        std::fs::write(twin.path().join("pg-schema"), schema).unwrap();
    }
    twin
}

/// Every file below `dir` (to look for planted values in the raw store).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}
