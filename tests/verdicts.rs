//! Verdicts an auditor can sign: findings name the requirements they show not met, a partial
//! run says what it covers, and the exit code says which of the two it is.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Requirement id -> status, from an outcome.
fn statuses(o: &Value) -> BTreeMap<String, String> {
    o["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn with(m: &BTreeMap<String, String>, status: &str) -> Vec<String> {
    m.iter()
        .filter(|(_, s)| *s == status)
        .map(|(k, _)| k.clone())
        .collect()
}

/// A DEL that never answers makes the DEL requirements not met, and no computation
/// requirement: the CLCs before it answered right.
#[test]
fn a_hanging_del_blames_the_del_requirements_only() {
    let (code, out, o, _, _) = run_with_reports(
        "scenarios/roc-v1-amc",
        &[
            "--set",
            "sut.defects=hang-del",
            "--set",
            "timeouts.request_ms=4500",
            "--jobs",
            "8",
        ],
    );
    assert_eq!(code, 1, "{out}");
    let m = statuses(&o);
    let not_met = with(&m, "not_met");
    for r in ["AMC-DEL-01", "AMC-DEL-02", "AMC-DEL-03"] {
        assert!(not_met.contains(&r.to_string()), "{r}: {not_met:?}");
    }
    for r in &not_met {
        assert!(
            !r.starts_with("AMC-CALC") && !r.starts_with("AMC-CLC") && !r.starts_with("AMC-IDB"),
            "{r} blamed for a DEL that hangs: {not_met:?}"
        );
    }
    // The computation requirements of the flows that stopped at the DEL were not evaluated
    // there; no requirement is claimed met by a scenario that stopped.
    assert_eq!(m["AMC-CALC-03"], "not_evaluated");
    // Each DEL finding names its requirements.
    let del = o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "DEL-OK")
        .unwrap();
    let f = &del["steps"][1]["findings"][0];
    assert_eq!(f["check"], "transport");
    assert_eq!(f["requirements"], serde_json::json!(["AMC-DEL-01"]));
    assert_eq!(del["requirements"]["AMC-DEL-01"], "not_met");
    assert_eq!(del["requirements"]["AMC-CLC-02"], "not_evaluated");
}

/// idFluxRequete missing from every answer: only the echo requirement is not met, although
/// almost every scenario fails.
#[test]
fn a_missing_echo_blames_the_echo_requirement_only() {
    let (code, out, o, junit, html) = run_with_reports(
        "scenarios/roc-v1-amc",
        &["--set", "sut.defects=no-idflux-echo"],
    );
    assert_eq!(code, 1, "{out}");
    assert!(o["counts"]["failed"].as_u64().unwrap() > 40);
    let m = statuses(&o);
    assert_eq!(with(&m, "not_met"), vec!["AMC-MSG-01".to_string()]);
    assert!(with(&m, "met").len() > 40, "{m:?}");
    // JUnit and HTML agree with the JSON.
    assert!(junit.contains("name=\"requirement.not_met\" value=\"AMC-MSG-01\""));
    assert_eq!(
        junit.matches("name=\"requirement.not_met\"").count() as u64,
        {
            // once on the suite, once per scenario that failed it
            1 + o["counts"]["failed"].as_u64().unwrap()
        }
    );
    assert_eq!(
        html.matches("class=\"rs-failed\"").count(),
        1,
        "one row not met"
    );
}

/// A filtered run is conformant on the tested scope only, says so in the three reports, and
/// exits 0; the filter and the requirements not evaluated are listed.
#[test]
fn a_filtered_run_has_a_scoped_verdict() {
    let (code, out, o, junit, html) =
        run_with_reports("scenarios/roc-v1-amc", &["--filter", "req:AMC-IDB-05"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("CONFORME SUR LE PÉRIMÈTRE TESTÉ"), "{out}");
    assert!(out.contains("filter `req:AMC-IDB-05`"), "{out}");
    assert_eq!(o["verdict"], "conformant_scoped");
    assert_eq!(o["scope"]["complete"], false);
    assert_eq!(o["scope"]["filter"], "req:AMC-IDB-05");
    assert_eq!(o["scope"]["pack_scenarios"], 65);
    let not_eval = o["scope"]["not_evaluated"].as_array().unwrap();
    assert!(not_eval.len() > 40, "{not_eval:?}");
    assert_eq!(statuses(&o)["AMC-IDB-05"], "met");
    assert!(junit.contains("name=\"verdict\" value=\"conformant_scoped\""));
    assert!(junit.contains("name=\"scope.complete\" value=\"false\""));
    assert!(junit.contains("name=\"scope.filter\" value=\"req:AMC-IDB-05\""));
    assert!(junit.contains("name=\"requirement.not_evaluated\""));
    assert!(html.contains("CONFORME SUR LE PÉRIMÈTRE TESTÉ"));
    assert!(html.contains("req:AMC-IDB-05"));
    assert!(
        html.contains("class=\"banner v-scoped\"") && !html.contains("class=\"banner v-ok\""),
        "no unqualified banner"
    );
}

/// Scenarios skipped for a capability the profile does not declare: scoped verdict naming the
/// capability.
#[test]
fn a_run_with_skipped_capabilities_has_a_scoped_verdict() {
    let (code, out, o, junit, html) = run_with_reports(
        "scenarios/roc-v2-amc",
        &["--set", "capabilities=v2.exoqn", "--filter", "tag:periods"],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(o["verdict"], "conformant_scoped");
    assert!(o["counts"]["skipped"].as_u64().unwrap() > 0);
    let caps = o["scope"]["missing_capabilities"].as_array().unwrap();
    assert!(caps.iter().any(|c| c == "v2.periods"), "{caps:?}");
    assert!(junit.contains("name=\"scope.missing_capability\" value=\"v2.periods\""));
    assert!(html.contains("v2.periods"));
}

/// The complete run of the pack against the conformant reference AMC: CONFORME, exit 0, every
/// requirement met.
#[test]
fn a_complete_conformant_run_exits_0_with_every_requirement_met() {
    let (code, out, o, junit, _) = run_with_reports("scenarios/roc-v1-amc", &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(o["verdict"], "conformant");
    assert_eq!(o["scope"]["complete"], true);
    let m = statuses(&o);
    assert_eq!(with(&m, "met").len(), m.len(), "{m:?}");
    assert!(junit.contains("name=\"scope.complete\" value=\"true\""));
}

/// A pack that does not load: exit 2, nothing run.
#[test]
fn a_bad_pack_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pack");
    copy_dir(&pack("roc-v1-amc"), &p);
    let f = p.join("pack.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replace("soap: \"1.2\"", "soap: \"9\"")).unwrap();
    let (code, _, err) = run(&["run", p.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
}

/// A GAP profile whose mirrors cannot bind their fixed port: the lab could not test, exit 3.
#[test]
fn mirrors_that_cannot_bind_exit_3() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-gap",
        "--filter",
        "tag:annuaire",
        "--set",
        &format!("lab.listen.annuaire={addr}"),
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
        "--html",
        dir.path().join("r.html").to_str().unwrap(),
    ]);
    drop(taken);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(out.contains("AUCUN VERDICT POSSIBLE"), "{out}");
    assert_eq!(outcome(&json)["verdict"], "no_verdict");
}

/// Merged shares of a complete run are complete; a share alone is scoped.
#[test]
fn merged_shares_are_complete_when_all_shares_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut shares = vec![];
    for k in 1..=2 {
        let json = dir.path().join(format!("s{k}.json"));
        let (code, out, err) = run(&[
            "run",
            "scenarios/roc-v1-amc",
            "--partition",
            &format!("{k}/2"),
            "--json",
            json.to_str().unwrap(),
            "--junit",
            dir.path().join(format!("j{k}.xml")).to_str().unwrap(),
            "--html",
            dir.path().join(format!("r{k}.html")).to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert_eq!(outcome(&json)["verdict"], "conformant_scoped");
        shares.push(json);
    }
    let merged = dir.path().join("m.json");
    let (code, out, err) = run(&[
        "report",
        "merge",
        shares[0].to_str().unwrap(),
        shares[1].to_str().unwrap(),
        "--json",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let o = outcome(&merged);
    assert_eq!(o["verdict"], "conformant");
    assert_eq!(o["scope"]["complete"], true);
}
