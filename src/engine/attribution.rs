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
}

impl<'a> Attribution<'a> {
    pub fn new(pack: &'a Pack, sc: &'a Scenario) -> Self {
        Self { pack, sc }
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
        let set = self.step_set(step);
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
        let ran =
            matches!(o.status, Status::Passed | Status::Failed) && completed.iter().all(|c| *c);
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
