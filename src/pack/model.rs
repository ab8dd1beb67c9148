//! The validated pack: what the engine runs.

use super::template::Template;
use crate::error::Location;
use crate::soap::SoapVersion;
use crate::xml::Path as XPath;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Operation {
    /// Path appended to the SUT base URL.
    pub path: String,
    /// SOAP action.
    pub action: String,
}

/// A counterpart roclab plays for a GAP under test.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    /// Which mirror implementation answers: `annuaire` or `amc`.
    pub role: String,
    /// For an `amc` actor: the population endpoint it serves (`A`, `B`).
    pub endpoint: Option<String>,
    pub soap: SoapVersion,
    pub operations: BTreeMap<String, Operation>,
}

impl Actor {
    /// The operation served at exactly `<prefix>/<operation path>` (query and a trailing `/`
    /// ignored).
    pub fn operation_at(&self, prefix: &str, path: &str) -> Option<&str> {
        let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
        self.operations
            .iter()
            .find(|(_, o)| path == format!("{prefix}/{}", o.path.trim_matches('/')))
            .map(|(k, _)| k.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Requirement {
    pub id: String,
    pub statement: String,
    /// The statement in French (reports in French show it when given).
    pub statement_fr: Option<String>,
    /// The operations whose answers (or requests) show it; empty: any. A finding of a step
    /// that names no requirement is attributed to the scenario's requirements of its operation.
    pub operations: Vec<String>,
    pub spec: String,
    pub at: Location,
}

#[derive(Debug, Clone)]
pub struct Pack {
    pub dir: PathBuf,
    pub id: String,
    pub title: String,
    pub version: String,
    pub norme: String,
    /// Kind of SUT tested: `amc` or `gap`.
    pub sut: String,
    pub soap: SoapVersion,
    pub namespaces: BTreeMap<String, String>,
    pub operations: BTreeMap<String, Operation>,
    /// Pack variables (defaults; profiles may override).
    pub variables: BTreeMap<String, String>,
    /// Data files flattened into variables (`population.beneficiaires.P01.nir`).
    pub data: BTreeMap<String, String>,
    /// Data files as loaded (name -> path), for counterparts that need them whole.
    pub data_files: BTreeMap<String, PathBuf>,
    /// Data files as documents (name -> content), for trigger records.
    pub data_values: BTreeMap<String, serde_json::Value>,
    pub latency_ms: u64,
    /// Default time a GAP has to send an expected request.
    pub within_ms: u64,
    pub unordered: Vec<String>,
    /// Counterparts played for a GAP under test.
    pub actors: BTreeMap<String, Actor>,
    /// Trigger input name -> data path whose entries the input's value selects.
    pub trigger_data: BTreeMap<String, String>,
    pub requirements: Vec<Requirement>,
    /// Which requirement a finding shows not met, by check family and location (pack.yaml
    /// `attribution`), for the checks every step makes (transport, envelope, echoes, SLA).
    pub attribution: Vec<AttributionRule>,
    /// Requirements the pack attributes checks to (by rule or on an assertion): such a
    /// requirement is shown not met only by those checks, never by another finding of a step.
    pub owned: std::collections::BTreeSet<String>,
    pub scenarios: Vec<Scenario>,
    /// SHA-256 over every file of the pack (relative path and content, in path order).
    pub sha256: String,
}

impl Pack {
    /// The pack's namespace prefixes declared around a body or a document (every one but the
    /// envelope's `env`, which the envelope itself binds).
    pub fn body_namespaces(&self) -> Vec<(&str, &str)> {
        self.namespaces
            .iter()
            .filter(|(p, _)| p.as_str() != "env")
            .map(|(p, u)| (p.as_str(), u.as_str()))
            .collect()
    }

    /// The record `id` under the data path `path` (`population.beneficiaires`): in a list, the
    /// entry whose `id` is `id` (or at that position); in a mapping, the value of key `id`.
    pub fn data_record(&self, path: &str, id: &str) -> Option<serde_json::Value> {
        let mut parts = path.split('.');
        let mut cur = self.data_values.get(parts.next()?)?;
        for p in parts.chain(std::iter::once(id)) {
            cur = match cur {
                serde_json::Value::Object(m) => m.get(p)?,
                serde_json::Value::Array(a) => a
                    .iter()
                    .find(|x| x.get("id").and_then(|v| v.as_str()) == Some(p))
                    .or_else(|| p.parse::<usize>().ok().and_then(|i| a.get(i)))?,
                _ => return None,
            };
        }
        Some(cur.clone())
    }
}

/// One `attribution` rule: a finding of one of `checks` (any when empty) whose location matches
/// `location` (any when absent) shows `verifies` not met.
#[derive(Debug, Clone)]
pub struct AttributionRule {
    pub at: Location,
    pub checks: Vec<String>,
    pub location: Option<regex::Regex>,
    pub verifies: Vec<String>,
}

impl AttributionRule {
    pub fn matches(&self, check: &str, location: Option<&str>) -> bool {
        (self.checks.is_empty() || self.checks.iter().any(|c| c == check))
            && match &self.location {
                None => true,
                Some(r) => location.is_some_and(|l| r.is_match(l)),
            }
    }
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: String,
    pub title: String,
    pub at: Location,
    pub verifies: Vec<String>,
    pub tags: Vec<String>,
    pub requires: Vec<String>,
    pub bind: Vec<(String, String)>,
    pub vars: Vec<(String, Template)>,
    /// Certificate each actor presents (default: the lab's).
    pub certs: BTreeMap<String, ServerCert>,
    /// `(actor, operation)` requests that may come any number of times without a finding.
    pub tolerate: Vec<(String, String)>,
    pub steps: Vec<Step>,
}

/// The certificate a mirror presents to a GAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCert {
    Lab,
    Untrusted,
    WrongName,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCert {
    /// The lab establishment's certificate.
    Lab,
    None,
    /// From the untrusted CA.
    Untrusted,
    Expired,
}

impl ClientCert {
    pub fn label(self) -> &'static str {
        match self {
            Self::Lab => "lab",
            Self::None => "none",
            Self::Untrusted => "untrusted",
            Self::Expired => "expired",
        }
    }
}

/// The operation of payment runs and return files (RSP-<numero>.xml), for requirement
/// `operations`.
pub const RETURNS: &str = "RSP";

#[derive(Debug, Clone)]
pub struct Step {
    pub at: Location,
    pub title: Option<String>,
    /// The requirements this step's checks show (default: the scenario's).
    pub verifies: Vec<String>,
    pub bind: Vec<(String, String)>,
    pub vars: Vec<(String, Template)>,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Call the SUT (an AMC endpoint).
    Call(Call),
    /// Make the GAP act through the profile's driver.
    Trigger(Trigger),
    /// The GAP must send this request next.
    ExpectRequest(ExpectRequest),
    /// The GAP must send nothing (matching) for a while.
    ExpectNoRequest(ExpectNoRequest),
    /// The GAP must abort the TLS handshake with an actor.
    ExpectTlsRefusal { actor: String, within_ms: u64 },
    /// An AMC settles the invoices it received: the mirror AMC of `actor` (GAP packs), or the
    /// AMC under test (through its profile's hook, or by waiting its stated delay).
    PaymentRun {
        actor: Option<String>,
        /// Invoice numbers (templates) the mirror AMC rejects R25 at this run, whatever
        /// their date: the lab injects a rejection into a GAP's flow. Mirror actors only.
        reject: Vec<Template>,
    },
    /// A return file `RSP-<numero>.xml` must appear in the return drop.
    ExpectReturn(ExpectReturn),
    /// The last trigger's action must end, and what the driver answered (JSON) is checked.
    ExpectResult(ExpectResult),
}

#[derive(Debug, Clone)]
pub struct ExpectReturn {
    /// Template of the invoice number: the file is `RSP-<numero>.xml`.
    pub numero: Template,
    pub within_ms: u64,
    /// Checks on the file: its body template is a whole document (no envelope).
    pub checks: MessageChecks,
}

/// One check on a driver's JSON answer: a dotted path (`calls.0.outcome`).
#[derive(Debug, Clone)]
pub struct ResultAssertion {
    pub at: Location,
    pub path: String,
    pub check: AssertCheck,
    /// The requirements this assertion shows (default: the step's).
    pub verifies: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ExpectResult {
    pub within_ms: u64,
    pub asserts: Vec<ResultAssertion>,
}

impl Step {
    /// The operation the step calls or expects, if any: payment runs and return files are
    /// the operation [`RETURNS`].
    pub fn operation(&self) -> Option<&str> {
        match &self.action {
            Action::Call(c) => Some(&c.call),
            Action::ExpectRequest(e) => Some(&e.operation),
            Action::PaymentRun { .. } | Action::ExpectReturn(_) => Some(RETURNS),
            _ => None,
        }
    }

    pub fn label(&self) -> String {
        let base = match &self.action {
            Action::Call(c) => c.call.clone(),
            Action::Trigger(t) => format!("trigger {}", t.action),
            Action::ExpectRequest(e) => format!("expect {} {}", e.actor, e.operation),
            Action::ExpectNoRequest(e) => format!(
                "expect no request{}",
                match (&e.actor, &e.operation) {
                    (Some(a), Some(o)) => format!(" {a} {o}"),
                    (Some(a), None) => format!(" to {a}"),
                    (None, Some(o)) => format!(" {o}"),
                    (None, None) => String::new(),
                }
            ),
            Action::ExpectTlsRefusal { actor, .. } => format!("expect TLS refusal of {actor}"),
            Action::PaymentRun { actor, .. } => match actor {
                Some(a) => format!("payment run of {a}"),
                None => "payment run".into(),
            },
            Action::ExpectReturn(_) => "expect return file".into(),
            Action::ExpectResult(_) => "expect driver result".into(),
        };
        match &self.title {
            Some(t) => format!("{base} — {t}"),
            None => base,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Call {
    pub call: String,
    pub request: Arc<Template>,
    pub raw: bool,
    pub headers: Vec<(String, Template)>,
    pub client_cert: ClientCert,
    /// What the answer must be; its `checks.capture` take values for later steps.
    pub expect: Expect,
}

#[derive(Debug, Clone)]
pub struct Trigger {
    pub action: String,
    pub inputs: Vec<(String, Template)>,
    /// Instruction shown by the operator driver: (French, English).
    pub instruction: Option<(String, String)>,
}

/// Checks on one XML message (an answer of the SUT or a request it sent).
#[derive(Debug, Clone, Default)]
pub struct MessageChecks {
    pub body: Option<Arc<Template>>,
    pub unordered: Vec<String>,
    pub asserts: Vec<Assertion>,
    pub capture: Vec<(String, XPath)>,
}

#[derive(Debug, Clone)]
pub struct ExpectRequest {
    pub actor: String,
    pub operation: String,
    pub within_ms: u64,
    pub checks: MessageChecks,
    pub respond: Respond,
    pub capture_response: Vec<(String, XPath)>,
}

#[derive(Debug, Clone)]
pub struct ExpectNoRequest {
    pub within_ms: u64,
    pub actor: Option<String>,
    pub operation: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Respond {
    pub kind: RespondKind,
    pub delay_ms: u64,
}

#[derive(Debug, Clone, Default)]
pub enum RespondKind {
    /// The mirror's own answer.
    #[default]
    Default,
    /// A body template wrapped in the actor's envelope, with this HTTP status.
    Template {
        body: Arc<Template>,
        status: u16,
    },
    Fault(FaultExpect, u16, String),
    /// A body that is not XML.
    Malformed,
    /// The mirror's answer with another content type.
    ContentType(String),
    /// Close the connection without answering.
    Drop,
}

/// A SOAP fault expectation: `(namespace URI, local name)` pairs.
#[derive(Debug, Clone)]
pub struct FaultExpect {
    pub code: (String, String),
    pub subcode: Option<(String, String)>,
    /// As written, for messages (`env:Sender`).
    pub code_text: String,
    pub subcode_text: Option<String>,
}

#[derive(Debug, Clone)]
pub enum AssertCheck {
    Equals(Template),
    NotEquals(Template),
    Matches(regex::Regex),
    Exists(bool),
}

#[derive(Debug, Clone)]
pub struct Assertion {
    pub at: Location,
    pub path: XPath,
    pub check: AssertCheck,
    /// The requirements this assertion shows (default: the step's).
    pub verifies: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Expect {
    pub status: Option<u16>,
    pub fault: Option<FaultExpect>,
    pub checks: MessageChecks,
    pub latency_ms: u64,
    pub refused: bool,
}
