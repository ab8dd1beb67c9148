//! Drivers of a GAP under test, from the outside: a command (a small script that runs the
//! reference GAP as an external program), a failing command, the operator through piped
//! input, and `serve lab` answering a GAP by hand.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const MINI: &str = "tests/data/gap-mini";

fn bin() -> String {
    assert_cmd::cargo::cargo_bin("roclab").display().to_string()
}

#[test]
fn command_driver_runs_a_script_with_the_trigger() {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen.json");
    let env = dir.path().join("env.txt");
    // The "GAP": a script that keeps what it was given and acts through the reference GAP.
    let script = dir.path().join("gap.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\ncp \"$ROCLAB_TRIGGER\" '{}'\necho \"$ROCLAB_ACTION $ROCLAB_SCENARIO $ROCLAB_ANNUAIRE_URL\" > '{}'\nexec '{}' gap act \"$ROCLAB_TRIGGER\"\n",
            seen.display(),
            env.display(),
            bin()
        ),
    )
    .unwrap();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        MINI,
        "--filter",
        "MINI-COMPUTE",
        "--set",
        "driver.kind=command",
        "--set",
        &format!("driver.command=sh {}", script.display()),
        "--set",
        "sut.embedded=false",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(doc["action"], "compute");
    assert_eq!(doc["scenario"], "MINI-COMPUTE");
    assert_eq!(doc["data"]["patient"]["nir"], "1850775123456");
    assert_eq!(doc["data"]["stay"]["prestations"][0]["code"], "TM");
    let ann = doc["lab"]["annuaire_url"].as_str().unwrap();
    assert!(ann.starts_with("https://127.0.0.1:"), "{ann}");
    let env = std::fs::read_to_string(&env).unwrap();
    assert!(
        env.starts_with(&format!("compute MINI-COMPUTE {ann}")),
        "{env}"
    );
    assert_eq!(outcome(&json)["sut"]["embedded"], false);
}

#[test]
fn a_failing_command_fails_the_case_with_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        MINI,
        "--filter",
        "MINI-COMPUTE",
        "--set",
        "driver.kind=command",
        "--set",
        "driver.command=echo 'GAP not reachable' >&2; exit 3",
        "--set",
        "sut.embedded=false",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
    ]);
    // The lab could not make the GAP act: errored, no verdict possible.
    assert_eq!(code, 3, "{out}\n{err}");
    let o = outcome(&json);
    let s = &o["scenarios"][0];
    assert_eq!(s["status"], "errored");
    // The driver's failure is the cause, not the request that could not follow.
    let reason = s["reason"].as_str().unwrap();
    assert!(reason.contains("GAP not reachable"), "{reason}");
    assert!(reason.contains("exit status: 3"), "{reason}");
    let all = serde_json::to_string(&s["steps"]).unwrap();
    assert!(!all.contains("sent no"), "{all}");
}

/// A command that fails ends the wait at once: the scenario's reason is the failure (exit
/// status and what it printed last), the finding keeps its stderr, and the reports show it.
#[test]
fn a_failing_driver_is_the_cause_and_ends_the_wait_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let (junit, html) = (dir.path().join("j.xml"), dir.path().join("r.html"));
    let t = std::time::Instant::now();
    let (code, out, err) = run(&[
        "run",
        MINI,
        "--filter",
        "MINI-COMPUTE",
        "--set",
        "driver.kind=command",
        "--set",
        "driver.command=sh -c 'echo started; echo boom >&2; exit 7'",
        "--set",
        "sut.embedded=false",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let elapsed = t.elapsed();
    assert_eq!(code, 3, "{out}\n{err}");
    let o = outcome(&json);
    let s = &o["scenarios"][0];
    assert_eq!(s["status"], "errored");
    // Well under the 5000 ms the first expect_request waits.
    assert!(s["duration_ms"].as_f64().unwrap() < 2500.0, "{s}");
    assert!(elapsed < std::time::Duration::from_secs(4), "{elapsed:?}");
    let reason = s["reason"].as_str().unwrap();
    for part in ["exit", "7", "boom"] {
        assert!(reason.contains(part), "{part} not in {reason}");
    }
    let first = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["findings"].as_array().unwrap())
        .next()
        .expect("a finding");
    assert_eq!(first["check"], "driver");
    let actual = first["actual"].as_str().unwrap();
    assert!(
        actual.contains("exit status: 7") && actual.contains("boom") && actual.contains("started"),
        "{actual}"
    );
    let junit = std::fs::read_to_string(&junit).unwrap();
    assert!(junit.contains("--- stderr"), "{junit}");
    // The reason is the first finding: the failure's message, then its body's finding, and
    // no `reason:` line repeating it.
    assert_eq!(
        junit.matches("(exit status: 7): boom").count(),
        2,
        "{junit}"
    );
    assert!(junit.contains("started"), "{junit}");
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains("--- stderr"),
        "the HTML finding shows the output"
    );
}

/// A command still running at driver.timeout_ms is stopped, ends the wait, and what it had
/// printed is kept.
#[test]
fn a_driver_past_its_timeout_is_stopped_and_is_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        MINI,
        "--filter",
        "MINI-COMPUTE",
        "--set",
        "driver.kind=command",
        "--set",
        "driver.command=echo waiting for the GAP >&2; exec sleep 30",
        "--set",
        "driver.timeout_ms=800",
        "--set",
        "sut.embedded=false",
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{out}\n{err}");
    let s = &outcome(&json)["scenarios"][0];
    assert_eq!(s["status"], "errored");
    let reason = s["reason"].as_str().unwrap();
    assert!(reason.contains("not finished after 800 ms"), "{reason}");
    assert!(reason.contains("waiting for the GAP"), "{reason}");
    assert!(s["duration_ms"].as_f64().unwrap() < 3000.0, "{s}");
}

#[test]
fn operator_driver_prints_the_instruction_and_takes_an_answer_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let mut child = Command::new(bin())
        .current_dir(root())
        .args([
            "run",
            MINI,
            "--filter",
            "MINI-COMPUTE",
            "--set",
            "driver.kind=operator",
            "--set",
            "sut.embedded=false",
        ])
        .args([
            "--json",
            json.to_str().unwrap(),
            "--junit",
            dir.path().join("j.xml").to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the instruction, then answer as the person at the keyboard: "f" (cannot do it).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        line.clear();
        if seen.contains("EN:") {
            break;
        }
    }
    assert!(
        seen.contains("FR : Valoriser le séjour S1 du patient P01"),
        "{seen}"
    );
    assert!(
        seen.contains("EN: Compute stay S1 of patient P01"),
        "{seen}"
    );
    child.stdin.as_mut().unwrap().write_all(b"f\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let o = outcome(&json);
    let reason = o["scenarios"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("operator"), "{reason}");
}

#[test]
fn serve_lab_answers_a_gap_and_prints_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    let mut child = Command::new(bin())
        .current_dir(root())
        .args([
            "serve",
            "lab",
            "--pack",
            MINI,
            "--pki",
            pki.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut urls = std::collections::BTreeMap::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("CA:") {
            break;
        }
        let mut w = line.split_whitespace();
        if let (Some(a), Some(u)) = (w.next(), w.next()) {
            urls.insert(a.to_string(), u.to_string());
        }
        line.clear();
    }
    let f = |n: &str| pki.join(n).display().to_string();
    let trigger = serde_json::json!({
        "scenario": "by-hand", "action": "compute",
        "inputs": {"patient": "P01", "stay": "S1"},
        "data": {
            "patient": {"nir": "1850775123456", "cle_nir": "08", "date_naissance": "19850712",
                        "rang_gemellaire": "1", "numero_adherent": "A00012345",
                        "numero_amc": "12345678", "type_convention": "RO", "csr": "9412", "endpoint": "A"},
            "stay": {"id": "S1", "type_prise_en_charge": "SEJOUR", "domaine": "MCO",
                     "date_entree": "2026-03-02", "date_sortie": "2026-03-05",
                     "prestations": [{"code": "TM", "date_debut": "2026-03-02", "date_fin": "2026-03-05",
                                      "quantite": "1", "montant_total": "120.00", "montant_amo": "96.00"}]}
        },
        "lab": {"annuaire_url": format!("{}/annuaire", urls["annuaire"]), "amc_urls": {},
                "ca": f("ca.pem"), "client_cert": f("client.pem"), "client_key": f("client.key"),
                "finess_juridique": "750712184", "finess_geographique": "750100042"}
    });
    let file = dir.path().join("t.json");
    std::fs::write(&file, trigger.to_string()).unwrap();
    let (code, out, err) = run(&["gap", "act", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}\n{err}");
    let report: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        report["engagement"].as_str().unwrap().starts_with("ENG-"),
        "{report}"
    );
    let mut lines = vec![];
    for _ in 0..3 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        lines.push(line.clone());
    }
    child.kill().ok();
    child.wait().ok();
    assert!(
        lines[0].contains("annuaire") && lines[0].contains("code_retour 00"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("IDB")
            && lines[1].contains("750712184")
            && lines[1].contains("statut OK"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains("CLC") && lines[2].contains("statut OK"),
        "{lines:?}"
    );
}

/// `expect_result` checks what the driver answered: the reference GAP's report passes; the same
/// GAP behind a command whose answer says something else fails on it.
#[test]
fn driver_results_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let base = |json: &std::path::Path| {
        vec![
            "run".to_string(),
            MINI.into(),
            "--filter".into(),
            "MINI-RESULT".into(),
            "--json".into(),
            json.to_str().unwrap().into(),
            "--junit".into(),
            dir.path().join("j.xml").to_str().unwrap().into(),
        ]
    };
    let args = base(&json);
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (code, out, err) = run(&a);
    assert_eq!(code, 0, "{out}\n{err}");
    // The same GAP, whose answer is altered on the way: the requests are right, the result not.
    let script = dir.path().join("gap.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n'{}' gap act \"$ROCLAB_TRIGGER\" | sed 's/\"result\":\"ENG-[A-Z0-9-]*\"/\"result\":\"refused: KO R01\"/'\n",
            bin()
        ),
    )
    .unwrap();
    let json2 = dir.path().join("o2.json");
    let mut args = base(&json2);
    args.extend([
        "--set".into(),
        "driver.kind=command".into(),
        "--set".into(),
        format!("driver.command=sh {}", script.display()),
        "--set".into(),
        "sut.embedded=false".into(),
    ]);
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (code, out, err) = run(&a);
    assert_eq!(code, 1, "{out}\n{err}");
    let o = outcome(&json2);
    let s = &o["scenarios"][0];
    let reason = s["reason"].as_str().unwrap();
    assert!(
        reason.contains("driver result result") && reason.contains("refused: KO R01"),
        "{reason}"
    );
}
