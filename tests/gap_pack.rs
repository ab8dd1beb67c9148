//! The GAP-side pack against the embedded reference GAP: roclab's mirrors over real TLS on
//! 127.0.0.1; it passes as is, and each defect switch of the GAP fails exactly the scenarios
//! of its obligation.

mod common;

use common::*;

const PACK: &str = "scenarios/roc-v1-gap";

#[test]
fn pack_passes_against_the_reference_gap() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let junit = dir.path().join("j.xml");
    let (code, out, err) = run(&[
        "run",
        PACK,
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let o = outcome(&json);
    let n = o["scenarios"].as_array().unwrap().len();
    assert!(n >= 30, "{n} scenarios");
    assert_eq!(ids_with(&o, "passed").len(), n);
    for r in o["requirements"].as_array().unwrap() {
        assert_eq!(r["status"], "passed", "{r}");
    }
    // Requests the GAP sent are recorded with the client certificate it presented.
    let recorded = o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap().iter())
        .filter_map(|st| st.get("exchange"))
        .find(|ex| ex["from"] == "gap")
        .expect("an exchange sent by the GAP");
    assert!(
        recorded["tls"]["peer_subject"]
            .as_str()
            .unwrap()
            .contains("750712184")
    );
    assert!(
        recorded["request"]["body"]
            .as_str()
            .unwrap()
            .contains("Envelope")
    );
    let text = std::fs::read_to_string(&junit).unwrap();
    roclab::xml::parse(&text).expect("junit is well-formed");
}

#[test]
fn the_defect_table_lists_every_defect() {
    let t = defect_table("tests/data/gap-defects.yaml");
    let listed: Vec<&str> = roclab::defects::GAP.iter().map(|d| d.name).collect();
    assert!(listed.len() >= 10);
    for d in &listed {
        assert!(
            t.contains_key(*d),
            "defect {d} missing from tests/data/gap-defects.yaml"
        );
    }
    for d in t.keys() {
        assert!(
            listed.contains(&d.as_str()),
            "{d} is not a defect of the reference GAP"
        );
    }
}

#[test]
fn each_defect_fails_exactly_the_scenarios_of_its_obligation() {
    let mismatches = check_defects(
        PACK,
        defect_table("tests/data/gap-defects.yaml"),
        |_| vec![],
    );
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}
