//! JUnit XML (quick-junit): one testcase per scenario, named by its id, its class
//! `<pack id>.<scenario file stem>`, with `file` and `line` attributes (GitLab, Jenkins and
//! others link and group by them); requirement ids as properties, the first
//! finding as the failure message, every finding and diff in the body; the scenario's flow
//! (one line per exchange: SOAP calls, payment runs, return files) in its system-out.

use crate::outcome::{Outcome, ReqStatus, ScenarioOutcome, Status};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

fn details(s: &ScenarioOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "scenario {} — {}", s.id, s.title);
    let _ = writeln!(out, "source: {}", s.source);
    // The reason, unless it is a finding listed below (it would be read twice).
    if let Some(r) = &s.reason
        && !s.findings().any(|f| f.message == *r)
    {
        let _ = writeln!(out, "reason: {r}");
    }
    for (st, number) in s.steps.iter().zip(super::step_numbers(&s.steps)) {
        let ex = st.exchange.as_ref();
        let _ = writeln!(
            out,
            "\nstep {number} {}: {}",
            st.label,
            match ex {
                Some(e) => match (&e.response, &e.error) {
                    (Some(r), _) =>
                        format!("{} in {:.0} ms ({})", r.start_line, e.latency_ms, e.url),
                    (None, Some(err)) => format!("{:?}: {}", err.kind, err.message),
                    _ => String::new(),
                },
                None => "not sent".into(),
            }
        );
        for f in &st.findings {
            let _ = writeln!(out, "  - [{}] {}", f.check, f.message);
            if !f.requirements.is_empty() {
                let _ = writeln!(out, "    requirements: {}", f.requirements.join(", "));
            }
            // Expected and actual values, multi-line ones (a driver's output) indented.
            for (name, value) in [("expected", &f.expected), ("actual", &f.actual)] {
                let Some(v) = value else { continue };
                let mut lines = v.lines();
                let _ = writeln!(out, "    {name}: {}", lines.next().unwrap_or(""));
                for l in lines {
                    let _ = writeln!(out, "      {l}");
                }
            }
        }
        if let Some(d) = &st.body_diff {
            let _ = writeln!(out, "{d}");
        }
    }
    out
}

/// The scenario's exchanges in order, one line each: who sent what to whom, and how it ended
/// (e.g. `6. gap → amc-A DRE: 200 OK (1 ms)`, `9. amc-A → gap RSP RSP-F1.xml`).
fn flow(s: &ScenarioOutcome) -> String {
    let mut out = String::new();
    for (st, number) in s.steps.iter().zip(super::step_numbers(&s.steps)) {
        let Some(e) = &st.exchange else { continue };
        // A file (return drop) is named by its file name, a service by its URL.
        let target = match e.url.strip_prefix("file://") {
            Some(p) if e.operation == "RSP" => p.rsplit('/').next().unwrap_or(p).to_string(),
            Some(_) => String::new(),
            None => e.url.clone(),
        };
        let end = match (&e.response, &e.error) {
            (Some(r), _) => {
                let line = r.start_line.trim();
                let line = line.strip_prefix("HTTP/1.1 ").unwrap_or(line);
                format!(": {line} ({:.0} ms)", e.latency_ms)
            }
            (None, Some(err)) => format!(": {:?}: {}", err.kind, err.message),
            (None, None) => String::new(),
        };
        let what = [e.operation.as_str(), target.as_str()]
            .iter()
            .filter(|w| !w.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(out, "{number}. {} → {} {what}{end}", e.from, e.to);
    }
    out
}

/// The file and line of a scenario's `file:line:column` (or bare `file`) source.
fn source_file_line(source: &str) -> (&str, Option<u64>) {
    let mut parts = source.rsplitn(3, ':');
    let (col, line, file) = (parts.next(), parts.next(), parts.next());
    match (
        file,
        line.and_then(|l| l.parse().ok()),
        col.and_then(|c| c.parse::<u64>().ok()),
    ) {
        (Some(f), Some(l), Some(_)) => (f, Some(l)),
        _ => (source, None),
    }
}

pub fn render(o: &Outcome) -> String {
    let mut report = Report::new(format!("roclab {}", o.pack.id));
    let mut suite = TestSuite::new(o.pack.id.clone());
    suite.set_time(Duration::from_secs_f64(o.duration_ms / 1000.0));
    suite.add_property(Property::new("pack.version", o.pack.version.clone()));
    suite.add_property(Property::new("pack.sha256", o.pack.sha256.clone()));
    suite.add_property(Property::new("sut.profile", o.sut.profile.clone()));
    suite.add_property(Property::new("verdict", o.verdict.clone()));
    if o.interrupted {
        suite.add_property(Property::new("interrupted", "true"));
    }
    // What the verdict covers.
    suite.add_property(Property::new(
        "scope.complete",
        o.scope.complete.to_string(),
    ));
    if let Some(f) = &o.scope.filter {
        suite.add_property(Property::new("scope.filter", f.clone()));
    }
    if let Some(p) = &o.partition {
        suite.add_property(Property::new("scope.partition", p.clone()));
    }
    for c in &o.scope.missing_capabilities {
        suite.add_property(Property::new("scope.missing_capability", c.clone()));
    }
    for l in &o.scope.limits {
        suite.add_property(Property::new("scope.limit", l.clone()));
    }
    for r in &o.requirements {
        let key = match r.status {
            ReqStatus::Met => "requirement.met",
            ReqStatus::NotMet => "requirement.not_met",
            ReqStatus::NotEvaluated => "requirement.not_evaluated",
        };
        suite.add_property(Property::new(key, r.id.clone()));
    }
    for s in &o.scenarios {
        let status = match s.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Failed | Status::Errored => {
                let kind = if s.status == Status::Failed {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut st = TestCaseStatus::non_success(kind);
                let first = s
                    .findings()
                    .next()
                    .map(|f| f.message.clone())
                    .or_else(|| s.reason.clone())
                    .unwrap_or_default();
                st.set_message(first);
                st.set_type(
                    s.findings()
                        .next()
                        .map(|f| f.check.clone())
                        .unwrap_or("error".into()),
                );
                st.set_description(details(s));
                st
            }
            Status::Skipped | Status::NotRun => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(s.reason.clone().unwrap_or_default());
                st
            }
        };
        // The id names the test (a new title keeps the CI's history); the file groups them.
        let (file, line) = source_file_line(&s.source);
        let stem = Path::new(file)
            .file_stem()
            .map(|x| x.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut tc = TestCase::new(s.id.clone(), status);
        tc.set_classname(if stem.is_empty() {
            o.pack.id.clone()
        } else {
            format!("{}.{stem}", o.pack.id)
        });
        if !file.is_empty() {
            tc.extra.insert("file".into(), file.into());
        }
        if let Some(line) = line {
            tc.extra.insert("line".into(), line.to_string().into());
        }
        tc.add_property(Property::new("title", s.title.clone()));
        tc.set_time(Duration::from_secs_f64(s.duration_ms / 1000.0));
        for r in &s.verifies {
            tc.add_property(Property::new("requirement", r.clone()));
        }
        for (r, st) in &s.requirements {
            let key = match st {
                ReqStatus::Met => "requirement.met",
                ReqStatus::NotMet => "requirement.not_met",
                ReqStatus::NotEvaluated => "requirement.not_evaluated",
            };
            tc.add_property(Property::new(key, r.clone()));
        }
        for t in &s.tags {
            tc.add_property(Property::new("tag", t.clone()));
        }
        tc.add_property(Property::new("source", s.source.clone()));
        let f = flow(s);
        if !f.is_empty() {
            tc.set_system_out(f);
        }
        suite.add_test_case(tc);
    }
    report.add_test_suite(suite);
    report.to_string().expect("junit serialises")
}

#[cfg(test)]
mod tests {
    use super::source_file_line;

    #[test]
    fn file_and_line_of_a_source() {
        assert_eq!(
            source_file_line("scenarios/p/scenarios/02-sim.yaml:47:3"),
            ("scenarios/p/scenarios/02-sim.yaml", Some(47))
        );
        assert_eq!(source_file_line("a:b/c.yaml:4:1"), ("a:b/c.yaml", Some(4)));
        assert_eq!(source_file_line("c.yaml"), ("c.yaml", None));
        assert_eq!(source_file_line("c:d.yaml:x:1"), ("c:d.yaml:x:1", None));
        assert_eq!(source_file_line(""), ("", None));
    }
}
