//! kill -9 under load: the gateway runs in a process of its own (this test binary again, running
//! the ignored `crash_child_gateway`), is killed with SIGKILL while clients send referrals, and
//! is started again on the same store. Runs on each store the suite runs on.

use crate::harness::{referral, settings_for};
use raccordo_gateway::pki::DevPki;
use raccordo_gateway::{Application, Config, client};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CHILD_DIR: &str = "RACCORDO_CRASH_DIR";

/// The gateway process of the crash test; does nothing unless the test starts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the gateway process of the crash test, started and killed by it"]
async fn crash_child_gateway() {
    let Ok(dir) = std::env::var(CHILD_DIR) else {
        return;
    };
    raccordo_gateway::tls::install_default_provider();
    let dir = PathBuf::from(dir);
    let mut settings = settings_for(&dir).await;
    settings.listen.address = ([127, 0, 0, 1], 0).into();
    settings.listen.workers = 2;
    // The load is the point: no rate limit in the way.
    settings.limits.requests_per_second = 100_000.0;
    settings.limits.burst = 100_000.0;
    let app = Application::build(Config::from_settings(settings).unwrap()).unwrap();
    std::fs::write(dir.join("port.part"), app.port().to_string()).unwrap();
    std::fs::rename(dir.join("port.part"), dir.join("port")).unwrap();
    app.run_until_stopped().await.unwrap();
}

struct Gateway {
    child: Child,
    port: u16,
}

fn start(dir: &Path) -> Gateway {
    let _ = std::fs::remove_file(dir.join("port"));
    let log = std::fs::File::create(dir.join("child.log")).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash::crash_child_gateway", "--ignored"])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    for _ in 0..600 {
        if let Ok(p) = std::fs::read_to_string(dir.join("port")) {
            return Gateway {
                child,
                port: p.parse().unwrap(),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the gateway did not start: {}",
        std::fs::read_to_string(dir.join("child.log")).unwrap_or_default()
    );
}

fn client_for(dir: &Path, party: &str) -> reqwest::Client {
    let pki = DevPki::new(dir);
    client::mtls_client(
        &pki.ca_cert(),
        &pki.client_cert(party),
        &pki.client_key(party),
    )
    .unwrap()
}

enum Outcome {
    Acknowledged(String),
    /// The connection broke before an answer: the referral may or may not exist.
    Unknown,
}

async fn send(c: &reqwest::Client, port: u16, key: &str, body: &Value) -> Outcome {
    let sent = c
        .post(format!("https://localhost:{port}/v1/referrals"))
        .header("Idempotency-Key", key)
        .json(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    let Ok(r) = sent else {
        return Outcome::Unknown;
    };
    let status = r.status().as_u16();
    let Ok(v) = r.json::<Value>().await else {
        return Outcome::Unknown;
    };
    assert!(
        [200, 201].contains(&status),
        "a refused send under load: {status} {v}"
    );
    Outcome::Acknowledged(v["id"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_referrals_survive_kill_9() {
    let dir = tempfile::TempDir::new().unwrap();
    let gateway = start(dir.path());
    let port = gateway.port;
    let prato = client_for(dir.path(), "prato");
    let body = referral("prato", "firenze");

    // 16 clients send until the gateway dies under them.
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for worker in 0..16 {
        let (c, body, stop) = (prato.clone(), body.clone(), Arc::clone(&stop));
        senders.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("crash-{worker}-{n}");
                n += 1;
                let outcome = send(&c, port, &key, &body).await;
                let broke = matches!(outcome, Outcome::Unknown);
                outcomes.push((key, outcome));
                if broke {
                    break;
                }
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut gateway = gateway;
    gateway.child.kill().unwrap(); // SIGKILL
    gateway.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = HashMap::new();
    let mut unknown = Vec::new();
    for s in senders {
        for (key, outcome) in s.await.unwrap() {
            match outcome {
                Outcome::Acknowledged(id) => {
                    acknowledged.insert(key, id);
                }
                Outcome::Unknown => unknown.push(key),
            }
        }
    }
    assert!(
        acknowledged.len() >= 50,
        "too little load to mean anything: {} acknowledged",
        acknowledged.len()
    );

    // Restarted on the same store.
    let mut gateway = start(dir.path());
    let port = gateway.port;
    let prato = client_for(dir.path(), "prato");
    let firenze = client_for(dir.path(), "firenze");

    // Every acknowledged referral is there, as acknowledged.
    for (key, id) in &acknowledged {
        let r = prato
            .get(format!("https://localhost:{port}/v1/referrals/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged {key} ({id}) was lost");
    }
    // A send whose answer was lost is retried with its key: it is made once, or found made.
    let mut all: HashSet<String> = acknowledged.values().cloned().collect();
    for key in &unknown {
        match send(&prato, port, key, &body).await {
            Outcome::Acknowledged(id) => {
                assert!(all.insert(id), "{key} made a second referral");
            }
            Outcome::Unknown => panic!("the restarted gateway did not answer"),
        }
    }
    // Nothing is half-written: the receiver's inbox announces exactly the referrals that exist,
    // each once.
    let announced =
        crate::harness::inbox_referrals(&firenze, &format!("https://localhost:{port}")).await;
    let distinct: HashSet<String> = announced.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        announced.len(),
        "an inbox event was doubled"
    );
    assert_eq!(
        distinct, all,
        "the inbox and the referrals disagree after the crash"
    );

    // And the audit chain verifies, with one creation per referral.
    gateway.child.kill().unwrap();
    gateway.child.wait().unwrap();
    let store = crate::harness::open_store(dir.path()).await;
    let report = store.verify_audit().unwrap();
    assert!(report.valid, "{report:?}");
    let created = store
        .scan::<Value>(raccordo_gateway::store::keys::AUDIT, None, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|(_, e)| e["action"] == "referral.create")
        .count();
    assert_eq!(created, all.len());
    eprintln!(
        "crash test: {} acknowledged before kill -9, {} in flight, {} referrals after restart",
        acknowledged.len(),
        unknown.len(),
        all.len()
    );
}
