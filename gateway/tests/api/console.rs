//! The web console against a real OpenID provider: the sign-in redirect and its protections
//! seen from an HTTP client, and the whole sign-in, language switch, CSRF refusal and sign-out
//! in a real headless Chromium (`gateway/tests/peers/console-signin.mjs`), with screenshots kept
//! under `target/test-artifacts/`.

use crate::harness::TestApp;
use crate::oidc::{Provider, SigningKey, free_port, peers_dir};
use serde_json::{Value, json};
use std::path::PathBuf;
use tempfile::TempDir;

async fn console() -> (TestApp, Provider) {
    let dir = TempDir::new().unwrap();
    let key = SigningKey::generate(dir.path(), "k1");
    let console_port = free_port();
    let provider = Provider::start(dir.path(), 0, console_port, &[key]);
    let app = TestApp::spawn_in(dir, |s| provider.configure(s, console_port)).await;
    (app, provider)
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn sign_in_starts_with_pkce_state_and_nonce_and_a_host_only_cookie() {
    let (app, provider) = console().await;
    let http = app.people_client();
    let page = http.get(app.people_url("/console/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<html lang=\"it\">") && html.contains("Accedi"),
        "{html}"
    );

    let r = http
        .get(app.people_url("/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&provider.issuer), "{location}");
    let url = reqwest::Url::parse(&location).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert!(q["state"].len() >= 22 && q["nonce"].len() >= 22 && q["code_challenge"].len() == 43);
    let cookie = set_cookies(&r)
        .into_iter()
        .find(|c| c.starts_with("__Host-raccordo_signin="))
        .unwrap();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");

    // A callback this browser did not start (no cookie, or another state) is refused.
    let forged = http
        .get(app.people_url(&format!("/console/callback?code=abc&state={}", q["state"])))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let text = forged.text().await.unwrap();
    assert!(text.contains("data-code=\"sign_in_state\""), "{text}");

    // Signing out without a session changes nothing; the console lives on the people listener
    // only, and the mTLS listener has no rule for it.
    let r = http
        .post(app.people_url("/console/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = app.get("prato", "/console/").await;
    crate::harness::assert_problem(&r, 403, "no-rule");
}

fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn a_person_signs_in_switches_language_and_signs_out_in_a_real_browser() {
    let (app, _provider) = console().await;
    // Something to chart: a few ambiti with many people, one with two (confidential cells).
    for (ambito, n) in [("prato", 25), ("firenze", 40), ("siena", 2)] {
        let batch: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "id": format!("{ambito}-{i}"), "ambito": ambito, "service_type": "case_management",
                    "start": format!("2026-{:02}-10", 1 + (i % 12)),
                    "person": {"profile": {"ethos": "1", "age_band": "35-44", "sex": "male", "citizenship_group": "italian"}}
                })
            })
            .collect();
        let r = app.post(ambito, "/v1/episodes", &json!(batch)).await;
        assert_eq!(r.body["recorded"], n, "{}", r.text);
    }
    let shots = artifacts();
    let config = app.dir.path().join("browser.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&json!({
            "console": app.people_url("/console/"),
            "login": "admin",
            "screenshot_dir": shots,
            "monitoring": {"period": "2026"},
        }))
        .unwrap(),
    )
    .unwrap();
    let script = peers_dir().join("console-signin.mjs");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|_| {
            panic!(
                "no report from the browser: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(
        out.status.success() && report.get("error").is_none(),
        "{report:#}"
    );

    // Italian first, with every text from the catalog.
    assert_eq!(report["lang_attr"], "it", "{report:#}");
    assert_eq!(report["signin_text"], "Accedi");
    assert_eq!(report["home_title"], "Benvenuta/o, Ada Amministra");
    assert_eq!(report["lang_attr_home"], "it");
    // One section per role the provider granted, in the table's order.
    assert_eq!(report["roles_shown"], json!(["analyst", "admin"]));

    // The session cookie: Secure, HttpOnly, SameSite=Lax, host-only; its value never reported.
    let cookies = report["cookies"].as_array().unwrap();
    let session = cookies
        .iter()
        .find(|c| c["name"] == "__Host-raccordo_session")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(session["secure"], true);
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Lax");
    assert_eq!(session["path"], "/");

    // The monitoring page: the analyst made a release with the form and sees one chart per
    // indicator, with the confidential cells drawn as such.
    assert_eq!(report["monitoring_made"], true, "{report:#}");
    let charts = report["monitoring_charts"].as_array().unwrap();
    assert_eq!(charts.len(), 12, "{report:#}");
    assert!(charts.contains(&json!("PERSONS_IN_CHARGE")));
    assert!(
        report["monitoring_bars"].as_u64().unwrap() >= 12 * 10 * 4,
        "{report:#}"
    );
    assert!(
        report["monitoring_flagged"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    let release = report["monitoring_release"].as_str().unwrap();
    let manifest = app.get("region", &format!("/v1/releases/{release}")).await;
    assert!(
        manifest.body["manifest"]["created_by"]
            .as_str()
            .unwrap()
            .starts_with("staff:")
    );

    // Forms without the session's CSRF token are refused, whatever else they carry.
    assert_eq!(report["csrf_missing_status"], 403);
    assert_eq!(report["csrf_forged_status"], 403);

    // English on request, kept by cookie.
    assert_eq!(report["home_title_en"], "Welcome, Ada Amministra");
    assert_eq!(report["lang_attr_en"], "en");

    // Signing out ends the session here and at the provider.
    assert_eq!(report["signed_out"], true, "{report:#}");
    assert_eq!(report["still_signed_out"], true);
    for shot in [
        "console-home-it.png",
        "console-home-en.png",
        "console-monitoring-it.png",
    ] {
        let meta = std::fs::metadata(shots.join(shot)).unwrap();
        assert!(meta.len() > 5_000, "{shot} is a real screenshot");
    }

    // Sign-in and sign-out are in the audit chain, under the keyed actor name.
    let dir = app.stop().await;
    let store = crate::harness::open_store(dir.path()).await;
    let actions: Vec<String> = store
        .scan::<Value>(raccordo_gateway::store::keys::AUDIT, None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, e)| format!("{} {}", e["action"], e["actor"]))
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("\"console.sign-in\" \"staff:")),
        "{actions:?}"
    );
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("\"console.sign-out\" \"staff:")),
        "{actions:?}"
    );
    assert!(
        !actions.iter().any(|a| a.contains("admin\"")),
        "the subject is never the actor"
    );
}
