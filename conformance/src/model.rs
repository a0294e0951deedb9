//! The kit's vocabulary. A test has a stable id (`REF-SEND-002`), the requirement it checks and
//! that requirement's level; MUST, SHOULD and MAY make a failure count as a failure, a warning,
//! or nothing. A run's verdict follows from the results; the exit code from the verdict.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Must,
    Should,
    May,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    Warn,
    Skip,
    /// The test could not run to a conclusion (the target did not answer, the kit failed).
    Error,
}

/// A test as the plan declares it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Case {
    pub id: &'static str,
    pub group: &'static str,
    pub title: &'static str,
    /// Where the requirement is written (document and section).
    pub requirement: &'static str,
    pub level: Level,
}

/// One exchange with the target, as recorded (identifiers redacted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    pub request: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    pub status: Option<u16>,
    #[serde(default)]
    pub response_headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

/// What a test found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestResult {
    pub id: String,
    pub group: String,
    pub title: String,
    pub requirement: String,
    pub level: Level,
    pub outcome: Outcome,
    pub message: String,
    pub seconds: f64,
    #[serde(default)]
    pub exchanges: Vec<Exchange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Conformant,
    ConformantWithWarnings,
    NotConformant,
    Incomplete,
}

impl Verdict {
    /// Errors make a run incomplete; a failed MUST makes it not conformant; a failed SHOULD
    /// leaves it conformant with warnings; a failed MAY is only reported.
    pub fn of(results: &[TestResult]) -> Verdict {
        if results.iter().any(|r| r.outcome == Outcome::Error) {
            Verdict::Incomplete
        } else if results.iter().any(|r| r.outcome == Outcome::Fail) {
            Verdict::NotConformant
        } else if results.iter().any(|r| r.outcome == Outcome::Warn) {
            Verdict::ConformantWithWarnings
        } else {
            Verdict::Conformant
        }
    }

    /// 0 conformant (with or without warnings), 1 not conformant, 3 incomplete (2 is for usage
    /// and configuration errors, 4 for the kit's own failures).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Conformant | Verdict::ConformantWithWarnings => 0,
            Verdict::NotConformant => 1,
            Verdict::Incomplete => 3,
        }
    }
}

/// A check's raw finding, before the level decides what a failure counts as.
pub enum Finding {
    Holds,
    Broken(String),
    NotApplicable(String),
    CouldNotRun(String),
}

impl Case {
    pub fn judge(&self, finding: Finding, seconds: f64, exchanges: Vec<Exchange>) -> TestResult {
        let (outcome, message) = match finding {
            Finding::Holds => (Outcome::Pass, String::new()),
            Finding::Broken(m) => (
                match self.level {
                    Level::Must => Outcome::Fail,
                    Level::Should => Outcome::Warn,
                    Level::May => Outcome::Skip,
                },
                m,
            ),
            Finding::NotApplicable(m) => (Outcome::Skip, m),
            Finding::CouldNotRun(m) => (Outcome::Error, m),
        };
        TestResult {
            id: self.id.to_owned(),
            group: self.group.to_owned(),
            title: self.title.to_owned(),
            requirement: self.requirement.to_owned(),
            level: self.level,
            outcome,
            message,
            seconds,
            exchanges,
        }
    }
}
