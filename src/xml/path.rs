//! A subset of XPath 1.0 for assertions and captures. (STUB: to be implemented.)

use super::tree::Element;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Path {
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {col}: {message}")]
pub struct PathError {
    /// 1-based column in the expression.
    pub col: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathValue<'a> {
    Nodes(Vec<&'a Element>),
    Strings(Vec<String>),
    Number(f64),
}

impl PathValue<'_> {
    /// The string value as XPath's `string()` would give it (first node's text; numbers
    /// without a trailing `.0`).
    pub fn string(&self) -> Option<String> {
        todo!()
    }
}

impl Path {
    /// Parse and resolve prefixes against `namespaces` (prefix -> URI).
    pub fn compile(_expr: &str, _namespaces: &BTreeMap<String, String>) -> Result<Path, PathError> {
        todo!()
    }
    pub fn eval<'a>(&self, _root: &'a Element) -> PathValue<'a> {
        todo!()
    }
}
