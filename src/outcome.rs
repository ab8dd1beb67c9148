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
    /// The requirements this finding shows not met (the assertion's, the pack's attribution
    /// rule's, or the step's). Empty: attributed to no requirement.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub requirements: Vec<String>,
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
            requirements: vec![],
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
    /// What this scenario showed of each requirement it bears on: `met` (its checks ran and
    /// passed), `not_met` (a check attributed to it failed), `not_evaluated` (the scenario
    /// stopped, errored, was skipped or not run before its checks ran).
    #[serde(default)]
    pub requirements: BTreeMap<String, ReqStatus>,
}

/// A requirement's status, in one scenario or over the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReqStatus {
    Met,
    NotMet,
    NotEvaluated,
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
    /// The statement in French, when the pack gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement_fr: Option<String>,
    pub spec: String,
    /// Every scenario of the pack that verifies it (run or not).
    pub scenarios: Vec<String>,
    /// `met` when every one of its scenarios ran its checks and they passed; `not_met` when a
    /// check attributed to it failed; otherwise `not_evaluated`.
    pub status: ReqStatus,
    /// Scenarios in which a check attributed to it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_met_in: Vec<String>,
    /// Scenarios that did not show it (errored, stopped, skipped, not run, or not selected).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_evaluated_in: Vec<String>,
}

/// A requirement of the pack, as the outcome is built from it.
#[derive(Debug, Clone, Default)]
pub struct RequirementDef {
    pub id: String,
    pub statement: String,
    pub statement_fr: Option<String>,
    pub spec: String,
    /// Ids of the pack's scenarios that verify it.
    pub scenarios: Vec<String>,
}

impl From<&RequirementOutcome> for RequirementDef {
    fn from(r: &RequirementOutcome) -> RequirementDef {
        RequirementDef {
            id: r.id.clone(),
            statement: r.statement.clone(),
            statement_fr: r.statement_fr.clone(),
            spec: r.spec.clone(),
            scenarios: r.scenarios.clone(),
        }
    }
}

/// What part of the pack the run covered. A run is complete when it ran every scenario of the
/// pack (no filter, no partition, none skipped, errored or not run) and evaluated every
/// requirement; only a complete run can be CONFORME without qualification.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scope {
    pub complete: bool,
    /// Scenarios in the pack.
    pub pack_scenarios: usize,
    /// The `--filter` expression, when one selected the scenarios.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Capabilities the profile does not declare that made scenarios skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_capabilities: Vec<String>,
    /// Requirements not evaluated (ids), uncovered ones included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_evaluated: Vec<String>,
    /// Why the run is not complete, one sentence each (English; reports translate the facts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<String>,
}

/// How the run was planned: what it selected out of the pack.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub filter: Option<String>,
    /// `k/n` for one share of a partitioned run.
    pub partition: Option<String>,
    pub pack_scenarios: usize,
}

/// The verdict of a run.
pub mod verdict {
    /// Complete run, nothing failed.
    pub const CONFORMANT: &str = "conformant";
    /// Nothing failed, but the run did not cover the whole pack (filter, partition, skipped
    /// capabilities, requirements not evaluated): conformant on the tested scope only.
    pub const CONFORMANT_SCOPED: &str = "conformant_scoped";
    /// A check of the SUT failed.
    pub const NOT_CONFORMANT: &str = "not_conformant";
    /// Nothing failed, but the lab could not test (scenarios errored, or none passed).
    pub const NO_VERDICT: &str = "no_verdict";
    /// Nothing failed, and the run was interrupted.
    pub const INTERRUPTED: &str = "interrupted";
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
    /// `conformant`, `conformant_scoped`, `not_conformant`, `no_verdict` or `interrupted`
    /// (see [`verdict`]).
    pub verdict: String,
    pub interrupted: bool,
    /// `k/n` when this run is one share of a partitioned run (`run --partition k/n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// What part of the pack the run covered.
    #[serde(default)]
    pub scope: Scope,
    pub counts: Counts,
    pub requirements: Vec<RequirementOutcome>,
    pub scenarios: Vec<ScenarioOutcome>,
}

impl Outcome {
    /// Assemble the outcome: counts, the requirement matrix, the scope and the verdict.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        pack: PackInfo,
        sut: SutInfo,
        requirements: &[RequirementDef],
        plan: &Plan,
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
        let requirements: Vec<RequirementOutcome> = requirements
            .iter()
            .map(|r| requirement(r, &scenarios))
            .collect();
        let scope = scope(plan, &counts, &requirements, &scenarios, interrupted);
        let v = if counts.failed > 0 {
            verdict::NOT_CONFORMANT
        } else if interrupted {
            verdict::INTERRUPTED
        } else if counts.errored > 0 || counts.passed == 0 {
            verdict::NO_VERDICT
        } else if scope.complete {
            verdict::CONFORMANT
        } else {
            verdict::CONFORMANT_SCOPED
        };
        Outcome {
            format: 2,
            roclab_version: env!("CARGO_PKG_VERSION").to_string(),
            pack,
            sut,
            started,
            duration_ms,
            verdict: v.to_string(),
            interrupted,
            partition: plan.partition.clone(),
            scope,
            counts,
            requirements,
            scenarios,
        }
    }

    /// No check failed and the SUT was shown conformant, on the whole pack or on the tested
    /// scope (see [`Scope`]).
    pub fn conformant(&self) -> bool {
        self.verdict == verdict::CONFORMANT || self.verdict == verdict::CONFORMANT_SCOPED
    }

    /// The process exit code of this outcome: 0 conformant (complete or scoped), 1 not
    /// conformant, 3 no verdict possible (the lab could not test), 130 interrupted.
    pub fn exit_code(&self) -> i32 {
        if self.interrupted {
            130
        } else if self.conformant() {
            0
        } else if self.verdict == verdict::NOT_CONFORMANT {
            1
        } else {
            3
        }
    }
}

/// A requirement over the run: not met when a check attributed to it failed in any scenario;
/// met when every scenario of the pack verifying it ran and showed it; otherwise not evaluated.
fn requirement(r: &RequirementDef, scenarios: &[ScenarioOutcome]) -> RequirementOutcome {
    let mut not_met_in = vec![];
    let mut not_evaluated_in = vec![];
    let mut met = 0;
    for s in scenarios {
        match s.requirements.get(&r.id) {
            Some(ReqStatus::NotMet) => not_met_in.push(s.id.clone()),
            Some(ReqStatus::NotEvaluated) => not_evaluated_in.push(s.id.clone()),
            Some(ReqStatus::Met) => met += 1,
            None if s.verifies.contains(&r.id) => not_evaluated_in.push(s.id.clone()),
            None => {}
        }
    }
    // Scenarios of the pack verifying it that are not in this outcome (filtered out, another
    // share of a partitioned run).
    for id in &r.scenarios {
        if !scenarios.iter().any(|s| &s.id == id) {
            not_evaluated_in.push(id.clone());
        }
    }
    let status = if !not_met_in.is_empty() {
        ReqStatus::NotMet
    } else if not_evaluated_in.is_empty() && met > 0 {
        ReqStatus::Met
    } else {
        ReqStatus::NotEvaluated
    };
    RequirementOutcome {
        id: r.id.clone(),
        statement: r.statement.clone(),
        statement_fr: r.statement_fr.clone(),
        spec: r.spec.clone(),
        scenarios: r.scenarios.clone(),
        status,
        not_met_in,
        not_evaluated_in,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn scope(
    plan: &Plan,
    counts: &Counts,
    requirements: &[RequirementOutcome],
    scenarios: &[ScenarioOutcome],
    interrupted: bool,
) -> Scope {
    let mut limits = vec![];
    if let Some(f) = plan
        .filter
        .as_ref()
        .filter(|_| scenarios.len() < plan.pack_scenarios)
    {
        limits.push(format!(
            "filter `{f}` selected {} of the pack's {}",
            plural(scenarios.len(), "scenario", "scenarios"),
            plan.pack_scenarios
        ));
    }
    if let Some(p) = &plan.partition {
        limits.push(format!("share {p} of a partitioned run"));
    } else if plan.filter.is_none() && scenarios.len() < plan.pack_scenarios {
        limits.push(format!(
            "{} of the pack's {} in this outcome",
            plural(scenarios.len(), "scenario", "scenarios"),
            plan.pack_scenarios
        ));
    }
    let mut missing = std::collections::BTreeSet::new();
    for s in scenarios.iter().filter(|s| s.status == Status::Skipped) {
        if let Some(caps) = s
            .reason
            .as_deref()
            .and_then(|r| r.strip_prefix("requires capability "))
            .and_then(|r| r.strip_suffix(" not declared by the profile"))
        {
            missing.extend(caps.split(", ").map(str::to_string));
        }
    }
    if counts.skipped > 0 {
        limits.push(format!(
            "{} skipped{}",
            plural(counts.skipped, "scenario", "scenarios"),
            if missing.is_empty() {
                String::new()
            } else {
                format!(
                    " (capabilities not declared by the profile: {})",
                    missing.iter().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        ));
    }
    if counts.errored > 0 {
        limits.push(format!(
            "{} errored (the lab could not test them)",
            plural(counts.errored, "scenario", "scenarios")
        ));
    }
    if counts.not_run > 0 {
        limits.push(format!(
            "{} not run",
            plural(counts.not_run, "scenario", "scenarios")
        ));
    }
    if interrupted {
        limits.push("the run was interrupted".into());
    }
    let not_evaluated: Vec<String> = requirements
        .iter()
        .filter(|r| r.status == ReqStatus::NotEvaluated)
        .map(|r| r.id.clone())
        .collect();
    if !not_evaluated.is_empty() {
        limits.push(format!(
            "{} not evaluated",
            plural(not_evaluated.len(), "requirement", "requirements")
        ));
    }
    Scope {
        complete: limits.is_empty(),
        pack_scenarios: plan.pack_scenarios,
        filter: plan.filter.clone(),
        missing_capabilities: missing.into_iter().collect(),
        not_evaluated,
        limits,
    }
}
