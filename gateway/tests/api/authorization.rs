//! The authorisation table, cell by cell, and the rate limit, through the API.

use crate::harness::{TestApp, assert_problem};
use raccordo_gateway::authorization::RULES;
use raccordo_gateway::authorization::Role;

#[tokio::test]
async fn every_cell_of_the_authorisation_table_is_enforced() {
    let app = TestApp::spawn().await;
    for (method, route, allowed) in RULES {
        for (party, kind) in [("prato", Role::Ambito), ("region", Role::Region)] {
            let path = route.replace("{id}", "00000000-0000-4000-8000-000000000000");
            let req = app
                .client(party)
                .request(method.parse().unwrap(), app.url(&path))
                .header("content-type", "application/json")
                .body("{}");
            let r = crate::harness::read(req.send().await.unwrap()).await;
            if allowed.contains(&kind) {
                assert!(
                    !(r.status == 403
                        && (r.body["code"] == "not-permitted" || r.body["code"] == "no-rule")),
                    "{method} {route} should be open to {kind:?}: {}",
                    r.text
                );
            } else {
                assert_problem(&r, 403, "not-permitted");
                assert!(
                    r.body["detail"].as_str().unwrap().contains(route),
                    "{}",
                    r.text
                );
            }
        }
    }
}

#[tokio::test]
async fn a_party_over_its_rate_limit_gets_429_with_retry_after_and_others_do_not() {
    let app = TestApp::spawn_with(|s| {
        s.limits.requests_per_second = 0.5;
        s.limits.burst = 3.0;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(app.get("prato", "/healthz").await.status, 200);
    }
    let r = app.get("prato", "/healthz").await;
    assert_problem(&r, 429, "rate-limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(
        app.get("firenze", "/healthz").await.status,
        200,
        "limits are per party"
    );
}
