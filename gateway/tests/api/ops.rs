use crate::harness::{TestApp, assert_problem};
use std::collections::BTreeSet;

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("prato", "/healthz").await.body["status"], "ok");
    assert_eq!(app.get("prato", "/readyz").await.body["status"], "ready");
    assert_problem(&app.get("prato", "/v2/anything").await, 404, "not-found");
}

/// Orchestrators' probes cannot present a client certificate: the probe listener answers them
/// over plain HTTP, and serves nothing else.
#[tokio::test]
async fn the_probe_listener_answers_health_and_readiness_only() {
    let app = TestApp::spawn_with(|s| s.listen.health = "127.0.0.1:0".into()).await;
    let port = app.health_port.unwrap();
    let plain = reqwest::Client::new();
    let get = |path: &str| plain.get(format!("http://127.0.0.1:{port}{path}")).send();
    let healthz = get("/healthz").await.unwrap();
    assert_eq!(healthz.status(), 200);
    assert_eq!(
        healthz.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let readyz = get("/readyz").await.unwrap();
    assert_eq!(readyz.status(), 200);
    for path in ["/metrics", "/v1/inbox", "/v1/referrals", "/openapi.json"] {
        assert_eq!(get(path).await.unwrap().status(), 404, "{path}");
    }
    // The mTLS listener is unchanged: still a certificate for everything, /healthz included.
    assert_eq!(app.get("prato", "/healthz").await.status, 200);
}

#[tokio::test]
async fn metrics_count_by_route_template_and_never_carry_ids() {
    let app = TestApp::spawn().await;
    let id = app.create("prato", "firenze").await;
    app.referral("firenze", &id).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            r#"raccordo_http_requests_total{method="POST",route="/v1/referrals",status="201"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/v1/referrals/{id}""#),
        "{metrics}"
    );
    assert!(metrics.contains("raccordo_http_request_duration_seconds_bucket"));
    assert!(metrics.contains(r#"raccordo_referrals{status="requested"} 1"#));
    assert!(!metrics.contains(&id), "a referral id leaked into metrics");
}

#[tokio::test]
async fn openapi_describes_exactly_the_routes_served_and_references_the_schemas() {
    let app = TestApp::spawn().await;
    let r = app.get("prato", "/v1/openapi.json").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["openapi"], "3.1.0");
    let documented: BTreeSet<String> = r.body["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| format!("{} {path}", m.to_uppercase()))
        })
        .collect();
    // The authorisation table lists every API route (a route without a rule is refused), so
    // the document must describe exactly the table's routes, and each must be served.
    let served: BTreeSet<String> = raccordo_gateway::authorization::RULES
        .iter()
        .map(|(method, route, _)| format!("{method} {route}"))
        .collect();
    assert_eq!(documented, served);
    // Each served route answers something other than "no such route".
    for route in &served {
        let (method, path) = route.split_once(' ').unwrap();
        let path = path.replace("{id}", "00000000-0000-4000-8000-000000000000");
        let req = app
            .client("prato")
            .request(method.parse().unwrap(), app.url(&path));
        let res = crate::harness::read(req.send().await.unwrap()).await;
        assert!(
            !(res.status == 404 && res.body["detail"].as_str().unwrap_or("").contains("route")),
            "{route} is not served"
        );
    }
    let text = r.text;
    for entity in ["referral", "structure", "person", "common"] {
        assert!(
            text.contains(&format!(
                "https://schemas.raccordo.regione.toscana.it/v1/{entity}.schema.json"
            )),
            "{entity}"
        );
    }
}
