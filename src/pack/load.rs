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
    operations: BTreeMap<String, RawOperation>,
    #[serde(default)]
    data: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    defaults: RawDefaults,
    requirements: BTreeMap<String, Spanned<RawRequirement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperation {
    path: String,
    action: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    latency_ms: Option<u64>,
    #[serde(default)]
    unordered: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    statement: String,
    spec: String,
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
    steps: Vec<Spanned<RawStep>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    call: Spanned<String>,
    #[serde(default)]
    title: Option<String>,
    request: Spanned<String>,
    #[serde(default)]
    raw: bool,
    #[serde(default)]
    headers: Ordered<Spanned<String>>,
    #[serde(default)]
    client_cert: Option<Spanned<String>>,
    #[serde(default)]
    bind: Ordered<Spanned<String>>,
    #[serde(default)]
    vars: Ordered<Spanned<String>>,
    #[serde(default)]
    expect: RawExpect,
    #[serde(default)]
    capture: Ordered<Spanned<String>>,
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
    matches: Option<Spanned<String>>,
    #[serde(default)]
    exists: Option<bool>,
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
    soap: SoapVersion,
    /// Templates already checked for well-formedness.
    checked: BTreeSet<PathBuf>,
}

impl Ctx<'_> {
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
        wrap: bool,
    ) -> Option<std::sync::Arc<Template>> {
        let at = loc(file, v);
        let dir = self.templates_dir.clone();
        match self.cache.get(&dir, &v.value, &at) {
            Ok(t) => {
                if let Err(d) = t.check_mode(mode) {
                    self.diags.push(d);
                    return None;
                }
                if wrap && self.checked.insert(t.origin.file.clone()) {
                    self.check_well_formed(&t, &v.value, &at);
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
    fn check_well_formed(&mut self, t: &Template, name: &str, at: &Location) {
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
        let mut decls = format!("xmlns:env=\"{}\"", self.soap.env_ns());
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

    fn qname(&mut self, file: &Path, v: &Spanned<String>) -> Option<(String, String)> {
        let (prefix, local) = v.value.split_once(':').unwrap_or(("", &v.value));
        let uri = if prefix == "env" && !self.namespaces.contains_key("env") {
            Some(self.soap.env_ns().to_string())
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
        soap,
        checked: BTreeSet::new(),
    };

    // Data files.
    let mut data = BTreeMap::new();
    let mut data_files = BTreeMap::new();
    for (name, rel) in &raw.data {
        let path = ctx.dir.join(&rel.value);
        if !path.is_file() {
            ctx.err(loc(f, rel), format!("data file `{}` not found", rel.value));
            continue;
        }
        match read_yaml::<serde_json::Value>(&path) {
            Ok(v) => flatten(name, &v, &mut data),
            Err(d) => ctx.diags.push(d),
        }
        data_files.insert(name.clone(), path);
    }

    let mut known_base: BTreeSet<String> = raw.variables.keys().cloned().collect();
    known_base.extend(data.keys().cloned());
    known_base.extend(extra_vars.iter().cloned());

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
            for v in &rs.verifies {
                if !raw.requirements.contains_key(&v.value) {
                    ctx.err(
                        loc(file, v),
                        format!(
                            "unknown requirement id `{}` (not in pack.yaml requirements)",
                            v.value
                        ),
                    );
                }
            }
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
                let sat = loc(file, st);
                let st = &st.value;
                if !raw.operations.contains_key(&st.call.value) {
                    let ops: Vec<&str> = raw.operations.keys().map(|s| s.as_str()).collect();
                    ctx.err(
                        loc(file, &st.call),
                        format!(
                            "unknown operation `{}` (pack.yaml has {})",
                            st.call.value,
                            ops.join(", ")
                        ),
                    );
                }
                let mut sknown = known.clone();
                let sbind = bind_names(&mut ctx, file, &st.bind, &data, &mut sknown);
                let mut svars = vec![];
                for (k, v) in &st.vars.0 {
                    if let Some(t) = ctx.inline(file, v, Mode::Request) {
                        check_refs(&mut ctx, &t, &sknown, &sid);
                        svars.push((k.clone(), t));
                    }
                    sknown.insert(k.clone());
                }
                let request = ctx.template(file, &st.request, Mode::Request, !st.raw);
                if let Some(t) = &request {
                    check_refs(&mut ctx, t, &sknown, &sid);
                }
                let mut headers = vec![];
                for (k, v) in &st.headers.0 {
                    if let Some(t) = ctx.inline(file, v, Mode::Request) {
                        check_refs(&mut ctx, &t, &sknown, &sid);
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
                            format!(
                                "client_cert `{other}` must be lab, none, untrusted or expired"
                            ),
                        );
                        ClientCert::Lab
                    }
                };
                let e = &st.expect;
                let fault = e.fault.as_ref().and_then(|fl| {
                    let code = ctx.qname(file, &fl.value.code)?;
                    let subcode = match &fl.value.subcode {
                        Some(s) => Some(ctx.qname(file, s)?),
                        None => None,
                    };
                    Some(FaultExpect {
                        code,
                        subcode,
                        code_text: fl.value.code.value.clone(),
                        subcode_text: fl.value.subcode.as_ref().map(|s| s.value.clone()),
                    })
                });
                let body = e
                    .body
                    .as_ref()
                    .and_then(|b| ctx.template(file, b, Mode::Expected, true));
                if let Some(t) = &body {
                    check_refs(&mut ctx, t, &sknown, &sid);
                }
                let mut asserts = vec![];
                for a in &e.assert {
                    let aat = loc(file, a);
                    let a = &a.value;
                    let path = ctx.path(file, &a.path);
                    let n = a.equals.is_some() as u8
                        + a.matches.is_some() as u8
                        + a.exists.is_some() as u8;
                    if n != 1 {
                        ctx.err(
                            aat.clone(),
                            "an assertion needs exactly one of `equals`, `matches`, `exists`",
                        );
                        continue;
                    }
                    let check = if let Some(eq) = &a.equals {
                        let Some(t) = ctx.inline(file, eq, Mode::Text) else {
                            continue;
                        };
                        check_refs(&mut ctx, &t, &sknown, &sid);
                        AssertCheck::Equals(t)
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
                    if let Some(path) = path {
                        asserts.push(Assertion {
                            at: aat,
                            path,
                            check,
                        });
                    }
                }
                let mut capture = vec![];
                for (name, p) in &st.capture.0 {
                    if let Some(path) = ctx.path(file, p) {
                        capture.push((name.clone(), path));
                    }
                }
                // Names this step makes available to later steps.
                known.extend(capture.iter().map(|(n, _)| n.clone()));
                if let Some(b) = &body {
                    known.extend(b.capture_names());
                }
                if e.refused && (e.status.is_some() || e.body.is_some() || e.fault.is_some()) {
                    ctx.err(
                        sat.clone(),
                        "`refused: true` cannot be combined with status, body or fault",
                    );
                }
                let (Some(request), true) = (request, raw.operations.contains_key(&st.call.value))
                else {
                    continue;
                };
                steps.push(Step {
                    at: sat,
                    title: st.title.clone(),
                    call: st.call.value.clone(),
                    request,
                    raw: st.raw,
                    headers,
                    client_cert,
                    bind: sbind,
                    vars: svars,
                    expect: Expect {
                        status: e.status,
                        fault,
                        body,
                        unordered: e.unordered.clone(),
                        asserts,
                        latency_ms: e.latency_ms.or(raw.defaults.latency_ms).unwrap_or(4000),
                        refused: e.refused,
                    },
                    capture,
                });
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
                steps,
            });
        }
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
        operations: raw
            .operations
            .into_iter()
            .map(|(k, o)| {
                (
                    k,
                    Operation {
                        path: o.path,
                        action: o.action,
                    },
                )
            })
            .collect(),
        variables: raw.variables,
        data,
        data_files,
        latency_ms: raw.defaults.latency_ms.unwrap_or(4000),
        unordered: raw.defaults.unordered,
        requirements,
        scenarios,
        sha256,
    };
    Ok(Loaded { pack, warnings })
}
