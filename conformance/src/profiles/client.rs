//! Profile `ambito-client`: the kit starts a sandbox (the real gateway, a throw-away PKI and data
//! folder, and an observing proxy in front with the same mTLS), tells the vendor's system what
//! to do step by step, and judges what the system did: idempotency keys, retries after 503 and
//! 429 that honour Retry-After and keep the key, inbox cursors, legal moves only.

use super::run_case;
use crate::model::{Case, Finding, Level, TestResult};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use raccordo_gateway::tls::PeerFingerprint;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CASES: &[Case] = &[
    Case {
        id: "CLI-SEND-001",
        group: "send",
        title: "The system sends a referral with an Idempotency-Key",
        requirement: "README: API v1 (Idempotency-Key)",
        level: Level::Must,
    },
    Case {
        id: "CLI-RETRY-001",
        group: "retry",
        title: "After 503 with Retry-After the system retries with the same key, not sooner than asked",
        requirement: "README: API v1 (problem+json, Retry-After)",
        level: Level::Must,
    },
    Case {
        id: "CLI-RETRY-002",
        group: "retry",
        title: "After 429 with Retry-After the system retries with the same key, not sooner than asked",
        requirement: "README: Configuration (rate limits)",
        level: Level::Must,
    },
    Case {
        id: "CLI-INBOX-001",
        group: "inbox",
        title: "The system reads its inbox and resumes from the cursor it was given",
        requirement: "README: API v1 (inbox)",
        level: Level::Must,
    },
    Case {
        id: "CLI-MOVE-001",
        group: "lifecycle",
        title: "The system accepts the referral waiting for it and tries no move the lifecycle forbids",
        requirement: "docs/referral-lifecycle.md",
        level: Level::Must,
    },
    Case {
        id: "CLI-SIG-001",
        group: "signatures",
        title: "The system signs a referral (ModI Digest and Agid-JWT-Signature) that the gateway verifies",
        requirement: "README: Issuing an ambito's certificate (signed requests)",
        level: Level::Should,
    },
];

/// What the kit asks of the system under test, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send a referral to this ambito.
    Send { to: String },
    /// Read your inbox: something waits in it.
    ReadInbox,
    /// Accept this referral, waiting in your inbox.
    Accept { referral: String },
    /// Send a referral to this ambito, signed (ModI INTEGRITY_REST_01).
    SendSigned { to: String },
}

impl Step {
    pub fn instruction(&self) -> String {
        match self {
            Step::Send { to } => format!("send a referral (schema v1) to {to}, with an Idempotency-Key"),
            Step::ReadInbox => "a referral waits in your inbox: read the inbox, then read it again from the cursor it gave you".into(),
            Step::Accept { referral } => format!("accept the referral {referral} waiting in your inbox"),
            Step::SendSigned { to } => format!(
                "send a referral to {to} signed with your certificate's key: Digest and Agid-JWT-Signature (ModI INTEGRITY_REST_01)"
            ),
        }
    }
}

#[derive(Debug, Clone)]
struct Seen {
    at: Instant,
    method: String,
    path: String,
    key: Option<String>,
    signed: bool,
    status: u16,
}

struct Observer {
    upstream: String,
    vendor: String,
    client: reqwest::Client,
    seen: Mutex<Vec<Seen>>,
    /// Answers to give instead of forwarding the next referrals: (status, Retry-After seconds).
    inject: Mutex<VecDeque<(u16, u64)>>,
}

async fn observe(req: HttpRequest, body: web::Bytes, o: web::Data<Arc<Observer>>) -> HttpResponse {
    if req.conn_data::<PeerFingerprint>().map(|f| f.0.as_str()) != Some(o.vendor.as_str()) {
        return HttpResponse::Forbidden().finish();
    }
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let signed = req.headers().contains_key("agid-jwt-signature");
    let path = req.uri().to_string();
    let method = req.method().as_str().to_owned();
    let record = |status: u16| {
        if let Ok(mut s) = o.seen.lock() {
            s.push(Seen {
                at: Instant::now(),
                method: method.clone(),
                path: path.clone(),
                key: key.clone(),
                signed,
                status,
            });
        }
    };
    if method == "POST" && req.path() == "/v1/referrals" {
        let injected = o.inject.lock().ok().and_then(|mut q| q.pop_front());
        if let Some((status, after)) = injected {
            record(status);
            let code = if status == 429 {
                "rate-limited"
            } else {
                "store-unavailable"
            };
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
                .insert_header(("Retry-After", after.to_string()))
                .content_type("application/problem+json")
                .body(json!({"type": format!("https://raccordo.regione.toscana.it/problems/{code}"), "title": "Try again later", "status": status, "code": code, "detail": "the sandbox asks for a retry"}).to_string());
        }
    }
    let Ok(m) = req.method().as_str().parse::<reqwest::Method>() else {
        return HttpResponse::BadRequest().finish();
    };
    let mut out = o.client.request(m, format!("{}{path}", o.upstream));
    for name in [
        "content-type",
        "idempotency-key",
        "digest",
        "agid-jwt-signature",
    ] {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            out = out.header(name, v);
        }
    }
    let Ok(answer) = out.body(body.to_vec()).send().await else {
        record(502);
        return HttpResponse::BadGateway().finish();
    };
    let status = answer.status().as_u16();
    record(status);
    let mut res =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default());
    for (k, v) in answer.headers() {
        if k != "content-length"
            && k != "transfer-encoding"
            && let Ok(v) = v.to_str()
        {
            res.insert_header((k.as_str(), v.to_owned()));
        }
    }
    res.body(answer.bytes().await.unwrap_or_default())
}

/// The sandbox a vendor's system connects to.
pub struct Sandbox {
    /// Where the system must connect.
    pub url: String,
    pub ca: PathBuf,
    /// The certificate and key the system must present (an ambito of the sandbox).
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ambito: String,
    observer: Arc<Observer>,
    peer: reqwest::Client,
    gateway_url: String,
    stop: Vec<actix_web::dev::ServerHandle>,
}

impl Sandbox {
    /// Starts the real gateway on `data` (a throw-away folder) and the observing proxy; the
    /// system under test acts as `ambito`.
    pub async fn start(data: &Path, ambito: &str) -> Result<Sandbox, String> {
        let (gateway_url, tls, gateway_handle) = super::sandbox_gateway(data).await?;
        let pki = raccordo_gateway::pki::DevPki::new(data);
        let vendor_cert = raccordo_gateway::pki::load_certificates(&pki.client_cert(ambito))
            .map_err(|e| e.to_string())?;
        let vendor =
            raccordo_gateway::pki::fingerprint(vendor_cert.first().ok_or("no certificate")?);
        let client = raccordo_gateway::client::mtls_client(
            &pki.ca_cert(),
            &pki.client_cert(ambito),
            &pki.client_key(ambito),
        )
        .map_err(|e| e.to_string())?;
        let peer = raccordo_gateway::client::mtls_client(
            &pki.ca_cert(),
            &pki.client_cert("firenze"),
            &pki.client_key("firenze"),
        )
        .map_err(|e| e.to_string())?;
        let observer = Arc::new(Observer {
            upstream: gateway_url.clone(),
            vendor,
            client,
            seen: Mutex::new(Vec::new()),
            inject: Mutex::new(VecDeque::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let shared = Arc::clone(&observer);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(Arc::clone(&shared)))
                .default_service(web::to(observe))
        })
        .on_connect(|conn, ext| raccordo_gateway::tls::on_connect(conn, ext, None))
        .workers(1)
        .listen_rustls_0_23(listener, tls)
        .map_err(|e| e.to_string())?
        .run();
        let proxy_handle = server.handle();
        tokio::spawn(server);
        Ok(Sandbox {
            url: format!("https://localhost:{port}"),
            ca: pki.ca_cert(),
            cert: pki.client_cert(ambito),
            key: pki.client_key(ambito),
            ambito: ambito.to_owned(),
            observer,
            peer,
            gateway_url,
            stop: vec![proxy_handle, gateway_handle],
        })
    }

    pub async fn stop(self) {
        for h in self.stop {
            h.stop(true).await;
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.observer
            .seen
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Waits until `done` holds for what was seen since `from`, or the timeout.
    async fn wait(
        &self,
        from: usize,
        timeout: Duration,
        done: impl Fn(&[Seen]) -> bool,
    ) -> Vec<Seen> {
        let deadline = Instant::now() + timeout;
        loop {
            let seen: Vec<Seen> = self.seen().into_iter().skip(from).collect();
            if done(&seen) || Instant::now() >= deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn sent_ok(s: &Seen) -> bool {
    s.method == "POST" && s.path == "/v1/referrals" && (s.status == 201 || s.status == 200)
}

/// Runs the plan; `instruct` tells the system under test what to do next (the command line
/// prints it; tests hand it to a scripted client).
pub async fn run(
    sandbox: &Sandbox,
    step_timeout: Duration,
    only: Option<&str>,
    instruct: &(dyn Fn(Step) + Sync),
) -> Vec<TestResult> {
    let mut results = Vec::new();
    let to = if sandbox.ambito == "firenze" {
        "prato"
    } else {
        "firenze"
    }
    .to_owned();

    let from = sandbox.seen().len();
    instruct(Step::Send { to: to.clone() });
    let seen = sandbox
        .wait(from, step_timeout, |s| s.iter().any(sent_ok))
        .await;
    run_case(&CASES[0], only, &mut results, |_| {
        match seen.iter().find(|s| sent_ok(s)) {
            None => Finding::Broken(format!(
                "no referral arrived within {} s",
                step_timeout.as_secs()
            )),
            Some(s) if s.key.is_none() => {
                Finding::Broken("the referral came without an Idempotency-Key".into())
            }
            Some(_) => Finding::Holds,
        }
    });

    for (case, status, after) in [(&CASES[1], 503u16, 2u64), (&CASES[2], 429, 1)] {
        if let Ok(mut q) = sandbox.observer.inject.lock() {
            q.push_back((status, after));
        }
        let from = sandbox.seen().len();
        instruct(Step::Send { to: to.clone() });
        let seen = sandbox
            .wait(from, step_timeout, |s| s.iter().any(sent_ok))
            .await;
        run_case(case, only, &mut results, |_| {
            let Some(first) = seen.iter().find(|s| s.status == status) else {
                return Finding::Broken("no referral arrived".into());
            };
            let Some(retry) = seen.iter().find(|s| sent_ok(s) && s.at > first.at) else {
                return Finding::Broken(format!(
                    "no retry within {} s after {status}",
                    step_timeout.as_secs()
                ));
            };
            let waited = retry.at.duration_since(first.at);
            if retry.key.is_none() || retry.key != first.key {
                Finding::Broken("the retry did not carry the same Idempotency-Key".into())
            } else if waited + Duration::from_millis(100) < Duration::from_secs(after) {
                Finding::Broken(format!(
                    "retried after {:.1} s; Retry-After asked {after} s",
                    waited.as_secs_f64()
                ))
            } else {
                Finding::Holds
            }
        });
        if let Ok(mut q) = sandbox.observer.inject.lock() {
            q.clear();
        }
    }

    // A referral from the peer, waiting for the system.
    let body = waiting_referral(&sandbox.ambito);
    let created: Option<String> = match sandbox
        .peer
        .post(format!("{}/v1/referrals", sandbox.gateway_url))
        .json(&body)
        .send()
        .await
    {
        Ok(r) => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned)),
        Err(_) => None,
    };
    let Some(waiting) = created else {
        for case in &CASES[3..] {
            run_case(case, only, &mut results, |_| {
                Finding::CouldNotRun("the sandbox could not create the waiting referral".into())
            });
        }
        return results;
    };
    let from = sandbox.seen().len();
    instruct(Step::ReadInbox);
    let is_inbox =
        |s: &Seen| s.method == "GET" && s.path.starts_with("/v1/inbox") && s.status == 200;
    let seen = sandbox
        .wait(from, step_timeout, |s| {
            s.iter()
                .filter(|x| is_inbox(x))
                .any(|x| x.path.contains("after="))
        })
        .await;
    run_case(&CASES[3], only, &mut results, |_| {
        let reads: Vec<&Seen> = seen.iter().filter(|s| is_inbox(s)).collect();
        match reads.as_slice() {
            [] => Finding::Broken("the system did not read its inbox".into()),
            _ if !reads.iter().skip(1).any(|s| s.path.contains("after=")) => Finding::Broken(
                "the system read its inbox again without the cursor it was given".into(),
            ),
            _ => Finding::Holds,
        }
    });

    let from = sandbox.seen().len();
    instruct(Step::Accept {
        referral: waiting.clone(),
    });
    let target = format!("/v1/referrals/{waiting}/status");
    let seen = sandbox
        .wait(from, step_timeout, |s| {
            s.iter()
                .any(|x| x.method == "POST" && x.path == target && x.status == 200)
        })
        .await;
    let all = sandbox.seen();
    run_case(&CASES[4], only, &mut results, |_| {
        if let Some(bad) = all.iter().find(|s| s.status == 409) {
            return Finding::Broken(format!(
                "a move the lifecycle forbids was tried ({} {})",
                bad.method,
                bad.path.split('/').take(3).collect::<Vec<_>>().join("/")
            ));
        }
        if seen
            .iter()
            .any(|x| x.method == "POST" && x.path == target && x.status == 200)
        {
            Finding::Holds
        } else {
            Finding::Broken("the waiting referral was not accepted".into())
        }
    });

    let from = sandbox.seen().len();
    instruct(Step::SendSigned { to });
    let seen = sandbox
        .wait(from, step_timeout, |s| {
            s.iter().any(|x| sent_ok(x) && x.signed)
        })
        .await;
    run_case(&CASES[5], only, &mut results, |_| {
        if seen.iter().any(|x| sent_ok(x) && x.signed) {
            Finding::Holds
        } else if seen.iter().any(|x| x.signed) {
            Finding::Broken(
                "a signed referral arrived but the gateway refused its signature".into(),
            )
        } else {
            Finding::Broken("no signed referral arrived".into())
        }
    });
    // What the system did, for the report: requests only (method, path, status), no bodies.
    let trail: Vec<crate::model::Exchange> = sandbox
        .seen()
        .iter()
        .map(|s| crate::model::Exchange {
            request: format!("{} {}", s.method, s.path),
            request_body: None,
            status: Some(s.status),
            response_headers: Vec::new(),
            response_body: None,
        })
        .collect();
    for r in &mut results {
        r.exchanges = trail.clone();
    }
    results
}

fn waiting_referral(receiver: &str) -> Value {
    json!({
        "sender": "firenze", "receiver": receiver, "urgency": "urgent",
        "requested_services": ["night_shelter"],
        "reason": "Referral waiting for the system under test (conformance sandbox).",
        "legal_basis": {"basis": "public_task", "special_category_condition": "none"},
        "person": {
            "identity": {"given_names": "Prova", "family_name": "Sandbox", "sex": "female"},
            "profile": {"ethos": "2", "age_band": "25-34", "sex": "female", "citizenship_group": "eu"}
        }
    })
}
