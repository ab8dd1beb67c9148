//! Steps of a GAP scenario: triggers through the driver, and expectations on the requests the
//! GAP sends to the lab's mirrors (annuaire, mirror AMCs), which the engine answers.

use super::check::{self, Checked};
use super::driver::{DriverContext, DriverFailure, DriverSession};
use super::step::{Flow, Scope, StepRun};
use crate::mirror::lab::{Incoming, Lab};
use crate::net::server::{DROP_CONNECTION, Response};
use crate::outcome::{Exchange, Finding, HttpMessage, StepOutcome, TlsInfo};
use crate::pack::template::Mode;
use crate::pack::{ExpectNoRequest, ExpectRequest, Pack, RespondKind, Scenario, Step, Trigger};
use crate::pki::Pki;
use crate::roc::population::Population;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a GAP run needs besides the pack.
pub struct GapSetup {
    pub pki: Pki,
    /// Where the PKI's files are (for drivers: CA, the GAP's client certificate).
    pub pki_dir: PathBuf,
    pub population: Population,
    /// Actor -> listen address.
    pub listen: BTreeMap<String, String>,
    pub driver: DriverContext,
    pub finess_juridique: String,
    pub finess_geographique: String,
    /// Folder holding each scenario's return drop (`<returns>/<scenario>`).
    pub returns: PathBuf,
    /// After the last step, how long a GAP driven by a command, a hook or a person may still
    /// send a request that is then reported (the builtin GAP is done when its action is).
    pub quiet: Duration,
}

/// One GAP scenario in progress.
pub struct Session<'a> {
    pack: &'a Pack,
    setup: &'a GapSetup,
    sc: &'a Scenario,
    lab: Lab,
    driver: DriverSession,
    /// Requests received but not consumed by a step yet.
    pending: VecDeque<Incoming>,
    /// Exchanges answered on the side (tolerated requests) since the last step.
    side: Vec<StepOutcome>,
    stop: Arc<AtomicBool>,
    /// Whether the last trigger went to a person (waits are then the driver's timeout).
    operator_waiting: bool,
    /// This scenario's return drop, where the mirror AMCs write RSP files.
    drop: PathBuf,
    /// The actor of the last payment run (the sender of the return files that follow).
    payer: Option<String>,
    /// Index of the step running (for the findings of tolerated requests).
    step_index: usize,
    /// Failed TLS handshakes seen so far.
    tls_seen: Vec<crate::mirror::lab::TlsFailure>,
    /// When the last expected request was answered, and which (`actor operation`).
    last_answer: Option<(Instant, String)>,
}

/// The record of a request the GAP sent and the answer a mirror gave.
fn record(
    inc: &Incoming,
    operation: &str,
    url: &str,
    resp: &Response,
    elapsed: Duration,
) -> Exchange {
    let req = &inc.request;
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    let b64 = |b: &[u8]| match std::str::from_utf8(b) {
        Ok(_) => None,
        Err(_) => Some(crate::net::client::base64(b)),
    };
    let ms = elapsed.as_secs_f64() * 1000.0;
    Exchange {
        from: "gap".into(),
        to: inc.actor.clone(),
        operation: operation.into(),
        url: format!("{url}{}", req.path),
        request: HttpMessage {
            start_line: format!("{} {} HTTP/1.1", req.method, req.path),
            status: None,
            headers: req.headers.clone(),
            body: text(&req.body),
            body_base64: b64(&req.body),
            body_len: req.body.len(),
        },
        response: (resp.status != DROP_CONNECTION).then(|| HttpMessage {
            start_line: format!(
                "HTTP/1.1 {} {}",
                resp.status,
                http::StatusCode::from_u16(resp.status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("")
            ),
            status: Some(resp.status),
            headers: resp.headers.clone(),
            body: text(&resp.body),
            body_base64: b64(&resp.body),
            body_len: resp.body.len(),
        }),
        started: inc.received.clone(),
        duration_ms: ms,
        latency_ms: ms,
        tls: Some(TlsInfo {
            version: req.peer.tls_version.clone(),
            peer_subject: req.peer.subject.clone(),
            local_subject: None,
        }),
        error: (resp.status == DROP_CONNECTION).then(|| crate::outcome::TransportError {
            kind: crate::outcome::TransportErrorKind::Protocol,
            message: "connection dropped by the mirror, as the scenario asks".into(),
        }),
    }
}

impl<'a> Session<'a> {
    pub async fn start(
        pack: &'a Pack,
        setup: &'a GapSetup,
        sc: &'a Scenario,
        stop: Arc<AtomicBool>,
    ) -> Result<Session<'a>, String> {
        let lab = Lab::start(
            pack,
            &setup.listen,
            &setup.pki,
            &sc.certs,
            &setup.population,
        )
        .await
        .map_err(|e| format!("cannot start the lab's mirrors: {e}"))?;
        let safe: String = sc
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let drop = setup.returns.join(safe);
        std::fs::create_dir_all(&drop).map_err(|e| format!("{}: {e}", drop.display()))?;
        Ok(Session {
            pack,
            setup,
            sc,
            lab,
            driver: DriverSession::new(&setup.driver),
            pending: VecDeque::new(),
            side: vec![],
            stop,
            operator_waiting: false,
            drop,
            payer: None,
            step_index: 0,
            tls_seen: vec![],
            last_answer: None,
        })
    }

    fn tolerated(&self, inc: &Incoming) -> bool {
        inc.operation.as_ref().is_some_and(|op| {
            self.sc
                .tolerate
                .iter()
                .any(|(a, o)| *a == inc.actor && o == op)
        })
    }

    /// Answer a request with the mirror's own answer and keep the record.
    async fn answer_default(&mut self, inc: Incoming) -> Exchange {
        let op = inc.operation.clone().unwrap_or_else(|| "?".into());
        let resp = self
            .lab
            .default_answer(&inc.actor, inc.request.clone())
            .await;
        let url = self.lab.urls.get(&inc.actor).cloned().unwrap_or_default();
        let ex = record(&inc, &op, &url, &resp, inc.at.elapsed());
        let _ = inc.reply.send(resp);
        ex
    }

    /// A tolerated request: its transport is checked like any other, the mirror answers, and
    /// the exchange is kept as a step of its own (see [`Session::take_side`]).
    async fn answer_tolerated(&mut self, inc: Incoming) {
        let index = self.step_index;
        let findings = match (self.pack.actors.get(&inc.actor), &inc.operation) {
            (Some(actor), Some(op)) => transport_checks(
                &self.setup.finess_juridique,
                actor,
                &actor.operations[op],
                &inc.request,
                index,
            ),
            _ => vec![],
        };
        // Shown before the step it came during (see `report::step_numbers`).
        let when = if index >= self.sc.steps.len() {
            "after the last step".to_string()
        } else {
            format!("during step {}", index + 1)
        };
        let label = format!(
            "tolerated {} {} ({when})",
            inc.actor,
            inc.operation.as_deref().unwrap_or("?")
        );
        let ex = self.answer_default(inc).await;
        let mut o = StepOutcome::new(index, label);
        o.exchange = Some(ex);
        o.findings = findings;
        self.side.push(o);
    }

    /// The tolerated exchanges answered since the last call, in order.
    pub fn take_side(&mut self) -> Vec<StepOutcome> {
        std::mem::take(&mut self.side)
    }

    /// The next request that is not tolerated, before `deadline`. Tolerated ones are answered
    /// on the way. None at the deadline; an error at once when a driver action fails (the
    /// cause: the GAP will not act), the operator gives up or the run is stopped.
    /// `expected` (actor, operation) is what the current step waits for: it is returned even
    /// when the scenario tolerates it, so `tolerate` means "any number of times, besides the
    /// expected ones".
    async fn next_request(
        &mut self,
        deadline: Instant,
        expected: Option<(&str, &str)>,
    ) -> Result<Option<Incoming>, DriverFailure> {
        loop {
            let inc = match self.pending.pop_front() {
                Some(i) => i,
                None => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(None);
                    }
                    let slice = (deadline - now).min(Duration::from_millis(100));
                    tokio::select! {
                        // A request that came is taken before a failure that followed it.
                        biased;
                        i = self.lab.incoming.recv() => match i {
                            Some(i) => i,
                            None => return Ok(None),
                        },
                        f = self.driver.failed() => return Err(f),
                        _ = tokio::time::sleep(slice) => {
                            if self.stop.load(Ordering::SeqCst) {
                                return Err(DriverFailure::new(
                                    "the run was interrupted while waiting for the GAP".into(),
                                ));
                            }
                            if self
                                .setup
                                .driver
                                .operator_failed
                                .swap(false, Ordering::SeqCst)
                            {
                                return Err(DriverFailure {
                                    by_operator: true,
                                    ..DriverFailure::new(
                                        "the operator reported that the GAP could not do it"
                                            .into(),
                                    )
                                });
                            }
                            continue;
                        }
                    }
                }
            };
            let wanted = expected
                .is_some_and(|(a, o)| inc.actor == a && inc.operation.as_deref() == Some(o));
            if self.tolerated(&inc) && !wanted {
                self.answer_tolerated(inc).await;
                continue;
            }
            return Ok(Some(inc));
        }
    }

    fn wait_for(&self, ms: u64) -> Instant {
        let ms = if self.operator_waiting {
            ms.max(self.setup.driver.timeout.as_millis() as u64)
        } else {
            ms
        };
        Instant::now() + Duration::from_millis(ms)
    }

    /// The failed handshakes seen so far, for messages (`""` when none).
    fn tls_note(&mut self) -> String {
        while let Ok(f) = self.lab.tls_failures.try_recv() {
            self.tls_seen.push(f);
        }
        if self.tls_seen.is_empty() {
            return String::new();
        }
        // Each failure once, in the order first seen, with how many times it happened.
        let mut seen: Vec<(String, usize)> = vec![];
        for f in &self.tls_seen {
            let line = format!("{}: {}", f.actor, f.error);
            match seen.iter_mut().find(|(l, _)| *l == line) {
                Some((_, n)) => *n += 1,
                None => seen.push((line, 1)),
            }
        }
        let seen: Vec<String> = seen
            .into_iter()
            .map(|(l, n)| if n > 1 { format!("{l} (×{n})") } else { l })
            .collect();
        format!(" (failed TLS handshakes: {})", seen.join("; "))
    }

    /// The JSON document of a trigger (docs/drivers.md).
    fn trigger_doc(&self, t: &Trigger, vars: &BTreeMap<String, String>) -> Result<Value, String> {
        let mut inputs = Map::new();
        let mut data = Map::new();
        for (k, tpl) in &t.inputs {
            let v = tpl.render(vars, Mode::Request).map_err(|d| d.to_string())?;
            if let Some(path) = self.pack.trigger_data.get(k) {
                let rec = self
                    .pack
                    .data_record(path, &v)
                    .ok_or_else(|| format!("trigger input {k}: no `{v}` under data `{path}`"))?;
                data.insert(k.clone(), rec);
            }
            inputs.insert(k.clone(), Value::String(v));
        }
        let mut amc_urls = Map::new();
        let mut annuaire_url = String::new();
        for a in self.pack.actors.values() {
            let base = self.lab.urls.get(&a.name).cloned().unwrap_or_default();
            match a.role.as_str() {
                "annuaire" => {
                    let path = a
                        .operations
                        .values()
                        .next()
                        .map(|o| o.path.clone())
                        .unwrap_or_default();
                    annuaire_url = format!("{base}/{}", path.trim_start_matches('/'));
                }
                _ => {
                    if let Some(e) = &a.endpoint {
                        amc_urls.insert(e.clone(), Value::String(base));
                    }
                }
            }
        }
        let f = |name: &str| Value::String(self.setup.pki_dir.join(name).display().to_string());
        Ok(serde_json::json!({
            "scenario": self.sc.id,
            "action": t.action,
            "inputs": inputs,
            "data": data,
            "lab": {
                "annuaire_url": annuaire_url,
                "amc_urls": amc_urls,
                "ca": f(crate::pki::files::CA),
                "client_cert": f(crate::pki::files::CLIENT_CERT),
                "client_key": f(crate::pki::files::CLIENT_KEY),
                "finess_juridique": self.setup.finess_juridique,
                "finess_geographique": self.setup.finess_geographique,
                "return_drop": self.drop.display().to_string(),
            }
        }))
    }

    /// Run one GAP step.
    pub async fn step(&mut self, scope: &mut Scope<'_>, st: &Step, index: usize) -> StepRun {
        self.step_index = index;
        let mut out = StepOutcome::new(index, st.label());
        let vars = match scope.for_step(st) {
            Ok(v) => v,
            Err(e) => {
                return StepRun {
                    outcome: out,
                    flow: Flow::Error(format!("step {} at {}: {e}", index + 1, st.at)),
                };
            }
        };
        let flow = match &st.action {
            crate::pack::Action::Trigger(t) => {
                let doc = match self.trigger_doc(t, &vars) {
                    Ok(d) => d,
                    Err(e) => {
                        return StepRun {
                            outcome: out,
                            flow: Flow::Error(format!("step {} at {}: {e}", index + 1, st.at)),
                        };
                    }
                };
                self.operator_waiting = matches!(
                    self.setup.driver.config,
                    super::driver::DriverConfig::Operator
                );
                match self
                    .driver
                    .trigger(&self.setup.driver, doc.clone(), t.instruction.as_ref())
                {
                    Ok(()) => {
                        out.captures.insert("trigger".into(), doc.to_string());
                        Flow::Continue
                    }
                    Err(e) => {
                        out.findings.push(Finding::new("driver", e, index));
                        Flow::Stop
                    }
                }
            }
            crate::pack::Action::ExpectRequest(er) => {
                self.expect_request(er, &vars, scope, &mut out, index).await
            }
            crate::pack::Action::ExpectNoRequest(e) => {
                self.expect_no_request(e, &mut out, index).await
            }
            crate::pack::Action::ExpectTlsRefusal { actor, within_ms } => {
                self.expect_tls_refusal(actor, *within_ms, &mut out, index)
                    .await
            }
            crate::pack::Action::Call(_) => Flow::Error("a `call` step in a GAP scenario".into()),
            crate::pack::Action::PaymentRun { actor, reject } => {
                let Some(amc) = actor.as_ref().and_then(|a| self.lab.amcs.get(a).cloned()) else {
                    return StepRun {
                        outcome: out,
                        flow: Flow::Error(format!(
                            "step {} at {}: a payment run in a GAP scenario names its amc actor",
                            index + 1,
                            st.at
                        )),
                    };
                };
                let mut numeros = std::collections::BTreeSet::new();
                if !reject.is_empty() {
                    let rendered = scope.for_step(st).and_then(|vars| {
                        reject
                            .iter()
                            .map(|t| {
                                t.render(&vars, crate::pack::template::Mode::Text)
                                    .map_err(|d| d.to_string())
                            })
                            .collect::<Result<Vec<_>, _>>()
                    });
                    match rendered {
                        Ok(list) => numeros.extend(list),
                        Err(e) => {
                            return StepRun {
                                outcome: out,
                                flow: Flow::Error(format!("step {} at {}: {e}", index + 1, st.at)),
                            };
                        }
                    }
                }
                let runner = super::billing::PaymentRunner::Embedded(amc);
                let name = actor.clone().unwrap_or_default();
                self.payer = Some(name.clone());
                return super::billing::payment_run(
                    Some(&runner),
                    &name,
                    &self.drop,
                    numeros,
                    st,
                    index,
                )
                .await;
            }
            crate::pack::Action::ExpectReturn(er) => {
                let drop = self.drop.clone();
                // The return comes from the mirror whose payment run wrote it.
                let from = self.payer.clone().unwrap_or_else(|| "amc".into());
                return super::billing::expect_return(
                    self.pack, &drop, &from, "gap", er, scope, st, index,
                )
                .await;
            }
            crate::pack::Action::ExpectResult(e) => {
                let wait = Duration::from_millis(e.within_ms.max(if self.operator_waiting {
                    self.setup.driver.timeout.as_millis() as u64
                } else {
                    0
                }));
                match self.driver.last_result(wait).await {
                    Err(err) => {
                        out.findings.push(err.finding(index));
                        Flow::Stop
                    }
                    Ok(v) => {
                        out.captures.insert("result".into(), v.to_string());
                        for a in &e.asserts {
                            if let Some(f) = check::json_assertion(&v, a, &vars, index) {
                                out.findings.push(f);
                            }
                        }
                        Flow::Continue
                    }
                }
            }
        };
        StepRun { outcome: out, flow }
    }

    async fn expect_request(
        &mut self,
        er: &ExpectRequest,
        vars: &BTreeMap<String, String>,
        scope: &mut Scope<'_>,
        out: &mut StepOutcome,
        index: usize,
    ) -> Flow {
        let deadline = self.wait_for(er.within_ms);
        let inc = match self
            .next_request(deadline, Some((er.actor.as_str(), er.operation.as_str())))
            .await
        {
            Err(e) => {
                out.findings.push(e.finding(index));
                return Flow::Stop;
            }
            Ok(None) => {
                let note = self.tls_note();
                out.findings.push(Finding::new(
                    "request",
                    format!(
                        "the GAP sent no {} request to {} within {} ms{note}",
                        er.operation, er.actor, er.within_ms
                    ),
                    index,
                ));
                return Flow::Stop;
            }
            Ok(Some(i)) => i,
        };
        self.operator_waiting = false;
        let got_op = inc
            .operation
            .clone()
            .unwrap_or_else(|| format!("(unknown path {})", inc.request.path));
        if inc.actor != er.actor || inc.operation.as_deref() != Some(er.operation.as_str()) {
            out.findings.push(Finding {
                expected: Some(format!("{} {}", er.actor, er.operation)),
                actual: Some(format!("{} {}", inc.actor, got_op)),
                ..Finding::new(
                    "order",
                    format!(
                        "expected {} {}, the GAP sent {} {}",
                        er.actor, er.operation, inc.actor, got_op
                    ),
                    index,
                )
            });
            out.exchange = Some(self.answer_default(inc).await);
            return Flow::Stop;
        }
        // Cause and effect: a request that depends on the previous answer (another operation)
        // must not leave before that answer did.
        if let Some((sent, prev)) = &self.last_answer {
            let this = format!("{} {}", inc.actor, er.operation);
            if inc.at < *sent && *prev != this {
                out.findings.push(Finding::new(
                    "order",
                    format!("the GAP sent {this} before it had the answer to {prev}"),
                    index,
                ));
            }
        }
        let actor = &self.pack.actors[&er.actor];
        let op = &actor.operations[&er.operation];
        let req = &inc.request;
        out.findings.extend(transport_checks(
            &self.setup.finess_juridique,
            actor,
            op,
            req,
            index,
        ));
        let mut checked = Checked {
            findings: vec![],
            captures: BTreeMap::new(),
            body_diff: None,
        };
        let text = String::from_utf8_lossy(&req.body).to_string();
        match crate::xml::parse(&text) {
            Err(e) => out.findings.push(Finding::new(
                "xml",
                format!(
                    "the request is not well-formed XML ({}:{}: {})",
                    e.line, e.col, e.message
                ),
                index,
            )),
            Ok(root) => {
                if root.local != "Envelope" || root.ns.as_deref() != Some(actor.soap.env_ns()) {
                    out.findings.push(Finding::new(
                        "envelope",
                        format!("the request is not a SOAP {} envelope", actor.soap.label()),
                        index,
                    ));
                }
                let known = scope.captures.clone();
                check::message(
                    self.pack,
                    Some(actor.soap),
                    &er.checks,
                    &root,
                    vars,
                    &known,
                    index,
                    &mut checked,
                );
            }
        }
        checked.record(out, scope);

        // The answer.
        let mut rvars = vars.clone();
        rvars.extend(scope.captures.clone());
        let resp = match &er.respond.kind {
            RespondKind::Default => self.lab.default_answer(&inc.actor, req.clone()).await,
            RespondKind::Template { body, status } => match body.render(&rvars, Mode::Request) {
                Ok(b) => soap_response(self.pack, actor.soap, *status, &b),
                Err(d) => {
                    out.findings
                        .push(Finding::new("template", d.to_string(), index));
                    self.lab.default_answer(&inc.actor, req.clone()).await
                }
            },
            RespondKind::Fault(fe, status, reason) => {
                let body = match actor.soap {
                    crate::soap::SoapVersion::V12 => crate::soap::fault12(
                        actor.soap.env_ns(),
                        &fe.code.1,
                        fe.subcode.as_ref().map(|(n, l)| (n.as_str(), l.as_str())),
                        reason,
                    ),
                    crate::soap::SoapVersion::V11 => crate::soap::fault11(&fe.code.1, reason),
                };
                Response {
                    status: *status,
                    headers: vec![(
                        "Content-Type".into(),
                        actor.soap.response_content_type().into(),
                    )],
                    body: body.into_bytes(),
                }
            }
            RespondKind::Malformed => Response {
                status: 200,
                headers: vec![(
                    "Content-Type".into(),
                    actor.soap.response_content_type().into(),
                )],
                body: b"<env:Envelope><env:Body><broken".to_vec(),
            },
            RespondKind::ContentType(ct) => {
                let mut r = self.lab.default_answer(&inc.actor, req.clone()).await;
                r.headers
                    .retain(|(k, _)| !k.eq_ignore_ascii_case("content-type"));
                r.headers.push(("Content-Type".into(), ct.clone()));
                r
            }
            RespondKind::Drop => Response {
                status: DROP_CONNECTION,
                headers: vec![],
                body: vec![],
            },
        };
        for (name, p) in &er.capture_response {
            let v = crate::xml::parse(&String::from_utf8_lossy(&resp.body))
                .ok()
                .and_then(|root| p.eval(&root).string())
                .filter(|s| !s.is_empty());
            match v {
                Some(v) => {
                    out.captures.insert(name.clone(), v.clone());
                    scope.captures.insert(name.clone(), v);
                }
                None => {
                    out.findings.push(Finding::new(
                        "capture",
                        format!(
                            "cannot capture `{name}` from the answer: nothing at {}",
                            p.source
                        ),
                        index,
                    ));
                }
            }
        }
        if er.respond.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(er.respond.delay_ms)).await;
        }
        let url = self.lab.urls.get(&inc.actor).cloned().unwrap_or_default();
        let ex = record(&inc, &er.operation, &url, &resp, inc.at.elapsed());
        // The time before the answer leaves: a request that arrives later may depend on it.
        self.last_answer = Some((Instant::now(), format!("{} {}", inc.actor, er.operation)));
        let _ = inc.reply.send(resp);
        out.exchange = Some(ex);
        if out.findings.iter().any(|f| f.check == "capture") {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    async fn expect_no_request(
        &mut self,
        e: &ExpectNoRequest,
        out: &mut StepOutcome,
        index: usize,
    ) -> Flow {
        let deadline = Instant::now() + Duration::from_millis(e.within_ms);
        let mut keep = VecDeque::new();
        loop {
            match self.next_request(deadline, None).await {
                Err(err) => {
                    out.findings.push(err.finding(index));
                    break;
                }
                Ok(None) => break,
                Ok(Some(inc)) => {
                    let matches = e.actor.as_ref().is_none_or(|a| *a == inc.actor)
                        && e.operation
                            .as_ref()
                            .is_none_or(|o| inc.operation.as_deref() == Some(o.as_str()));
                    if matches {
                        out.findings.push(Finding::new(
                            "request",
                            format!(
                                "the GAP sent {} {} where it must send nothing",
                                inc.actor,
                                inc.operation.as_deref().unwrap_or("?")
                            ),
                            index,
                        ));
                        let ex = self.answer_default(inc).await;
                        out.exchange.get_or_insert(ex);
                    } else {
                        keep.push_back(inc);
                    }
                }
            }
        }
        // Requests this step does not forbid stay for the next steps.
        keep.extend(self.pending.drain(..));
        self.pending = keep;
        Flow::Continue
    }

    async fn expect_tls_refusal(
        &mut self,
        actor: &str,
        within_ms: u64,
        out: &mut StepOutcome,
        index: usize,
    ) -> Flow {
        let deadline = self.wait_for(within_ms);
        loop {
            while let Ok(f) = self.lab.tls_failures.try_recv() {
                let refusal = f.actor == actor && refused_our_certificate(&f.error);
                self.tls_seen.push(f.clone());
                if refusal {
                    out.captures.insert("tls_failure".into(), f.error);
                    return Flow::Continue;
                }
            }
            // A request reaching the actor means the GAP accepted its certificate.
            let now = Instant::now();
            if now >= deadline {
                out.findings.push(Finding::new(
                    "tls",
                    format!(
                        "the GAP did not refuse the certificate of {actor} with a TLS alert within {within_ms} ms{}",
                        self.tls_note()
                    ),
                    index,
                ));
                return Flow::Stop;
            }
            let slice = (deadline - now).min(Duration::from_millis(50));
            if let Ok(Some(inc)) = tokio::time::timeout(slice, self.lab.incoming.recv()).await {
                if inc.actor == actor {
                    out.findings.push(Finding::new(
                        "tls",
                        format!(
                            "the GAP accepted the certificate {actor} presented and sent {}",
                            inc.operation.as_deref().unwrap_or("a request")
                        ),
                        index,
                    ));
                    let ex = self.answer_default(inc).await;
                    out.exchange = Some(ex);
                    return Flow::Stop;
                }
                if self.tolerated(&inc) {
                    self.answer_tolerated(inc).await;
                } else {
                    self.pending.push_back(inc);
                }
            }
        }
    }

    /// End of the scenario: wait for the driver, then, for a driver that may return before
    /// its GAP is done (command, http, operator), keep listening for the quiet period; answer
    /// what comes (an unexpected request is a finding when the scenario had none yet), then stop
    /// the mirrors. The tolerated exchanges and the end step, in order.
    pub async fn finish(mut self, index: usize, clean: bool) -> Vec<StepOutcome> {
        self.step_index = index;
        let mut end = StepOutcome::new(index, "end of scenario".into());
        let deadline = Instant::now() + self.setup.driver.timeout;
        let mut unexpected = vec![];
        let mut failed = vec![];
        // Answer whatever comes while the driver's actions run, so nothing is left hanging.
        while !self.driver.idle() && Instant::now() < deadline {
            match self
                .next_request(Instant::now() + Duration::from_millis(50), None)
                .await
            {
                Ok(Some(inc)) => unexpected.push(self.answer_default(inc).await),
                Ok(None) => {}
                Err(f) => {
                    failed.push(f);
                    break;
                }
            }
        }
        // The builtin GAP is done when its action is; any other may still be sending, unless
        // its driver failed.
        if failed.is_empty()
            && !self.driver.has_failed()
            && !matches!(
                self.setup.driver.config,
                super::driver::DriverConfig::Builtin { .. }
            )
        {
            let quiet = Instant::now() + self.setup.quiet;
            loop {
                match self.next_request(quiet, None).await {
                    Ok(Some(inc)) => unexpected.push(self.answer_default(inc).await),
                    Ok(None) => break,
                    Err(f) => {
                        failed.push(f);
                        break;
                    }
                }
            }
        }
        // A failed driver is the cause: its finding comes first.
        for f in &failed {
            end.findings.push(f.finding(index));
        }
        while let Some(inc) = self.pending.pop_front() {
            unexpected.push(self.answer_default(inc).await);
        }
        for ex in unexpected {
            if clean {
                end.findings.push(Finding::new(
                    "request",
                    format!(
                        "unexpected request {} {} after the last step",
                        ex.to, ex.operation
                    ),
                    index,
                ));
            }
            end.exchange.get_or_insert(ex);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        for f in self
            .driver
            .finish(remaining.max(Duration::from_millis(10)))
            .await
        {
            end.findings.push(f.finding(index));
        }
        self.lab.shutdown().await;
        let mut out = std::mem::take(&mut self.side);
        if !end.findings.is_empty() || end.exchange.is_some() {
            out.push(end);
        }
        out
    }
}

/// Whether a failed handshake is the client refusing our certificate: a certificate alert it
/// sent (not our refusal of its certificate, nor a connection closed without a word).
fn refused_our_certificate(error: &str) -> bool {
    const ALERTS: [&str; 6] = [
        "BadCertificate",
        "UnsupportedCertificate",
        "CertificateRevoked",
        "CertificateExpired",
        "CertificateUnknown",
        "UnknownCA",
    ];
    error.contains("received fatal alert") && ALERTS.iter().any(|a| error.contains(a))
}

/// What every request of the GAP must be, whatever its content: from a client certificate of
/// the lab CA whose CN is the establishment's FINESS (the TLS layer checked the chain), a POST,
/// with the Content-Type (media type, charset, action) and SOAPAction of the actor's SOAP version.
fn transport_checks(
    finess: &str,
    actor: &crate::pack::Actor,
    op: &crate::pack::Operation,
    req: &crate::net::server::Request,
    index: usize,
) -> Vec<Finding> {
    let mut out = vec![];
    match &req.peer.common_name {
        None => out.push(Finding::new(
            "client_cert",
            "the GAP presented no client certificate".into(),
            index,
        )),
        Some(cn) if cn != finess => out.push(Finding {
            expected: Some(finess.to_string()),
            actual: Some(cn.clone()),
            ..Finding::new(
                "client_cert",
                format!("client certificate CN {cn} is not the establishment's FINESS"),
                index,
            )
        }),
        _ => {}
    }
    if req.method != "POST" {
        out.push(Finding::new(
            "http",
            format!("method {} instead of POST", req.method),
            index,
        ));
    }
    for (name, value) in &actor.soap.request_headers(&op.action) {
        let got = req
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        if !header_matches(name, value, got) {
            let content_type = name.eq_ignore_ascii_case("content-type");
            let message = if content_type {
                content_type_problem(value, got, actor.soap)
            } else {
                format!(
                    "header {name}: `{}`, expected `{value}`",
                    got.unwrap_or("(none)")
                )
            };
            out.push(Finding {
                expected: Some(value.clone()),
                actual: Some(got.unwrap_or("(none)").to_string()),
                ..Finding::new(
                    if content_type { "content_type" } else { "http" },
                    message,
                    index,
                )
            });
        }
    }
    out
}

/// Why a mirror of the lab refuses a request before looking at its content: an unknown path,
/// or what [`transport_checks`] finds (client certificate, method, Content-Type, SOAPAction),
/// the checks a run applies to every request of the GAP. `serve lab` answers with it.
#[derive(Debug)]
pub struct Refusal {
    /// Why, one reason a line (e.g. `Content-Type text/xml is not application/soap+xml (SOAP 1.2)`).
    pub reasons: Vec<String>,
    /// The answer: a SOAP fault (env:Sender / Client) of the actor's SOAP version, with 404 for
    /// an unknown path, 403 without the establishment's certificate, 405 for a method other
    /// than POST, 415 for a wrong Content-Type, 400 otherwise.
    pub response: Response,
}

/// The refusal of `inc` by the lab mirror `actor` (whose services sit under `prefix`), or None
/// when the request may be answered. `finess`: the CN the client certificate must have.
pub fn refusal(
    finess: &str,
    actor: &crate::pack::Actor,
    prefix: &str,
    inc: &Incoming,
) -> Option<Refusal> {
    let req = &inc.request;
    let (status, reasons) = match inc
        .operation
        .as_deref()
        .and_then(|o| actor.operations.get(o))
    {
        None => {
            let served: Vec<String> = actor
                .operations
                .values()
                .map(|o| format!("{prefix}/{}", o.path.trim_start_matches('/')))
                .collect();
            let path = req.path.split('?').next().unwrap_or(&req.path);
            (
                404,
                vec![format!(
                    "unknown path {path}: the mirror {} serves {}{}",
                    actor.name,
                    served.join(", "),
                    if prefix.is_empty() {
                        String::new()
                    } else {
                        " (its prefix changes with every lab: take the addresses from the annuaire)"
                            .to_string()
                    }
                )],
            )
        }
        Some(op) => {
            let found = transport_checks(finess, actor, op, req, 0);
            let status = match found
                .first()
                .map(|f| (f.check.as_str(), f.message.as_str()))
            {
                None => return None,
                Some(("client_cert", _)) => 403,
                Some(("http", m)) if m.starts_with("method") => 405,
                Some(("content_type", _)) => 415,
                Some(_) => 400,
            };
            (status, found.into_iter().map(|f| f.message).collect())
        }
    };
    let reason = reasons.join("; ");
    let body = match actor.soap {
        crate::soap::SoapVersion::V12 => {
            crate::soap::fault12(actor.soap.env_ns(), "Sender", None, &reason)
        }
        crate::soap::SoapVersion::V11 => crate::soap::fault11("Client", &reason),
    };
    Some(Refusal {
        reasons,
        response: Response {
            status,
            headers: vec![(
                "Content-Type".into(),
                actor.soap.response_content_type().into(),
            )],
            body: body.into_bytes(),
        },
    })
}

/// What is wrong with a request's Content-Type, in words: the media type of the wrong SOAP
/// version, a missing or different parameter (charset, the SOAP 1.2 action).
fn content_type_problem(want: &str, got: Option<&str>, soap: crate::soap::SoapVersion) -> String {
    let Some(got) = got else {
        return format!("no Content-Type (SOAP {}: `{want}`)", soap.label());
    };
    let (wm, wp) = parse_content_type(want);
    let (gm, gp) = parse_content_type(got);
    if wm != gm {
        let gm = if gm.is_empty() {
            "(empty)"
        } else {
            gm.as_str()
        };
        return format!("Content-Type {gm} is not {wm} (SOAP {})", soap.label());
    }
    let wrong: Vec<String> = wp
        .iter()
        .filter(|p| !gp.contains(p))
        .map(|(k, v)| match gp.iter().find(|(gk, _)| gk == k) {
            Some((_, gv)) => format!("{k}={gv} instead of {k}={v}"),
            None => format!("no {k}={v}"),
        })
        .collect();
    format!(
        "Content-Type `{got}`: {} (SOAP {})",
        wrong.join(", "),
        soap.label()
    )
}

/// A Content-Type's media type (lower-case) and parameters (charset lower-cased, quotes
/// removed).
fn parse_content_type(s: &str) -> (String, Vec<(String, String)>) {
    let mut parts = s.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            )
        })
        .map(|(k, v)| {
            if k == "charset" {
                (k, v.to_ascii_lowercase())
            } else {
                (k, v)
            }
        })
        .collect();
    (media, params)
}

/// Header check: the media type must match, and every parameter of the expected value (charset,
/// case-insensitive; for SOAP 1.2 the action), in any order; SOAPAction compared as written.
fn header_matches(name: &str, want: &str, got: Option<&str>) -> bool {
    let Some(got) = got else { return false };
    if !name.eq_ignore_ascii_case("content-type") {
        return got.trim() == want.trim();
    }
    let (wm, wp) = parse_content_type(want);
    let (gm, gp) = parse_content_type(got);
    wm == gm && wp.iter().all(|p| gp.contains(p))
}

/// A response body template wrapped in the actor's envelope.
fn soap_response(pack: &Pack, soap: crate::soap::SoapVersion, status: u16, body: &str) -> Response {
    let ns = pack.body_namespaces();
    Response {
        status,
        headers: vec![("Content-Type".into(), soap.response_content_type().into())],
        body: crate::soap::envelope(soap.env_ns(), &ns, body).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::server::{Peer, Request};
    use crate::pack::{Actor, Operation};
    use crate::soap::SoapVersion;

    fn actor(soap: SoapVersion) -> (Actor, Operation) {
        let op = Operation {
            path: "IDB".into(),
            action: "urn:roc:model:sel:IDB".into(),
        };
        let a = Actor {
            name: "amc-A".into(),
            role: "amc".into(),
            endpoint: Some("A".into()),
            soap,
            operations: [("IDB".to_string(), op.clone())].into(),
        };
        (a, op)
    }

    fn request(method: &str, headers: &[(&str, &str)], cn: Option<&str>) -> Request {
        Request {
            method: method.into(),
            path: "/s-1/IDB".into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: vec![],
            peer: Peer {
                common_name: cn.map(str::to_string),
                ..Peer::default()
            },
        }
    }

    fn checks(r: &Request, soap: SoapVersion) -> Vec<String> {
        let (a, op) = actor(soap);
        transport_checks("750712184", &a, &op, r, 0)
            .into_iter()
            .map(|f| format!("{}: {}", f.check, f.message))
            .collect()
    }

    const CT12: &str = "application/soap+xml; charset=utf-8; action=\"urn:roc:model:sel:IDB\"";

    #[test]
    fn a_conformant_request_passes_in_any_parameter_order_and_case() {
        let r = request("POST", &[("content-type", CT12)], Some("750712184"));
        assert!(checks(&r, SoapVersion::V12).is_empty());
        let r = request(
            "POST",
            &[(
                "content-type",
                "Application/SOAP+XML;action=urn:roc:model:sel:IDB;charset=UTF-8",
            )],
            Some("750712184"),
        );
        assert!(
            checks(&r, SoapVersion::V12).is_empty(),
            "{:?}",
            checks(&r, SoapVersion::V12)
        );
        let r = request(
            "POST",
            &[
                ("content-type", "text/xml; charset=utf-8"),
                ("soapaction", "\"urn:roc:model:sel:IDB\""),
            ],
            Some("750712184"),
        );
        assert!(checks(&r, SoapVersion::V11).is_empty());
    }

    #[test]
    fn content_type_faults_are_said_in_words() {
        let ok = Some("750712184");
        let said = |ct: &str, soap| checks(&request("POST", &[("content-type", ct)], ok), soap);
        assert_eq!(
            said("text/xml; charset=utf-8", SoapVersion::V12),
            ["content_type: Content-Type text/xml is not application/soap+xml (SOAP 1.2)"]
        );
        let latin = "application/soap+xml; charset=ISO-8859-1; action=\"urn:roc:model:sel:IDB\"";
        assert_eq!(
            said(latin, SoapVersion::V12),
            [format!(
                "content_type: Content-Type `{latin}`: charset=iso-8859-1 instead of charset=utf-8 (SOAP 1.2)"
            )]
        );
        assert_eq!(
            said("application/soap+xml; charset=utf-8", SoapVersion::V12),
            [
                "content_type: Content-Type `application/soap+xml; charset=utf-8`: no action=urn:roc:model:sel:IDB (SOAP 1.2)"
            ]
        );
        let none = checks(&request("POST", &[], ok), SoapVersion::V12);
        assert!(
            none[0].starts_with("content_type: no Content-Type (SOAP 1.2"),
            "{none:?}"
        );
    }

    #[test]
    fn each_transport_fault_of_a_gap_is_a_finding() {
        let found = |r: &Request, soap, what: &str| {
            let c = checks(r, soap);
            assert!(c.iter().any(|f| f.contains(what)), "{what} not in {c:?}");
        };
        found(
            &request("POST", &[("content-type", CT12)], None),
            SoapVersion::V12,
            "client_cert: the GAP presented no client certificate",
        );
        found(
            &request("POST", &[("content-type", CT12)], Some("130786049")),
            SoapVersion::V12,
            "client_cert: client certificate CN 130786049",
        );
        found(
            &request("PUT", &[("content-type", CT12)], Some("750712184")),
            SoapVersion::V12,
            "http: method PUT",
        );
        let latin = "application/soap+xml; charset=iso-8859-1; action=\"urn:roc:model:sel:IDB\"";
        found(
            &request("POST", &[("content-type", latin)], Some("750712184")),
            SoapVersion::V12,
            "content_type",
        );
        let other_action = "application/soap+xml; charset=utf-8; action=\"urn:roc:model:sel:CLC\"";
        found(
            &request("POST", &[("content-type", other_action)], Some("750712184")),
            SoapVersion::V12,
            "content_type",
        );
        found(
            &request(
                "POST",
                &[("content-type", "text/xml; charset=utf-8")],
                Some("750712184"),
            ),
            SoapVersion::V12,
            "content_type",
        );
        let no_action = [("content-type", "text/xml; charset=utf-8")];
        found(
            &request("POST", &no_action, Some("750712184")),
            SoapVersion::V11,
            "http: header SOAPAction",
        );
    }
}
