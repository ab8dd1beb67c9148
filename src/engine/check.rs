//! Checks of an answered exchange: status, content type, latency, fault, body, paths, captures.

use crate::outcome::{Exchange, Finding, StepOutcome};
use crate::pack::template::Mode;
use crate::pack::{AssertCheck, Call, MessageChecks, Pack};
use crate::soap::SoapVersion;
use crate::xml::{self, CompareOptions};
use std::collections::BTreeMap;

pub struct Checked {
    pub findings: Vec<Finding>,
    pub captures: BTreeMap<String, String>,
    pub body_diff: Option<String>,
}

impl Checked {
    /// Add what a message check found to the step's outcome, and its captures to the scope.
    pub fn record(self, out: &mut StepOutcome, scope: &mut super::step::Scope<'_>) {
        out.findings.extend(self.findings);
        out.body_diff = self.body_diff;
        out.captures.extend(self.captures.clone());
        scope.captures.extend(self.captures);
    }
}

pub fn response(
    pack: &Pack,
    st: &Call,
    vars: &BTreeMap<String, String>,
    known: &BTreeMap<String, String>,
    ex: &Exchange,
    index: usize,
) -> Checked {
    let mut out = Checked {
        findings: vec![],
        captures: BTreeMap::new(),
        body_diff: None,
    };
    let f = |check: &str, message: String| Finding {
        check: check.into(),
        message,
        location: None,
        expected: None,
        actual: None,
        step: Some(index),
        requirements: vec![],
    };
    let resp = ex.response.as_ref().expect("answered exchange");
    let e = &st.expect;

    // Latency: from the request's first byte to the answer's last.
    if ex.latency_ms > e.latency_ms as f64 {
        out.findings.push(Finding {
            expected: Some(format!("≤ {} ms", e.latency_ms)),
            actual: Some(format!("{:.0} ms", ex.latency_ms)),
            ..f(
                "latency",
                format!(
                    "{} answered in {:.0} ms, over the {} ms limit",
                    st.call, ex.latency_ms, e.latency_ms
                ),
            )
        });
    }
    let status = resp.status.unwrap_or(0);
    let want_status = e
        .status
        .or(if e.fault.is_none() { Some(200) } else { None });
    if let Some(want) = want_status.filter(|w| *w != status) {
        out.findings.push(Finding {
            expected: Some(want.to_string()),
            actual: Some(status.to_string()),
            ..f("status", format!("HTTP status {status}, expected {want}"))
        });
    }
    // Content type of the pack's SOAP version.
    let want_ct = pack.soap.response_content_type();
    let want_media = want_ct.split(';').next().unwrap_or(want_ct);
    let ct = resp.header("content-type").unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(want_media) {
        out.findings.push(Finding {
            expected: Some(want_media.into()),
            actual: Some(if ct.is_empty() {
                "(none)".into()
            } else {
                ct.into()
            }),
            ..f(
                "content_type",
                format!(
                    "Content-Type `{ct}` is not `{want_media}` (SOAP {})",
                    pack.soap.label()
                ),
            )
        });
    }

    let text = resp.text();
    let needs_xml = e.checks.body.is_some()
        || e.fault.is_some()
        || !e.checks.asserts.is_empty()
        || !e.checks.capture.is_empty();
    let root = match xml::parse(&text) {
        Ok(r) => Some(r),
        Err(err) => {
            if needs_xml || !text.trim().is_empty() {
                out.findings.push(f(
                    "xml",
                    format!(
                        "the answer is not well-formed XML ({}:{}: {})",
                        err.line, err.col, err.message
                    ),
                ));
            }
            None
        }
    };
    let Some(root) = root else {
        for (name, _) in &e.checks.capture {
            out.findings.push(f(
                "capture",
                format!("cannot capture `{name}`: no XML answer"),
            ));
        }
        return out;
    };

    // SOAP envelope of the pack's version.
    let env_ns = pack.soap.env_ns();
    if root.local != "Envelope" || root.ns.as_deref() != Some(env_ns) {
        out.findings.push(Finding {
            location: Some(format!("/{}", root.local)),
            expected: Some(format!("{{{env_ns}}}Envelope")),
            actual: Some(format!(
                "{{{}}}{}",
                root.ns.as_deref().unwrap_or(""),
                root.local
            )),
            ..f(
                "envelope",
                format!("the answer is not a SOAP {} envelope", pack.soap.label()),
            )
        });
    }

    // Fault or not.
    let fault = crate::soap::find_fault(&root);
    match (&e.fault, &fault) {
        (None, Some(fl)) => out.findings.push(f(
            "fault",
            format!(
                "unexpected SOAP fault {} / {}: {}",
                qn(&fl.code),
                qn(&fl.subcode),
                fl.reason
            ),
        )),
        (Some(want), None) => out.findings.push(Finding {
            expected: Some(format!(
                "{} / {}",
                want.code_text,
                want.subcode_text.as_deref().unwrap_or("-")
            )),
            actual: Some("no fault".into()),
            ..f(
                "fault",
                format!(
                    "expected a SOAP fault {}, got none",
                    want.subcode_text.as_deref().unwrap_or(&want.code_text)
                ),
            )
        }),
        (Some(want), Some(got)) => {
            let code_ok = got.code.as_ref() == Some(&want.code);
            let sub_ok = want.subcode.is_none() || got.subcode == want.subcode;
            if !code_ok || !sub_ok {
                out.findings.push(Finding {
                    expected: Some(format!(
                        "{} / {}",
                        qn(&Some(want.code.clone())),
                        qn(&want.subcode)
                    )),
                    actual: Some(format!("{} / {}", qn(&got.code), qn(&got.subcode))),
                    ..f(
                        "fault",
                        format!(
                            "SOAP fault {} / {}, expected {} / {}",
                            qn(&got.code),
                            qn(&got.subcode),
                            want.code_text,
                            want.subcode_text.as_deref().unwrap_or("-")
                        ),
                    )
                });
            }
        }
        (None, None) => {}
    }

    message(
        pack,
        Some(pack.soap),
        &e.checks,
        &root,
        vars,
        known,
        index,
        &mut out,
    );
    out
}

/// Body, path assertions and captures of one XML message (`root`), against `checks`.
#[allow(clippy::too_many_arguments)]
pub fn message(
    pack: &Pack,
    soap: Option<SoapVersion>,
    checks: &MessageChecks,
    root: &crate::xml::Element,
    vars: &BTreeMap<String, String>,
    known: &BTreeMap<String, String>,
    index: usize,
    out: &mut Checked,
) {
    let f = |check: &str, message: String| Finding {
        check: check.into(),
        message,
        location: None,
        expected: None,
        actual: None,
        step: Some(index),
        requirements: vec![],
    };
    // Body against the expected template.
    if let Some(t) = &checks.body {
        match t.render(vars, Mode::Expected) {
            Err(d) => out.findings.push(f("template", d.to_string())),
            Ok(body) => {
                let ns = pack.body_namespaces();
                // A body goes in the envelope of its SOAP version; a whole document (a return
                // file) is read with the pack's prefixes declared around it.
                let parsed = match soap {
                    Some(v) => xml::parse(&crate::soap::envelope(v.env_ns(), &ns, &body)),
                    None => {
                        let decls: String = ns
                            .iter()
                            .map(|(p, u)| format!(" xmlns:{p}=\"{}\"", crate::soap::escape(u)))
                            .collect();
                        xml::parse(&format!("<roclab-document{decls}>{body}</roclab-document>"))
                            .and_then(|w| {
                                w.elements().next().cloned().ok_or(xml::XmlError {
                                    line: 1,
                                    col: 1,
                                    message: "the expected document has no element".into(),
                                })
                            })
                    }
                };
                match parsed {
                    Err(err) => out.findings.push(f(
                        "template",
                        format!(
                            "expected body `{}` is not well-formed once rendered: {err}",
                            t.origin
                        ),
                    )),
                    Ok(expected) => {
                        let mut unordered = pack.unordered.clone();
                        unordered.extend(checks.unordered.iter().cloned());
                        // Templates are bodies: a SOAP Header the peer adds is not compared.
                        let without_header;
                        let root = if has_header(root) && !has_header(&expected) {
                            let mut r = root.clone();
                            r.children.retain(
                                |n| !matches!(n, xml::Node::Element(e) if e.local == "Header"),
                            );
                            without_header = r;
                            &without_header
                        } else {
                            root
                        };
                        let cmp = xml::compare(
                            &expected,
                            root,
                            &CompareOptions {
                                unordered,
                                known: known.clone(),
                            },
                        );
                        if !cmp.differences.is_empty() {
                            let resolved = xml::diff::resolve(&expected, root, &cmp.differences);
                            out.body_diff = Some(xml::diff::unified(
                                &xml::pretty(&resolved),
                                &xml::pretty(root),
                            ));
                        }
                        for d in cmp.differences {
                            let what = format!("{:?}", d.kind).to_lowercase();
                            out.findings.push(Finding {
                                check: "body".into(),
                                message: format!(
                                    "{} at {}: expected {}, got {}",
                                    what,
                                    d.location,
                                    d.expected.as_deref().unwrap_or("nothing"),
                                    d.actual.as_deref().unwrap_or("nothing")
                                ),
                                location: Some(d.location),
                                expected: d.expected,
                                actual: d.actual,
                                step: Some(index),
                                requirements: vec![],
                            });
                        }
                        out.captures.extend(cmp.captures);
                    }
                }
            }
        }
    }

    // Path assertions.
    for a in &checks.asserts {
        let v = a.path.eval(root);
        let got = v.string();
        let present = match &v {
            xml::PathValue::Nodes(n) => !n.is_empty(),
            xml::PathValue::Strings(s) => !s.is_empty(),
            xml::PathValue::Number(_) => true,
        };
        let fail = evaluate(&a.check, got, present, vars);
        if let Some((want, actual)) = fail {
            out.findings.push(Finding {
                check: "assert".into(),
                message: format!(
                    "{}: expected {want}, got {actual} (assertion at {})",
                    a.path.source, a.at
                ),
                location: Some(a.path.source.clone()),
                expected: Some(want),
                actual: Some(actual),
                step: Some(index),
                requirements: a.verifies.clone(),
            });
        }
    }

    // Captures by path.
    for (name, p) in &checks.capture {
        match p.eval(root).string().filter(|s| !s.is_empty()) {
            Some(v) => {
                out.captures.insert(name.clone(), v);
            }
            None => out.findings.push(f(
                "capture",
                format!("cannot capture `{name}`: nothing at {}", p.source),
            )),
        }
    }
}

/// Whether a value satisfies an assertion: None when it does, else (what was expected, what
/// was found). `present` says whether the path found anything at all.
fn evaluate(
    check: &AssertCheck,
    got: Option<String>,
    present: bool,
    vars: &BTreeMap<String, String>,
) -> Option<(String, String)> {
    let found = || got.clone().unwrap_or_else(|| "nothing".into());
    match check {
        AssertCheck::Exists(want) => (present != *want).then(|| {
            let want = if *want { "present" } else { "absent" };
            (
                want.to_string(),
                got.clone().unwrap_or_else(|| "absent".into()),
            )
        }),
        AssertCheck::Equals(t) => match t.render(vars, Mode::Text) {
            Err(d) => Some((format!("({d})"), String::new())),
            Ok(want) => (got.as_deref() != Some(want.as_str())).then(|| (want, found())),
        },
        AssertCheck::NotEquals(t) => match t.render(vars, Mode::Text) {
            Err(d) => Some((format!("({d})"), String::new())),
            Ok(other) => (got.as_deref() == Some(other.as_str()))
                .then(|| (format!("anything but {other}"), other)),
        },
        AssertCheck::Matches(r) => match &got {
            Some(g) if r.is_match(g) => None,
            _ => Some((format!("/{}/", r.as_str()), found())),
        },
    }
}

/// The value at a dotted path of a JSON document (`calls.0.outcome`): strings as they are,
/// other scalars as JSON text; None when absent or null.
pub fn json_at(v: &serde_json::Value, path: &str) -> Option<String> {
    let mut cur = v;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        cur = match cur {
            serde_json::Value::Object(m) => m.get(part)?,
            serde_json::Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    match cur {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// One assertion on a driver's JSON answer.
pub fn json_assertion(
    v: &serde_json::Value,
    a: &crate::pack::ResultAssertion,
    vars: &BTreeMap<String, String>,
    index: usize,
) -> Option<Finding> {
    let got = json_at(v, &a.path);
    let present = got.is_some();
    let fail = evaluate(&a.check, got, present, vars);
    fail.map(|(want, actual)| Finding {
        check: "result".into(),
        message: format!(
            "driver result {}: expected {want}, got {actual} (assertion at {})",
            a.path, a.at
        ),
        location: Some(a.path.clone()),
        expected: Some(want),
        actual: Some(actual),
        step: Some(index),
        requirements: a.verifies.clone(),
    })
}

fn has_header(envelope: &xml::Element) -> bool {
    envelope.elements().any(|e| e.local == "Header")
}

fn qn(q: &Option<(String, String)>) -> String {
    match q {
        Some((ns, l)) => format!("{{{ns}}}{l}"),
        None => "-".into(),
    }
}
