//! Strict loading of a pack: every problem is reported with its file, line and column, before
//! anything runs.

use super::model::*;
use super::template::{Cache, Mode, Parser, Template};
use crate::error::{Diagnostic, Error, Location, yaml_diagnostic};
use crate::soap::SoapVersion;
use crate::xml::Path as XPath;
use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// A mapping that keeps its keys in file order.
#[derive(Debug)]
struct Ordered<V>(Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Self(vec![])
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut v = vec![];
                while let Some((k, x)) = m.next_entry::<String, V>()? {
                    v.push((k, x));
                }
                Ok(Ordered(v))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    id: Spanned<String>,
    title: String,
    version: String,
    norme: String,
    sut: Spanned<String>,
    soap: Spanned<String>,
    #[serde(default)]
    namespaces: BTreeMap<String, String>,
    #[serde(default)]
    operations: BTreeMap<String, RawOperation>,
    #[serde(default)]
    actors: BTreeMap<String, Spanned<RawActor>>,
    #[serde(default)]
    trigger_data: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    data: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    defaults: RawDefaults,
    requirements: BTreeMap<String, Spanned<RawRequirement>>,
    /// Which requirement a finding of a check family (and location) shows not met.
    #[serde(default)]
    attribution: Vec<Spanned<RawAttribution>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttribution {
    /// A check family (`latency`) or several; every family when absent.
    #[serde(default)]
    check: Option<OneOrMany>,
    /// A regular expression the finding's location must match (searched, not anchored).
    #[serde(default)]
    location: Option<Spanned<String>>,
    verifies: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    path: String,
    action: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActor {
    role: Spanned<String>,
    #[serde(default)]
    endpoint: Option<String>,
    soap: Spanned<String>,
    operations: BTreeMap<String, RawOperation>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    latency_ms: Option<u64>,
    within_ms: Option<u64>,
    /// Assertions added to every `call` step.
    #[serde(default)]
    assert: Vec<Spanned<RawAssert>>,
    #[serde(default)]
    unordered: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    statement: String,
    #[serde(default)]
    statement_fr: Option<String>,
    spec: String,
    /// Operations whose exchanges show it (default: any).
    #[serde(default)]
    operations: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    id: Spanned<String>,
    title: String,
    #[serde(default)]
    verifies: Vec<Spanned<String>>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    requires: Vec<String>,
    #[serde(default)]
    bind: Ordered<Spanned<String>>,
    #[serde(default)]
    vars: Ordered<Spanned<String>>,
    #[serde(default)]
    lab: Option<RawLab>,
    #[serde(default)]
    tolerate: Vec<Spanned<String>>,
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    #[serde(default)]
    certs: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    // What the step does: exactly one of these.
    #[serde(default)]
    call: Option<Spanned<String>>,
    #[serde(default)]
    trigger: Option<Spanned<String>>,
    #[serde(default)]
    expect_request: Option<Spanned<RawExpectRequest>>,
    #[serde(default)]
    expect_no_request: Option<Spanned<RawExpectNoRequest>>,
    #[serde(default)]
    expect_tls_refusal: Option<Spanned<RawExpectTls>>,
    #[serde(default)]
    payment_run: Option<Spanned<RawPaymentRun>>,
    #[serde(default)]
    expect_return: Option<Spanned<RawExpectReturn>>,
    #[serde(default)]
    expect_result: Option<Spanned<RawExpectResult>>,
    // Any step.
    #[serde(default)]
    title: Option<String>,
    /// The requirements this step's checks show (default: the scenario's).
    #[serde(default)]
    verifies: Vec<Spanned<String>>,
    #[serde(default)]
    bind: Ordered<Spanned<String>>,
    #[serde(default)]
    vars: Ordered<Spanned<String>>,
    // call
    #[serde(default)]
    request: Option<Spanned<String>>,
    #[serde(default)]
    raw: Option<Spanned<bool>>,
    #[serde(default)]
    headers: Ordered<Spanned<String>>,
    #[serde(default)]
    client_cert: Option<Spanned<String>>,
    #[serde(default)]
    expect: Option<Spanned<RawExpect>>,
    #[serde(default)]
    capture: Ordered<Spanned<String>>,
    // trigger
    #[serde(default)]
    inputs: Ordered<Spanned<String>>,
    #[serde(default)]
    instruction: Option<Spanned<RawInstruction>>,
    // expect_request
    #[serde(default)]
    respond: Option<Spanned<RawRespond>>,
    #[serde(default)]
    capture_response: Ordered<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstruction {
    fr: String,
    en: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectRequest {
    actor: Spanned<String>,
    operation: Spanned<String>,
    #[serde(default)]
    within_ms: Option<u64>,
    #[serde(default)]
    body: Option<Spanned<String>>,
    #[serde(default)]
    unordered: Vec<String>,
    #[serde(default)]
    assert: Vec<Spanned<RawAssert>>,
    #[serde(default)]
    capture: Ordered<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectNoRequest {
    within_ms: u64,
    #[serde(default)]
    actor: Option<Spanned<String>>,
    #[serde(default)]
    operation: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectTls {
    actor: Spanned<String>,
    #[serde(default)]
    within_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaymentRun {
    #[serde(default)]
    actor: Option<Spanned<String>>,
    #[serde(default)]
    reject: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectReturn {
    numero_facture: Spanned<String>,
    #[serde(default)]
    within_ms: Option<u64>,
    #[serde(default)]
    body: Option<Spanned<String>>,
    #[serde(default)]
    unordered: Vec<String>,
    #[serde(default)]
    assert: Vec<Spanned<RawAssert>>,
    #[serde(default)]
    capture: Ordered<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectResult {
    #[serde(default)]
    within_ms: Option<u64>,
    /// None: the step only waits for the action to end.
    #[serde(default)]
    assert: Vec<Spanned<RawAssert>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRespond {
    #[serde(default)]
    template: Option<Spanned<String>>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    fault: Option<Spanned<RawRespondFault>>,
    #[serde(default)]
    malformed: bool,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    drop: bool,
    #[serde(default)]
    delay_ms: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRespondFault {
    code: Spanned<String>,
    #[serde(default)]
    subcode: Option<Spanned<String>>,
    status: u16,
    reason: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    fault: Option<Spanned<RawFault>>,
    #[serde(default)]
    body: Option<Spanned<String>>,
    #[serde(default)]
    unordered: Vec<String>,
    #[serde(default)]
    assert: Vec<Spanned<RawAssert>>,
    #[serde(default)]
    latency_ms: Option<u64>,
    #[serde(default)]
    refused: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    code: Spanned<String>,
    #[serde(default)]
    subcode: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAssert {
    path: Spanned<String>,
    #[serde(default)]
    equals: Option<Spanned<String>>,
    #[serde(default)]
    not_equals: Option<Spanned<String>>,
    #[serde(default)]
    matches: Option<Spanned<String>>,
    #[serde(default)]
    exists: Option<bool>,
    /// The requirements this assertion shows (default: the step's).
    #[serde(default)]
    verifies: Vec<Spanned<String>>,
}

/// A loaded pack and the warnings found while loading it (e.g. uncovered requirements).
pub struct Loaded {
    pub pack: Pack,
    pub warnings: Vec<Diagnostic>,
}

fn loc<T>(file: &Path, s: &Spanned<T>) -> Location {
    Location::new(file, s.referenced.line(), s.referenced.column())
}

/// Read and parse one YAML file.
fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|e| Diagnostic {
        at: Location::new(path, 0, 0),
        message: format!("cannot read: {e}"),
    })?;
    serde_saphyr::from_str(&text).map_err(|e| yaml_diagnostic(path, &e))
}

/// Flatten a YAML document into dotted variable names.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let key = x
                    .get("id")
                    .and_then(|id| id.as_str().map(str::to_string))
                    .unwrap_or_else(|| i.to_string());
                flatten(&format!("{prefix}.{key}"), x, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        Value::Null => {
            out.insert(prefix.to_string(), String::new());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// SHA-256 over every file under `dir` (relative path, NUL, content, NUL), in path order.
pub fn hash_dir(dir: &Path) -> std::io::Result<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.is_dir() {
                walk(base, &p, out)?;
            } else {
                out.push(p.strip_prefix(base).unwrap_or(&p).to_path_buf());
            }
        }
        Ok(())
    }
    let mut files = vec![];
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(std::fs::read(dir.join(&f))?);
        h.update([0]);
    }
    Ok(hex::encode(h.finalize()))
}

struct Ctx<'a> {
    dir: PathBuf,
    templates_dir: PathBuf,
    cache: Cache,
    diags: Vec<Diagnostic>,
    namespaces: &'a BTreeMap<String, String>,
    /// Templates already checked for well-formedness.
    checked: BTreeSet<PathBuf>,
    /// Requirement ids of pack.yaml.
    requirements: BTreeSet<String>,
}

impl Ctx<'_> {
    /// Requirement ids as written, each checked against pack.yaml's catalogue.
    fn reqs(&mut self, file: &Path, ids: &[Spanned<String>]) -> Vec<String> {
        for v in ids {
            if !self.requirements.contains(&v.value) {
                self.err(
                    loc(file, v),
                    format!(
                        "unknown requirement id `{}` (not in pack.yaml requirements)",
                        v.value
                    ),
                );
            }
        }
        ids.iter().map(|v| v.value.clone()).collect()
    }

    fn err(&mut self, at: Location, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            at,
            message: message.into(),
        });
    }

    /// Parse a YAML string value as an inline template.
    fn inline(&mut self, file: &Path, v: &Spanned<String>, mode: Mode) -> Option<Template> {
        let at = loc(file, v);
        let parsed = Parser { include: None }.parse(&v.value, &at);
        match parsed.and_then(|t| t.check_mode(mode).map(|_| t)) {
            Ok(t) => Some(t),
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    fn template(
        &mut self,
        file: &Path,
        v: &Spanned<String>,
        mode: Mode,
        wrap: Option<SoapVersion>,
    ) -> Option<std::sync::Arc<Template>> {
        let at = loc(file, v);
        let dir = self.templates_dir.clone();
        match self.cache.get(&dir, &v.value, &at) {
            Ok(t) => {
                if let Err(d) = t.check_mode(mode) {
                    self.diags.push(d);
                    return None;
                }
                if let Some(soap) = wrap.filter(|_| self.checked.insert(t.origin.file.clone())) {
                    self.check_well_formed(&t, &v.value, &at, soap);
                }
                Some(t)
            }
            Err(d) => {
                self.diags.push(d);
                None
            }
        }
    }

    /// A body template must be well-formed once wrapped: render it with placeholder values.
    fn check_well_formed(&mut self, t: &Template, name: &str, at: &Location, soap: SoapVersion) {
        fn dummy(p: &[super::template::Piece], out: &mut String) {
            use super::template::Piece;
            for x in p {
                match x {
                    Piece::Text(s) => out.push_str(s),
                    Piece::Var { .. } => out.push('x'),
                    Piece::Special { token, .. } => {
                        out.push_str("{{");
                        out.push_str(token);
                        out.push_str("}}");
                    }
                    Piece::If { body, .. } => dummy(body, out),
                }
            }
        }
        let mut body = String::new();
        dummy(&t.pieces, &mut body);
        let mut decls = format!("xmlns:env=\"{}\"", soap.env_ns());
        for (p, u) in self.namespaces.iter().filter(|(p, _)| p.as_str() != "env") {
            decls.push_str(&format!(" xmlns:{p}=\"{}\"", crate::soap::escape(u)));
        }
        let doc = format!("<env:Envelope {decls}><env:Body>{body}</env:Body></env:Envelope>");
        if let Err(e) = crate::xml::parse(&doc) {
            self.err(
                Location::new(
                    &t.origin.file,
                    e.line as u64,
                    if e.line == 1 { 0 } else { e.col as u64 },
                ),
                format!(
                    "template `{name}` (named at {at}) is not well-formed XML: {}",
                    e.message
                ),
            );
        }
    }

    fn path(&mut self, file: &Path, v: &Spanned<String>) -> Option<XPath> {
        match XPath::compile(&v.value, self.namespaces) {
            Ok(p) => Some(p),
            Err(e) => {
                let mut at = loc(file, v);
                at.col += e.col.saturating_sub(1) as u64;
                self.err(at, format!("path `{}`: {}", v.value, e.message));
                None
            }
        }
    }

    fn qname(
        &mut self,
        file: &Path,
        v: &Spanned<String>,
        soap: SoapVersion,
    ) -> Option<(String, String)> {
        let (prefix, local) = v.value.split_once(':').unwrap_or(("", &v.value));
        let uri = if prefix == "env" {
            Some(soap.env_ns().to_string())
        } else {
            self.namespaces.get(prefix).cloned()
        };
        match uri {
            Some(u) => Some((u, local.to_string())),
            None => {
                self.err(
                    loc(file, v),
                    format!(
                        "`{}`: prefix `{prefix}` is not declared in pack.yaml `namespaces`",
                        v.value
                    ),
                );
                None
            }
        }
    }
}

/// Names bound by `bind` entries, checked against the data.
fn bind_names(
    ctx: &mut Ctx,
    file: &Path,
    bind: &Ordered<Spanned<String>>,
    data: &BTreeMap<String, String>,
    known: &mut BTreeSet<String>,
) -> Vec<(String, String)> {
    let mut out = vec![];
    for (alias, target) in &bind.0 {
        let prefix = format!("{}.", target.value);
        let leaves: Vec<&String> = data.keys().filter(|k| k.starts_with(&prefix)).collect();
        if leaves.is_empty() {
            ctx.err(
                loc(file, target),
                format!("bind `{alias}`: no data under `{}`", target.value),
            );
            continue;
        }
        for k in leaves {
            known.insert(format!("{alias}.{}", &k[prefix.len()..]));
        }
        out.push((alias.clone(), target.value.clone()));
    }
    out
}

fn check_refs(ctx: &mut Ctx, t: &Template, known: &BTreeSet<String>, scenario: &str) {
    for r in t.var_refs() {
        if !known.contains(&r.name) {
            ctx.err(
                r.at,
                format!("variable `{}` is not defined (scenario {scenario})", r.name),
            );
        }
    }
}

/// What steps are checked against.
struct Env<'a> {
    pack_file: &'a Path,
    default_asserts: &'a [Spanned<RawAssert>],
    operations: BTreeMap<String, Operation>,
    actors: BTreeMap<String, Actor>,
    latency_ms: u64,
    within_ms: u64,
    data: BTreeMap<String, String>,
    soap: SoapVersion,
}

/// A step's `bind` aliases and `vars`.
type StepVars = (Vec<(String, String)>, Vec<(String, Template)>);

/// Step variables: bind and vars, evaluated in order, added to `known`.
fn step_vars(
    ctx: &mut Ctx,
    file: &Path,
    st: &RawStep,
    data: &BTreeMap<String, String>,
    known: &mut BTreeSet<String>,
    sid: &str,
) -> StepVars {
    let bind = bind_names(ctx, file, &st.bind, data, known);
    let mut vars = vec![];
    for (k, v) in &st.vars.0 {
        if let Some(t) = ctx.inline(file, v, Mode::Request) {
            check_refs(ctx, &t, known, sid);
            vars.push((k.clone(), t));
        }
        known.insert(k.clone());
    }
    (bind, vars)
}

fn assertions(
    ctx: &mut Ctx,
    file: &Path,
    raw: &[Spanned<RawAssert>],
    known: &BTreeSet<String>,
    sid: &str,
) -> Vec<Assertion> {
    let mut out = vec![];
    for a in raw {
        let aat = loc(file, a);
        let a = &a.value;
        let path = ctx.path(file, &a.path);
        let n = [
            a.equals.is_some(),
            a.not_equals.is_some(),
            a.matches.is_some(),
            a.exists.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if n != 1 {
            ctx.err(
                aat,
                "an assertion needs exactly one of `equals`, `not_equals`, `matches`, `exists`",
            );
            continue;
        }
        let check = if let Some(eq) = a.equals.as_ref().or(a.not_equals.as_ref()) {
            let Some(t) = ctx.inline(file, eq, Mode::Text) else {
                continue;
            };
            check_refs(ctx, &t, known, sid);
            if a.equals.is_some() {
                AssertCheck::Equals(t)
            } else {
                AssertCheck::NotEquals(t)
            }
        } else if let Some(m) = &a.matches {
            match regex::Regex::new(&format!("^(?:{})$", m.value)) {
                Ok(r) => AssertCheck::Matches(r),
                Err(err) => {
                    ctx.err(loc(file, m), format!("invalid regex: {err}"));
                    continue;
                }
            }
        } else {
            AssertCheck::Exists(a.exists.unwrap_or(true))
        };
        let verifies = ctx.reqs(file, &a.verifies);
        if let Some(path) = path {
            out.push(Assertion {
                at: aat,
                path,
                check,
                verifies,
            });
        }
    }
    out
}

fn captures(ctx: &mut Ctx, file: &Path, raw: &Ordered<Spanned<String>>) -> Vec<(String, XPath)> {
    raw.0
        .iter()
        .filter_map(|(name, p)| ctx.path(file, p).map(|path| (name.clone(), path)))
        .collect()
}

/// Body, assertions and captures of one message; the names it captures join `known`.
#[allow(clippy::too_many_arguments)]
fn message_checks(
    ctx: &mut Ctx,
    file: &Path,
    body: &Option<Spanned<String>>,
    unordered: &[String],
    asserts: &[Spanned<RawAssert>],
    capture: &Ordered<Spanned<String>>,
    soap: Option<SoapVersion>,
    known: &mut BTreeSet<String>,
    sid: &str,
) -> MessageChecks {
    let body = body
        .as_ref()
        .and_then(|b| ctx.template(file, b, Mode::Expected, soap));
    if let Some(t) = &body {
        check_refs(ctx, t, known, sid);
    }
    let asserts = assertions(ctx, file, asserts, known, sid);
    let capture = captures(ctx, file, capture);
    known.extend(capture.iter().map(|(n, _)| n.clone()));
    if let Some(b) = &body {
        known.extend(b.capture_names());
    }
    MessageChecks {
        body,
        unordered: unordered.to_vec(),
        asserts,
        capture,
    }
}

/// One check of a driver's JSON answer (`path` is dotted, not XPath).
fn result_check(
    ctx: &mut Ctx,
    file: &Path,
    a: &RawAssert,
    known: &BTreeSet<String>,
    sid: &str,
) -> Option<AssertCheck> {
    let n = [
        a.equals.is_some(),
        a.not_equals.is_some(),
        a.matches.is_some(),
        a.exists.is_some(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if n != 1 {
        ctx.err(
            loc(file, &a.path),
            "an assertion needs exactly one of `equals`, `not_equals`, `matches`, `exists`",
        );
        return None;
    }
    if let Some(eq) = a.equals.as_ref().or(a.not_equals.as_ref()) {
        let t = ctx.inline(file, eq, Mode::Text)?;
        check_refs(ctx, &t, known, sid);
        return Some(if a.equals.is_some() {
            AssertCheck::Equals(t)
        } else {
            AssertCheck::NotEquals(t)
        });
    }
    if let Some(m) = &a.matches {
        return match regex::Regex::new(&format!("^(?:{})$", m.value)) {
            Ok(r) => Some(AssertCheck::Matches(r)),
            Err(err) => {
                ctx.err(loc(file, m), format!("invalid regex: {err}"));
                None
            }
        };
    }
    Some(AssertCheck::Exists(a.exists.unwrap_or(true)))
}

/// Names of the keys a step of another kind may not use.
fn misplaced(st: &RawStep, kind: &str) -> Vec<&'static str> {
    let mut v = vec![];
    let call = kind == "call";
    let trig = kind == "trigger";
    let expect_req = kind == "expect_request";
    for (present, name, ok) in [
        (st.request.is_some(), "request", call),
        (st.raw.is_some(), "raw", call),
        (!st.headers.0.is_empty(), "headers", call),
        (st.client_cert.is_some(), "client_cert", call),
        (st.expect.is_some(), "expect", call),
        (!st.capture.0.is_empty(), "capture", call),
        (!st.inputs.0.is_empty(), "inputs", trig),
        (st.instruction.is_some(), "instruction", trig),
        (st.respond.is_some(), "respond", expect_req),
        (
            !st.capture_response.0.is_empty(),
            "capture_response",
            expect_req,
        ),
    ] {
        if present && !ok {
            v.push(name);
        }
    }
    v
}

fn load_step(
    ctx: &mut Ctx,
    env: &Env,
    file: &Path,
    spanned: &Spanned<RawStep>,
    known: &mut BTreeSet<String>,
    sid: &str,
) -> Option<Step> {
    let sat = loc(file, spanned);
    let st = &spanned.value;
    let kinds: Vec<&str> = [
        (st.call.is_some(), "call"),
        (st.trigger.is_some(), "trigger"),
        (st.expect_request.is_some(), "expect_request"),
        (st.expect_no_request.is_some(), "expect_no_request"),
        (st.expect_tls_refusal.is_some(), "expect_tls_refusal"),
        (st.payment_run.is_some(), "payment_run"),
        (st.expect_return.is_some(), "expect_return"),
        (st.expect_result.is_some(), "expect_result"),
    ]
    .iter()
    .filter(|(p, _)| *p)
    .map(|(_, k)| *k)
    .collect();
    let [kind] = kinds.as_slice() else {
        ctx.err(
            sat,
            format!(
                "a step needs exactly one of call, trigger, expect_request, expect_no_request, expect_tls_refusal, payment_run, expect_return, expect_result (found {})",
                if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") }
            ),
        );
        return None;
    };
    let bad = misplaced(st, kind);
    if !bad.is_empty() {
        ctx.err(
            sat.clone(),
            format!("`{}` cannot be used in a `{kind}` step", bad.join("`, `")),
        );
    }
    let mut sknown = known.clone();
    let (bind, vars) = step_vars(ctx, file, st, &env.data, &mut sknown, sid);
    let check_actor = |ctx: &mut Ctx, a: &Spanned<String>| -> Option<Actor> {
        match env.actors.get(&a.value) {
            Some(x) => Some(x.clone()),
            None => {
                let names: Vec<&str> = env.actors.keys().map(|s| s.as_str()).collect();
                ctx.err(
                    loc(file, a),
                    format!(
                        "unknown actor `{}` (pack.yaml actors: {})",
                        a.value,
                        names.join(", ")
                    ),
                );
                None
            }
        }
    };
    let action = match *kind {
        "call" => {
            let call = st.call.as_ref().expect("kind");
            if !env.operations.contains_key(&call.value) {
                let ops: Vec<&str> = env.operations.keys().map(|s| s.as_str()).collect();
                ctx.err(
                    loc(file, call),
                    format!(
                        "unknown operation `{}` (pack.yaml operations: {})",
                        call.value,
                        ops.join(", ")
                    ),
                );
            }
            let raw_body = st.raw.as_ref().is_some_and(|r| r.value);
            let Some(request_name) = &st.request else {
                ctx.err(sat, "a `call` step needs `request`");
                return None;
            };
            let request = ctx.template(
                file,
                request_name,
                Mode::Request,
                (!raw_body).then_some(env.soap),
            );
            if let Some(t) = &request {
                check_refs(ctx, t, &sknown, sid);
            }
            let mut headers = vec![];
            for (k, v) in &st.headers.0 {
                if let Some(t) = ctx.inline(file, v, Mode::Request) {
                    check_refs(ctx, &t, &sknown, sid);
                    headers.push((k.clone(), t));
                }
            }
            let client_cert = match st.client_cert.as_ref().map(|c| (c, c.value.as_str())) {
                None | Some((_, "lab")) => ClientCert::Lab,
                Some((_, "none")) => ClientCert::None,
                Some((_, "untrusted")) => ClientCert::Untrusted,
                Some((_, "expired")) => ClientCert::Expired,
                Some((c, other)) => {
                    ctx.err(
                        loc(file, c),
                        format!("client_cert `{other}` must be lab, none, untrusted or expired"),
                    );
                    ClientCert::Lab
                }
            };
            let empty = RawExpect::default();
            let e = st.expect.as_ref().map(|e| &e.value).unwrap_or(&empty);
            let fault = e.fault.as_ref().and_then(|fl| {
                let code = ctx.qname(file, &fl.value.code, env.soap)?;
                let subcode = match &fl.value.subcode {
                    Some(s) => Some(ctx.qname(file, s, env.soap)?),
                    None => None,
                };
                Some(FaultExpect {
                    code,
                    subcode,
                    code_text: fl.value.code.value.clone(),
                    subcode_text: fl.value.subcode.as_ref().map(|s| s.value.clone()),
                })
            });
            if e.refused && (e.status.is_some() || e.body.is_some() || e.fault.is_some()) {
                ctx.err(
                    sat.clone(),
                    "`refused: true` cannot be combined with status, body or fault",
                );
            }
            let mut checks = message_checks(
                ctx,
                file,
                &e.body,
                &e.unordered,
                &e.assert,
                &st.capture,
                Some(env.soap),
                &mut sknown,
                sid,
            );
            if !e.refused {
                checks.asserts.extend(assertions(
                    ctx,
                    env.pack_file,
                    env.default_asserts,
                    &sknown,
                    sid,
                ));
            }
            let request = request?;
            if !env.operations.contains_key(&call.value) {
                return None;
            }
            Action::Call(Call {
                call: call.value.clone(),
                request,
                raw: raw_body,
                headers,
                client_cert,
                expect: Expect {
                    status: e.status,
                    fault,
                    checks,
                    latency_ms: e.latency_ms.unwrap_or(env.latency_ms),
                    refused: e.refused,
                },
            })
        }
        "trigger" => {
            let t = st.trigger.as_ref().expect("kind");
            let mut inputs = vec![];
            for (k, v) in &st.inputs.0 {
                if let Some(tp) = ctx.inline(file, v, Mode::Request) {
                    check_refs(ctx, &tp, &sknown, sid);
                    inputs.push((k.clone(), tp));
                }
            }
            Action::Trigger(Trigger {
                action: t.value.clone(),
                inputs,
                instruction: st
                    .instruction
                    .as_ref()
                    .map(|i| (i.value.fr.clone(), i.value.en.clone())),
            })
        }
        "expect_request" => {
            let er = &st.expect_request.as_ref().expect("kind").value;
            let actor = check_actor(ctx, &er.actor);
            if let Some(a) = actor
                .as_ref()
                .filter(|a| !a.operations.contains_key(&er.operation.value))
            {
                {
                    let ops: Vec<&str> = a.operations.keys().map(|s| s.as_str()).collect();
                    ctx.err(
                        loc(file, &er.operation),
                        format!(
                            "actor `{}` has no operation `{}` ({})",
                            a.name,
                            er.operation.value,
                            ops.join(", ")
                        ),
                    );
                }
            }
            let soap = actor.as_ref().map(|a| a.soap).unwrap_or(env.soap);
            let checks = message_checks(
                ctx,
                file,
                &er.body,
                &er.unordered,
                &er.assert,
                &er.capture,
                Some(soap),
                &mut sknown,
                sid,
            );
            let respond = match &st.respond {
                None => Respond::default(),
                Some(r) => {
                    let rat = loc(file, r);
                    let r = &r.value;
                    let n = [
                        r.template.is_some(),
                        r.fault.is_some(),
                        r.malformed,
                        r.content_type.is_some(),
                        r.drop,
                    ]
                    .iter()
                    .filter(|x| **x)
                    .count();
                    if n > 1 {
                        ctx.err(rat.clone(), "respond: at most one of template, fault, malformed, content_type, drop");
                    }
                    if r.status.is_some() && r.template.is_none() {
                        ctx.err(rat.clone(), "respond: `status` goes with `template`");
                    }
                    let kind = if let Some(t) = &r.template {
                        let body = ctx.template(file, t, Mode::Request, Some(soap));
                        if let Some(b) = &body {
                            check_refs(ctx, b, &sknown, sid);
                        }
                        body.map(|body| RespondKind::Template {
                            body,
                            status: r.status.unwrap_or(200),
                        })
                        .unwrap_or_default()
                    } else if let Some(fl) = &r.fault {
                        let code = ctx.qname(file, &fl.value.code, soap);
                        let subcode = fl
                            .value
                            .subcode
                            .as_ref()
                            .and_then(|s| ctx.qname(file, s, soap));
                        match code {
                            Some(code) => RespondKind::Fault(
                                FaultExpect {
                                    code,
                                    subcode,
                                    code_text: fl.value.code.value.clone(),
                                    subcode_text: fl
                                        .value
                                        .subcode
                                        .as_ref()
                                        .map(|s| s.value.clone()),
                                },
                                fl.value.status,
                                fl.value.reason.clone(),
                            ),
                            None => RespondKind::Default,
                        }
                    } else if r.malformed {
                        RespondKind::Malformed
                    } else if let Some(ct) = &r.content_type {
                        RespondKind::ContentType(ct.clone())
                    } else if r.drop {
                        RespondKind::Drop
                    } else {
                        RespondKind::Default
                    };
                    Respond {
                        kind,
                        delay_ms: r.delay_ms,
                    }
                }
            };
            let capture_response = captures(ctx, file, &st.capture_response);
            sknown.extend(capture_response.iter().map(|(n, _)| n.clone()));
            actor.as_ref()?;
            Action::ExpectRequest(ExpectRequest {
                actor: er.actor.value.clone(),
                operation: er.operation.value.clone(),
                within_ms: er.within_ms.unwrap_or(env.within_ms),
                checks,
                respond,
                capture_response,
            })
        }
        "expect_no_request" => {
            let e = &st.expect_no_request.as_ref().expect("kind").value;
            if let Some(a) = &e.actor {
                check_actor(ctx, a);
            }
            Action::ExpectNoRequest(ExpectNoRequest {
                within_ms: e.within_ms,
                actor: e.actor.as_ref().map(|a| a.value.clone()),
                operation: e.operation.as_ref().map(|o| o.value.clone()),
            })
        }
        "expect_tls_refusal" => {
            let e = &st.expect_tls_refusal.as_ref().expect("kind").value;
            check_actor(ctx, &e.actor)?;
            Action::ExpectTlsRefusal {
                actor: e.actor.value.clone(),
                within_ms: e.within_ms.unwrap_or(env.within_ms),
            }
        }
        "payment_run" => {
            let e = &st.payment_run.as_ref().expect("kind").value;
            if let Some(a) = &e.actor {
                let actor = check_actor(ctx, a)?;
                if actor.role != "amc" {
                    ctx.err(
                        loc(file, a),
                        format!("payment_run: `{}` is not an amc actor", a.value),
                    );
                }
            }
            if e.actor.is_none()
                && let Some(r) = e.reject.first()
            {
                ctx.err(
                    loc(file, r),
                    "payment_run: reject needs the mirror AMC's actor (an AMC under test decides its own rejections)".to_string(),
                );
            }
            let mut reject = Vec::new();
            for r in &e.reject {
                let t = ctx.inline(file, r, Mode::Text)?;
                check_refs(ctx, &t, &sknown, sid);
                reject.push(t);
            }
            Action::PaymentRun {
                actor: e.actor.as_ref().map(|a| a.value.clone()),
                reject,
            }
        }
        "expect_return" => {
            let e = &st.expect_return.as_ref().expect("kind").value;
            let numero = ctx.inline(file, &e.numero_facture, Mode::Request)?;
            check_refs(ctx, &numero, &sknown, sid);
            let checks = message_checks(
                ctx,
                file,
                &e.body,
                &e.unordered,
                &e.assert,
                &e.capture,
                None,
                &mut sknown,
                sid,
            );
            Action::ExpectReturn(ExpectReturn {
                numero,
                within_ms: e.within_ms.unwrap_or(env.within_ms),
                checks,
            })
        }
        _ => {
            let e = &st.expect_result.as_ref().expect("kind").value;
            let mut asserts = vec![];
            for a in &e.assert {
                let aat = loc(file, a);
                let check = result_check(ctx, file, &a.value, &sknown, sid)?;
                let verifies = ctx.reqs(file, &a.value.verifies);
                asserts.push(ResultAssertion {
                    at: aat,
                    path: a.value.path.value.clone(),
                    check,
                    verifies,
                });
            }
            Action::ExpectResult(ExpectResult {
                within_ms: e.within_ms.unwrap_or(env.within_ms),
                asserts,
            })
        }
    };
    // Captures are visible to later steps; a step's bind and vars stay its own.
    let captured: Vec<String> = match &action {
        Action::Call(c) => c
            .expect
            .checks
            .capture
            .iter()
            .map(|(n, _)| n.clone())
            .chain(c.expect.checks.body.iter().flat_map(|b| b.capture_names()))
            .collect(),
        Action::ExpectReturn(e) => e
            .checks
            .capture
            .iter()
            .map(|(n, _)| n.clone())
            .chain(e.checks.body.iter().flat_map(|b| b.capture_names()))
            .collect(),
        Action::ExpectRequest(e) => e
            .checks
            .capture
            .iter()
            .chain(e.capture_response.iter())
            .map(|(n, _)| n.clone())
            .chain(e.checks.body.iter().flat_map(|b| b.capture_names()))
            .collect(),
        _ => vec![],
    };
    known.extend(captured);
    let verifies = ctx.reqs(file, &st.verifies);
    Some(Step {
        at: loc(file, spanned),
        title: st.title.clone(),
        verifies,
        bind,
        vars,
        action,
    })
}

/// Load and validate the pack in `dir`. `extra_vars` are names a profile defines.
pub fn load(dir: &Path, extra_vars: &BTreeSet<String>) -> Result<Loaded, Error> {
    let pack_file = dir.join("pack.yaml");
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: no such pack folder",
            dir.display()
        )));
    }
    let raw: RawPack = read_yaml(&pack_file).map_err(|d| Error::Input(vec![d]))?;
    let f = pack_file.as_path();
    let mut early = vec![];
    let id_ok = !raw.id.value.is_empty()
        && raw
            .id
            .value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !id_ok {
        early.push(Diagnostic {
            at: loc(f, &raw.id),
            message: format!(
                "id `{}` must be lowercase letters, digits and `-`",
                raw.id.value
            ),
        });
    }
    if !matches!(raw.sut.value.as_str(), "amc" | "gap") {
        early.push(Diagnostic {
            at: loc(f, &raw.sut),
            message: format!("sut `{}` must be `amc` or `gap`", raw.sut.value),
        });
    }
    let soap = SoapVersion::parse(&raw.soap.value);
    if soap.is_none() {
        early.push(Diagnostic {
            at: loc(f, &raw.soap),
            message: format!("soap `{}` must be \"1.1\" or \"1.2\"", raw.soap.value),
        });
    }
    if !early.is_empty() {
        return Err(Error::Input(early));
    }
    let soap = soap.expect("checked");
    let mut ctx = Ctx {
        dir: dir.to_path_buf(),
        templates_dir: dir.join("templates"),
        cache: Cache::default(),
        diags: vec![],
        namespaces: &raw.namespaces,
        checked: BTreeSet::new(),
        requirements: raw.requirements.keys().cloned().collect(),
    };

    // Data files.
    let mut data = BTreeMap::new();
    let mut data_files = BTreeMap::new();
    let mut data_values = BTreeMap::new();
    for (name, rel) in &raw.data {
        let path = ctx.dir.join(&rel.value);
        if !path.is_file() {
            ctx.err(loc(f, rel), format!("data file `{}` not found", rel.value));
            continue;
        }
        match read_yaml::<serde_json::Value>(&path) {
            Ok(v) => {
                flatten(name, &v, &mut data);
                data_values.insert(name.clone(), v);
            }
            Err(d) => ctx.diags.push(d),
        }
        data_files.insert(name.clone(), path);
    }

    let mut known_base: BTreeSet<String> = raw.variables.keys().cloned().collect();
    known_base.extend(data.keys().cloned());
    known_base.extend(extra_vars.iter().cloned());

    let ops = |m: &BTreeMap<String, RawOperation>| -> BTreeMap<String, Operation> {
        m.iter()
            .map(|(k, o)| {
                (
                    k.clone(),
                    Operation {
                        path: o.path.clone(),
                        action: o.action.clone(),
                    },
                )
            })
            .collect()
    };
    let mut actors = BTreeMap::new();
    for (name, a) in &raw.actors {
        if !matches!(a.value.role.value.as_str(), "annuaire" | "amc") {
            ctx.err(
                loc(f, &a.value.role),
                format!("role `{}` must be annuaire or amc", a.value.role.value),
            );
        }
        let Some(asoap) = SoapVersion::parse(&a.value.soap.value) else {
            ctx.err(loc(f, &a.value.soap), "soap must be \"1.1\" or \"1.2\"");
            continue;
        };
        if a.value.role.value == "amc" && a.value.endpoint.is_none() {
            ctx.err(
                loc(f, a),
                format!("actor `{name}`: an amc actor needs `endpoint`"),
            );
        }
        actors.insert(
            name.clone(),
            Actor {
                name: name.clone(),
                role: a.value.role.value.clone(),
                endpoint: a.value.endpoint.clone(),
                soap: asoap,
                operations: ops(&a.value.operations),
            },
        );
    }
    let mut trigger_data = BTreeMap::new();
    for (input, path) in &raw.trigger_data {
        let prefix = format!("{}.", path.value);
        if !data.keys().any(|k| k.starts_with(&prefix)) {
            ctx.err(
                loc(f, path),
                format!("trigger_data `{input}`: no data under `{}`", path.value),
            );
        }
        trigger_data.insert(input.clone(), path.value.clone());
    }
    let env = Env {
        pack_file: f,
        default_asserts: &raw.defaults.assert,
        operations: ops(&raw.operations),
        actors,
        latency_ms: raw.defaults.latency_ms.unwrap_or(4000),
        within_ms: raw.defaults.within_ms.unwrap_or(5000),
        data: data.clone(),
        soap,
    };

    // Scenario files.
    let sdir = dir.join("scenarios");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&sdir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect(),
        Err(e) => {
            ctx.err(
                Location::new(&sdir, 0, 0),
                format!("cannot read scenario folder: {e}"),
            );
            vec![]
        }
    };
    files.sort();
    let mut scenarios = vec![];
    let mut seen_ids: BTreeMap<String, Location> = BTreeMap::new();
    for file in &files {
        let raws: Vec<Spanned<RawScenario>> = match read_yaml(file) {
            Ok(r) => r,
            Err(d) => {
                ctx.diags.push(d);
                continue;
            }
        };
        for rs in raws {
            let at = loc(file, &rs);
            let rs = rs.value;
            if let Some(prev) = seen_ids.get(&rs.id.value) {
                ctx.err(
                    loc(file, &rs.id),
                    format!("scenario id `{}` already used at {prev}", rs.id.value),
                );
            }
            seen_ids.insert(rs.id.value.clone(), loc(file, &rs.id));
            ctx.reqs(file, &rs.verifies);
            if rs.verifies.is_empty() {
                ctx.err(
                    loc(file, &rs.id),
                    "scenario verifies no requirement (`verifies` is empty)",
                );
            }
            let sid = rs.id.value.clone();
            let mut known = known_base.clone();
            let bind = bind_names(&mut ctx, file, &rs.bind, &data, &mut known);
            let mut vars = vec![];
            for (k, v) in &rs.vars.0 {
                if let Some(t) = ctx.inline(file, v, Mode::Request) {
                    check_refs(&mut ctx, &t, &known, &sid);
                    vars.push((k.clone(), t));
                }
                known.insert(k.clone());
            }
            let mut steps = vec![];
            for st in &rs.steps {
                if let Some(step) = load_step(&mut ctx, &env, file, st, &mut known, &sid) {
                    steps.push(step);
                }
            }
            let mut certs = BTreeMap::new();
            for (actor, c) in rs.lab.iter().flat_map(|l| l.certs.iter()) {
                if !env.actors.contains_key(actor) {
                    ctx.err(loc(file, c), format!("lab.certs: unknown actor `{actor}`"));
                }
                let cert = match c.value.as_str() {
                    "lab" => ServerCert::Lab,
                    "untrusted" => ServerCert::Untrusted,
                    "wrong_name" => ServerCert::WrongName,
                    "expired" => ServerCert::Expired,
                    other => {
                        ctx.err(
                            loc(file, c),
                            format!("certificate `{other}` must be lab, untrusted, wrong_name or expired"),
                        );
                        continue;
                    }
                };
                certs.insert(actor.clone(), cert);
            }
            let mut tolerate = vec![];
            for t in &rs.tolerate {
                match t.value.split_once('.') {
                    Some((a, o))
                        if env
                            .actors
                            .get(a)
                            .is_some_and(|x| x.operations.contains_key(o)) =>
                    {
                        tolerate.push((a.to_string(), o.to_string()))
                    }
                    _ => ctx.err(
                        loc(file, t),
                        format!(
                            "tolerate `{}`: expected ACTOR.OPERATION of pack.yaml actors",
                            t.value
                        ),
                    ),
                }
            }
            if rs.steps.is_empty() {
                ctx.err(at.clone(), "scenario has no steps");
            }
            scenarios.push(Scenario {
                id: sid,
                title: rs.title,
                at,
                verifies: rs.verifies.iter().map(|v| v.value.clone()).collect(),
                tags: rs.tags,
                requires: rs.requires,
                bind,
                vars,
                certs,
                tolerate,
                steps,
            });
        }
    }
    // Requirement operations: the pack's, or its actors'.
    for r in raw.requirements.values() {
        for o in &r.value.operations {
            let known = env.operations.contains_key(&o.value)
                || o.value == RETURNS
                || env
                    .actors
                    .values()
                    .any(|a| a.operations.contains_key(&o.value));
            if !known {
                ctx.err(
                    loc(f, o),
                    format!("operation `{}` is not an operation of the pack", o.value),
                );
            }
        }
    }
    // Attribution rules.
    let mut attribution = vec![];
    for r in &raw.attribution {
        let at = loc(f, r);
        let verifies = ctx.reqs(f, &r.value.verifies);
        if verifies.is_empty() {
            ctx.err(at.clone(), "an attribution rule needs `verifies`");
        }
        let checks = match &r.value.check {
            None => vec![],
            Some(OneOrMany::One(c)) => vec![c.clone()],
            Some(OneOrMany::Many(c)) => c.clone(),
        };
        let location = match &r.value.location {
            None => None,
            Some(l) => match regex::Regex::new(&l.value) {
                Ok(x) => Some(x),
                Err(e) => {
                    ctx.err(loc(f, l), format!("invalid regex: {e}"));
                    None
                }
            },
        };
        if checks.is_empty() && location.is_none() {
            ctx.err(
                at.clone(),
                "an attribution rule needs `check`, `location` or both",
            );
        }
        attribution.push(AttributionRule {
            at,
            checks,
            location,
            verifies,
        });
    }
    if files.is_empty() && ctx.diags.is_empty() {
        ctx.err(Location::new(&sdir, 0, 0), "no scenario files (*.yaml)");
    }
    if !ctx.diags.is_empty() {
        let mut d = std::mem::take(&mut ctx.diags);
        d.sort_by(|a, b| (&a.at.file, a.at.line, a.at.col).cmp(&(&b.at.file, b.at.line, b.at.col)));
        d.dedup();
        return Err(Error::Input(d));
    }

    let requirements: Vec<Requirement> = raw
        .requirements
        .iter()
        .map(|(id, r)| Requirement {
            id: id.clone(),
            statement: r.value.statement.clone(),
            statement_fr: r.value.statement_fr.clone(),
            operations: r.value.operations.iter().map(|o| o.value.clone()).collect(),
            spec: r.value.spec.clone(),
            at: loc(f, r),
        })
        .collect();
    let mut warnings = vec![];
    for r in &requirements {
        if !scenarios.iter().any(|s| s.verifies.contains(&r.id)) {
            warnings.push(Diagnostic {
                at: r.at.clone(),
                message: format!("requirement `{}` is verified by no scenario", r.id),
            });
        }
    }
    // Requirements the pack attributes checks to: by rule, or on an assertion.
    let mut owned: BTreeSet<String> = attribution
        .iter()
        .flat_map(|r| r.verifies.iter().cloned())
        .collect();
    for s in &scenarios {
        for st in &s.steps {
            for a in step_assertions(st) {
                owned.extend(a.iter().cloned());
            }
        }
    }
    let sha256 =
        hash_dir(dir).map_err(|e| Error::Environment(format!("{}: {e}", dir.display())))?;
    let pack = Pack {
        dir: dir.to_path_buf(),
        id: raw.id.value,
        title: raw.title,
        version: raw.version,
        norme: raw.norme,
        sut: raw.sut.value,
        soap,
        namespaces: raw.namespaces.clone(),
        operations: env.operations.clone(),
        variables: raw.variables,
        data,
        data_files,
        data_values,
        actors: env.actors.clone(),
        trigger_data,
        within_ms: env.within_ms,
        latency_ms: raw.defaults.latency_ms.unwrap_or(4000),
        unordered: raw.defaults.unordered,
        requirements,
        attribution,
        owned,
        scenarios,
        sha256,
    };
    Ok(Loaded { pack, warnings })
}

/// The `verifies` of every assertion of a step.
fn step_assertions(st: &Step) -> Vec<&Vec<String>> {
    fn of(c: &MessageChecks) -> Vec<&Vec<String>> {
        c.asserts.iter().map(|a| &a.verifies).collect()
    }
    match &st.action {
        Action::Call(c) => of(&c.expect.checks),
        Action::ExpectRequest(e) => of(&e.checks),
        Action::ExpectReturn(e) => of(&e.checks),
        Action::ExpectResult(e) => e.asserts.iter().map(|a| &a.verifies).collect(),
        _ => vec![],
    }
}
