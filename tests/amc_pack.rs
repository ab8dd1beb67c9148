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
        assert_eq!(r["status"], "passed", "{r}");
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

/// defect -> scenarios that must fail (every other one must pass).
fn table() -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(root().join("tests/data/amc-defects.yaml")).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

#[test]
fn the_defect_table_lists_every_defect() {
    let t = table();
    let listed: Vec<&str> = roclab::defects::AMC.iter().map(|d| d.name).collect();
    assert!(listed.len() >= 12);
    for d in &listed {
        assert!(
            t.contains_key(*d),
            "defect {d} missing from tests/data/amc-defects.yaml"
        );
    }
    for d in t.keys() {
        assert!(
            listed.contains(&d.as_str()),
            "{d} is not a defect of the reference AMC"
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
    let t = table();
    let dir = tempfile::tempdir().unwrap();
    // Run the defects a few at a time: each run is its own process and embedded AMC.
    let mut mismatches = vec![];
    let entries: Vec<(String, Vec<String>)> = t.into_iter().collect();
    for chunk in entries.chunks(6) {
        let handles: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|(defect, mut expected)| {
                let json = dir.path().join(format!("{defect}.json"));
                std::thread::spawn(move || {
                    let set = format!("sut.defects={defect}");
                    let mut args = vec![
                        "run".to_string(),
                        "scenarios/roc-v1-amc".into(),
                        "--set".into(),
                        set,
                        "--json".into(),
                        json.to_str().unwrap().into(),
                        "--junit".into(),
                        json.with_extension("xml").to_str().unwrap().into(),
                        "--jobs".into(),
                        "16".into(),
                    ];
                    if defect == "hang-del" {
                        args.extend(["--set".into(), "timeouts.request_ms=1500".into()]);
                    }
                    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
                    let (code, out, err) = run(&a);
                    expected.sort();
                    if code != 1 {
                        return Some(format!("{defect}: exit {code}, expected 1\n{out}\n{err}"));
                    }
                    let o = outcome(&json);
                    let failed = ids_with(&o, "failed");
                    let errored = ids_with(&o, "errored");
                    if failed != expected || !errored.is_empty() {
                        return Some(format!(
                            "{defect}:\n  expected to fail: {expected:?}\n  failed:           {failed:?}\n  errored: {errored:?}"
                        ));
                    }
                    if defect == "hang-del" {
                        // The hung calls fail on their timeout, the others still ran and passed.
                        for s in o["scenarios"].as_array().unwrap() {
                            if s["status"] == "failed" && !s["reason"].as_str().unwrap_or("").contains("timeout") {
                                return Some(format!("hang-del: {} failed without a timeout: {}", s["id"], s["reason"]));
                            }
                        }
                    }
                    None
                })
            })
            .collect();
        for h in handles {
            if let Some(m) = h.join().unwrap() {
                mismatches.push(m);
            }
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}
