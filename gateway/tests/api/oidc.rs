//! A real OpenID provider for the tests: panva's `oidc-provider` on Node.js
//! (`gateway/tests/peers/oidc-provider.mjs`), over HTTPS with the development PKI's server
//! certificate, signing with keys the test holds, so that the negative cases can be signed with
//! the provider's real key.

use raccordo_gateway::Settings;
use raccordo_gateway::pki::DevPki;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const AUDIENCE: &str = "https://raccordo.test/api";
pub const CONSOLE_SECRET: &str = "console-secret-for-tests";

pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// A signing key of the provider: its id and PKCS#8 PEM file.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub pem: PathBuf,
}

impl SigningKey {
    pub fn generate(dir: &Path, kid: &str) -> SigningKey {
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = dir.join(format!("{kid}.pem"));
        std::fs::write(&pem, key.serialize_pem()).unwrap();
        SigningKey {
            kid: kid.to_owned(),
            pem,
        }
    }

    /// Signs `claims` as this key (ES256), as the provider would.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        let pem = std::fs::read_to_string(&self.pem).unwrap();
        let der = rcgen::KeyPair::from_pem(&pem).unwrap().serialize_der();
        let key = jsonwebtoken::EncodingKey::from_ec_der(&der);
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }
}

/// A free port on the loopback, for a listener whose address others must know in advance.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Provider {
    pub issuer: String,
    pub port: u16,
    child: Child,
}

/// What a test provider knows: people (for the browser) and machine clients with roles.
pub fn accounts() -> Value {
    json!({
        "analista": {"name": "Anna Analista", "roles": ["analyst"]},
        "dpo": {"name": "Dario Protezione", "roles": ["dpo"]},
        "admin": {"name": "Ada Amministra", "roles": ["admin", "analyst"]},
        "ospite": {"name": "Oscar Ospite", "roles": []},
    })
}

impl Provider {
    /// Starts the provider on `port` (0: any), signing with `keys[0]`, with a confidential
    /// console client redirecting to `console_port` and one client-credentials client per role.
    pub fn start(data_dir: &Path, port: u16, console_port: u16, keys: &[SigningKey]) -> Provider {
        let pki = DevPki::new(data_dir);
        pki.ensure(&[], time::OffsetDateTime::now_utc()).unwrap();
        let console = format!("https://localhost:{console_port}");
        let mut clients = vec![json!({
            "client_id": "raccordo-console",
            "client_secret": CONSOLE_SECRET,
            "redirect_uris": [format!("{console}/console/callback")],
            "post_logout_redirect_uris": [format!("{console}/console/")],
            "grant_types": ["authorization_code"],
        })];
        for role in ["analyst", "admin", "dpo", "integrator", "none"] {
            clients.push(json!({
                "client_id": format!("{role}-tool"),
                "client_secret": format!("{role}-secret"),
                "grant_types": ["client_credentials"],
                "roles": if role == "none" { json!([]) } else { json!([role]) },
            }));
        }
        let config = json!({
            "host": "127.0.0.1",
            "port": port,
            "tls": {"cert": pki.server_cert(), "key": pki.server_key()},
            "keys": keys.iter().map(|k| json!({"kid": k.kid, "pem": k.pem})).collect::<Vec<_>>(),
            "audience": AUDIENCE,
            "access_token_ttl": 300,
            "roles_claim": "roles",
            "accounts": accounts(),
            "clients": clients,
        });
        let config_file = data_dir.join(format!("oidc-provider-{}.json", keys[0].kid));
        std::fs::write(&config_file, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let mut child = Command::new("node")
            .arg(peers_dir().join("oidc-provider.mjs"))
            .arg(&config_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node must be installed (.ci/test installs the test peers)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("the provider did not start: {line:?}"));
        let issuer = ready["issuer"].as_str().unwrap().to_owned();
        let port = issuer.rsplit(':').next().unwrap().parse().unwrap();
        Provider {
            issuer,
            port,
            child,
        }
    }

    /// Points a gateway's settings at this provider, with the people listener on `console_port`.
    pub fn configure(&self, s: &mut Settings, console_port: u16) {
        s.people.listen = ([127, 0, 0, 1], console_port).into();
        s.people.public_url = format!("https://localhost:{console_port}");
        s.people.issuer = self.issuer.clone();
        s.people.client_secret = raccordo_gateway::secret::Secret::new(CONSOLE_SECRET.into());
        s.people.ca_file = "pki/ca.crt".into();
        s.people.audience = AUDIENCE.into();
    }

    /// An access token through the real client-credentials grant for `<role>-tool`.
    pub async fn token_for(&self, data_dir: &Path, role: &str) -> String {
        let tls =
            raccordo_gateway::client::tls_config(&DevPki::new(data_dir).ca_cert(), None).unwrap();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap();
        let discovery: Value = http
            .get(format!("{}/.well-known/openid-configuration", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let r = http
            .post(discovery["token_endpoint"].as_str().unwrap())
            .basic_auth(format!("{role}-tool"), Some(format!("{role}-secret")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=api")
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access token: {body}"))
            .to_owned()
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
