//! Which requirement each finding shows not met, and what a scenario showed of each
//! requirement it bears on.
//!
//! A finding is attributed, in this order, to: the requirements of the assertion that made it;
//! those of the pack's `attribution` rules its check family and location match; otherwise the
//! requirements of its step (the step's `verifies`, by default the scenario's) that the pack
//! does not attribute checks to ("owned" requirements are shown only by their own checks: an
//! amount that differs never makes the SLA or the echo requirement not met).
//!
//! A requirement is `met` in a scenario when every step bearing on it ran its checks and none
//! of them failed; `not_met` when a finding is attributed to it; otherwise `not_evaluated`.

use crate::outcome::{ReqStatus, ScenarioOutcome, Status, StepOutcome};
use crate::pack::{Pack, Scenario};
use std::collections::{BTreeMap, BTreeSet};

/// Check families after which the step's other checks could not run (no answer, no request,
/// the answer is not XML, the driver failed).
const BLOCKING: &[&str] = &["transport", "xml", "request", "driver", "tls"];

/// Whether a step's findings stopped its other checks from running.
pub fn blocked(out: &StepOutcome) -> bool {
    out.findings
        .iter()
        .any(|f| BLOCKING.contains(&f.check.as_str()))
}

pub struct Attribution<'a> {
    pack: &'a Pack,
    sc: &'a Scenario,
}

impl<'a> Attribution<'a> {
    pub fn new(pack: &'a Pack, sc: &'a Scenario) -> Self {
        Self { pack, sc }
    }

    /// The requirements step `step` (None: the scenario as a whole, e.g. its end) verifies.
    fn step_set(&self, step: Option<usize>) -> &'a [String] {
        match step.and_then(|i| self.sc.steps.get(i)) {
            Some(st) if !st.verifies.is_empty() => &st.verifies,
            _ => &self.sc.verifies,
        }
    }

    /// Attribute every finding of a step outcome that carries no requirement yet.
    pub fn attribute(&self, out: &mut StepOutcome, step: Option<usize>) {
        let set = self.step_set(step);
        for f in out.findings.iter_mut().filter(|f| f.requirements.is_empty()) {
            let mut reqs: BTreeSet<&String> = BTreeSet::new();
            for r in &self.pack.attribution {
                if r.matches(&f.check, f.location.as_deref()) {
                    reqs.extend(r.verifies.iter());
                }
            }
            if reqs.is_empty() {
                reqs.extend(set.iter().filter(|r| !self.pack.owned.contains(*r)));
            }
            f.requirements = reqs.into_iter().cloned().collect();
        }
    }

    /// The requirements step `i` bears on: its own set, and the scenario's requirements the
    /// pack checks on every step (owned by a rule or an assertion).
    fn bears_on(&self, i: usize) -> BTreeSet<&'a String> {
        let mut s: BTreeSet<&String> = self.step_set(Some(i)).iter().collect();
        s.extend(
            self.sc
                .verifies
                .iter()
                .filter(|r| self.pack.owned.contains(*r)),
        );
        s
    }

    /// What the scenario showed of each requirement it bears on. `completed[i]`: step `i` ran
    /// all its checks.
    pub fn results(&self, o: &ScenarioOutcome, completed: &[bool]) -> BTreeMap<String, ReqStatus> {
        let mut all: BTreeSet<&String> = self.sc.verifies.iter().collect();
        for (i, st) in self.sc.steps.iter().enumerate() {
            all.extend(st.verifies.iter());
            all.extend(self.bears_on(i));
        }
        let not_met: BTreeSet<&String> = o.findings().flat_map(|f| f.requirements.iter()).collect();
        let ran = matches!(o.status, Status::Passed | Status::Failed);
        let mut out = BTreeMap::new();
        for r in all.iter().chain(not_met.iter()) {
            let status = if not_met.contains(r) {
                ReqStatus::NotMet
            } else if !ran {
                ReqStatus::NotEvaluated
            } else {
                let steps: Vec<usize> = (0..self.sc.steps.len())
                    .filter(|i| self.bears_on(*i).contains(r))
                    .collect();
                // A requirement no step bears on explicitly is borne by the whole scenario.
                let done = if steps.is_empty() {
                    completed.iter().all(|c| *c)
                } else {
                    steps.iter().all(|i| completed.get(*i).copied().unwrap_or(false))
                };
                if done {
                    ReqStatus::Met
                } else {
                    ReqStatus::NotEvaluated
                }
            };
            out.insert((*r).clone(), status);
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
