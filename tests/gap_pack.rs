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
        assert_eq!(r["status"], "met", "{r}");
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

/// The defect tables: the V1 pack's, and the V2 pack's for an ex-DG and a private clinic's GAP.
const TABLES: [&str; 3] = [
    "tests/data/gap-defects.yaml",
    "tests/data/gap-v2-defects.yaml",
    "tests/data/gap-v2-exoqn-defects.yaml",
];

#[test]
fn the_defect_tables_list_every_defect() {
    let listed: Vec<&str> = roclab::defects::GAP.iter().map(|d| d.name).collect();
    assert!(listed.len() >= 18);
    let tables: Vec<_> = TABLES.iter().map(|t| (t, defect_table(t))).collect();
    for d in &listed {
        assert!(
            tables.iter().any(|(_, t)| t.contains_key(*d)),
            "defect {d} missing from every table ({TABLES:?})"
        );
    }
    for (name, t) in &tables {
        for d in t.keys() {
            assert!(
                listed.contains(&d.as_str()),
                "{name}: {d} is not a defect of the reference GAP"
            );
        }
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

const PACK_V2: &str = "scenarios/roc-v2-gap";
const EXOQN: &str = "profiles/reference-gap-exoqn.yaml";

/// `roc-v2-gap` with `args`: the scenarios that passed and those skipped.
/// (exit code, passed, skipped, outcome, JUnit XML)
#[allow(clippy::type_complexity)]
fn run_v2(args: &[&str]) -> (i32, Vec<String>, Vec<String>, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let junit = dir.path().join("j.xml");
    let html = dir.path().join("r.html");
    let mut a = vec![
        "run",
        PACK_V2,
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
        "--jobs",
        "16",
    ];
    a.extend_from_slice(args);
    let (code, out, err) = run(&a);
    assert!(code == 0 || code == 1, "exit {code}\n{out}\n{err}");
    let o = outcome(&json);
    let text = std::fs::read_to_string(&junit).unwrap();
    roclab::xml::parse(&text).expect("junit is well-formed");
    (
        code,
        ids_with(&o, "passed"),
        ids_with(&o, "skipped"),
        o,
        text,
    )
}

#[test]
fn v2_pack_passes_against_the_reference_gap_exdg_and_exoqn() {
    // An ex-DG hospital's V2 GAP (the default profile): every scenario but the clinic's.
    let (code, passed, skipped, o, junit) = run_v2(&[]);
    assert_eq!(code, 0, "{o:#}");
    assert_eq!(skipped, ["V2-EXOQN-DH-P06", "V2-EXOQN-V1-ONLY-AMC-PAPER"]);
    assert_eq!(passed.len(), 15, "{passed:?}");
    let reason = o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "V2-EXOQN-DH-P06")
        .unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("v2.exoqn"), "{reason}");
    // The billing flow is recorded: CLC, DRE, the payment run and the return file.
    let sc = o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "V2-RSP-R25-REINVOICED")
        .unwrap();
    let ops: Vec<String> = sc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|st| st.get("exchange"))
        .map(|ex| {
            format!(
                "{}>{}:{} {}",
                ex["from"].as_str().unwrap(),
                ex["to"].as_str().unwrap(),
                ex["operation"].as_str().unwrap(),
                ex["url"].as_str().unwrap()
            )
        })
        .collect();
    let pos = |needle: &str| {
        ops.iter()
            .position(|o| o.contains(needle))
            .unwrap_or_else(|| panic!("{needle} not in {ops:?}"))
    };
    assert!(pos(":CLC") < pos(":DRE"));
    assert!(pos(":DRE") < pos("payment run"));
    assert!(
        pos("lab>amc-A:payment run") < pos("amc-A>gap:RSP"),
        "{ops:?}"
    );
    assert!(
        pos("amc-A>gap:RSP") == pos("RSP-F-2026-0415-1.xml"),
        "{ops:?}"
    );
    // The JUnit report gives the same flow in the testcase's system-out.
    let case = &junit[junit.find("V2-RSP-R25-REINVOICED").unwrap()..];
    let out = &case[case.find("<system-out>").unwrap()..case.find("</system-out>").unwrap()];
    let at = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in {out}"))
    };
    assert!(at("gap → amc-A CLC") < at("gap → amc-A DRE"));
    assert!(at("gap → amc-A DRE") < at("lab → amc-A payment run: DONE 1 RSP"));
    assert!(
        at("payment run") < at("amc-A → gap RSP RSP-F-2026-0415-1.xml"),
        "{out}"
    );
    // A private clinic's V2 GAP: every scenario but the ex-DG one.
    let (code, passed, skipped, o, _) = run_v2(&["--profile", EXOQN]);
    assert_eq!(code, 0, "{o:#}");
    assert_eq!(
        skipped,
        ["V2-INVOICE-V1-ONLY-AMC-P08", "V2-MCO-V1-ONLY-AMC-P08"]
    );
    assert_eq!(passed.len(), 15);
}

#[test]
fn a_v1_gap_fails_the_v2_pack() {
    // The same reference GAP speaking 1.04 only: every stay that needs 2.00 goes to paper.
    let (code, passed, _, _, _) = run_v2(&["--set", "sut.norme=1.04"]);
    assert_eq!(code, 1);
    assert_eq!(
        passed,
        [
            "V2-INVOICE-V1-ONLY-AMC-P08",
            "V2-MCO-V1-ONLY-AMC-P08",
            "V2-SSR-V1-ONLY-AMC-PAPER"
        ],
        "only what a V1 GAP does right: 1.04 with the 1.04-only AMC, paper for SSR"
    );
}

#[test]
fn each_v2_defect_fails_exactly_the_scenarios_of_its_obligation() {
    let mut mismatches = check_defects(
        PACK_V2,
        defect_table("tests/data/gap-v2-defects.yaml"),
        |_| vec![],
    );
    mismatches.extend(check_defects(
        PACK_V2,
        defect_table("tests/data/gap-v2-exoqn-defects.yaml"),
        |_| vec!["--profile".into(), EXOQN.into()],
    ));
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}
