//! Structural comparison of an expected tree (which may hold placeholders) with an actual one.
//! (STUB: to be implemented.)

use super::tree::Element;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// Element paths (local names from the root, e.g. `/Envelope/Body/clcReponse/lignes`)
    /// whose children are matched in any order.
    pub unordered: Vec<String>,
    /// Values already known (captures may only bind a name once).
    pub known: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// Element name or namespace differs.
    Name,
    Namespace,
    /// Text differs (or fails a placeholder).
    Text,
    AttributeMissing,
    AttributeUnexpected,
    AttributeValue,
    /// An expected child element is absent.
    Missing,
    /// An actual child element was not expected.
    Unexpected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `/Envelope/Body/clcReponse/lignes/ligne[2]/montantAmc` (local names, 1-based positions
    /// among same-named siblings, shown when more than one).
    pub location: String,
    pub kind: DiffKind,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub differences: Vec<Difference>,
    /// Values bound by `{{capture:name}}` placeholders.
    pub captures: BTreeMap<String, String>,
}

pub fn compare(_expected: &Element, _actual: &Element, _opts: &CompareOptions) -> Comparison {
    todo!()
}

/// Unified diff of two pretty-printed documents.
pub fn unified(_expected: &str, _actual: &str) -> String {
    todo!()
}
