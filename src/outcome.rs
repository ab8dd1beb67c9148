//! The result model of a run. Reports read only this.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One HTTP message as it crossed the wire.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HttpMessage {
    /// Request: `POST /IDB HTTP/1.1`; response: `HTTP/1.1 200 OK`.
    pub start_line: String,
    /// Response status code (absent on requests).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub status: Option<u16>,
    /// Headers in the order they were sent or received.
    pub headers: Vec<(String, String)>,
    /// The body as text when it is valid UTF-8 (exactly the bytes sent or received).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub body: Option<String>,
    /// The body in base64 when it is not valid UTF-8.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub body_base64: Option<String>,
    /// Body length in bytes.
    pub body_len: usize,
}

impl HttpMessage {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Body as text (lossy for non-UTF-8 bodies).
    pub fn text(&self) -> String {
        match (&self.body, &self.body_base64) {
            (Some(b), _) => b.clone(),
            _ => String::new(),
        }
    }
}

/// TLS facts of a connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: Option<String>,
    /// Subject of the certificate the peer presented (e.g. `CN=localhost`).
    pub peer_subject: Option<String>,
    /// Subject of the certificate we presented, if any.
    pub local_subject: Option<String>,
}

/// How a transport failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportErrorKind {
    /// TCP connection refused or unreachable.
    Connect,
    /// TLS handshake failed or the peer aborted the connection with a TLS alert
    /// (with TLS 1.3 a refused client certificate shows up on the first request).
    Tls,
    /// Our side refused the peer's certificate (not from the configured CA, wrong name,
    /// expired): the exchange could not be made, and the peer's behaviour is unknown.
    PeerCertificate,
    /// No complete answer within the time limit.
    Timeout,
    /// The peer answered with something that is not HTTP, or closed the connection.
    Protocol,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub message: String,
}

/// One request and its answer (or the failure to get one), recorded as sent and received.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Exchange {
    /// Who sent the request (e.g. `establishment`).
    pub from: String,
    /// Who answered (e.g. `amc`).
    pub to: String,
    /// The operation (e.g. `IDB`).
    pub operation: String,
    pub url: String,
    pub request: HttpMessage,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub response: Option<HttpMessage>,
    /// RFC 3339 time the request started.
    pub started: String,
    /// From the start of the connection to the last byte of the answer, in milliseconds.
    pub duration_ms: f64,
    /// From the request's first byte to the response's last byte, in milliseconds.
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tls: Option<TlsInfo>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<TransportError>,
}

/// What a check found wrong.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    /// The check that produced it: `status`, `fault`, `body`, `assert`, `latency`, `tls`,
    /// `transport`, `capture`, `template`.
    pub check: String,
    /// One line a person can read.
    pub message: String,
    /// Where in the message (XPath-like location), when it applies.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expected: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub actual: Option<String>,
    /// Step index (0-based) in its scenario.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub step: Option<usize>,
}

impl Finding {
    /// A finding of `check` at step `step`, with no location or values.
    pub fn new(check: &str, message: String, step: usize) -> Finding {
        Finding {
            check: check.into(),
            message,
            location: None,
            expected: None,
            actual: None,
            step: Some(step),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Passed,
    Failed,
    Errored,
    Skipped,
    /// The run was interrupted before this scenario ran.
    NotRun,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepOutcome {
    pub index: usize,
    /// Human label, e.g. `call IDB`.
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exchange: Option<Exchange>,
    pub findings: Vec<Finding>,
    /// Variables captured by this step.
    pub captures: BTreeMap<String, String>,
    /// Unified diff of expected and actual bodies, pretty-printed, when the body check failed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub body_diff: Option<String>,
}

impl StepOutcome {
    /// A step with nothing recorded yet.
    pub fn new(index: usize, label: String) -> StepOutcome {
        StepOutcome {
            index,
            label,
            exchange: None,
            findings: vec![],
            captures: BTreeMap::new(),
            body_diff: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioOutcome {
    pub id: String,
    pub title: String,
    /// `file:line:column` of the scenario in the pack.
    pub source: String,
    pub verifies: Vec<String>,
    pub tags: Vec<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    pub duration_ms: f64,
    pub steps: Vec<StepOutcome>,
}

impl ScenarioOutcome {
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.steps.iter().flat_map(|s| s.findings.iter())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequirementOutcome {
    pub id: String,
    pub statement: String,
    pub spec: String,
    pub scenarios: Vec<String>,
    pub status: Status,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errored: usize,
    pub skipped: usize,
    pub not_run: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackInfo {
    pub id: String,
    pub title: String,
    pub version: String,
    pub norme: String,
    pub sut: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SutInfo {
    pub profile: String,
    pub kind: String,
    pub embedded: bool,
    /// The AMC's base URL, or for a GAP the kind of driver.
    pub base_url: String,
    pub defects: Vec<String>,
    /// The profile's SLA figures: target median and hard limit of a response, in ms.
    #[serde(default)]
    pub sla_median_ms: u64,
    #[serde(default)]
    pub sla_limit_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outcome {
    /// Format version of this document.
    pub format: u32,
    pub roclab_version: String,
    pub pack: PackInfo,
    pub sut: SutInfo,
    pub started: String,
    pub duration_ms: f64,
    /// `conformant` or `not_conformant`.
    pub verdict: String,
    pub interrupted: bool,
    /// `k/n` when this run is one share of a partitioned run (`run --partition k/n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    pub counts: Counts,
    pub requirements: Vec<RequirementOutcome>,
    pub scenarios: Vec<ScenarioOutcome>,
}

impl Outcome {
    /// Assemble the outcome: counts, the requirement matrix and the verdict.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        pack: PackInfo,
        sut: SutInfo,
        requirements: &[(String, String, String)],
        scenarios: Vec<ScenarioOutcome>,
        started: String,
        duration_ms: f64,
        interrupted: bool,
    ) -> Outcome {
        let mut counts = Counts {
            total: scenarios.len(),
            ..Counts::default()
        };
        for s in &scenarios {
            match s.status {
                Status::Passed => counts.passed += 1,
                Status::Failed => counts.failed += 1,
                Status::Errored => counts.errored += 1,
                Status::Skipped => counts.skipped += 1,
                Status::NotRun => counts.not_run += 1,
            }
        }
        let requirements = requirements
            .iter()
            .map(|(id, statement, spec)| {
                let of: Vec<&ScenarioOutcome> = scenarios
                    .iter()
                    .filter(|s| s.verifies.contains(id))
                    .collect();
                let status = requirement_status(&of);
                RequirementOutcome {
                    id: id.clone(),
                    statement: statement.clone(),
                    spec: spec.clone(),
                    scenarios: of.iter().map(|s| s.id.clone()).collect(),
                    status,
                }
            })
            .collect();
        let conformant = counts.failed == 0
            && counts.errored == 0
            && counts.not_run == 0
            && counts.passed > 0
            && !interrupted;
        Outcome {
            format: 1,
            roclab_version: env!("CARGO_PKG_VERSION").to_string(),
            pack,
            sut,
            started,
            duration_ms,
            verdict: if conformant {
                "conformant"
            } else {
                "not_conformant"
            }
            .to_string(),
            interrupted,
            partition: None,
            counts,
            requirements,
            scenarios,
        }
    }

    pub fn conformant(&self) -> bool {
        self.verdict == "conformant"
    }
}

/// A requirement fails when any of its scenarios fails; it passes when all that ran passed;
/// with no scenario that ran it is skipped.
fn requirement_status(of: &[&ScenarioOutcome]) -> Status {
    let ran: Vec<Status> = of
        .iter()
        .map(|s| s.status)
        .filter(|s| !matches!(s, Status::Skipped | Status::NotRun))
        .collect();
    if ran.contains(&Status::Failed) {
        Status::Failed
    } else if ran.contains(&Status::Errored) {
        Status::Errored
    } else if ran.is_empty() {
        if of.iter().any(|s| s.status == Status::NotRun) {
            Status::NotRun
        } else {
            Status::Skipped
        }
    } else {
        Status::Passed
    }
}
