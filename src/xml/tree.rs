//! Owned XML tree built with quick-xml: namespaces resolved, source positions kept.

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use serde::Serialize;
use std::collections::BTreeMap;

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

/// Namespace URI bound to the `xml` prefix.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// Namespace URI reserved for namespace declarations.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// Byte offsets of line starts, to turn byte offsets into line/column positions.
struct LineIndex<'s> {
    src: &'s str,
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    fn new(src: &'s str) -> Self {
        let mut starts = vec![0];
        let bytes = src.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'\n' => starts.push(i + 1),
                // A lone CR is a line end too (XML normalizes it to LF).
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                _ => {}
            }
        }
        LineIndex { src, starts }
    }

    fn pos(&self, offset: usize) -> Pos {
        let mut offset = offset.min(self.src.len());
        while !self.src.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let col = self.src[start..offset].chars().count() + 1;
        Pos {
            line: line as u32,
            col: col as u32,
        }
    }

    fn error(&self, offset: usize, message: impl Into<String>) -> XmlError {
        let p = self.pos(offset);
        XmlError {
            line: p.line,
            col: p.col,
            message: message.into(),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || (!c.is_ascii() && !c.is_whitespace())
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.' || c.is_numeric()
}

/// Is `s` an NCName (an XML name without colon)?
pub(crate) fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if is_name_start(c) => chars.all(is_name_char),
        _ => false,
    }
}

/// Split a QName into (prefix, local), checking its syntax.
fn split_qname(name: &str) -> Option<(Option<&str>, &str)> {
    match name.split_once(':') {
        Some((p, l)) if is_ncname(p) && is_ncname(l) => Some((Some(p), l)),
        Some(_) => None,
        None if is_ncname(name) => Some((None, name)),
        None => None,
    }
}

/// Parse a whole document and return its root element.
///
/// Elements and attributes have their namespaces resolved; `xmlns` declarations are removed
/// from the attributes and recorded (cumulatively) in `ns_decls`. Text and CDATA are kept
/// unescaped (adjacent pieces merged); comments, processing instructions and the doctype are
/// dropped. Errors carry the 1-based line and column where parsing stopped.
pub fn parse(src: &str) -> Result<Element, XmlError> {
    let body = src.strip_prefix('\u{feff}').unwrap_or(src);
    let shift = src.len() - body.len();
    let index = LineIndex::new(src);
    let mut reader = Reader::from_str(body);
    {
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
        cfg.check_comments = true;
    }
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut base = BTreeMap::new();
    base.insert("xml".to_string(), XML_NS.to_string());

    loop {
        let start = reader.buffer_position() as usize + shift;
        let event = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => {
                return Err(index.error(reader.error_position() as usize + shift, e.to_string()));
            }
        };
        match event {
            Event::Start(ref tag) | Event::Empty(ref tag) => {
                let empty = matches!(event, Event::Empty(_));
                if root.is_some() {
                    return Err(index.error(start, "content after the root element"));
                }
                let scope = stack.last().map(|e| &e.ns_decls).unwrap_or(&base);
                let el = build_element(tag, scope, start, &index)?;
                if empty {
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(Node::Element(el)),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                // quick-xml checks that the name matches the open tag.
                let Some(el) = stack.pop() else {
                    return Err(index.error(start, "end tag without a matching start tag"));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(Node::Element(el)),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                // Point at the first non-blank character of stray text.
                let lead = t.as_ref().len() - t.as_ref().trim_start_matches(is_xml_space).len();
                push_text(&mut stack, &text, false).map_err(|m| index.error(start + lead, m))?;
            }
            Event::CData(t) => {
                let text = t.xml10_content();
                push_text(&mut stack, &text, true).map_err(|m| index.error(start, m))?;
            }
            Event::GeneralRef(r) => {
                let text = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => match resolve_predefined_entity(&r) {
                        Some(s) => s.to_string(),
                        None => {
                            return Err(index.error(start, format!("unknown entity `&{};`", &*r)));
                        }
                    },
                    Err(e) => return Err(index.error(start, e.to_string())),
                };
                push_text(&mut stack, &text, true).map_err(|m| index.error(start, m))?;
            }
            Event::Comment(_) | Event::PI(_) | Event::Decl(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        let name = qualified(open.prefix.as_deref(), &open.local);
        return Err(index.error(
            src.len(),
            format!("unexpected end of input: `<{name}>` is not closed"),
        ));
    }
    root.ok_or_else(|| index.error(src.len(), "no root element"))
}

/// Append text to the open element (merging with a preceding text node). Outside the root
/// element only whitespace is allowed (`strict` makes any content outside an error).
fn push_text(stack: &mut [Element], text: &str, strict: bool) -> Result<(), &'static str> {
    match stack.last_mut() {
        Some(el) => {
            if let Some(Node::Text(prev)) = el.children.last_mut() {
                prev.push_str(text);
            } else if !text.is_empty() {
                el.children.push(Node::Text(text.to_string()));
            }
            Ok(())
        }
        None if !strict && text.chars().all(is_xml_space) => Ok(()),
        None => Err("text outside the root element"),
    }
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn build_element(
    tag: &BytesStart<'_>,
    parent_scope: &BTreeMap<String, String>,
    start: usize,
    index: &LineIndex<'_>,
) -> Result<Element, XmlError> {
    build_element_inner(tag, parent_scope, index.pos(start)).map_err(|e| {
        // Attribute syntax errors point inside the tag (offsets counted after `<`).
        index.error(e.rel.map_or(start, |r| start + 1 + r), e.message)
    })
}

/// An error building an element: `rel` is an offset inside the tag (after `<`), if known.
struct BuildErr {
    rel: Option<usize>,
    message: String,
}

impl From<String> for BuildErr {
    fn from(message: String) -> Self {
        BuildErr { rel: None, message }
    }
}

fn build_element_inner(
    tag: &BytesStart<'_>,
    parent_scope: &BTreeMap<String, String>,
    pos: Pos,
) -> Result<Element, BuildErr> {
    let raw_name = tag.name().into_inner();
    let (prefix, local) =
        split_qname(raw_name).ok_or_else(|| format!("invalid element name `{raw_name}`"))?;
    let mut scope = parent_scope.clone();
    let mut raw_attrs = Vec::new();
    for attr in tag.attributes() {
        let attr = attr.map_err(|e| {
            let rel = match e {
                AttrError::ExpectedEq(p)
                | AttrError::ExpectedValue(p)
                | AttrError::UnquotedValue(p)
                | AttrError::ExpectedQuote(p, _)
                | AttrError::Duplicated(p, _) => p,
            };
            BuildErr {
                rel: Some(rel),
                message: format!("in `<{raw_name}>`: {e}"),
            }
        })?;
        let key = attr.key.into_inner();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| format!("in attribute `{key}` of `<{raw_name}>`: {e}"))?
            .into_owned();
        let (aprefix, alocal) =
            split_qname(key).ok_or_else(|| format!("invalid attribute name `{key}`"))?;
        match (aprefix, alocal) {
            (None, "xmlns") => {
                if value == XML_NS || value == XMLNS_NS {
                    return Err(format!("`{value}` cannot be the default namespace").into());
                }
                if value.is_empty() {
                    scope.remove("");
                } else {
                    scope.insert(String::new(), value);
                }
            }
            (Some("xmlns"), p) => {
                if p == "xmlns" || (p == "xml" && value != XML_NS) {
                    return Err(format!("the prefix `{p}` cannot be redeclared").into());
                }
                if value.is_empty() {
                    return Err(
                        format!("the prefix `{p}` cannot be bound to an empty namespace").into(),
                    );
                }
                scope.insert(p.to_string(), value);
            }
            _ => raw_attrs.push((aprefix, alocal, value)),
        }
    }
    let ns = match prefix {
        Some(p) => Some(
            scope
                .get(p)
                .cloned()
                .ok_or_else(|| format!("undeclared namespace prefix `{p}` in `<{raw_name}>`"))?,
        ),
        None => scope.get("").cloned(),
    };
    let mut attrs: Vec<Attr> = Vec::with_capacity(raw_attrs.len());
    for (aprefix, alocal, value) in raw_attrs {
        let ans = match aprefix {
            Some(p) => Some(scope.get(p).cloned().ok_or_else(|| {
                format!("undeclared namespace prefix `{p}` in attribute `{p}:{alocal}`")
            })?),
            None => None,
        };
        if attrs.iter().any(|a| a.ns == ans && a.local == alocal) {
            return Err(format!("duplicate attribute `{alocal}` in `<{raw_name}>`").into());
        }
        attrs.push(Attr {
            ns: ans,
            local: alocal.to_string(),
            prefix: aprefix.map(str::to_string),
            value,
        });
    }
    Ok(Element {
        ns,
        local: local.to_string(),
        prefix: prefix.map(str::to_string),
        attrs,
        children: Vec::new(),
        pos,
        ns_decls: scope,
    })
}

fn qualified(prefix: Option<&str>, local: &str) -> String {
    match prefix {
        Some(p) if !p.is_empty() => format!("{p}:{local}"),
        _ => local.to_string(),
    }
}

/// Pretty-print with two-space indentation, one element per line, prefixes as written.
///
/// Elements holding only text are printed on one line with the text trimmed; empty (or
/// whitespace-only) elements as `<x/>`; elements mixing non-blank text and child elements are
/// printed on one line verbatim. Namespace declarations are emitted on the element where a
/// prefix is first needed in the printed output (element and attribute names, and the prefix
/// of a `prefix:local` text value when the source declared it), so the output re-parses to an
/// equivalent tree. The output ends with a newline.
pub fn pretty(root: &Element) -> String {
    let mut out = String::new();
    let mut scope = BTreeMap::new();
    scope.insert("xml".to_string(), XML_NS.to_string());
    write_pretty(&mut out, root, 0, &scope);
    out
}

fn write_pretty(out: &mut String, el: &Element, depth: usize, scope: &BTreeMap<String, String>) {
    for _ in 0..depth {
        out.push_str("  ");
    }
    let (name, scope) = open_tag(out, el, scope);
    let has_elements = el.elements().next().is_some();
    let has_text = el
        .children
        .iter()
        .any(|n| matches!(n, Node::Text(t) if !t.chars().all(is_xml_space)));
    match (has_elements, has_text) {
        (false, false) => out.push_str("/>\n"),
        (false, true) => {
            out.push('>');
            escape_text(out, &el.text());
            out.push_str(&format!("</{name}>\n"));
        }
        (true, false) => {
            out.push_str(">\n");
            for child in el.elements() {
                write_pretty(out, child, depth + 1, &scope);
            }
            for _ in 0..depth {
                out.push_str("  ");
            }
            out.push_str(&format!("</{name}>\n"));
        }
        (true, true) => {
            out.push('>');
            write_inline_children(out, el, &scope);
            out.push_str(&format!("</{name}>\n"));
        }
    }
}

fn write_inline_children(out: &mut String, el: &Element, scope: &BTreeMap<String, String>) {
    for child in &el.children {
        match child {
            Node::Text(t) => escape_text(out, t),
            Node::Element(c) => {
                let (name, inner) = open_tag(out, c, scope);
                if c.children.is_empty() {
                    out.push_str("/>");
                } else {
                    out.push('>');
                    write_inline_children(out, c, &inner);
                    out.push_str(&format!("</{name}>"));
                }
            }
        }
    }
}

/// Write `<name decls attrs` (without the closing `>`); return the printed name and the
/// namespace scope for the children.
fn open_tag(
    out: &mut String,
    el: &Element,
    scope: &BTreeMap<String, String>,
) -> (String, BTreeMap<String, String>) {
    let mut scope = scope.clone();
    // Prefixes bound on this element (declared here or used by its name/attributes).
    let mut fixed: BTreeMap<String, String> = BTreeMap::new();
    let mut decls: Vec<(String, String)> = Vec::new();

    let name = match &el.ns {
        Some(uri) => {
            let mut p = el.prefix.clone().unwrap_or_default();
            if p == "xmlns" || (p == "xml" && uri != XML_NS) {
                p = fresh_prefix(&scope, &fixed);
            }
            if scope.get(&p) != Some(uri) {
                scope.insert(p.clone(), uri.clone());
                decls.push((p.clone(), uri.clone()));
            }
            fixed.insert(p.clone(), uri.clone());
            qualified(Some(&p), &el.local)
        }
        None => {
            if scope.contains_key("") {
                scope.remove("");
                decls.push((String::new(), String::new()));
            }
            fixed.insert(String::new(), String::new());
            el.local.clone()
        }
    };

    let mut attrs = Vec::with_capacity(el.attrs.len());
    for a in &el.attrs {
        let aname = match &a.ns {
            Some(uri) => {
                let wanted = a
                    .prefix
                    .clone()
                    .filter(|p| !p.is_empty() && p != "xmlns" && (p != "xml" || uri == XML_NS));
                let p = match wanted {
                    Some(p) if scope.get(&p) == Some(uri) => p,
                    Some(p) if !fixed.contains_key(&p) && p != "xml" => {
                        scope.insert(p.clone(), uri.clone());
                        decls.push((p.clone(), uri.clone()));
                        p
                    }
                    _ => match scope.iter().find(|(k, v)| !k.is_empty() && *v == uri) {
                        Some((k, _)) => k.clone(),
                        None => {
                            let p = fresh_prefix(&scope, &fixed);
                            scope.insert(p.clone(), uri.clone());
                            decls.push((p.clone(), uri.clone()));
                            p
                        }
                    },
                };
                fixed.insert(p.clone(), uri.clone());
                qualified(Some(&p), &a.local)
            }
            None => a.local.clone(),
        };
        attrs.push((aname, &a.value));
    }

    // A `prefix:local` text value (e.g. a SOAP fault code) needs its prefix in scope.
    if el.elements().next().is_none() {
        let text = el.text();
        if let Some((p, l)) = text.split_once(':')
            && is_ncname(p)
            && is_ncname(l)
            && let Some(uri) = el.ns_decls.get(p)
            && scope.get(p) != Some(uri)
            && !fixed.contains_key(p)
            && p != "xml"
        {
            scope.insert(p.to_string(), uri.clone());
            decls.push((p.to_string(), uri.clone()));
        }
    }

    out.push('<');
    out.push_str(&name);
    for (p, uri) in &decls {
        if p.is_empty() {
            out.push_str(" xmlns=\"");
        } else {
            out.push_str(&format!(" xmlns:{p}=\""));
        }
        escape_attr(out, uri);
        out.push('"');
    }
    for (aname, value) in attrs {
        out.push_str(&format!(" {aname}=\""));
        escape_attr(out, value);
        out.push('"');
    }
    (name, scope)
}

fn fresh_prefix(scope: &BTreeMap<String, String>, fixed: &BTreeMap<String, String>) -> String {
    (1..)
        .map(|i| format!("ns{i}"))
        .find(|p| !scope.contains_key(p) && !fixed.contains_key(p))
        .expect("an unused prefix")
}

fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Trim XML whitespace (space, tab, CR, LF) at both ends.
pub(crate) fn trim_xml(s: &str) -> &str {
    s.trim_matches(is_xml_space)
}

impl Element {
    /// Concatenated text of the direct text children, trimmed.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        trim_xml(&s).to_string()
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

#[cfg(test)]
mod tests {
    use super::*;

    const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";

    fn els(e: &Element) -> Vec<&Element> {
        e.elements().collect()
    }

    #[test]
    fn resolves_namespaces_and_positions() {
        let src = r#"<?xml version="1.0" encoding="UTF-8"?>
<!-- comment -->
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:default">
  <s:Body>
    <clc a="1" x:b="2" xmlns:x="urn:x"><?pi data?><n>é<m/></n></clc>
  </s:Body>
</s:Envelope>
"#;
        let root = parse(src).unwrap();
        assert_eq!(root.local, "Envelope");
        assert_eq!(root.ns.as_deref(), Some(SOAP));
        assert_eq!(root.prefix.as_deref(), Some("s"));
        assert_eq!(root.pos, Pos { line: 3, col: 1 });
        assert!(
            root.attrs.is_empty(),
            "xmlns declarations are not attributes"
        );
        assert_eq!(root.ns_decls.get("s").map(String::as_str), Some(SOAP));
        assert_eq!(
            root.ns_decls.get("").map(String::as_str),
            Some("urn:default")
        );
        assert_eq!(root.ns_decls.get("xml").map(String::as_str), Some(XML_NS));
        let body = els(&root)[0];
        assert_eq!(body.pos, Pos { line: 4, col: 3 });
        let clc = els(body)[0];
        assert_eq!(clc.ns.as_deref(), Some("urn:default"));
        assert_eq!(clc.prefix, None);
        assert_eq!(clc.pos, Pos { line: 5, col: 5 });
        assert_eq!(clc.attrs.len(), 2);
        assert_eq!(
            clc.attrs[0].ns, None,
            "unprefixed attributes have no namespace"
        );
        assert_eq!(clc.attrs[1].ns.as_deref(), Some("urn:x"));
        assert_eq!(clc.attrs[1].prefix.as_deref(), Some("x"));
        assert_eq!(clc.ns_decls.get("x").map(String::as_str), Some("urn:x"));
        assert!(!body.ns_decls.contains_key("x"));
        let n = els(clc)[0];
        // Column counts characters, not bytes.
        let m = els(n)[0];
        assert_eq!(m.pos, Pos { line: 5, col: 55 });
        assert_eq!(n.text(), "é");
    }

    #[test]
    fn text_cdata_and_entities_are_merged() {
        let root =
            parse("<a> x &amp; &lt;y&gt; <![CDATA[<z>&]]>&#65;&#x42; <!-- c --> end </a>").unwrap();
        assert_eq!(root.children.len(), 1);
        assert_eq!(root.children[0], Node::Text(" x & <y> <z>&AB  end ".into()));
        assert_eq!(root.text(), "x & <y> <z>&AB  end");
        let root = parse("<a>\r\n <b>1</b> <b>2</b>\n</a>").unwrap();
        assert_eq!(root.text(), "");
        assert_eq!(root.children[0], Node::Text("\n ".into()));
        let root = parse("<a v='x &amp; &quot;y&quot;'/>").unwrap();
        assert_eq!(root.attrs[0].value, "x & \"y\"");
    }

    #[test]
    fn default_namespace_undeclaration() {
        let root = parse("<a xmlns='urn:a'><b xmlns=''><c/></b></a>").unwrap();
        let b = els(&root)[0];
        assert_eq!(b.ns, None);
        assert_eq!(els(b)[0].ns, None);
        assert!(!b.ns_decls.contains_key(""));
    }

    fn error(src: &str) -> XmlError {
        parse(src).expect_err(src)
    }

    #[test]
    fn error_positions() {
        let e = error("<a>\n  <b></c>\n</a>");
        assert_eq!((e.line, e.col), (2, 6), "{e}");
        assert!(e.message.contains("</c>"), "{e}");

        let e = error("<a>\n  <p:b/>\n</a>");
        assert_eq!((e.line, e.col), (2, 3));
        assert!(e.message.contains("undeclared"), "{e}");

        let e = error("<a>\n <b x:y='1'/></a>");
        assert_eq!((e.line, e.col), (2, 2));
        assert!(e.message.contains("`x`"), "{e}");

        let e = error("<a>fish & chips</a>");
        assert_eq!(e.line, 1);
        assert_eq!(e.col, 9, "{e}");

        let e = error("<a>&nbsp;</a>");
        assert_eq!((e.line, e.col), (1, 4));
        assert!(e.message.contains("nbsp"), "{e}");

        let e = error("<a/>\n<b/>");
        assert_eq!((e.line, e.col), (2, 1));
        assert!(e.message.contains("after the root"), "{e}");

        let e = error("<a/>\ntrailing");
        assert_eq!((e.line, e.col), (2, 1));

        let e = error("<?xml version='1.0'?>\n<!-- nothing -->\n");
        assert!(e.message.contains("no root"), "{e}");
        assert_eq!(e.line, 3);

        let e = error("<a>\n<b>");
        assert!(e.message.contains("not closed"), "{e}");

        let e = error("");
        assert!(e.message.contains("no root"));

        let e = error("<a x='1' x='2'/>");
        assert_eq!((e.line, e.col), (1, 10), "{e}");
        assert!(e.message.contains("duplicate"), "{e}");

        let e = error("<a x=1/>");
        assert_eq!((e.line, e.col), (1, 6), "{e}");

        let e = error("<a><b</a>");
        assert!(e.message.contains("name"), "{e}");

        let e = error("</a>");
        assert_eq!((e.line, e.col), (1, 1));

        let e = error("<a>\n  <b>");
        assert_eq!(e.line, 2);

        // Error display is line:col: message.
        assert!(error("<a></b>").to_string().starts_with("1:4: "));
    }

    #[test]
    fn whitespace_around_root_and_bom_are_fine() {
        let root = parse("\u{feff}\n  <a/>\n\n").unwrap();
        assert_eq!(root.pos, Pos { line: 2, col: 3 });
    }

    #[test]
    fn text_is_trimmed_direct_text_only() {
        let root = parse("<a>  one <b>two</b> three  </a>").unwrap();
        assert_eq!(root.text(), "one  three");
    }

    #[test]
    fn pretty_prints_and_reparses() {
        let src = r#"<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:unused="urn:unused" xmlns:r="urn:roc"><soap:Header/><soap:Body>
<r:clcReponse b="2" a="1 &amp; &lt;&quot;"><r:lignes>  <r:ligne><r:montant>  12.50 </r:montant>
</r:ligne><ligne xmlns="urn:other"><x>a &lt; b</x></ligne></r:lignes></r:clcReponse>
</soap:Body></soap:Envelope>"#;
        let root = parse(src).unwrap();
        let out = pretty(&root);
        let expected = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Header/>
  <soap:Body>
    <r:clcReponse xmlns:r="urn:roc" b="2" a="1 &amp; &lt;&quot;">
      <r:lignes>
        <r:ligne>
          <r:montant>12.50</r:montant>
        </r:ligne>
        <ligne xmlns="urn:other">
          <x>a &lt; b</x>
        </ligne>
      </r:lignes>
    </r:clcReponse>
  </soap:Body>
</soap:Envelope>
"#;
        assert_eq!(out, expected);
        let again = parse(&out).unwrap();
        let cmp = crate::xml::compare(&root, &again, &Default::default());
        assert!(cmp.differences.is_empty(), "{:?}", cmp.differences);
        assert_eq!(pretty(&again), out, "pretty is idempotent");
    }

    #[test]
    fn pretty_handles_namespace_conflicts() {
        // Same prefix bound to different URIs at different depths, attributes in namespaces
        // and default namespace undeclaration.
        let src = r#"<p:a xmlns:p="urn:1" xmlns:q="urn:q" q:att="v"><p:b xmlns:p="urn:2"><p:c/></p:b><d xmlns=""/><e xmlns="urn:e"><f xmlns=""/></e></p:a>"#;
        let root = parse(src).unwrap();
        let out = pretty(&root);
        let again = parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        let cmp = crate::xml::compare(&root, &again, &Default::default());
        assert!(cmp.differences.is_empty(), "{:?}\n{out}", cmp.differences);
        assert!(out.contains(r#"<p:b xmlns:p="urn:2">"#), "{out}");
        assert!(out.contains(r#"<f xmlns=""/>"#), "{out}");

        // A tree built by hand: attribute prefix clashing with the element's own prefix.
        let el = Element {
            ns: Some("urn:el".into()),
            local: "x".into(),
            prefix: Some("p".into()),
            attrs: vec![Attr {
                ns: Some("urn:attr".into()),
                local: "y".into(),
                prefix: Some("p".into()),
                value: "tab\there\nline".into(),
            }],
            children: vec![Node::Text("  r\r\n ".into())],
            pos: Pos::default(),
            ns_decls: BTreeMap::new(),
        };
        let out = pretty(&el);
        let again = parse(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(again.ns.as_deref(), Some("urn:el"));
        assert_eq!(again.attrs[0].ns.as_deref(), Some("urn:attr"));
        assert_eq!(again.attrs[0].value, "tab\there\nline");
        assert_eq!(again.text(), "r");
    }

    #[test]
    fn pretty_keeps_qname_values_resolvable() {
        let src = r#"<env:Fault xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value xmlns:sc="urn:codes">sc:Bad</env:Value></env:Subcode></env:Code></env:Fault>"#;
        let root = parse(src).unwrap();
        let out = pretty(&root);
        let again = parse(&out).unwrap();
        let value = again
            .elements()
            .next()
            .unwrap()
            .elements()
            .nth(1)
            .unwrap()
            .elements()
            .next()
            .unwrap();
        assert_eq!(
            value.resolve_qname(&value.text()),
            Some(("urn:codes".to_string(), "Bad".to_string()))
        );
    }

    #[test]
    fn pretty_mixed_content_is_inline() {
        let root = parse("<a><p>one <b>two</b> three</p><q>   </q></a>").unwrap();
        assert_eq!(
            pretty(&root),
            "<a>\n  <p>one <b>two</b> three</p>\n  <q/>\n</a>\n"
        );
    }
}
