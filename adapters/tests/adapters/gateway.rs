//! A real gateway for the runner tests: on port 0 (or a given port), a temporary data directory,
//! the development PKI, and an mTLS client per party.

use raccordo_gateway::pki::DevPki;
use raccordo_gateway::{Application, Config, Settings, client};
use serde_json::Value;
use std::path::PathBuf;
use tempfile::TempDir;

pub struct Gateway {
    pub dir: TempDir,
    pub port: u16,
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    pub async fn start() -> Gateway {
        Self::start_in(TempDir::new().unwrap(), 0).await
    }

    pub async fn start_in(dir: TempDir, port: u16) -> Gateway {
        raccordo_gateway::tls::install_default_provider();
        let mut s = Settings::defaults().unwrap();
        s.data_dir = dir.path().to_owned();
        s.listen.address = ([127, 0, 0, 1], port).into();
        s.listen.workers = 2;
        let app = Application::build(Config::from_settings(s).unwrap()).unwrap();
        let port = app.port();
        let handle = app.handle();
        // Served until stopped, or until the test's runtime ends.
        let task = tokio::spawn(app.run_until_stopped());
        Gateway {
            dir,
            port,
            handle,
            task,
        }
    }

    /// Stops the gateway (as for a restart) and hands back its data directory.
    pub async fn stop(self) -> TempDir {
        self.handle.stop(true).await;
        self.task.await.unwrap().unwrap();
        self.dir
    }

    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub fn pki(&self) -> DevPki {
        DevPki::new(self.dir.path())
    }

    pub fn cert(&self, party: &str) -> (PathBuf, PathBuf, PathBuf) {
        let p = self.pki();
        (p.ca_cert(), p.client_cert(party), p.client_key(party))
    }

    pub fn client(&self, party: &str) -> reqwest::Client {
        let (ca, cert, key) = self.cert(party);
        client::mtls_client(&ca, &cert, &key).unwrap()
    }

    /// Every inbox item of `party` (all pages).
    pub async fn inbox(&self, party: &str) -> Vec<Value> {
        let http = self.client(party);
        let mut items = Vec::new();
        let mut after = String::new();
        loop {
            let url = if after.is_empty() {
                format!("{}/v1/inbox", self.url())
            } else {
                format!("{}/v1/inbox?after={after}", self.url())
            };
            let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            let batch = page["items"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                return items;
            }
            after = page["next_cursor"].as_str().unwrap().to_owned();
            items.extend(batch);
        }
    }

    /// Referrals requested of `party` so far.
    pub async fn requested_of(&self, party: &str) -> Vec<String> {
        self.inbox(party)
            .await
            .into_iter()
            .filter(|i| i["type"] == "referral.requested")
            .map(|i| i["referral"].as_str().unwrap().to_owned())
            .collect()
    }
}
