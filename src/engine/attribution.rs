//! Which requirement each finding shows not met, and what a scenario showed of each
//! requirement it bears on.
//!
//! A finding is attributed, in this order, to: the requirements of the assertion that made it;
//! those of the pack's `attribution` rules its check family and location match; otherwise the
//! requirements of its step (the step's `verifies`, by default the scenario's requirements of
//! the step's operation) that the pack
//! does not attribute checks to ("owned" requirements are shown only by their own checks: an
//! amount that differs never makes the SLA or the echo requirement not met). Once a setup step
//! (one whose operation none of the scenario's requirements concerns) has failed, the findings
//! of the steps after it are its consequences and blame no requirement of the scenario.
//!
//! A requirement is `not_met` in a scenario when a finding is attributed to it; `met` when
//! every step of the scenario ran all its checks and no finding went unattributed; otherwise
//! `not_evaluated`. The per-step requirement sets only decide whom a finding blames.

use crate::outcome::{ReqStatus, ScenarioOutcome, Status, StepOutcome};
use crate::pack::{Pack, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

/// Check families after which the step's other checks could not run (no answer, no request,
/// the answer is not XML, the driver failed).
const BLOCKING: &[&str] = &["transport", "xml", "request", "driver"];

/// Whether a step's findings stopped its other checks from running.
pub fn blocked(out: &StepOutcome) -> bool {
    out.findings
        .iter()
        .any(|f| BLOCKING.contains(&f.check.as_str()))
}

pub struct Attribution<'a> {
    pack: &'a Pack,
    sc: &'a Scenario,
    /// A setup step (one whose operation none of the scenario's requirements concerns, e.g.
    /// the CLC that makes the engagement a return scenario invoices) had findings: what
    /// follows are its consequences, attributed to no requirement of the scenario.
    setup_failed: AtomicBool,
}

impl<'a> Attribution<'a> {
    pub fn new(pack: &'a Pack, sc: &'a Scenario) -> Self {
        Self {
            pack,
            sc,
            setup_failed: AtomicBool::new(false),
        }
    }

    /// The requirements a finding of step `step` (None: the scenario as a whole, e.g. its
    /// end) is attributed to when no rule names one: the step's `verifies`, else the
    /// scenario's requirements of the step's operation (those declaring no operation
    /// included), without the requirements the pack attributes checks to.
    fn step_set(&self, step: Option<usize>) -> Vec<&'a String> {
        let st = step.and_then(|i| self.sc.steps.get(i));
        if let Some(st) = st.filter(|st| !st.verifies.is_empty()) {
            return st.verifies.iter().collect();
        }
        let op = st.and_then(|s| s.operation());
        self.sc
            .verifies
            .iter()
            .filter(|r| !self.pack.owned.contains(*r))
            .filter(|r| {
                let ops = self
                    .pack
                    .requirements
                    .iter()
                    .find(|x| &x.id == *r)
                    .map(|x| x.operations.as_slice())
                    .unwrap_or(&[]);
                ops.is_empty() || op.is_none_or(|op| ops.iter().any(|o| o == op))
            })
            .collect()
    }

    /// Attribute every finding of a step outcome that carries no requirement yet.
    pub fn attribute(&self, out: &mut StepOutcome, step: Option<usize>) {
        let set = if self.setup_failed.load(Ordering::Relaxed) && step.is_some() {
            vec![]
        } else {
            self.step_set(step)
        };
        if step.is_some() && set.is_empty() && !out.findings.is_empty() {
            self.setup_failed.store(true, Ordering::Relaxed);
        }
        for f in out
            .findings
            .iter_mut()
            .filter(|f| f.requirements.is_empty())
        {
            let mut reqs: BTreeSet<&String> = BTreeSet::new();
            for r in &self.pack.attribution {
                if r.matches(&f.check, f.location.as_deref()) {
                    reqs.extend(r.verifies.iter());
                }
            }
            if reqs.is_empty() {
                reqs.extend(set.iter().copied());
            }
            f.requirements = reqs.into_iter().cloned().collect();
        }
    }

    /// What the scenario showed of each requirement it bears on: not met when a finding is
    /// attributed to it; met when every step ran all its checks (a requirement may need the
    /// whole flow: two engagements are shown distinct only by cancelling both); otherwise not
    /// evaluated. `completed[i]`: step `i` ran all its checks.
    pub fn results(&self, o: &ScenarioOutcome, completed: &[bool]) -> BTreeMap<String, ReqStatus> {
        let mut out = self.none();
        // A finding attributed to no requirement (a step whose operation none of the
        // scenario's requirements concerns): the flow did not go as designed, so what the
        // scenario was to show is not shown.
        let astray = o.findings().any(|f| f.requirements.is_empty());
        let ran = matches!(o.status, Status::Passed | Status::Failed)
            && completed.iter().all(|c| *c)
            && !astray;
        if ran {
            out.values_mut().for_each(|v| *v = ReqStatus::Met);
        }
        for f in o.findings() {
            for r in &f.requirements {
                out.insert(r.clone(), ReqStatus::NotMet);
            }
        }
        out
    }

    /// Every requirement the scenario bears on, not evaluated (skipped, not run, errored before
    /// anything ran).
    pub fn none(&self) -> BTreeMap<String, ReqStatus> {
        let mut all: BTreeSet<&String> = self.sc.verifies.iter().collect();
        for st in &self.sc.steps {
            all.extend(st.verifies.iter());
        }
        all.into_iter()
            .map(|r| (r.clone(), ReqStatus::NotEvaluated))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Finding;
    use std::path::Path;

    fn v1() -> Pack {
        crate::pack::load(Path::new("scenarios/roc-v1-amc"), &BTreeSet::new())
            .expect("the V1 pack loads")
            .pack
    }

    fn finding(check: &str, location: Option<&str>, step: usize) -> Finding {
        Finding {
            location: location.map(str::to_string),
            ..Finding::new(check, "x".into(), step)
        }
    }

    fn outcome(sc: &Scenario, steps: Vec<StepOutcome>, status: Status) -> ScenarioOutcome {
        ScenarioOutcome {
            id: sc.id.clone(),
            title: sc.title.clone(),
            source: String::new(),
            verifies: sc.verifies.clone(),
            tags: vec![],
            status,
            reason: None,
            duration_ms: 0.0,
            steps,
            requirements: BTreeMap::new(),
        }
    }

    #[test]
    fn findings_blame_the_rule_or_the_step_operation() {
        let pack = v1();
        let sc = pack.scenarios.iter().find(|s| s.id == "DEL-OK").unwrap();
        let a = Attribution::new(&pack, sc);
        let mut del = StepOutcome::new(1, "DEL".into());
        del.findings = vec![
            finding("transport", None, 1),
            finding("latency", None, 1),
            finding(
                "body",
                Some("/Envelope/Body/delReponse/enteteReponse/idFluxRequete"),
                1,
            ),
            finding("body", Some("/Envelope/Body/delReponse/dateAnnulation"), 1),
        ];
        a.attribute(&mut del, Some(1));
        let reqs: Vec<Vec<String>> = del
            .findings
            .iter()
            .map(|f| f.requirements.clone())
            .collect();
        assert_eq!(
            reqs,
            [
                vec!["AMC-DEL-01".to_string()],
                vec!["AMC-SLA-01".to_string()],
                vec!["AMC-MSG-01".to_string()],
                vec!["AMC-DEL-01".to_string()],
            ]
        );
        // The CLC before it: a wrong amount blames the CLC requirement, never DEL's.
        let mut clc = StepOutcome::new(0, "CLC".into());
        clc.findings = vec![finding(
            "body",
            Some("/Envelope/Body/clcReponse/totalAmc"),
            0,
        )];
        a.attribute(&mut clc, Some(0));
        assert_eq!(clc.findings[0].requirements, ["AMC-CLC-02"]);
        // An assertion's own requirements are kept.
        let mut own = StepOutcome::new(0, "CLC".into());
        own.findings = vec![Finding {
            requirements: vec!["AMC-CALC-02".into()],
            ..finding("assert", None, 0)
        }];
        a.attribute(&mut own, Some(0));
        assert_eq!(own.findings[0].requirements, ["AMC-CALC-02"]);
    }

    #[test]
    fn after_a_failed_setup_step_findings_blame_nothing() {
        let pack = crate::pack::load(Path::new("scenarios/roc-v2-amc"), &BTreeSet::new())
            .expect("the V2 pack loads")
            .pack;
        let sc = pack
            .scenarios
            .iter()
            .find(|s| s.id == "RSP-TWO-PAYMENTS")
            .unwrap();
        let ret = sc
            .steps
            .iter()
            .position(|s| matches!(s.action, crate::pack::Action::ExpectReturn(_)))
            .unwrap();
        // The return file alone is wrong: the return requirements are not met.
        let a = Attribution::new(&pack, sc);
        let mut rsp = StepOutcome::new(ret, "expect return file".into());
        rsp.findings = vec![finding("body", Some("/rsp/montantPaye"), ret)];
        a.attribute(&mut rsp, Some(ret));
        assert!(
            rsp.findings[0]
                .requirements
                .iter()
                .all(|r| r.starts_with("AMC2-RSP")),
            "{:?}",
            rsp.findings[0].requirements
        );
        assert!(!rsp.findings[0].requirements.is_empty());
        // The CLC that makes the engagement computed wrong first: the return file's finding is
        // its consequence and blames no return requirement.
        let a = Attribution::new(&pack, sc);
        let mut clc = StepOutcome::new(0, "CLC".into());
        clc.findings = vec![finding(
            "body",
            Some("/Envelope/Body/clcReponse/totalAmc"),
            0,
        )];
        a.attribute(&mut clc, Some(0));
        assert!(clc.findings[0].requirements.is_empty());
        let mut rsp = StepOutcome::new(ret, "expect return file".into());
        rsp.findings = vec![finding("body", Some("/rsp/montantPaye"), ret)];
        a.attribute(&mut rsp, Some(ret));
        assert!(rsp.findings[0].requirements.is_empty());
    }

    #[test]
    fn a_requirement_is_met_only_where_every_step_ran() {
        let pack = v1();
        let sc = pack.scenarios.iter().find(|s| s.id == "DEL-OK").unwrap();
        let a = Attribution::new(&pack, sc);
        let ok = |i: usize, label: &str| StepOutcome::new(i, label.into());
        // Both steps ran and passed: every requirement met.
        let o = outcome(sc, vec![ok(0, "CLC"), ok(1, "DEL")], Status::Passed);
        let r = a.results(&o, &[true, true]);
        assert!(r.values().all(|s| *s == ReqStatus::Met), "{r:?}");
        assert_eq!(r.len(), sc.verifies.len());
        // The DEL got no answer: DEL-01 not met, the others not evaluated.
        let mut del = ok(1, "DEL");
        del.findings = vec![finding("transport", None, 1)];
        a.attribute(&mut del, Some(1));
        assert!(blocked(&del));
        let o = outcome(sc, vec![ok(0, "CLC"), del], Status::Failed);
        let r = a.results(&o, &[true, false]);
        assert_eq!(r["AMC-DEL-01"], ReqStatus::NotMet);
        assert_eq!(r["AMC-CLC-02"], ReqStatus::NotEvaluated);
        assert_eq!(r["AMC-SLA-01"], ReqStatus::NotEvaluated);
        // A finding attributed to nothing: nothing is claimed met.
        let mut stray = ok(1, "DEL");
        stray.findings = vec![finding("body", None, 1)];
        let o = outcome(sc, vec![ok(0, "CLC"), stray], Status::Failed);
        let r = a.results(&o, &[true, true]);
        assert!(r.values().all(|s| *s == ReqStatus::NotEvaluated), "{r:?}");
        // Errored or skipped: nothing evaluated.
        let o = outcome(sc, vec![], Status::Errored);
        assert!(
            a.results(&o, &[false, false])
                .values()
                .all(|s| *s == ReqStatus::NotEvaluated)
        );
    }
}
