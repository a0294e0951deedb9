//! A gateway broken on purpose: a proxy in front of the real one, with the same mTLS, that
//! injects one fault. The gateway profile must catch each fault with the test meant for it.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use raccordo_gateway::pki::DevPki;
use raccordo_gateway::tls::PeerFingerprint;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// Idempotency keys are dropped on the way in: a retry creates a second referral.
    ReusedKey,
    /// A refused lifecycle move is answered as done.
    ForbiddenMove,
    /// The person's family name is echoed in a response header.
    LeakedIdentifier,
}

struct Proxy {
    upstream: String,
    fault: Fault,
    /// Client certificate fingerprint -> a client of the real gateway as the same party.
    clients: HashMap<String, reqwest::Client>,
}

async fn forward(req: HttpRequest, body: web::Bytes, proxy: web::Data<Arc<Proxy>>) -> HttpResponse {
    let Some(client) = req
        .conn_data::<PeerFingerprint>()
        .and_then(|fp| proxy.clients.get(&fp.0))
    else {
        return HttpResponse::Forbidden().finish();
    };
    let url = format!("{}{}", proxy.upstream, req.uri());
    let mut out = client.request(req.method().as_str().parse().unwrap(), url);
    for name in ["content-type", "idempotency-key"] {
        if name == "idempotency-key" && proxy.fault == Fault::ReusedKey {
            continue;
        }
        if let Some(v) = req.headers().get(name) {
            out = out.header(name, v.to_str().unwrap_or_default());
        }
    }
    let answer = out.body(body.to_vec()).send().await.unwrap();
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let bytes = answer.bytes().await.unwrap();
    if proxy.fault == Fault::ForbiddenMove && req.path().ends_with("/status") && status == 409 {
        return HttpResponse::Ok()
            .content_type("application/json")
            .body("{}");
    }
    let mut res = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            res.insert_header((k.as_str(), v.to_str().unwrap_or_default()));
        }
    }
    if proxy.fault == Fault::LeakedIdentifier
        && req.method() == "POST"
        && req.path() == "/v1/referrals"
    {
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(name) = sent
            .pointer("/person/identity/family_name")
            .and_then(|v| v.as_str())
        {
            res.insert_header(("X-Debug-Person", name.to_owned()));
        }
    }
    res.body(bytes)
}

/// Starts the faulty proxy in front of the gateway at `upstream` (whose data directory holds the
/// dev PKI); returns its port.
pub fn start(data_dir: &std::path::Path, upstream: &str, fault: Fault) -> u16 {
    let pki = DevPki::new(data_dir);
    let mut clients = HashMap::new();
    for party in ["prato", "firenze"] {
        let cert = raccordo_gateway::pki::load_certificates(&pki.client_cert(party)).unwrap();
        let fp = raccordo_gateway::pki::fingerprint(&cert[0]);
        let client = raccordo_gateway::client::mtls_client(
            &pki.ca_cert(),
            &pki.client_cert(party),
            &pki.client_key(party),
        )
        .unwrap();
        clients.insert(fp, client);
    }
    let proxy = Arc::new(Proxy {
        upstream: upstream.to_owned(),
        fault,
        clients,
    });
    let mut settings = raccordo_gateway::Settings::defaults().unwrap();
    settings.data_dir = data_dir.to_owned();
    let config = raccordo_gateway::Config::from_settings(settings).unwrap();
    let tls =
        raccordo_gateway::tls::server_config(&config, time::OffsetDateTime::now_utc()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(Arc::clone(&proxy)))
            .default_service(web::to(forward))
    })
    .on_connect(|conn, ext| raccordo_gateway::tls::on_connect(conn, ext, None))
    .workers(1)
    .listen_rustls_0_23(listener, tls)
    .unwrap()
    .run();
    tokio::spawn(server);
    port
}
