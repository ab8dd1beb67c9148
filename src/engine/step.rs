//! One client step: variables, request, exchange, checks.

use super::Target;
use super::check;
use crate::net::client::{Request, post_with};
use crate::outcome::{Finding, StepOutcome, TransportErrorKind};
use crate::pack::template::{Mode, Template};
use crate::pack::{Call, Pack, Scenario, Step};
use std::collections::BTreeMap;

/// Variables of a running scenario.
pub struct Scope<'a> {
    pack: &'a Pack,
    /// Values visible to the current scenario (without step-level ones).
    pub vars: BTreeMap<String, String>,
    /// Captured so far.
    pub captures: BTreeMap<String, String>,
}

impl<'a> Scope<'a> {
    pub fn new(pack: &'a Pack, target: &Target) -> Self {
        let mut vars = pack.data.clone();
        vars.extend(pack.variables.clone());
        vars.extend(target.vars.clone());
        Self {
            pack,
            vars,
            captures: BTreeMap::new(),
        }
    }

    fn bind(&self, into: &mut BTreeMap<String, String>, bind: &[(String, String)]) {
        for (alias, target) in bind {
            let prefix = format!("{target}.");
            for (k, v) in &self.pack.data {
                if let Some(rest) = k.strip_prefix(&prefix) {
                    into.insert(format!("{alias}.{rest}"), v.clone());
                }
            }
        }
    }

    fn eval(
        into: &mut BTreeMap<String, String>,
        vars: &[(String, Template)],
    ) -> Result<(), String> {
        for (k, t) in vars {
            let v = t.render(into, Mode::Request).map_err(|d| d.to_string())?;
            into.insert(k.clone(), v);
        }
        Ok(())
    }

    pub fn enter_scenario(&mut self, sc: &Scenario) -> Result<(), String> {
        let mut v = self.vars.clone();
        self.bind(&mut v, &sc.bind);
        Self::eval(&mut v, &sc.vars)?;
        self.vars = v;
        Ok(())
    }

    /// Variables for one step: scenario's, captures, then the step's own.
    pub fn for_step(&self, st: &Step) -> Result<BTreeMap<String, String>, String> {
        let mut v = self.vars.clone();
        v.extend(self.captures.clone());
        self.bind(&mut v, &st.bind);
        Self::eval(&mut v, &st.vars)?;
        Ok(v)
    }
}

pub enum Flow {
    Continue,
    /// The scenario cannot go on (its SUT did not answer, a capture is missing).
    Stop,
    /// The harness could not run the step (not the SUT's fault).
    Error(String),
}

pub struct StepRun {
    pub outcome: StepOutcome,
    pub flow: Flow,
}

/// A `call` step: send the request to the SUT and check its answer.
pub async fn call(
    pack: &Pack,
    target: &Target,
    scope: &mut Scope<'_>,
    st: &Step,
    c: &Call,
    index: usize,
) -> StepRun {
    let mut outcome = StepOutcome::new(index, st.label());
    let error = |outcome: StepOutcome, why: String| StepRun {
        outcome,
        flow: Flow::Error(format!(
            "step {} ({}) at {}: {why}",
            index + 1,
            c.call,
            st.at
        )),
    };
    let vars = match scope.for_step(st) {
        Ok(v) => v,
        Err(e) => return error(outcome, e),
    };
    let body = match c.request.render(&vars, Mode::Request) {
        Ok(b) => b,
        Err(d) => return error(outcome, d.to_string()),
    };
    let body = if c.raw {
        body
    } else {
        let ns = pack.body_namespaces();
        crate::soap::envelope(pack.soap.env_ns(), &ns, &body)
    };
    let op = &pack.operations[&c.call];
    let mut headers = pack.soap.request_headers(&op.action);
    for (k, t) in &c.headers {
        let v = match t.render(&vars, Mode::Request) {
            Ok(v) => v,
            Err(d) => return error(outcome, d.to_string()),
        };
        headers.retain(|(h, _)| !h.eq_ignore_ascii_case(k));
        headers.push((k.clone(), v));
    }
    let Some(url) = target.urls.get(&c.call) else {
        return error(
            outcome,
            format!("the profile gives no URL for operation {}", c.call),
        );
    };
    let Some(client) = target.client(c.client_cert) else {
        return error(
            outcome,
            format!(
                "the profile has no `{}` client certificate (tls.{}_cert / tls.{}_key)",
                c.client_cert.label(),
                c.client_cert.label(),
                c.client_cert.label()
            ),
        );
    };
    let req = Request {
        url: url.clone(),
        headers,
        body: body.into_bytes(),
    };
    let ex = post_with(
        &req,
        client.config.clone(),
        target.timeouts,
        ("establishment", "amc", &c.call),
        client.subject.clone(),
    )
    .await;

    // Our client refusing the SUT's certificate says nothing of the SUT's behaviour: the
    // profile's CA or URL is wrong (or the SUT presents a bad certificate). Not a verdict.
    if let Some(e) = ex
        .error
        .as_ref()
        .filter(|e| e.kind == TransportErrorKind::PeerCertificate)
    {
        let why = format!(
            "cannot check {url}: {} (is tls.ca the CA of the SUT's server certificate, and the URL's host its name?)",
            e.message
        );
        outcome.exchange = Some(ex);
        return error(outcome, why);
    }
    // Refusal expected: only a TLS-level refusal by the SUT passes.
    if c.expect.refused {
        match (&ex.error, &ex.response) {
            (Some(e), _) if e.kind == TransportErrorKind::Tls => {}
            (Some(e), _) if e.kind == TransportErrorKind::Connect => {
                let why = format!("cannot reach {url}: {}", e.message);
                outcome.exchange = Some(ex);
                return error(outcome, why);
            }
            (Some(e), _) => outcome.findings.push(Finding::new(
                "tls",
                format!(
                    "expected the TLS handshake to be refused (client certificate: {}), got {:?}: {}",
                    c.client_cert.label(),
                    e.kind,
                    e.message
                ),
                index,
            )),
            (None, Some(r)) => outcome.findings.push(Finding::new(
                "tls",
                format!(
                    "the SUT accepted a client with certificate `{}` and answered {}",
                    c.client_cert.label(),
                    r.start_line
                ),
                index,
            )),
            (None, None) => {}
        }
        outcome.exchange = Some(ex);
        return StepRun {
            outcome,
            flow: Flow::Continue,
        };
    }
    if let Some(e) = &ex.error {
        let kind = e.kind;
        let msg = format!("{:?}: {}", kind, e.message).to_lowercase();
        outcome.exchange = Some(ex);
        if kind == TransportErrorKind::Connect {
            return error(outcome, format!("cannot reach {url}: {msg}"));
        }
        outcome.findings.push(Finding::new(
            "transport",
            format!("no answer to {}: {msg}", c.call),
            index,
        ));
        return StepRun {
            outcome,
            flow: Flow::Stop,
        };
    }
    let known = scope.captures.clone();
    let checked = check::response(pack, c, &vars, &known, &ex, index);
    outcome.findings = checked.findings;
    outcome.body_diff = checked.body_diff;
    outcome.captures = checked.captures;
    if let Some(body) = &c.expect.checks.body {
        for name in body.capture_names() {
            if !outcome.captures.contains_key(&name) && !known.contains_key(&name) {
                outcome.findings.push(Finding::new(
                    "capture",
                    format!("cannot capture `{name}`: the answer has no value where the expected body captures it"),
                    index,
                ));
            }
        }
    }
    outcome.exchange = Some(ex);
    let missing_capture = outcome.findings.iter().any(|f| f.check == "capture");
    scope.captures.extend(outcome.captures.clone());
    StepRun {
        outcome,
        flow: if missing_capture {
            Flow::Stop
        } else {
            Flow::Continue
        },
    }
}
