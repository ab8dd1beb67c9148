//! Reports across runs: a pack run in three shards and merged equals one run; the evidence
//! bundle holds every exchange with a manifest whose hashes verify.

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// (scenario id -> status) and JUnit testcase names of an outcome / JUnit file.
fn verdicts(o: &serde_json::Value) -> BTreeMap<String, String> {
    o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn testcases(junit: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(junit).unwrap();
    let root = roclab::xml::parse(&text).unwrap();
    let mut names: Vec<String> = root
        .elements()
        .flat_map(|suite| suite.elements())
        .filter(|e| e.local == "testcase")
        .map(|e| {
            let name = e
                .attrs
                .iter()
                .find(|a| a.local == "name")
                .unwrap()
                .value
                .clone();
            let failed = e.elements().any(|c| c.local == "failure");
            format!("{name} failed={failed}")
        })
        .collect();
    names.sort();
    names
}

#[test]
fn three_shards_merged_equal_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    // A defect, so that the comparison covers failures too.
    let common = ["--set", "sut.defects=twins-confused"];
    let (code, _, err) = run(&[
        &[
            "run",
            "scenarios/roc-v1-amc",
            "--json",
            &p("all.json"),
            "--junit",
            &p("all.xml"),
        ][..],
        &common,
    ]
    .concat());
    assert_eq!(code, 1, "{err}");
    for k in 1..=3 {
        let share = format!("{k}/3");
        let (code, _, err) = run(&[
            &[
                "run",
                "scenarios/roc-v1-amc",
                "--partition",
                &share,
                "--json",
                &p(&format!("s{k}.json")),
                "--junit",
                &p(&format!("s{k}.xml")),
            ][..],
            &common,
        ]
        .concat());
        assert!(code == 0 || code == 1, "{err}");
        assert_eq!(
            outcome(&dir.path().join(format!("s{k}.json")))["partition"],
            share
        );
    }
    let (code, out, err) = run(&[
        "report",
        "merge",
        &p("s1.json"),
        &p("s2.json"),
        &p("s3.json"),
        "--json",
        &p("merged.json"),
        "--junit",
        &p("merged.xml"),
    ]);
    assert_eq!(code, 1, "{out}{err}");
    let all = outcome(&dir.path().join("all.json"));
    let merged = outcome(&dir.path().join("merged.json"));
    assert_eq!(verdicts(&all), verdicts(&merged));
    assert_eq!(all["counts"], merged["counts"]);
    assert_eq!(all["verdict"], merged["verdict"]);
    let reqs = |o: &serde_json::Value| -> Vec<(String, String)> {
        o["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().into(),
                    r["status"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(reqs(&all), reqs(&merged));
    assert_eq!(
        testcases(&dir.path().join("all.xml")),
        testcases(&dir.path().join("merged.xml"))
    );
    // Same order as the pack.
    let ids = |o: &serde_json::Value| -> Vec<String> {
        o["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&all), ids(&merged));
    // A missing share is refused: the merged report would not be the whole run.
    let (code, _, err) = run(&["report", "merge", &p("s1.json"), &p("s3.json")]);
    assert_eq!(code, 2);
    assert!(err.contains("2/3 missing"), "{err}");
}

#[test]
fn the_evidence_bundle_holds_every_exchange_and_its_manifest_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "tag:clc",
        "--evidence",
        ev.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("manifest.json")).unwrap()).unwrap();
    let o = outcome(&json);
    assert_eq!(manifest["pack"]["sha256"], o["pack"]["sha256"]);
    assert_eq!(manifest["profile"]["sha256"].as_str().unwrap().len(), 64);
    let files = manifest["files"].as_array().unwrap();
    let exchanges: usize = o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .filter(|st| st.get("exchange").is_some())
        .count();
    let requests = files
        .iter()
        .filter(|f| f["path"].as_str().unwrap().ends_with(".request.http"))
        .count();
    assert_eq!(requests, exchanges);
    for f in files {
        let bytes = std::fs::read(ev.join(f["path"].as_str().unwrap())).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            f["sha256"].as_str().unwrap(),
            "{}",
            f["path"]
        );
    }
    // A request file is the message as sent: start line, headers, blank line, body.
    let first = files
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(".request.http"))
        .unwrap();
    let text = std::fs::read_to_string(ev.join(first["path"].as_str().unwrap())).unwrap();
    assert!(text.starts_with("POST /"), "{text}");
    assert!(text.contains("\r\n\r\n<?xml"), "{text}");
}

/// The HTML report of a failing run, from the outside: verdict, failed scenarios first, the
/// requirement matrix, unique ids, both languages.
#[test]
fn the_html_report_of_a_failing_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let (code, _, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--set",
        "sut.defects=float-rounding",
        "--html",
        &p("fr.html"),
        "--json",
        &p("o.json"),
        "--junit",
        &p("j.xml"),
    ]);
    assert_eq!(code, 1, "{err}");
    let o = outcome(&dir.path().join("o.json"));
    let html = std::fs::read_to_string(dir.path().join("fr.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<html lang=\"fr\""));
    assert!(html.contains("NON CONFORME"));
    // Failed scenarios come before the passed ones.
    let pos = |id: &str| {
        html.find(&format!("id=\"s-{id}\""))
            .unwrap_or_else(|| panic!("{id}"))
    };
    let failed = ids_with(&o, "failed");
    let passed = ids_with(&o, "passed");
    assert_eq!(failed.len(), 2);
    for f in &failed {
        for p in &passed {
            assert!(pos(f) < pos(p), "{f} after {p}");
        }
    }
    // One row per requirement, each anchored.
    for r in o["requirements"].as_array().unwrap() {
        assert!(html.contains(&format!("id=\"r-{}\"", r["id"].as_str().unwrap())));
    }
    // The differing amount is shown in the diff.
    assert!(html.contains("12.34") && html.contains("12.35"));
    // Ids are unique.
    let mut ids: Vec<&str> = html
        .split(" id=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    // English on request.
    let (_, _, _) = run(&[
        "report",
        "merge",
        &p("o.json"),
        "--html",
        &p("en.html"),
        "--lang",
        "en",
    ]);
    let en = std::fs::read_to_string(dir.path().join("en.html")).unwrap();
    assert!(en.contains("<html lang=\"en\"") && en.contains("not conformant"));
}

/// The French report (the default) shows a requirement's `statement_fr`, the English report its
/// `statement`; the French statement travels in outcome.json, so a merged report shows it too.
#[test]
fn the_french_report_shows_the_french_requirement_statements() {
    const EN: &str = "For a SEJOUR, servicesDisponibles lists SIM, CLC and DEL (in any order).";
    const FR: &str = "Pour une prise en charge SEJOUR, servicesDisponibles liste SIM, CLC et DEL \
                      (dans un ordre quelconque).";
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    // The matrix row of AMC-IDB-16 (verified by IDB-OK-P01).
    let row = |html: &str| -> String {
        let start = html.find("id=\"r-AMC-IDB-16\"").expect("row of AMC-IDB-16");
        let end = start + html[start..].find("</tr>").expect("end of the row");
        html[start..end].to_string()
    };
    for (lang, file) in [(None, "fr.html"), (Some("en"), "en.html")] {
        let mut args = vec!["run", "scenarios/roc-v1-amc", "--filter", "id:IDB-OK-P01"];
        let (html, json) = (p(file), p(&format!("{file}.json")));
        args.extend(["--html", &html, "--json", &json]);
        if let Some(l) = lang {
            args.extend(["--lang", l]);
        }
        let (code, _, err) = run(&args);
        assert_eq!(code, 0, "{err}");
        assert_eq!(
            ids_with(&outcome(Path::new(&json)), "passed"),
            ["IDB-OK-P01"]
        );
    }
    let fr = std::fs::read_to_string(p("fr.html")).unwrap();
    assert!(fr.contains("<html lang=\"fr\""));
    assert!(row(&fr).contains(FR), "{}", row(&fr));
    assert!(!fr.contains(EN));
    let en = std::fs::read_to_string(p("en.html")).unwrap();
    assert!(en.contains("<html lang=\"en\""));
    assert!(row(&en).contains(EN), "{}", row(&en));
    assert!(!en.contains(FR));
    // From outcome.json: the merged French report keeps the French statement.
    let (code, _, err) = run(&[
        "report",
        "merge",
        &p("fr.html.json"),
        "--html",
        &p("merged.html"),
    ]);
    assert_eq!(code, 0, "{err}");
    let merged = std::fs::read_to_string(p("merged.html")).unwrap();
    assert!(row(&merged).contains(FR), "{}", row(&merged));
}

/// Every requirement of the four reference packs has a French statement, distinct from the
/// English one.
#[test]
fn every_requirement_of_the_reference_packs_has_a_french_statement() {
    for name in ["roc-v1-amc", "roc-v2-amc", "roc-v1-gap", "roc-v2-gap"] {
        let text = std::fs::read_to_string(pack(name).join("pack.yaml")).unwrap();
        let doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let reqs = doc["requirements"].as_object().expect("requirements");
        assert!(!reqs.is_empty(), "{name}");
        for (id, r) in reqs {
            let fr = r["statement_fr"].as_str().unwrap_or_default().trim();
            assert!(!fr.is_empty(), "{name}: {id} has no statement_fr");
            assert_ne!(fr, r["statement"].as_str().unwrap().trim(), "{name}: {id}");
        }
    }
}
