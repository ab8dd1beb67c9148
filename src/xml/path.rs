//! A subset of XPath 1.0 for assertions and captures.
//!
//! Supported: absolute and relative location paths (a relative path starts at the document
//! node, like an absolute one), `//`, `*`, `p:*`, `.`, `..`, `@name` / `@p:name` / `@*` and
//! `text()` as the last step, the axes `child::`, `descendant::`, `descendant-or-self::`,
//! `self::`, `parent::`, `attribute::`, `node()`, predicates `[n]`, `[last()]`, `[path]`,
//! `[path='v']`, `[path!='v']` (string or number literal; `path` may be `.`, `text()`, `@a`,
//! `a:child`, ...), and the functions `count`, `string`, `normalize-space`, `sum`, `name`,
//! `local-name` around a path. Unprefixed names mean "no namespace".
//!
//! Deliberate simplifications: the string value of an element is its direct text, trimmed
//! (`Element::text()`), and `text()` gives that value (only for elements where it is
//! non-empty).

use super::tree::{Attr, Element, XML_NS};
use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone)]
pub struct Path {
    pub source: String,
    expr: Expr,
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
    ///
    /// `None` for an empty node or string list.
    pub fn string(&self) -> Option<String> {
        match self {
            PathValue::Nodes(nodes) => nodes.first().map(|e| e.text()),
            PathValue::Strings(v) => v.first().cloned(),
            PathValue::Number(n) => Some(format_number(*n)),
        }
    }
}

impl Path {
    /// Parse and resolve prefixes against `namespaces` (prefix -> URI).
    ///
    /// The `xml` prefix is always bound. Errors carry the 1-based column (in characters).
    pub fn compile(expr: &str, namespaces: &BTreeMap<String, String>) -> Result<Path, PathError> {
        let toks = tokenize(expr)?;
        let mut parser = Parser {
            toks,
            i: 0,
            end_col: expr.chars().count() + 1,
            namespaces,
        };
        let compiled = parser.expr()?;
        Ok(Path {
            source: expr.to_string(),
            expr: compiled,
        })
    }

    /// Evaluate from the document whose root element is `root`.
    ///
    /// Element paths give `Nodes` (document order, no duplicates), paths ending in `@attr` or
    /// `text()` give `Strings`, `count()` gives a `Number`, the other functions give `Strings`
    /// of one element (`string()` of nothing is `""`, `sum()` of nothing is `"0"`, and `sum`
    /// of a non-number is `"NaN"`).
    pub fn eval<'a>(&self, root: &'a Element) -> PathValue<'a> {
        let env = Env::new(root);
        match &self.expr {
            Expr::Path(p) => {
                let items = env.eval_path(p, N::Doc);
                match p.steps.last().map(|s| &s.test) {
                    Some(Test::Text) => {
                        PathValue::Strings(items.iter().map(|i| env.string_of(i)).collect())
                    }
                    _ if p.steps.last().is_some_and(|s| s.axis == Axis::Attribute) => {
                        PathValue::Strings(items.iter().map(|i| env.string_of(i)).collect())
                    }
                    _ => PathValue::Nodes(
                        items
                            .iter()
                            .filter_map(|i| match i {
                                Item::Node(N::El(e)) => Some(*e),
                                Item::Node(N::Doc) => Some(root),
                                _ => None,
                            })
                            .collect(),
                    ),
                }
            }
            Expr::Func(f, p) => {
                let items = env.eval_path(p, N::Doc);
                let first = items.first();
                let one = |s: String| PathValue::Strings(vec![s]);
                match f {
                    Func::Count => PathValue::Number(items.len() as f64),
                    Func::String => one(first.map(|i| env.string_of(i)).unwrap_or_default()),
                    Func::NormalizeSpace => one(first
                        .map(|i| {
                            env.string_of(i)
                                .split_whitespace()
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default()),
                    Func::Sum => one(decimal_sum(items.iter().map(|i| env.string_of(i)))),
                    Func::Name => one(first.map(|i| item_name(i, true)).unwrap_or_default()),
                    Func::LocalName => one(first.map(|i| item_name(i, false)).unwrap_or_default()),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Syntax tree

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Path(LocPath),
    Func(Func, LocPath),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Count,
    String,
    NormalizeSpace,
    Sum,
    Name,
    LocalName,
}

#[derive(Debug, Clone, PartialEq)]
struct LocPath {
    absolute: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
struct Step {
    axis: Axis,
    test: Test,
    preds: Vec<Pred>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Axis {
    Child,
    Descendant,
    DescendantOrSelf,
    Itself,
    Parent,
    Attribute,
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    /// `node()`
    Node,
    /// `*`
    Any,
    /// `p:*`
    NsAny(String),
    Name(Option<String>, String),
    /// `text()`
    Text,
}

#[derive(Debug, Clone, PartialEq)]
enum Pred {
    Position(usize),
    Last,
    Exists(LocPath),
    Cmp(LocPath, bool, Literal),
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Num(f64),
}

// ---------------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Slash,
    DSlash,
    LBr,
    RBr,
    LPar,
    RPar,
    At,
    Star,
    Dot,
    DDot,
    Eq,
    Neq,
    Comma,
    /// `name` or `prefix:name` or `prefix:*` (local `*`).
    Name {
        prefix: Option<String>,
        local: String,
    },
    /// `name::`
    Axis(String),
    Str(String),
    Num(f64),
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Slash => "`/`".into(),
        Tok::DSlash => "`//`".into(),
        Tok::LBr => "`[`".into(),
        Tok::RBr => "`]`".into(),
        Tok::LPar => "`(`".into(),
        Tok::RPar => "`)`".into(),
        Tok::At => "`@`".into(),
        Tok::Star => "`*`".into(),
        Tok::Dot => "`.`".into(),
        Tok::DDot => "`..`".into(),
        Tok::Eq => "`=`".into(),
        Tok::Neq => "`!=`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Name {
            prefix: Some(p),
            local,
        } => format!("`{p}:{local}`"),
        Tok::Name {
            prefix: None,
            local,
        } => format!("`{local}`"),
        Tok::Axis(a) => format!("`{a}::`"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Num(n) => format!("number {}", format_number(*n)),
    }
}

fn err<T>(col: usize, message: impl Into<String>) -> Result<T, PathError> {
    Err(PathError {
        col,
        message: message.into(),
    })
}

fn is_name_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn tokenize(expr: &str) -> Result<Vec<(Tok, usize)>, PathError> {
    let chars: Vec<char> = expr.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        let next = chars.get(i + 1).copied();
        let single = match c {
            ' ' | '\t' | '\r' | '\n' => {
                i += 1;
                continue;
            }
            '/' if next == Some('/') => Some((Tok::DSlash, 2)),
            '/' => Some((Tok::Slash, 1)),
            '[' => Some((Tok::LBr, 1)),
            ']' => Some((Tok::RBr, 1)),
            '(' => Some((Tok::LPar, 1)),
            ')' => Some((Tok::RPar, 1)),
            '@' => Some((Tok::At, 1)),
            '*' => Some((Tok::Star, 1)),
            ',' => Some((Tok::Comma, 1)),
            '=' => Some((Tok::Eq, 1)),
            '!' if next == Some('=') => Some((Tok::Neq, 2)),
            '.' if next == Some('.') => Some((Tok::DDot, 2)),
            '.' if !next.is_some_and(|n| n.is_ascii_digit()) => Some((Tok::Dot, 1)),
            _ => None,
        };
        if let Some((t, len)) = single {
            toks.push((t, col));
            i += len;
            continue;
        }
        if c == '\'' || c == '"' {
            let Some(end) = chars[i + 1..].iter().position(|&d| d == c) else {
                return err(col, "unterminated string literal");
            };
            let s: String = chars[i + 1..i + 1 + end].iter().collect();
            toks.push((Tok::Str(s), col));
            i += end + 2;
            continue;
        }
        if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            if i < chars.len() && chars[i] == '.' {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            }
            let s: String = chars[start..i].iter().collect();
            let n: f64 = s.parse().map_err(|_| PathError {
                col,
                message: format!("invalid number `{s}`"),
            })?;
            toks.push((Tok::Num(n), col));
            continue;
        }
        if is_name_start(c) {
            let read_name = |mut j: usize| {
                let s = j;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                (chars[s..j].iter().collect::<String>(), j)
            };
            let (name, j) = read_name(i);
            i = j;
            if chars.get(i) == Some(&':') {
                match chars.get(i + 1) {
                    Some(':') => {
                        toks.push((Tok::Axis(name), col));
                        i += 2;
                    }
                    Some('*') => {
                        toks.push((
                            Tok::Name {
                                prefix: Some(name),
                                local: "*".into(),
                            },
                            col,
                        ));
                        i += 2;
                    }
                    Some(&d) if is_name_start(d) => {
                        let (local, j) = read_name(i + 1);
                        toks.push((
                            Tok::Name {
                                prefix: Some(name),
                                local,
                            },
                            col,
                        ));
                        i = j;
                    }
                    _ => return err(i + 2, format!("expected a local name after `{name}:`")),
                }
            } else {
                toks.push((
                    Tok::Name {
                        prefix: None,
                        local: name,
                    },
                    col,
                ));
            }
            continue;
        }
        return err(col, format!("unexpected character `{c}`"));
    }
    Ok(toks)
}

// ---------------------------------------------------------------------------------------
// Parser

struct Parser<'n> {
    toks: Vec<(Tok, usize)>,
    i: usize,
    end_col: usize,
    namespaces: &'n BTreeMap<String, String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(t, _)| t)
    }
    fn peek_at(&self, k: usize) -> Option<&Tok> {
        self.toks.get(self.i + k).map(|(t, _)| t)
    }
    fn col(&self) -> usize {
        self.toks.get(self.i).map_or(self.end_col, |(_, c)| *c)
    }
    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).map(|(t, _)| t.clone());
        self.i += 1;
        t
    }
    fn unexpected<T>(&self, what: &str) -> Result<T, PathError> {
        match self.peek() {
            Some(t) => err(
                self.col(),
                format!("expected {what}, found {}", describe(t)),
            ),
            None => err(
                self.col(),
                format!("expected {what}, found end of expression"),
            ),
        }
    }
    fn expect(&mut self, tok: Tok, what: &str) -> Result<(), PathError> {
        if self.peek() == Some(&tok) {
            self.i += 1;
            Ok(())
        } else {
            self.unexpected(what)
        }
    }

    fn expr(&mut self) -> Result<Expr, PathError> {
        if self.toks.is_empty() {
            return err(1, "empty expression");
        }
        let e = if let (
            Some(Tok::Name {
                prefix: None,
                local,
            }),
            Some(Tok::LPar),
        ) = (self.peek(), self.peek_at(1))
        {
            let func = match local.as_str() {
                "count" => Func::Count,
                "string" => Func::String,
                "normalize-space" => Func::NormalizeSpace,
                "sum" => Func::Sum,
                "name" => Func::Name,
                "local-name" => Func::LocalName,
                "text" | "node" => return self.top_path(),
                other => return err(self.col(), format!("unknown function `{other}()`")),
            };
            self.i += 2;
            let path = if matches!(
                func,
                Func::String | Func::NormalizeSpace | Func::Name | Func::LocalName
            ) && self.peek() == Some(&Tok::RPar)
            {
                // No argument: the context node (the document, i.e. its root element).
                LocPath {
                    absolute: true,
                    steps: vec![Step {
                        axis: Axis::Child,
                        test: Test::Any,
                        preds: vec![],
                    }],
                }
            } else {
                self.path(true)?
            };
            self.expect(Tok::RPar, "`)`")?;
            Expr::Func(func, path)
        } else {
            return self.top_path();
        };
        if self.peek().is_some() {
            return self.unexpected("end of expression");
        }
        Ok(e)
    }

    fn top_path(&mut self) -> Result<Expr, PathError> {
        let p = self.path(true)?;
        if self.peek().is_some() {
            return self.unexpected("end of expression");
        }
        Ok(Expr::Path(p))
    }

    /// A location path. At the top level a relative path starts at the document node.
    fn path(&mut self, top: bool) -> Result<LocPath, PathError> {
        let mut steps = Vec::new();
        let absolute = match self.peek() {
            Some(Tok::Slash) => {
                self.i += 1;
                if !self.at_step_start() {
                    return Ok(LocPath {
                        absolute: true,
                        steps,
                    });
                }
                true
            }
            Some(Tok::DSlash) => {
                self.i += 1;
                steps.push(desc_or_self());
                true
            }
            _ => top,
        };
        loop {
            let col = self.col();
            if !self.at_step_start() {
                return self.unexpected("a location step");
            }
            if let Some(prev) = steps.last()
                && (prev.axis == Axis::Attribute || prev.test == Test::Text)
            {
                return err(col, "an attribute or text() step must be the last step");
            }
            steps.push(self.step()?);
            match self.peek() {
                Some(Tok::Slash) => self.i += 1,
                Some(Tok::DSlash) => {
                    self.i += 1;
                    if let Some(prev) = steps.last()
                        && (prev.axis == Axis::Attribute || prev.test == Test::Text)
                    {
                        return err(col, "an attribute or text() step must be the last step");
                    }
                    steps.push(desc_or_self());
                }
                _ => break,
            }
        }
        Ok(LocPath { absolute, steps })
    }

    fn at_step_start(&self) -> bool {
        matches!(
            self.peek(),
            Some(Tok::Dot | Tok::DDot | Tok::At | Tok::Star | Tok::Name { .. } | Tok::Axis(_))
        )
    }

    fn step(&mut self) -> Result<Step, PathError> {
        let col = self.col();
        let axis = match self.peek() {
            Some(Tok::Dot) => {
                self.i += 1;
                return self.with_preds(Axis::Itself, Test::Node);
            }
            Some(Tok::DDot) => {
                self.i += 1;
                return self.with_preds(Axis::Parent, Test::Node);
            }
            Some(Tok::At) => {
                self.i += 1;
                Axis::Attribute
            }
            Some(Tok::Axis(a)) => {
                let axis = match a.as_str() {
                    "child" => Axis::Child,
                    "descendant" => Axis::Descendant,
                    "descendant-or-self" => Axis::DescendantOrSelf,
                    "self" => Axis::Itself,
                    "parent" => Axis::Parent,
                    "attribute" => Axis::Attribute,
                    other => return err(col, format!("unsupported axis `{other}::`")),
                };
                self.i += 1;
                axis
            }
            _ => Axis::Child,
        };
        let tcol = self.col();
        let test = match self.bump() {
            Some(Tok::Star) => Test::Any,
            Some(Tok::Name { prefix, local }) => {
                if prefix.is_none() && self.peek() == Some(&Tok::LPar) {
                    self.i += 1;
                    let t = match local.as_str() {
                        "text" if axis != Axis::Attribute => Test::Text,
                        "node" => Test::Node,
                        other => return err(tcol, format!("unsupported node test `{other}()`")),
                    };
                    self.expect(Tok::RPar, "`)`")?;
                    t
                } else {
                    match prefix {
                        None => Test::Name(None, local),
                        Some(p) => {
                            let uri = self.resolve(&p, tcol)?;
                            if local == "*" {
                                Test::NsAny(uri)
                            } else {
                                Test::Name(Some(uri), local)
                            }
                        }
                    }
                }
            }
            _ => {
                self.i -= 1;
                return self.unexpected("a name test");
            }
        };
        self.with_preds(axis, test)
    }

    fn resolve(&self, prefix: &str, col: usize) -> Result<String, PathError> {
        if let Some(u) = self.namespaces.get(prefix) {
            return Ok(u.clone());
        }
        if prefix == "xml" {
            return Ok(XML_NS.to_string());
        }
        err(col, format!("undeclared namespace prefix `{prefix}`"))
    }

    fn with_preds(&mut self, axis: Axis, test: Test) -> Result<Step, PathError> {
        let mut preds = Vec::new();
        while self.peek() == Some(&Tok::LBr) {
            if axis == Axis::Attribute || test == Test::Text {
                return err(
                    self.col(),
                    "predicates are not supported on attribute or text() steps",
                );
            }
            self.i += 1;
            preds.push(self.pred()?);
            self.expect(Tok::RBr, "`]`")?;
        }
        Ok(Step { axis, test, preds })
    }

    fn pred(&mut self) -> Result<Pred, PathError> {
        let col = self.col();
        match (self.peek(), self.peek_at(1), self.peek_at(2)) {
            (Some(Tok::Num(n)), _, _) => {
                let n = *n;
                if n < 1.0 || n.fract() != 0.0 {
                    return err(col, "a position must be a positive integer");
                }
                self.i += 1;
                return Ok(Pred::Position(n as usize));
            }
            (
                Some(Tok::Name {
                    prefix: None,
                    local,
                }),
                Some(Tok::LPar),
                Some(Tok::RPar),
            ) if local == "last" => {
                self.i += 3;
                return Ok(Pred::Last);
            }
            (
                Some(Tok::Name {
                    prefix: None,
                    local,
                }),
                Some(Tok::LPar),
                _,
            ) if local != "text" && local != "node" => {
                return err(
                    col,
                    format!("unsupported function `{local}()` in a predicate"),
                );
            }
            _ => {}
        }
        let path = self.path(false)?;
        let op = match self.peek() {
            Some(Tok::Eq) => true,
            Some(Tok::Neq) => false,
            _ => return Ok(Pred::Exists(path)),
        };
        self.i += 1;
        let lit = match self.bump() {
            Some(Tok::Str(s)) => Literal::Str(s),
            Some(Tok::Num(n)) => Literal::Num(n),
            _ => {
                self.i -= 1;
                return self.unexpected("a string or number literal");
            }
        };
        Ok(Pred::Cmp(path, op, lit))
    }
}

fn desc_or_self() -> Step {
    Step {
        axis: Axis::DescendantOrSelf,
        test: Test::Node,
        preds: vec![],
    }
}

// ---------------------------------------------------------------------------------------
// Evaluation

#[derive(Debug, Clone, Copy)]
enum N<'a> {
    Doc,
    El(&'a Element),
}

impl N<'_> {
    fn id(&self) -> usize {
        match self {
            N::Doc => 0,
            N::El(e) => *e as *const Element as usize,
        }
    }
}

#[derive(Debug, Clone)]
enum Item<'a> {
    Node(N<'a>),
    Attr(&'a Attr),
    Text(String),
}

struct Env<'a> {
    root: &'a Element,
    parents: HashMap<usize, &'a Element>,
    order: HashMap<usize, usize>,
}

impl<'a> Env<'a> {
    fn new(root: &'a Element) -> Self {
        let mut env = Env {
            root,
            parents: HashMap::new(),
            order: HashMap::new(),
        };
        let mut stack = vec![root];
        while let Some(e) = stack.pop() {
            let n = env.order.len() + 1;
            env.order.insert(N::El(e).id(), n);
            let kids: Vec<&Element> = e.elements().collect();
            for k in kids.iter().rev() {
                env.parents.insert(N::El(k).id(), e);
                stack.push(k);
            }
        }
        env
    }

    fn string_of(&self, item: &Item<'a>) -> String {
        match item {
            Item::Node(N::El(e)) => e.text(),
            Item::Node(N::Doc) => self.root.text(),
            Item::Attr(a) => a.value.clone(),
            Item::Text(s) => s.clone(),
        }
    }

    fn descendants(&self, e: &'a Element, out: &mut Vec<N<'a>>) {
        for c in e.elements() {
            out.push(N::El(c));
            self.descendants(c, out);
        }
    }

    fn axis(&self, n: N<'a>, axis: Axis) -> Vec<N<'a>> {
        let mut out = Vec::new();
        match (axis, n) {
            (Axis::Child, N::Doc) => out.push(N::El(self.root)),
            (Axis::Child, N::El(e)) => out.extend(e.elements().map(N::El)),
            (Axis::Descendant | Axis::DescendantOrSelf, _) => {
                if axis == Axis::DescendantOrSelf {
                    out.push(n);
                }
                match n {
                    N::Doc => {
                        out.push(N::El(self.root));
                        self.descendants(self.root, &mut out);
                    }
                    N::El(e) => self.descendants(e, &mut out),
                }
            }
            (Axis::Itself, _) => out.push(n),
            (Axis::Parent, N::El(e)) => match self.parents.get(&n.id()) {
                Some(p) => out.push(N::El(p)),
                None if std::ptr::eq(e, self.root) => out.push(N::Doc),
                None => {}
            },
            (Axis::Parent, N::Doc) | (Axis::Attribute, _) => {}
        }
        out
    }

    fn eval_path(&self, path: &LocPath, start: N<'a>) -> Vec<Item<'a>> {
        let mut cur: Vec<N<'a>> = vec![if path.absolute { N::Doc } else { start }];
        for step in &path.steps {
            if step.axis == Axis::Attribute {
                let mut items = Vec::new();
                for n in &cur {
                    if let N::El(e) = n {
                        items.extend(
                            e.attrs
                                .iter()
                                .filter(|a| attr_matches(a, &step.test))
                                .map(Item::Attr),
                        );
                    }
                }
                return items;
            }
            if step.test == Test::Text {
                // `text()` is the (trimmed) direct text of each context element.
                let mut items = Vec::new();
                for n in &cur {
                    if let N::El(e) = n {
                        let t = e.text();
                        if !t.is_empty() {
                            items.push(Item::Text(t));
                        }
                    }
                }
                return items;
            }
            let mut next: Vec<N<'a>> = Vec::new();
            for n in &cur {
                let mut cands: Vec<N<'a>> = self
                    .axis(*n, step.axis)
                    .into_iter()
                    .filter(|m| node_matches(*m, &step.test))
                    .collect();
                for pred in &step.preds {
                    cands = self.filter(cands, pred);
                }
                next.extend(cands);
            }
            next.sort_by_key(|m| self.order.get(&m.id()).copied().unwrap_or(0));
            next.dedup_by_key(|m| m.id());
            cur = next;
        }
        cur.into_iter().map(Item::Node).collect()
    }

    fn filter(&self, cands: Vec<N<'a>>, pred: &Pred) -> Vec<N<'a>> {
        match pred {
            Pred::Position(k) => cands.into_iter().nth(k - 1).into_iter().collect(),
            Pred::Last => cands.into_iter().last().into_iter().collect(),
            Pred::Exists(p) => cands
                .into_iter()
                .filter(|c| !self.eval_path(p, *c).is_empty())
                .collect(),
            Pred::Cmp(p, eq, lit) => cands
                .into_iter()
                .filter(|c| {
                    self.eval_path(p, *c).iter().any(|item| {
                        let s = self.string_of(item);
                        let same = match lit {
                            Literal::Str(l) => &s == l,
                            Literal::Num(l) => s.trim().parse::<f64>().is_ok_and(|v| v == *l),
                        };
                        same == *eq
                    })
                })
                .collect(),
        }
    }
}

fn node_matches(n: N<'_>, test: &Test) -> bool {
    match (test, n) {
        (Test::Node, _) => true,
        (_, N::Doc) => false,
        (Test::Any, N::El(_)) => true,
        (Test::NsAny(uri), N::El(e)) => e.ns.as_deref() == Some(uri.as_str()),
        (Test::Name(ns, local), N::El(e)) => &e.local == local && e.ns == *ns,
        (Test::Text, _) => false,
    }
}

fn attr_matches(a: &Attr, test: &Test) -> bool {
    match test {
        Test::Node | Test::Any => true,
        Test::NsAny(uri) => a.ns.as_deref() == Some(uri.as_str()),
        Test::Name(ns, local) => &a.local == local && a.ns == *ns,
        Test::Text => false,
    }
}

fn item_name(item: &Item<'_>, qualified: bool) -> String {
    let (prefix, local) = match item {
        Item::Node(N::El(e)) => (e.prefix.as_deref(), e.local.as_str()),
        Item::Attr(a) => (a.prefix.as_deref(), a.local.as_str()),
        _ => return String::new(),
    };
    match prefix {
        Some(p) if qualified && !p.is_empty() => format!("{p}:{local}"),
        _ => local.to_string(),
    }
}

fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.is_infinite() {
        if n > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        }
    } else if n.fract() == 0.0 && n.abs() < 1e17 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Parse `[+-]digits[.digits]` into (mantissa, scale).
fn parse_decimal(s: &str) -> Option<(i128, u32)> {
    let s = s.trim();
    let (neg, s) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{int}{frac}");
    let m: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some((if neg { -m } else { m }, u32::try_from(frac.len()).ok()?))
}

/// Exact decimal sum, with as many decimals as the most precise input.
fn decimal_sum(values: impl Iterator<Item = String>) -> String {
    let mut total: i128 = 0;
    let mut scale: u32 = 0;
    for v in values {
        let Some((m, s)) = parse_decimal(&v) else {
            return "NaN".into();
        };
        let step = |x: i128, by: u32| 10i128.checked_pow(by).and_then(|p| x.checked_mul(p));
        let (Some(t), Some(m)) = (
            step(total, s.saturating_sub(scale)),
            step(m, scale.saturating_sub(s)),
        ) else {
            return "NaN".into();
        };
        scale = scale.max(s);
        let Some(sum) = t.checked_add(m) else {
            return "NaN".into();
        };
        total = sum;
    }
    if scale == 0 {
        return total.to_string();
    }
    let digits = total.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale as usize + 1);
    let (int, frac) = digits.split_at(digits.len() - scale as usize);
    format!("{}{int}.{frac}", if total < 0 { "-" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tree::parse;

    const DOC: &str = r#"<?xml version="1.0"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <r:clcReponse xmlns:r="urn:roc" version="2">
      <r:statut code="OK"> accepted  </r:statut>
      <r:lignes>
        <r:ligne num="1" xml:lang="fr"><r:code>A</r:code><r:montantAmc>10.50</r:montantAmc></r:ligne>
        <r:ligne num="2"><r:code>B</r:code><r:montantAmc>2.5</r:montantAmc></r:ligne>
        <r:ligne num="3"><r:code>C</r:code><r:montantAmc>-1</r:montantAmc><r:flag/></r:ligne>
      </r:lignes>
      <plain>no namespace  here</plain>
    </r:clcReponse>
  </soap:Body>
</soap:Envelope>
"#;

    fn ns() -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        m.insert(
            "s".into(),
            "http://schemas.xmlsoap.org/soap/envelope/".into(),
        );
        m.insert("r".into(), "urn:roc".into());
        m
    }

    fn eval_str(expr: &str) -> Option<String> {
        let root = parse(DOC).unwrap();
        let p = Path::compile(expr, &ns()).unwrap_or_else(|e| panic!("{expr}: {e}"));
        p.eval(&root).string()
    }

    fn count(expr: &str) -> usize {
        let root = parse(DOC).unwrap();
        let p = Path::compile(expr, &ns()).unwrap_or_else(|e| panic!("{expr}: {e}"));
        match p.eval(&root) {
            PathValue::Nodes(n) => n.len(),
            PathValue::Strings(s) => s.len(),
            PathValue::Number(n) => panic!("number {n}"),
        }
    }

    fn compile_err(expr: &str) -> PathError {
        Path::compile(expr, &ns()).expect_err(expr)
    }

    #[test]
    fn absolute_and_relative_paths() {
        assert_eq!(count("/s:Envelope/s:Body/r:clcReponse"), 1);
        assert_eq!(count("s:Envelope/s:Body/r:clcReponse"), 1);
        assert_eq!(count("/s:Envelope/s:Body/r:clcReponse/r:lignes/r:ligne"), 3);
        assert_eq!(
            eval_str("/s:Envelope/s:Body/r:clcReponse/r:statut"),
            Some("accepted".into())
        );
        assert_eq!(count("/r:Envelope"), 0, "namespace is compared by URI");
        assert_eq!(count("/Envelope"), 0, "unprefixed names have no namespace");
        assert_eq!(
            eval_str("/s:Envelope/s:Body/r:clcReponse/plain"),
            Some("no namespace  here".into())
        );
        assert_eq!(count("/"), 1);
        assert_eq!(eval_str("/s:Envelope/s:Body/r:clcReponse/missing"), None);
    }

    #[test]
    fn descendants_and_wildcards() {
        assert_eq!(count("//r:ligne"), 3);
        assert_eq!(count("//r:lignes//r:code"), 3);
        assert_eq!(count("/s:Envelope//r:montantAmc"), 3);
        assert_eq!(count("//*"), 16);
        assert_eq!(count("//r:*"), 13);
        assert_eq!(count("/*/*/*"), 1);
        assert_eq!(count("//r:ligne/*"), 7);
        assert_eq!(count("descendant::r:code"), 3);
        assert_eq!(count("/s:Envelope/descendant::r:code"), 3);
        assert_eq!(count("/s:Envelope/child::s:Body"), 1);
        // Nodes come in document order without duplicates.
        let root = parse(DOC).unwrap();
        let p = Path::compile("//r:ligne/..//r:code", &ns()).unwrap();
        let PathValue::Nodes(nodes) = p.eval(&root) else {
            panic!()
        };
        let texts: Vec<String> = nodes.iter().map(|n| n.text()).collect();
        assert_eq!(texts, ["A", "B", "C"]);
    }

    #[test]
    fn self_and_parent() {
        assert_eq!(
            eval_str("//r:code[.='B']/../r:montantAmc"),
            Some("2.5".into())
        );
        assert_eq!(eval_str("//r:statut/./@code"), Some("OK".into()));
        assert_eq!(
            count("/s:Envelope/.."),
            1,
            "parent of the root is the document"
        );
        assert_eq!(eval_str("name(//r:code/..)"), Some("r:ligne".into()));
        assert_eq!(count("."), 1);
    }

    #[test]
    fn attributes_and_text() {
        assert_eq!(eval_str("//r:statut/@code"), Some("OK".into()));
        assert_eq!(count("//r:ligne/@num"), 3);
        assert_eq!(count("//r:ligne/@*"), 4);
        assert_eq!(eval_str("//r:ligne/@xml:lang"), Some("fr".into()));
        assert_eq!(count("//@num"), 3);
        assert_eq!(eval_str("//r:statut/text()"), Some("accepted".into()));
        assert_eq!(
            count("//r:lignes/text()"),
            0,
            "whitespace-only text is not a text value"
        );
        assert_eq!(count("//r:code/text()"), 3);
        assert_eq!(count("//r:ligne/@r:num"), 0);
    }

    #[test]
    fn predicates() {
        assert_eq!(eval_str("//r:ligne[2]/r:code"), Some("B".into()));
        assert_eq!(eval_str("//r:ligne[last()]/r:code"), Some("C".into()));
        assert_eq!(eval_str("//r:ligne[r:code='C']/@num"), Some("3".into()));
        assert_eq!(eval_str("//r:ligne[r:code=\"B\"]/@num"), Some("2".into()));
        assert_eq!(eval_str("//r:ligne[r:flag]/@num"), Some("3".into()));
        assert_eq!(
            eval_str("//r:ligne[@num='2']/r:montantAmc"),
            Some("2.5".into())
        );
        assert_eq!(
            eval_str("//r:ligne[@num=2]/r:montantAmc"),
            Some("2.5".into())
        );
        assert_eq!(eval_str("//r:ligne[@num!='1'][1]/r:code"), Some("B".into()));
        assert_eq!(eval_str("//r:code[text()='A']/../@num"), Some("1".into()));
        assert_eq!(eval_str("//r:montantAmc[.=10.5]/../@num"), Some("1".into()));
        assert_eq!(
            eval_str("//r:montantAmc[.='10.50']/../@num"),
            Some("1".into())
        );
        assert_eq!(count("//r:ligne[@missing]"), 0);
        assert_eq!(count("//r:ligne[4]"), 0);
        // Position is per parent.
        assert_eq!(count("//r:ligne/r:code[1]"), 3);
        assert_eq!(count("//r:ligne[r:code='A' ][ 1 ]"), 1);
        // Predicate paths may have several steps.
        assert_eq!(count("//r:lignes[r:ligne/r:code='B']"), 1);
        assert_eq!(count("//r:lignes[r:ligne/r:code='Z']"), 0);
    }

    #[test]
    fn functions() {
        let root = parse(DOC).unwrap();
        let eval = |e: &str| Path::compile(e, &ns()).unwrap().eval(&root);
        assert_eq!(eval("count(//r:ligne)"), PathValue::Number(3.0));
        assert_eq!(eval("count(//r:nothing)"), PathValue::Number(0.0));
        assert_eq!(eval("count(//r:ligne)").string(), Some("3".into()));
        assert_eq!(eval("count(//r:ligne/@num)").string(), Some("3".into()));
        assert_eq!(
            eval("string(//r:code)"),
            PathValue::Strings(vec!["A".into()])
        );
        assert_eq!(eval("string(//r:nothing)").string(), Some(String::new()));
        assert_eq!(
            eval("normalize-space(//plain)").string(),
            Some("no namespace here".into())
        );
        assert_eq!(eval("sum(//r:montantAmc)").string(), Some("12.00".into()));
        assert_eq!(eval("sum(//r:ligne/@num)").string(), Some("6".into()));
        assert_eq!(eval("sum(//r:nothing)").string(), Some("0".into()));
        assert_eq!(eval("sum(//r:code)").string(), Some("NaN".into()));
        assert_eq!(eval("name(//r:ligne)").string(), Some("r:ligne".into()));
        assert_eq!(eval("local-name(//r:ligne)").string(), Some("ligne".into()));
        assert_eq!(
            eval("name(//r:ligne/@xml:lang)").string(),
            Some("xml:lang".into())
        );
        assert_eq!(eval("local-name(/*)").string(), Some("Envelope".into()));
        assert_eq!(eval("name()").string(), Some("soap:Envelope".into()));
        assert_eq!(eval(" count ( //r:ligne ) ").string(), Some("3".into()));
    }

    #[test]
    fn value_strings() {
        assert_eq!(PathValue::Number(3.0).string(), Some("3".into()));
        assert_eq!(PathValue::Number(-2.0).string(), Some("-2".into()));
        assert_eq!(PathValue::Number(2.5).string(), Some("2.5".into()));
        assert_eq!(PathValue::Number(f64::NAN).string(), Some("NaN".into()));
        assert_eq!(PathValue::Nodes(vec![]).string(), None);
        assert_eq!(PathValue::Strings(vec![]).string(), None);
        assert_eq!(
            PathValue::Strings(vec!["a".into(), "b".into()]).string(),
            Some("a".into())
        );
    }

    #[test]
    fn decimal_sums() {
        let sum = |v: &[&str]| decimal_sum(v.iter().map(|s| s.to_string()));
        assert_eq!(sum(&["0.10", "0.20"]), "0.30");
        assert_eq!(sum(&["1", "2.5", "-0.25"]), "3.25");
        assert_eq!(sum(&["-1.5", "0.5"]), "-1.0");
        assert_eq!(sum(&["-0.05"]), "-0.05");
        assert_eq!(sum(&[" 3 ", "+4"]), "7");
        assert_eq!(sum(&[".5", "1."]), "1.5");
        assert_eq!(sum(&["abc"]), "NaN");
        assert_eq!(sum(&["."]), "NaN");
    }

    #[test]
    fn compile_errors_have_columns() {
        let e = compile_err("/s:Envelope/x:Body");
        assert_eq!(e.col, 13);
        assert!(e.message.contains("`x`"), "{e}");
        assert_eq!(compile_err("//r:ligne[@q:num='1']").col, 12);
        assert_eq!(compile_err("").col, 1);
        assert_eq!(compile_err("/s:Envelope/").col, 13);
        assert_eq!(compile_err("/s:Envelope[").col, 13);
        assert_eq!(compile_err("//r:ligne[1").col, 12);
        assert_eq!(compile_err("//r:ligne[r:code='A]").col, 18);
        assert_eq!(compile_err("//r:ligne]").col, 10);
        assert_eq!(compile_err("//r:ligne[0]").col, 11);
        assert_eq!(compile_err("//r:ligne/@num/r:code").col, 16);
        assert_eq!(compile_err("//r:ligne/text()/r:code").col, 18);
        assert_eq!(compile_err("//r:ligne/@num[1]").col, 15);
        assert_eq!(compile_err("foo(//r:ligne)").col, 1);
        assert_eq!(compile_err("count(//r:ligne").col, 16);
        assert_eq!(compile_err("count(//r:ligne) x").col, 18);
        assert_eq!(compile_err("//r:ligne[r:code=]").col, 18);
        assert_eq!(compile_err("//r:ligne#").col, 10);
        assert_eq!(compile_err("//é:x").col, 3, "columns count characters");
        assert_eq!(compile_err("/following::x").col, 2);
        assert_eq!(compile_err("//r:").col, 5);
        let e = compile_err("/a/b/c[");
        assert_eq!(
            e.to_string(),
            "column 8: expected a location step, found end of expression"
        );
    }

    #[test]
    fn source_is_kept() {
        let p = Path::compile("//r:ligne", &ns()).unwrap();
        assert_eq!(p.source, "//r:ligne");
    }
}
