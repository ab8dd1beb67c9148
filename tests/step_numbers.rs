//! Requests a GAP scenario tolerates are answered as steps of their own, during a real step:
//! the reports never show two steps with the same number.

mod common;

use common::*;
use std::collections::BTreeSet;

#[test]
fn tolerated_exchanges_never_share_a_step_number() {
    let dir = tempfile::tempdir().unwrap();
    let (json, junit, html) = (
        dir.path().join("o.json"),
        dir.path().join("j.xml"),
        dir.path().join("r.html"),
    );
    // The reference GAP looks up the annuaire before its IDB: the scenario tolerates the
    // lookup, answered during the step that waits for the IDB.
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-gap",
        "--filter",
        "FLOW-CANCEL-AFTER-COMPUTE",
        "--lang",
        "en",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let o = outcome(&json);
    let steps = o["scenarios"][0]["steps"].as_array().unwrap();
    let indices: Vec<u64> = steps.iter().map(|s| s["index"].as_u64().unwrap()).collect();
    let distinct: BTreeSet<&u64> = indices.iter().collect();
    assert!(
        distinct.len() < indices.len(),
        "the scenario no longer has a tolerated exchange: {indices:?}"
    );
    let side = steps
        .iter()
        .find(|s| s["label"].as_str().unwrap().starts_with("tolerated"))
        .unwrap();
    assert_eq!(
        side["label"], "tolerated annuaire search (during step 2)",
        "{side}"
    );

    // HTML: the numbers of the step list.
    let html = std::fs::read_to_string(&html).unwrap();
    let numbers: Vec<&str> = html
        .split("<p class=\"sth\"><b>Step ")
        .skip(1)
        .map(|rest| rest.split("</b>").next().unwrap())
        .collect();
    assert_eq!(numbers.len(), steps.len(), "{numbers:?}");
    let unique: BTreeSet<&&str> = numbers.iter().collect();
    assert_eq!(unique.len(), numbers.len(), "{numbers:?}");
    assert_eq!(&numbers[..3], ["1", "2a", "2"], "{numbers:?}");

    // JUnit: the flow numbers each exchange once.
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("2a. gap → annuaire search"), "{junit}");
    assert!(junit.contains("2. gap → amc-A IDB"), "{junit}");
}
