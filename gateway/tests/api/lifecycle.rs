//! Every move of the lifecycle, allowed and refused, for both sides, through the API.

use crate::harness::{TestApp, assert_problem, referral};
use raccordo_gateway::lifecycle::{MOVES, Side};
use raccordo_schemas::ReferralStatus::{self, *};

/// The moves that bring a new referral to `status`: (party side, status, reason).
fn path_to(status: ReferralStatus) -> Vec<(Side, ReferralStatus)> {
    use Side::*;
    match status {
        Draft | Requested => vec![],
        Received => vec![(Receiver, Received)],
        Accepted => vec![(Receiver, Accepted)],
        Rejected => vec![(Receiver, Rejected)],
        InProgress => vec![(Receiver, Accepted), (Receiver, InProgress)],
        OnHold => vec![(Receiver, Accepted), (Receiver, OnHold)],
        Completed => vec![(Receiver, Accepted), (Receiver, Completed)],
        Failed => vec![(Receiver, Accepted), (Receiver, Failed)],
        Cancelled => vec![(Sender, Cancelled)],
        EnteredInError => vec![(Sender, EnteredInError)],
    }
}

fn party(side: Side) -> &'static str {
    match side {
        Side::Sender => "prato",
        Side::Receiver => "firenze",
    }
}

async fn referral_in(app: &TestApp, status: ReferralStatus) -> String {
    let url = if status == Draft {
        "/v1/referrals?draft=true"
    } else {
        "/v1/referrals"
    };
    let r = app
        .client("prato")
        .post(app.url(url))
        .json(&referral("prato", "firenze"))
        .send()
        .await
        .unwrap();
    let r = crate::harness::read(r).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    for (side, to) in path_to(status) {
        let r = app
            .set_status(party(side), &id, to.as_str(), Some("driving the test"))
            .await;
        assert_eq!(r.status, 200, "driving to {to:?}: {}", r.text);
    }
    let h = app
        .get("prato", &format!("/v1/referrals/{id}/history"))
        .await;
    assert_eq!(h.body["status"], status.as_str());
    id
}

#[tokio::test]
async fn every_allowed_move_succeeds_and_every_other_is_refused_with_the_rule() {
    let app = TestApp::spawn().await;
    for from in ReferralStatus::ALL {
        // Refused moves leave the referral as it was, so one referral serves them all.
        let id = referral_in(&app, from).await;
        for to in ReferralStatus::ALL {
            for side in [Side::Sender, Side::Receiver] {
                let allowed = MOVES
                    .iter()
                    .any(|(f, t, s)| *f == from && *t == to && *s == side);
                if allowed {
                    continue;
                }
                let r = app
                    .set_status(party(side), &id, to.as_str(), Some("a reason"))
                    .await;
                if from == Draft && side == Side::Receiver {
                    // The receiver cannot see a draft at all.
                    assert_problem(&r, 404, "not-found");
                } else if MOVES.iter().any(|(f, t, _)| *f == from && *t == to) {
                    assert_problem(&r, 403, "wrong-party");
                } else {
                    assert_problem(&r, 409, "illegal-transition");
                    assert!(
                        r.body["detail"].as_str().unwrap().contains("allowed next"),
                        "{}",
                        r.text
                    );
                }
            }
        }
        let h = app
            .get("prato", &format!("/v1/referrals/{id}/history"))
            .await;
        assert_eq!(
            h.body["status"],
            from.as_str(),
            "a refused move changed the referral"
        );
    }
    for (from, to, side) in MOVES {
        let id = referral_in(&app, *from).await;
        let r = app
            .set_status(party(*side), &id, to.as_str(), Some("a reason"))
            .await;
        assert_eq!(r.status, 200, "{from:?} -> {to:?} by {side:?}: {}", r.text);
        assert_eq!(r.body["status"], to.as_str());
        let last = r.body["status_history"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["by"], party(*side));
        assert_eq!(last["reason"], "a reason");
    }
}

#[tokio::test]
async fn a_reason_is_required_for_rejected_on_hold_cancelled_and_failed() {
    let app = TestApp::spawn().await;
    let id = app.create("prato", "firenze").await;
    let r = app.set_status("firenze", &id, "rejected", None).await;
    assert_problem(&r, 422, "reason-required");
    assert_eq!(r.body["errors"][0]["pointer"], "/reason");
    assert_problem(
        &app.set_status("prato", &id, "cancelled", None).await,
        422,
        "reason-required",
    );
    assert_eq!(
        app.set_status("firenze", &id, "accepted", None)
            .await
            .status,
        200
    );
    assert_problem(
        &app.set_status("firenze", &id, "on-hold", None).await,
        422,
        "reason-required",
    );
    assert_problem(
        &app.set_status("firenze", &id, "failed", None).await,
        422,
        "reason-required",
    );
    let r = app
        .post(
            "firenze",
            &format!("/v1/referrals/{id}/status"),
            &serde_json::json!({"status": "done"}),
        )
        .await;
    assert_problem(&r, 422, "schema-violation");
    assert_eq!(r.body["errors"][0]["pointer"], "/status");
}

#[tokio::test]
async fn repeating_the_last_move_is_answered_as_the_first_time() {
    let app = TestApp::spawn().await;
    let id = app.create("prato", "firenze").await;
    let first = app.set_status("firenze", &id, "accepted", None).await;
    let again = app.set_status("firenze", &id, "accepted", None).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["status_history"], first.body["status_history"]);
    // The sender was told once.
    let inbox = app.get("prato", "/v1/inbox").await;
    assert_eq!(inbox.body["items"].as_array().unwrap().len(), 1);
}
