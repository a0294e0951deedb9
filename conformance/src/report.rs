//! The reports of a run: JSON (versioned, the source of the others), JUnit XML for CI, TAP on
//! standard output, and one self-contained HTML page with each test's exchanges.

use crate::model::{Outcome, TestResult, Verdict};
use serde::{Deserialize, Serialize};

/// The version of the JSON report's shape; a change that breaks readers raises it.
pub const REPORT_FORMAT: &str = "raccordo-conformance-report/1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub format: String,
    pub kit_version: String,
    pub profile: String,
    /// SHA-256 of the plan (ids, levels, requirements) the run followed.
    pub plan_digest: String,
    pub target: String,
    pub seed: u64,
    pub started: String,
    pub verdict: Verdict,
    pub results: Vec<TestResult>,
}

impl Report {
    pub fn count(&self, o: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == o).count()
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn tap(&self) -> String {
        let mut out = format!("TAP version 14\n1..{}\n", self.results.len());
        for (i, r) in self.results.iter().enumerate() {
            let n = i + 1;
            let line = match r.outcome {
                Outcome::Pass => format!("ok {n} - {} {}", r.id, r.title),
                Outcome::Skip => format!("ok {n} - {} {} # SKIP {}", r.id, r.title, r.message),
                Outcome::Warn => format!(
                    "ok {n} - {} {} # TODO warning: {}",
                    r.id, r.title, r.message
                ),
                Outcome::Fail | Outcome::Error => format!("not ok {n} - {} {}", r.id, r.title),
            };
            out.push_str(&line);
            out.push('\n');
            if matches!(r.outcome, Outcome::Fail | Outcome::Error) {
                out.push_str(&format!(
                    "  ---\n  outcome: {:?}\n  level: {:?}\n  requirement: {}\n  message: {}\n  ...\n",
                    r.outcome,
                    r.level,
                    r.requirement,
                    r.message.replace('\n', " ")
                ));
            }
        }
        out.push_str(&format!("# verdict: {:?}\n", self.verdict));
        out
    }

    pub fn junit(&self) -> String {
        let failures = self.count(Outcome::Fail);
        let errors = self.count(Outcome::Error);
        let skipped = self.count(Outcome::Skip);
        let time: f64 = self.results.iter().map(|r| r.seconds).sum();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"raccordo-conformance\">\n<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{time:.3}\">\n",
            xml(&self.profile),
            self.results.len()
        );
        out.push_str(&format!(
            "<properties><property name=\"verdict\" value=\"{:?}\"/><property name=\"seed\" value=\"{}\"/><property name=\"plan_digest\" value=\"{}\"/></properties>\n",
            self.verdict, self.seed, self.plan_digest
        ));
        for r in &self.results {
            out.push_str(&format!(
                "<testcase classname=\"{}\" name=\"{} {}\" time=\"{:.3}\">",
                xml(&r.group),
                xml(&r.id),
                xml(&r.title),
                r.seconds
            ));
            match r.outcome {
                Outcome::Fail => out.push_str(&format!(
                    "<failure message=\"{}\" type=\"{:?}\">{}</failure>",
                    xml(&r.message),
                    r.level,
                    xml(&r.requirement)
                )),
                Outcome::Error => {
                    out.push_str(&format!("<error message=\"{}\"/>", xml(&r.message)))
                }
                Outcome::Skip => {
                    out.push_str(&format!("<skipped message=\"{}\"/>", xml(&r.message)))
                }
                Outcome::Warn => out.push_str(&format!(
                    "<system-out>warning: {}</system-out>",
                    xml(&r.message)
                )),
                Outcome::Pass => {}
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("</testsuite>\n</testsuites>\n");
        out
    }

    /// One page, no external resources: every test with its requirement, outcome, message and
    /// the exchanges (identifiers redacted).
    pub fn html(&self) -> String {
        let mut rows = String::new();
        for r in &self.results {
            let mut exchanges = String::new();
            for e in &r.exchanges {
                exchanges.push_str(&format!(
                    "<details><summary><code>{}</code> → {}</summary>{}<pre>{}</pre>{}</details>",
                    xml(&e.request),
                    e.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "no answer".into()),
                    e.request_body
                        .as_ref()
                        .map(|b| format!("<pre>{}</pre>", xml(b)))
                        .unwrap_or_default(),
                    xml(&e
                        .response_headers
                        .iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join("\n")),
                    e.response_body
                        .as_ref()
                        .map(|b| format!("<pre>{}</pre>", xml(b)))
                        .unwrap_or_default(),
                ));
            }
            rows.push_str(&format!(
                "<tr class=\"{:?}\"><td><code>{}</code></td><td>{}<br><small>{} · {:?}</small></td><td>{:?}</td><td>{}{}</td></tr>\n",
                r.outcome,
                xml(&r.id),
                xml(&r.title),
                xml(&r.requirement),
                r.level,
                r.outcome,
                xml(&r.message),
                exchanges
            ));
        }
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Raccordo conformance: {profile} — {verdict:?}</title>\n<style>body{{font:15px/1.4 system-ui,sans-serif;margin:2rem;color:#1d2a33}}table{{border-collapse:collapse;width:100%}}td{{border-top:1px solid #ddd;padding:.4rem;vertical-align:top}}tr.Fail td,tr.Error td{{background:#fde8e8}}tr.Warn td{{background:#fff6d6}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:.4rem}}</style></head>\n<body><h1>Raccordo conformance — {profile}</h1>\n<p>Verdict: <strong>{verdict:?}</strong>. Target: <code>{target}</code>. Seed {seed}. Plan {plan}. Started {started}. Kit {kit}. {pass} passed, {fail} failed, {warn} warnings, {skip} skipped, {error} errors. Identifiers in the exchanges are redacted.</p>\n<table><tr><th>id</th><th>test</th><th>outcome</th><th>detail</th></tr>\n{rows}</table></body></html>\n",
            profile = xml(&self.profile),
            verdict = self.verdict,
            target = xml(&self.target),
            seed = self.seed,
            plan = xml(&self.plan_digest),
            started = xml(&self.started),
            kit = xml(&self.kit_version),
            pass = self.count(Outcome::Pass),
            fail = self.count(Outcome::Fail),
            warn = self.count(Outcome::Warn),
            skip = self.count(Outcome::Skip),
            error = self.count(Outcome::Error),
        )
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
