//! The AMC-side pack against the embedded reference AMC, over real TLS on 127.0.0.1:
//! it passes as is, and each defect switch fails exactly the scenarios of its rule.

mod common;

use common::*;
use std::collections::BTreeMap;

#[test]
fn pack_passes_against_the_reference_amc() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let junit = dir.path().join("j.xml");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let o = outcome(&json);
    assert_eq!(o["verdict"], "conformant");
    let n = o["scenarios"].as_array().unwrap().len();
    assert!(n >= 40, "{n} scenarios");
    assert_eq!(ids_with(&o, "passed").len(), n);
    // Every requirement is verified and passed.
    for r in o["requirements"].as_array().unwrap() {
        assert_eq!(r["status"], "met", "{r}");
    }
    // Every answered exchange is recorded with its bytes, timing and TLS facts.
    let s = &o["scenarios"][0]["steps"][0]["exchange"];
    assert!(s["request"]["body"].as_str().unwrap().contains("Envelope"));
    assert!(s["response"]["body"].as_str().unwrap().contains("Envelope"));
    assert!(s["tls"]["version"].as_str().unwrap().starts_with("TLSv1."));
    assert!(
        s["tls"]["local_subject"]
            .as_str()
            .unwrap()
            .contains("750712184")
    );
    // The JUnit file is well-formed and has one testcase per scenario.
    let text = std::fs::read_to_string(&junit).unwrap();
    let root = roclab::xml::parse(&text).expect("junit is well-formed");
    let suite = root.elements().next().unwrap();
    assert_eq!(
        suite.elements().filter(|e| e.local == "testcase").count(),
        n
    );
    assert!(text.contains("name=\"requirement\""));
}

fn table() -> BTreeMap<String, Vec<String>> {
    defect_table("tests/data/amc-defects.yaml")
}

/// Every defect of the reference AMC is shown to fail scenarios of the V1 pack or of the V2
/// pack (a V2 or billing rule cannot be broken in a V1 exchange). One exception: `rsp-not-atomic`
/// shows only while a file is being written, which no step of a pack observes; the reference
/// AMC's own test (`mirror::amc` tests, a reader polling the drop every millisecond) shows it.
#[test]
fn the_defect_table_lists_every_defect() {
    let v1 = table();
    let v2 = defect_table("tests/data/amc-v2-defects.yaml");
    let listed: Vec<&str> = roclab::defects::AMC.iter().map(|d| d.name).collect();
    assert!(listed.len() >= 12);
    for d in v1.keys().chain(v2.keys()) {
        assert!(
            listed.contains(&d.as_str()),
            "{d} is not a defect of the reference AMC"
        );
    }
    for d in listed.iter().filter(|d| **d != "rsp-not-atomic") {
        let shown = |t: &BTreeMap<String, Vec<String>>| t.get(*d).is_some_and(|f| !f.is_empty());
        assert!(
            shown(&v1) || shown(&v2),
            "defect {d}: no scenario of tests/data/amc-defects.yaml or amc-v2-defects.yaml fails with it"
        );
    }
    let (code, out, _) = run(&["defects"]);
    assert_eq!(code, 0);
    for d in &listed {
        assert!(out.contains(d));
    }
}

#[test]
fn each_defect_fails_exactly_the_scenarios_of_its_rule() {
    // The hanging DEL is cut by a short request timeout: those cases fail on it, the others run.
    let mismatches = check_defects("scenarios/roc-v1-amc", table(), |d| {
        if d == "hang-del" {
            vec!["--set".into(), "timeouts.request_ms=1500".into()]
        } else {
            vec![]
        }
    });
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

#[test]
fn a_hanging_sut_fails_those_cases_on_their_timeout_and_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--set",
        "sut.defects=hang-del",
        "--set",
        "timeouts.request_ms=1500",
        "--jobs",
        "16",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    let o = outcome(&json);
    let failed = ids_with(&o, "failed");
    assert!(!failed.is_empty());
    assert!(ids_with(&o, "passed").len() > 40);
    for s in o["scenarios"].as_array().unwrap() {
        if s["status"] == "failed" {
            let reason = s["reason"].as_str().unwrap_or("");
            assert!(
                reason.contains("timeout"),
                "{} failed without a timeout: {reason}",
                s["id"]
            );
        }
    }
}

#[test]
fn v2_pack_passes_against_the_reference_amc() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v2-amc",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
        "--html",
        dir.path().join("r.html").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let o = outcome(&json);
    let n = o["scenarios"].as_array().unwrap().len();
    assert!(n >= 40, "{n} scenarios");
    assert_eq!(ids_with(&o, "passed").len(), n);
    // The billing flow is recorded: the payment run and the return file among the exchanges.
    let ops: Vec<String> = o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .filter_map(|st| st["exchange"]["operation"].as_str().map(str::to_string))
        .collect();
    for op in ["DRE", "ANF", "payment run", "RSP"] {
        assert!(ops.iter().any(|o| o == op), "no {op} exchange");
    }
}

#[test]
fn without_the_capabilities_v2_scenarios_are_skipped_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v2-amc",
        "--set",
        "capabilities=",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let o = outcome(&json);
    let skipped = ids_with(&o, "skipped");
    assert!(!skipped.is_empty());
    let s = o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "skipped")
        .unwrap();
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("not declared by the profile")
    );
}

#[test]
fn each_v2_defect_fails_exactly_the_scenarios_of_its_rule() {
    let mismatches = check_defects(
        "scenarios/roc-v2-amc",
        defect_table("tests/data/amc-v2-defects.yaml"),
        |_| vec![],
    );
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}
