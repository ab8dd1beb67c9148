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

#[derive(Debug, Clone)]
pub struct Requirement {
    pub id: String,
    pub statement: String,
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
    pub latency_ms: u64,
    pub unordered: Vec<String>,
    pub requirements: Vec<Requirement>,
    pub scenarios: Vec<Scenario>,
    /// SHA-256 over every file of the pack (relative path and content, in path order).
    pub sha256: String,
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
    pub steps: Vec<Step>,
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

#[derive(Debug, Clone)]
pub struct Step {
    pub at: Location,
    pub title: Option<String>,
    pub call: String,
    pub request: Arc<Template>,
    pub raw: bool,
    pub headers: Vec<(String, Template)>,
    pub client_cert: ClientCert,
    pub bind: Vec<(String, String)>,
    pub vars: Vec<(String, Template)>,
    pub expect: Expect,
    pub capture: Vec<(String, XPath)>,
}

impl Step {
    pub fn label(&self) -> String {
        match &self.title {
            Some(t) => format!("{} — {t}", self.call),
            None => self.call.clone(),
        }
    }
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
    Matches(regex::Regex),
    Exists(bool),
}

#[derive(Debug, Clone)]
pub struct Assertion {
    pub at: Location,
    pub path: XPath,
    pub check: AssertCheck,
}

#[derive(Debug, Clone)]
pub struct Expect {
    pub status: Option<u16>,
    pub fault: Option<FaultExpect>,
    pub body: Option<Arc<Template>>,
    pub unordered: Vec<String>,
    pub asserts: Vec<Assertion>,
    pub latency_ms: u64,
    pub refused: bool,
}
