//! Running scenarios against a target: steps drive the SUT through the HTTPS client, checks
//! turn exchanges into findings. The engine formats nothing; it emits events and outcomes.

mod attribution;
pub mod billing;
mod check;
pub mod driver;
pub mod gap;
mod step;

use crate::net::client::Timeouts;
use crate::outcome::{ScenarioOutcome, Status};
use crate::pack::{ClientCert, Pack, Scenario};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One client identity the engine can present.
#[derive(Clone)]
pub struct ClientTls {
    pub config: Arc<rustls::ClientConfig>,
    /// Subject of the certificate presented (None without one).
    pub subject: Option<String>,
}

/// Where and how to reach the SUT, resolved from the profile.
#[derive(Clone)]
pub struct Target {
    /// Operation -> URL.
    pub urls: BTreeMap<String, String>,
    /// Client identities by choice; a missing one makes the steps needing it error.
    pub tls: BTreeMap<&'static str, ClientTls>,
    pub timeouts: Timeouts,
    /// Variables from the profile (override pack variables).
    pub vars: BTreeMap<String, String>,
    /// Capabilities the profile declares.
    pub capabilities: Vec<String>,
    /// For a GAP under test: the lab's material and the driver.
    pub gap: Option<Arc<gap::GapSetup>>,
    /// For an AMC under test: its return drop, and how to obtain a payment run.
    pub billing: Option<AmcBilling>,
}

#[derive(Clone)]
pub struct AmcBilling {
    pub drop: std::path::PathBuf,
    pub runner: Option<billing::PaymentRunner>,
}

impl Target {
    pub fn client(&self, c: ClientCert) -> Option<&ClientTls> {
        self.tls.get(c.label())
    }
}

/// Progress events.
pub enum Event<'a> {
    Started { id: &'a str },
    Finished(&'a ScenarioOutcome),
}

pub type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// Run `selected` (indices into `pack.scenarios`) with at most `jobs` at once. Results come
/// back in pack order. Setting `stop` (an interruption) makes scenarios not yet started come
/// back `NotRun` and the running ones stop waiting for a GAP; setting `no_new` (fail-fast) only
/// keeps scenarios not yet started from starting.
pub async fn run(
    pack: Arc<Pack>,
    target: Arc<Target>,
    selected: Vec<usize>,
    jobs: usize,
    listener: Listener,
    stop: Arc<AtomicBool>,
    no_new: Arc<AtomicBool>,
) -> Vec<ScenarioOutcome> {
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    // A payment run settles every invoice the AMC received: a scenario asking for one runs
    // alone, so it never settles another scenario's invoices midway.
    let settle = Arc::new(tokio::sync::RwLock::new(()));
    let mut set = tokio::task::JoinSet::new();
    for (order, idx) in selected.into_iter().enumerate() {
        let (pack, target, sem, listener, stop, settle, no_new) = (
            pack.clone(),
            target.clone(),
            sem.clone(),
            listener.clone(),
            stop.clone(),
            settle.clone(),
            no_new.clone(),
        );
        set.spawn(async move {
            let sc = &pack.scenarios[idx];
            let pays = target.gap.is_none()
                && sc
                    .steps
                    .iter()
                    .any(|s| matches!(s.action, crate::pack::Action::PaymentRun { .. }));
            let (_w, _r) = if pays {
                (Some(settle.write_owned().await), None)
            } else {
                (None, Some(settle.read_owned().await))
            };
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            let outcome = if stop.load(Ordering::SeqCst) || no_new.load(Ordering::SeqCst) {
                not_run(
                    &pack,
                    sc,
                    "the run was interrupted before this scenario started",
                )
            } else {
                listener(&Event::Started { id: &sc.id });
                let o = run_scenario(&pack, &target, sc, stop.clone()).await;
                listener(&Event::Finished(&o));
                o
            };
            (order, outcome)
        });
    }
    let mut out = vec![];
    while let Some(r) = set.join_next().await {
        match r {
            Ok(x) => out.push(x),
            Err(e) => panic!("scenario task failed: {e}"),
        }
    }
    out.sort_by_key(|(o, _)| *o);
    out.into_iter().map(|(_, s)| s).collect()
}

fn base(sc: &Scenario, status: Status, reason: Option<String>) -> ScenarioOutcome {
    ScenarioOutcome {
        id: sc.id.clone(),
        title: sc.title.clone(),
        source: sc.at.to_string(),
        verifies: sc.verifies.clone(),
        tags: sc.tags.clone(),
        status,
        reason,
        duration_ms: 0.0,
        steps: vec![],
        requirements: BTreeMap::new(),
    }
}

pub fn not_run(pack: &Pack, sc: &Scenario, why: &str) -> ScenarioOutcome {
    let mut o = base(sc, Status::NotRun, Some(why.to_string()));
    o.requirements = attribution::Attribution::new(pack, sc).none();
    o
}

/// Run one scenario: its own variables, steps in order; each finding attributed to the
/// requirements it shows not met, and what the scenario showed of each requirement.
pub async fn run_scenario(
    pack: &Pack,
    target: &Target,
    sc: &Scenario,
    stop: Arc<AtomicBool>,
) -> ScenarioOutcome {
    let attr = attribution::Attribution::new(pack, sc);
    let mut completed = vec![false; sc.steps.len()];
    let mut o = steps(pack, target, sc, stop, &attr, &mut completed).await;
    o.requirements = attr.results(&o, &completed);
    o
}

async fn steps(
    pack: &Pack,
    target: &Target,
    sc: &Scenario,
    stop: Arc<AtomicBool>,
    attr: &attribution::Attribution<'_>,
    completed: &mut [bool],
) -> ScenarioOutcome {
    let missing: Vec<&String> = sc
        .requires
        .iter()
        .filter(|c| !target.capabilities.contains(c))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
        return base(
            sc,
            Status::Skipped,
            Some(format!(
                "requires capability {} not declared by the profile",
                names.join(", ")
            )),
        );
    }
    let started = std::time::Instant::now();
    let mut o = base(sc, Status::Passed, None);
    let mut scope = step::Scope::new(pack, target);
    if let Err(e) = scope.enter_scenario(sc) {
        o.status = Status::Errored;
        o.reason = Some(e);
        return o;
    }
    // A GAP scenario has its own lab (mirrors) and driver session.
    let needs_lab = target.gap.is_some()
        && sc
            .steps
            .iter()
            .any(|s| !matches!(s.action, crate::pack::Action::Call(_)));
    let mut session = match (&target.gap, needs_lab) {
        (Some(setup), true) => match gap::Session::start(pack, setup, sc, stop).await {
            Ok(s) => Some(s),
            Err(e) => {
                o.status = Status::Errored;
                o.reason = Some(e);
                return o;
            }
        },
        _ => None,
    };
    for (i, st) in sc.steps.iter().enumerate() {
        let r = match (&st.action, session.as_mut()) {
            (crate::pack::Action::Call(c), _) => {
                step::call(pack, target, &mut scope, st, c, i).await
            }
            (crate::pack::Action::PaymentRun { actor: None, .. }, None) => {
                let (runner, drop) = match &target.billing {
                    Some(b) => (b.runner.as_ref(), b.drop.as_path()),
                    None => (None, std::path::Path::new(".")),
                };
                billing::payment_run(runner, "amc", drop, Default::default(), st, i).await
            }
            (crate::pack::Action::ExpectReturn(er), None) => match &target.billing {
                Some(b) => {
                    billing::expect_return(
                        pack,
                        &b.drop,
                        "amc",
                        "establishment",
                        er,
                        &mut scope,
                        st,
                        i,
                    )
                    .await
                }
                None => step::StepRun {
                    outcome: billing::outcome(st, i),
                    flow: step::Flow::Error(format!(
                        "step {} at {}: the profile names no return drop (returns.dir)",
                        i + 1,
                        st.at
                    )),
                },
            },
            (_, Some(s)) => s.step(&mut scope, st, i).await,
            (_, None) => step::StepRun {
                outcome: billing::outcome(st, i),
                flow: step::Flow::Error(format!(
                    "step {} at {}: `{}` needs a GAP under test (sut.kind: gap)",
                    i + 1,
                    st.at,
                    st.label()
                )),
            },
        };
        let flow = r.flow;
        // Tolerated requests answered during the step come first, each as a step of its own.
        if let Some(s) = session.as_mut() {
            for mut side in s.take_side() {
                attr.attribute(&mut side, None);
                o.steps.push(side);
            }
        }
        let mut outcome = r.outcome;
        attr.attribute(&mut outcome, Some(i));
        completed[i] = !attribution::blocked(&outcome) && !matches!(flow, step::Flow::Error(_));
        o.steps.push(outcome);
        match flow {
            step::Flow::Continue => {}
            step::Flow::Stop => break,
            step::Flow::Error(why) => {
                o.status = Status::Errored;
                o.reason = Some(why);
                break;
            }
        }
    }
    if let Some(s) = session {
        let clean = o.status == Status::Passed && o.findings().next().is_none();
        for mut end in s.finish(sc.steps.len(), clean).await {
            attr.attribute(&mut end, None);
            o.steps.push(end);
        }
    }
    if o.status == Status::Passed {
        let first = o.findings().next().map(|f| f.message.clone());
        if let Some(message) = first {
            // A driver that failed before any check of the GAP did: the lab could not make the
            // GAP act, which shows nothing of the GAP (errored, no verdict).
            let only_driver = o.findings().all(|f| f.check == "driver");
            o.status = if only_driver {
                Status::Errored
            } else {
                Status::Failed
            };
            o.reason = Some(message);
        }
    }
    o.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    o
}
