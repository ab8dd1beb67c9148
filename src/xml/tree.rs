//! Owned XML tree built with quick-xml: namespaces resolved, source positions kept.
//! (STUB: to be implemented.)

use serde::Serialize;

/// 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Namespace URI (None for unprefixed attributes).
    pub ns: Option<String>,
    pub local: String,
    /// Prefix as written (kept for printing only).
    pub prefix: Option<String>,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    /// Text and CDATA, unescaped. Comments and processing instructions are dropped.
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, resolved; None when the element is in no namespace.
    pub ns: Option<String>,
    pub local: String,
    /// Prefix as written (kept for printing only; never compared).
    pub prefix: Option<String>,
    /// Attributes, without namespace declarations (`xmlns`, `xmlns:*`).
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
    pub pos: Pos,
    /// Namespace declarations in scope at this element (prefix -> URI; `""` for the default
    /// namespace), needed to resolve QName values such as SOAP fault codes.
    pub ns_decls: std::collections::BTreeMap<String, String>,
}

/// A parse error with its position in the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: {message}")]
pub struct XmlError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

/// Parse a whole document and return its root element.
pub fn parse(_src: &str) -> Result<Element, XmlError> {
    todo!()
}

/// Pretty-print with two-space indentation, one element per line, prefixes as written.
pub fn pretty(_root: &Element) -> String {
    todo!()
}

impl Element {
    /// Concatenated text of the direct text children, trimmed.
    pub fn text(&self) -> String {
        todo!()
    }
    /// Child elements in document order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }
    /// Resolve a QName value (`prefix:local`) with the declarations in scope here.
    pub fn resolve_qname(&self, value: &str) -> Option<(String, String)> {
        let value = value.trim();
        let (prefix, local) = value.split_once(':').unwrap_or(("", value));
        let uri = self.ns_decls.get(prefix)?;
        Some((uri.clone(), local.to_string()))
    }
    /// First child element with this namespace and local name.
    pub fn child(&self, ns: &str, local: &str) -> Option<&Element> {
        self.elements()
            .find(|e| e.local == local && e.ns.as_deref() == Some(ns))
    }
}
