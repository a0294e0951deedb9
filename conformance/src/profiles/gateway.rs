//! Profile `gateway`: a gateway deployment's protocol, checked from outside with two parties'
//! certificates (a sender and a receiver): TLS and client certificates, problem+json errors,
//! idempotency, the triage view, the lifecycle, the inbox, and that identifiers never appear in
//! URLs, headers or error bodies. Test data is generated from the seed, so a run (or one test,
//! with `--only`) can be replayed exactly.

use super::run_case;
use crate::model::{Case, Exchange, Finding, Level, TestResult};
use crate::redact::redact;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::path::PathBuf;

pub const CASES: &[Case] = &[
    Case {
        id: "GW-TLS-001",
        group: "tls",
        title: "A client without a certificate is refused at the handshake",
        requirement: "ARCHITECTURE invariant 1",
        level: Level::Must,
    },
    Case {
        id: "GW-TLS-002",
        group: "tls",
        title: "A certificate from another CA is refused at the handshake",
        requirement: "ARCHITECTURE invariant 1",
        level: Level::Must,
    },
    Case {
        id: "GW-OPS-001",
        group: "ops",
        title: "The gateway answers /healthz",
        requirement: "README: API v1",
        level: Level::Should,
    },
    Case {
        id: "GW-ERR-001",
        group: "errors",
        title: "A referral breaking the schema gets 422 problem+json with the rule and a JSON pointer",
        requirement: "README: API v1 (RFC 9457)",
        level: Level::Must,
    },
    Case {
        id: "GW-ERR-002",
        group: "errors",
        title: "A body that is not JSON gets 400 problem+json",
        requirement: "README: API v1 (RFC 9457)",
        level: Level::Must,
    },
    Case {
        id: "REF-SEND-001",
        group: "referrals",
        title: "A valid referral gets 201, an id and a Location",
        requirement: "docs/referral-lifecycle.md",
        level: Level::Must,
    },
    Case {
        id: "REF-SEND-002",
        group: "referrals",
        title: "The same Idempotency-Key and body give the same referral, marked replayed",
        requirement: "README: API v1 (Idempotency-Key)",
        level: Level::Must,
    },
    Case {
        id: "REF-SEND-003",
        group: "referrals",
        title: "The same Idempotency-Key with another body is refused",
        requirement: "README: API v1 (Idempotency-Key)",
        level: Level::Must,
    },
    Case {
        id: "REF-TRIAGE-001",
        group: "referrals",
        title: "The receiver sees the triage view, without identity, until it accepts",
        requirement: "docs/referral-lifecycle.md (views)",
        level: Level::Must,
    },
    Case {
        id: "REF-LIFE-001",
        group: "lifecycle",
        title: "A move the lifecycle forbids is refused with problem+json",
        requirement: "docs/referral-lifecycle.md",
        level: Level::Must,
    },
    Case {
        id: "REF-INBOX-001",
        group: "inbox",
        title: "The receiver's inbox lists the referral once, resumable from its cursor",
        requirement: "README: API v1 (inbox)",
        level: Level::Must,
    },
    Case {
        id: "PRIV-001",
        group: "privacy",
        title: "No identifier appears in a URL, a response header or an error body",
        requirement: "ARCHITECTURE invariant 2",
        level: Level::Must,
    },
];

/// A party the kit acts as: its ambito id and certificate.
#[derive(Debug, Clone)]
pub struct Party {
    pub id: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Target {
    /// e.g. https://localhost:8443
    pub url: String,
    pub ca: PathBuf,
    pub sender: Party,
    pub receiver: Party,
}

/// What one request gave back.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

struct Session<'a> {
    target: &'a Target,
    sender: reqwest::Client,
    receiver: reqwest::Client,
    planted: Vec<String>,
    /// Every exchange of the run, unredacted in memory only, for PRIV-001.
    seen: Vec<Seen>,
}

/// An exchange as it happened: URL, response headers, status, body.
struct Seen {
    url: String,
    headers: Vec<(String, String)>,
    status: u16,
    body: String,
}

impl Session<'_> {
    async fn send(
        &mut self,
        as_receiver: bool,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
        log: &mut Vec<Exchange>,
    ) -> Option<Answer> {
        let client = if as_receiver {
            &self.receiver
        } else {
            &self.sender
        };
        let url = format!("{}{path}", self.target.url);
        let mut req = client.request(method.parse().ok()?, &url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_owned());
        }
        let request_line = format!("{method} {path}");
        let sent = req.send().await;
        let answer = match sent {
            Ok(r) => {
                let status = r.status().as_u16();
                let headers = r.headers().clone();
                let text = r.text().await.unwrap_or_default();
                let body = serde_json::from_str(&text).unwrap_or(Value::Null);
                Some(Answer {
                    status,
                    headers,
                    body,
                    text,
                })
            }
            Err(_) => None,
        };
        let header_list: Vec<(String, String)> = answer
            .as_ref()
            .map(|a| {
                a.headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        self.seen.push(Seen {
            url,
            headers: header_list.clone(),
            status: answer.as_ref().map(|a| a.status).unwrap_or(0),
            body: answer.as_ref().map(|a| a.text.clone()).unwrap_or_default(),
        });
        log.push(Exchange {
            request: redact(&request_line, &self.planted),
            request_body: body.map(|b| redact(b, &self.planted)),
            status: answer.as_ref().map(|a| a.status),
            response_headers: header_list
                .into_iter()
                .map(|(k, v)| (k, redact(&v, &self.planted)))
                .collect(),
            response_body: answer.as_ref().map(|a| redact(&a.text, &self.planted)),
        });
        answer
    }
}

/// A referral from sender to receiver about a person invented from the seed: the values the kit
/// plants, to look for where they must not be.
fn referral(rng: &mut rand_chacha::ChaCha8Rng, t: &Target) -> (Value, Vec<String>) {
    let letters = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'A' + rng.random_range(0..26u8)))
            .collect()
    };
    let family = format!("Q{}", letters(rng, 7).to_lowercase());
    let given = format!("Z{}", letters(rng, 5).to_lowercase());
    let first15 = format!(
        "{}{:02}{}{:02}Z330",
        letters(rng, 6),
        rng.random_range(50..99u8),
        ["A", "B", "C", "D", "E", "H"][rng.random_range(0..6usize)],
        rng.random_range(1..28u8),
    );
    let cf = format!(
        "{first15}{}",
        raccordo_schemas::codice_fiscale::check_character(first15.as_bytes()) as char
    );
    let body = json!({
        "sender": t.sender.id, "receiver": t.receiver.id, "urgency": "urgent",
        "requested_services": ["night_shelter"],
        "reason": "Richiesta di posto letto (caso di prova del kit di conformità).",
        "local_case_ref": format!("KIT-{}", letters(rng, 8)),
        "legal_basis": {"basis": "public_task", "special_category_condition": "none"},
        "person": {
            "identity": {"codice_fiscale": cf, "given_names": given, "family_name": family,
                          "sex": "male", "country_of_birth": "MA"},
            "profile": {"ethos": "1", "age_band": "35-44", "sex": "male", "citizenship_group": "non_eu"}
        }
    });
    (body, vec![cf, family, given])
}

fn client(
    ca: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<reqwest::Client, String> {
    let tls = raccordo_gateway::client::tls_config(ca, identity).map_err(|e| e.to_string())?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())
}

fn is_problem(a: &Answer) -> bool {
    a.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
        && a.body["code"].is_string()
        && a.body["status"].as_u64() == Some(u64::from(a.status))
}

pub async fn run(
    t: &Target,
    seed: u64,
    only: Option<&str>,
    scratch: &std::path::Path,
) -> Vec<TestResult> {
    let mut results = Vec::new();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (body, planted) = referral(&mut rng, t);
    let key = format!("kit-{seed}-{}", rng.random::<u32>());
    let (sender, receiver) = match (
        client(&t.ca, Some((&t.sender.cert, &t.sender.key))),
        client(&t.ca, Some((&t.receiver.cert, &t.receiver.key))),
    ) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(e), _) | (_, Err(e)) => {
            for case in CASES {
                run_case(case, only, &mut results, |_| {
                    Finding::CouldNotRun(e.clone())
                });
            }
            return results;
        }
    };
    let mut s = Session {
        target: t,
        sender,
        receiver,
        planted,
        seen: Vec::new(),
    };

    // GW-TLS-001 and 002: handshakes that must fail.
    let anonymous = client(&t.ca, None);
    let no_cert = match &anonymous {
        Ok(c) => c
            .get(format!("{}/healthz", t.url))
            .send()
            .await
            .map(|r| r.status().as_u16()),
        Err(_) => Ok(0),
    };
    run_case(&CASES[0], only, &mut results, |_| match no_cert {
        Err(_) => Finding::Holds,
        Ok(status) => Finding::Broken(format!(
            "the gateway answered {status} without a client certificate"
        )),
    });
    let stranger = stranger_client(&t.url, &t.ca, scratch).await;
    run_case(&CASES[1], only, &mut results, |_| match stranger {
        Err(e) => Finding::CouldNotRun(e),
        Ok(Err(_)) => Finding::Holds,
        Ok(Ok(status)) => Finding::Broken(format!(
            "the gateway answered {status} to a certificate from another CA"
        )),
    });

    let mut log = Vec::new();
    let health = s.send(false, "GET", "/healthz", None, &[], &mut log).await;
    run_case(&CASES[2], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match health {
            Some(a) if a.status == 200 => Finding::Holds,
            Some(a) => Finding::Broken(format!("/healthz answered {}", a.status)),
            None => Finding::CouldNotRun("no answer".into()),
        }
    });

    let mut broken = body.clone();
    if let Some(o) = broken.as_object_mut() {
        o.remove("urgency");
    }
    let broken_text = broken.to_string();
    let a = s
        .send(
            false,
            "POST",
            "/v1/referrals",
            Some(&broken_text),
            &[],
            &mut log,
        )
        .await;
    run_case(&CASES[3], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match a {
            None => Finding::CouldNotRun("no answer".into()),
            Some(a) if a.status == 422 && is_problem(&a) => {
                let pointed = a.body["errors"].as_array().is_some_and(|e| {
                    e.iter().any(|x| {
                        x["pointer"].as_str().is_some_and(|p| p.contains("urgency"))
                            || x["message"].as_str().is_some_and(|m| m.contains("urgency"))
                    })
                });
                if pointed {
                    Finding::Holds
                } else {
                    Finding::Broken("the problem does not point at the missing field".into())
                }
            }
            Some(a) => {
                Finding::Broken(format!("answered {} (expected 422 problem+json)", a.status))
            }
        }
    });

    let a = s
        .send(
            false,
            "POST",
            "/v1/referrals",
            Some("{\"sender\": "),
            &[],
            &mut log,
        )
        .await;
    run_case(&CASES[4], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match a {
            None => Finding::CouldNotRun("no answer".into()),
            Some(a) if a.status == 400 && is_problem(&a) => Finding::Holds,
            Some(a) => {
                Finding::Broken(format!("answered {} (expected 400 problem+json)", a.status))
            }
        }
    });

    let text = body.to_string();
    let created = s
        .send(
            false,
            "POST",
            "/v1/referrals",
            Some(&text),
            &[("Idempotency-Key", key.as_str())],
            &mut log,
        )
        .await;
    let id = created
        .as_ref()
        .and_then(|a| a.body["id"].as_str().map(str::to_owned));
    run_case(&CASES[5], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match &created {
            None => Finding::CouldNotRun("no answer".into()),
            Some(a) if a.status == 201 => {
                let location = a
                    .headers
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                match &id {
                    Some(id) if location.ends_with(id.as_str()) => Finding::Holds,
                    Some(_) => Finding::Broken("Location does not name the new referral".into()),
                    None => Finding::Broken("the answer has no id".into()),
                }
            }
            Some(a) => Finding::Broken(format!("answered {}: {}", a.status, a.body["detail"])),
        }
    });
    let Some(id) = id else {
        for case in &CASES[6..] {
            run_case(case, only, &mut results, |_| {
                Finding::CouldNotRun("no referral was created (REF-SEND-001)".into())
            });
        }
        return results;
    };

    let again = s
        .send(
            false,
            "POST",
            "/v1/referrals",
            Some(&text),
            &[("Idempotency-Key", key.as_str())],
            &mut log,
        )
        .await;
    run_case(&CASES[6], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match again {
            None => Finding::CouldNotRun("no answer".into()),
            Some(a) if a.status < 300 && a.body["id"].as_str() == Some(id.as_str()) => {
                if a.headers.contains_key("idempotent-replayed") {
                    Finding::Holds
                } else {
                    Finding::Broken("same referral, but not marked Idempotent-Replayed".into())
                }
            }
            Some(a) if a.status < 300 => {
                Finding::Broken("a second referral was created for the same key".into())
            }
            Some(a) => Finding::Broken(format!("answered {}", a.status)),
        }
    });

    let mut other = body.clone();
    other["urgency"] = json!("ordinary");
    let other_text = other.to_string();
    let clash = s
        .send(
            false,
            "POST",
            "/v1/referrals",
            Some(&other_text),
            &[("Idempotency-Key", key.as_str())],
            &mut log,
        )
        .await;
    run_case(&CASES[7], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match clash {
            None => Finding::CouldNotRun("no answer".into()),
            Some(a) if (400..500).contains(&a.status) && is_problem(&a) => Finding::Holds,
            Some(a) => Finding::Broken(format!(
                "answered {} to a reused key with another body",
                a.status
            )),
        }
    });

    let path = format!("/v1/referrals/{id}");
    let seen = s.send(true, "GET", &path, None, &[], &mut log).await;
    run_case(&CASES[8], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match seen {
            None => Finding::CouldNotRun("no answer".into()),
            Some(a) if a.status == 200 => {
                if a.body.pointer("/person/identity").is_some() {
                    Finding::Broken("the receiver got the identity before accepting".into())
                } else {
                    Finding::Holds
                }
            }
            Some(a) => Finding::Broken(format!(
                "the receiver could not read the referral: {}",
                a.status
            )),
        }
    });

    // Completing a referral nobody accepted is not a move the lifecycle has.
    let status_path = format!("/v1/referrals/{id}/status");
    let jump = s
        .send(
            true,
            "POST",
            &status_path,
            Some("{\"status\": \"completed\"}"),
            &[],
            &mut log,
        )
        .await;
    run_case(&CASES[9], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match jump {
            None => Finding::CouldNotRun("no answer".into()),
            Some(a) if (a.status == 409 || a.status == 403) && is_problem(&a) => Finding::Holds,
            Some(a) => Finding::Broken(format!("requested -> completed answered {}", a.status)),
        }
    });

    let page = s.send(true, "GET", "/v1/inbox", None, &[], &mut log).await;
    let cursor = page.as_ref().and_then(|p| {
        p.body["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|i| {
                    i["referral"].as_str() == Some(id.as_str()) && i["type"] == "referral.requested"
                })
                .and_then(|i| i["cursor"].as_str().map(str::to_owned))
        })
    });
    let after = match &cursor {
        Some(c) => {
            s.send(
                true,
                "GET",
                &format!("/v1/inbox?after={c}"),
                None,
                &[],
                &mut log,
            )
            .await
        }
        None => None,
    };
    run_case(&CASES[10], only, &mut results, |l| {
        *l = std::mem::take(&mut log);
        match (&page, &cursor, &after) {
            (None, _, _) => Finding::CouldNotRun("no answer".into()),
            (Some(_), None, _) => {
                Finding::Broken("the referral is not in the receiver's inbox".into())
            }
            (Some(_), Some(_), Some(a)) => {
                let again = a.body["items"].as_array().is_some_and(|items| {
                    items.iter().any(|i| {
                        i["referral"].as_str() == Some(id.as_str())
                            && i["type"] == "referral.requested"
                    })
                });
                if again {
                    Finding::Broken("the referral is listed again after its cursor".into())
                } else {
                    Finding::Holds
                }
            }
            (Some(_), Some(_), None) => Finding::CouldNotRun("no answer to the next page".into()),
        }
    });

    run_case(&CASES[11], only, &mut results, |_| {
        for e in &s.seen {
            for p in &s.planted {
                if e.url.contains(p.as_str()) {
                    return Finding::Broken("an identifier appears in a URL".into());
                }
                if e.headers.iter().any(|(_, v)| v.contains(p.as_str())) {
                    let status = e.status;
                    return Finding::Broken(format!(
                        "an identifier appears in a response header ({status})"
                    ));
                }
                if e.status >= 400 && e.body.contains(p.as_str()) {
                    let status = e.status;
                    return Finding::Broken(format!(
                        "an identifier appears in an error body ({status})"
                    ));
                }
            }
        }
        Finding::Holds
    });
    results
}

/// The SHA-256 fingerprint of the certificate the gateway presents.
pub async fn server_fingerprint(t: &Target) -> Result<String, String> {
    let tls = raccordo_gateway::client::tls_config(&t.ca, Some((&t.sender.cert, &t.sender.key)))
        .map_err(|e| e.to_string())?;
    let c = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .tls_info(true)
        .build()
        .map_err(|e| e.to_string())?;
    let r = c
        .get(format!("{}/healthz", t.url))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let info = r
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate().map(raccordo_gateway::pki::fingerprint))
        .ok_or("the gateway presented no certificate")?;
    Ok(info)
}

/// A client with a certificate from a CA the gateway does not trust; the status it got, or the
/// handshake error.
async fn stranger_client(
    url: &str,
    ca: &std::path::Path,
    scratch: &std::path::Path,
) -> Result<Result<u16, String>, String> {
    let now = time::OffsetDateTime::now_utc();
    let (_, issuer) =
        raccordo_gateway::pki::throwaway_ca("Not the Region", now).map_err(|e| e.to_string())?;
    let (cert, key) = raccordo_gateway::pki::leaf(
        &issuer,
        "stranger",
        Vec::new(),
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        now,
    )
    .map_err(|e| e.to_string())?;
    let (cert_path, key_path) = (scratch.join("stranger.crt"), scratch.join("stranger.key"));
    std::fs::write(&cert_path, cert).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, key).map_err(|e| e.to_string())?;
    let c = client(ca, Some((&cert_path, &key_path)))?;
    Ok(c.get(format!("{url}/healthz"))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string()))
}
