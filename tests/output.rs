//! The run's output folders from the outside: a non-empty evidence folder is refused (or emptied
//! with --force), evidence folder names stay distinct and inside the bundle whatever the
//! scenario ids, an output folder that cannot be written or is locked by another run stops the
//! run before its first scenario. JUnit testcases carry what CI tools group and link by. The
//! console lists a failed scenario's findings, not only its first.

mod common;

use common::root as root_dir;
use common::*;
use sha2::{Digest, Sha256};
use std::path::Path;

const ONE: &str = "IDB-OK-P01";

/// The header printed once the run starts, and any scenario line.
fn ran(stdout: &str) -> bool {
    stdout.contains("— pack") || stdout.contains(ONE)
}

/// The manifest's files: every path once, every hash verified, nothing outside the bundle.
fn verify(ev: &Path) -> Vec<String> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("manifest.json")).unwrap()).unwrap();
    let mut paths = vec![];
    for f in manifest["files"].as_array().unwrap() {
        let p = f["path"].as_str().unwrap().to_string();
        assert!(!p.split('/').any(|c| c == ".." || c == "."), "{p}");
        let bytes = std::fs::read(ev.join(&p)).unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            f["sha256"].as_str().unwrap(),
            "{p}"
        );
        paths.push(p);
    }
    let unique: std::collections::BTreeSet<&String> = paths.iter().collect();
    assert_eq!(unique.len(), paths.len(), "{paths:?}");
    paths
}

#[test]
fn a_non_empty_evidence_folder_is_refused_and_emptied_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("evidence");
    std::fs::create_dir_all(ev.join("exchanges/OLD-SCENARIO")).unwrap();
    std::fs::write(
        ev.join("exchanges/OLD-SCENARIO/01-a-b-IDB.request.http"),
        "old",
    )
    .unwrap();
    std::fs::write(ev.join("notes.txt"), "old").unwrap();
    let out = dir.path().join("out");
    let args = |force: bool| {
        let mut a = vec![
            "run",
            "scenarios/roc-v1-amc",
            "--filter",
            ONE,
            "--out",
            out.to_str().unwrap(),
            "--evidence",
            ev.to_str().unwrap(),
        ];
        if force {
            a.push("--force");
        }
        a
    };
    let (code, stdout, err) = run(&args(false));
    assert_eq!(code, 2, "{stdout}{err}");
    assert!(err.contains(ev.to_str().unwrap()), "{err}");
    assert!(
        err.contains("not empty") && err.contains("--force"),
        "{err}"
    );
    assert!(!ran(&stdout), "{stdout}");
    assert!(
        ev.join("notes.txt").exists(),
        "nothing removed without --force"
    );
    assert!(!out.join("roc-v1-amc/outcome.json").exists());

    let (code, stdout, err) = run(&args(true));
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(!ev.join("notes.txt").exists());
    assert!(!ev.join("exchanges/OLD-SCENARIO").exists());
    let paths = verify(&ev);
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with(&format!("exchanges/{ONE}/"))),
        "{paths:?}"
    );
    // Everything in the folder is in the manifest (or is the manifest); no lock left behind.
    let mut on_disk = vec![];
    let mut stack = vec![ev.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                on_disk.push(p.strip_prefix(&ev).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    on_disk.retain(|p| p != "manifest.json");
    on_disk.sort();
    let mut listed = paths.clone();
    listed.sort();
    assert_eq!(on_disk, listed);
    assert_eq!(locks(&out.join("roc-v1-amc")), Vec::<String>::new());
    assert_eq!(locks(&ev), Vec::<String>::new());
}

/// The lock files in a folder.
fn locks(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".roclab.lock"))
        .collect();
    v.sort();
    v
}

#[test]
fn scenario_ids_that_looked_alike_get_folders_of_their_own_inside_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pack");
    copy_dir(&pack("roc-v1-amc"), &p);
    // The same scenario three times under ids that used to share a folder or leave it.
    let f = p.join("scenarios/01-idb.yaml");
    let text = std::fs::read_to_string(&f).unwrap();
    let start = text.find(&format!("- id: {ONE}\n")).unwrap();
    let end = start + 1 + text[start + 1..].find("\n- id: ").unwrap();
    let one = &text[start..end];
    let mut more = String::new();
    for id in ["\"a b\"", "a_b", "\"..\""] {
        more.push_str(&one.replace(&format!("- id: {ONE}"), &format!("- id: {id}")));
        more.push('\n');
    }
    std::fs::write(&f, format!("{text}\n{more}")).unwrap();
    let ev = dir.path().join("evidence");
    let (code, stdout, err) = run(&[
        "run",
        p.to_str().unwrap(),
        "--filter",
        "id:a*|id:..",
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "--evidence",
        ev.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
    let paths = verify(&ev);
    let folders: std::collections::BTreeSet<&str> = paths
        .iter()
        .filter_map(|p| p.strip_prefix("exchanges/"))
        .map(|p| p.split('/').next().unwrap())
        .collect();
    assert_eq!(folders.len(), 3, "{paths:?}");
    // Nothing but the outcome and the exchanges at the bundle's root.
    for e in std::fs::read_dir(&ev).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            ["exchanges", "outcome.json", "manifest.json"].contains(&name.as_str()),
            "{name}"
        );
    }
    // The manifest says which folder holds which scenario.
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ev.join("manifest.json")).unwrap()).unwrap();
    let index: Vec<(String, String)> = manifest["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["scenario"].as_str().unwrap().into(),
                s["folder"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(index.len(), 3, "{index:?}");
    for (id, folder) in &index {
        assert!(ev.join(folder).is_dir(), "{id} -> {folder}");
    }
}

#[test]
fn an_output_folder_that_cannot_be_written_stops_the_run_before_its_first_scenario() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the output folder should be (permission bits do not stop root).
    let out = dir.path().join("out");
    std::fs::write(&out, "not a folder").unwrap();
    let (code, stdout, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        ONE,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{stdout}{err}");
    assert!(err.contains(out.to_str().unwrap()), "{err}");
    assert!(err.contains("nothing was run"), "{err}");
    assert!(!ran(&stdout), "{stdout}");

    // The same for the folder of one report given apart, and for the evidence folder.
    let ok = dir.path().join("ok");
    for extra in [["--json", "out/x/outcome.json"], ["--evidence", "out/ev"]] {
        let target = dir.path().join(extra[1]);
        let (code, stdout, err) = run(&[
            "run",
            "scenarios/roc-v1-amc",
            "--filter",
            ONE,
            "--out",
            ok.to_str().unwrap(),
            extra[0],
            target.to_str().unwrap(),
        ]);
        assert_eq!(code, 3, "{extra:?}: {stdout}{err}");
        assert!(!ran(&stdout), "{stdout}");
        assert!(!ok.join("roc-v1-amc/report.html").exists());
    }
}

#[test]
fn a_locked_report_stops_a_second_run_at_once_and_a_stale_lock_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let lock = out.join("roc-v1-amc/.report.html.roclab.lock");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    // A live process holds it: this test.
    let me = std::process::id();
    std::fs::write(&lock, format!("{me}\n")).unwrap();
    let args = [
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        ONE,
        "--out",
        out.to_str().unwrap(),
    ];
    let (code, stdout, err) = run(&args);
    assert_eq!(code, 3, "{stdout}{err}");
    assert!(err.contains(lock.to_str().unwrap()), "{err}");
    assert!(err.contains(&format!("pid {me}")), "{err}");
    assert!(!ran(&stdout), "{stdout}");
    assert_eq!(
        locks(&out.join("roc-v1-amc")),
        [".report.html.roclab.lock"],
        "the other run's lock is left alone, ours are released"
    );
    assert!(!out.join("roc-v1-amc/outcome.json").exists());

    // A lock whose process is gone (above the kernel's highest pid) is taken over and removed.
    std::fs::write(&lock, "4194305\n").unwrap();
    let (code, stdout, err) = run(&args);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(out.join("roc-v1-amc/outcome.json").exists());
    assert_eq!(locks(&out.join("roc-v1-amc")), Vec::<String>::new());

    // Another run writing other files into the same folder is not in the way.
    std::fs::write(&lock, format!("{me}\n")).unwrap();
    let (code, stdout, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        ONE,
        "--out",
        out.to_str().unwrap(),
        "--html",
        out.join("roc-v1-amc/other.html").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stdout}{err}");
}

/// The attribute `name` of an element.
fn attr<'a>(e: &'a roclab::xml::Element, name: &str) -> Option<&'a str> {
    e.attrs
        .iter()
        .find(|a| a.local == name)
        .map(|a| a.value.as_str())
}

#[test]
fn junit_testcases_are_named_by_id_grouped_by_file_and_point_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("outcome.json");
    let (code, stdout, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "IDB-OK-P01|CLC-P04-ROUNDING",
        "--set",
        "sut.defects=float-rounding",
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}{err}");
    let o = outcome(&json);
    let root = roclab::xml::parse(&std::fs::read_to_string(&junit).unwrap()).unwrap();
    let cases: Vec<&roclab::xml::Element> = root
        .elements()
        .flat_map(|suite| suite.elements())
        .filter(|e| e.local == "testcase")
        .collect();
    assert_eq!(cases.len(), 2);
    for (id, file, failed) in [
        ("IDB-OK-P01", "01-idb", false),
        ("CLC-P04-ROUNDING", "03-clc", true),
    ] {
        let tc = cases
            .iter()
            .find(|c| attr(c, "name") == Some(id))
            .unwrap_or_else(|| panic!("no testcase named {id}"));
        assert_eq!(attr(tc, "classname"), Some(&*format!("roc-v1-amc.{file}")));
        let path = format!("scenarios/roc-v1-amc/scenarios/{file}.yaml");
        assert_eq!(attr(tc, "file"), Some(path.as_str()));
        let text = std::fs::read_to_string(root_dir().join(&path)).unwrap();
        let line = text
            .lines()
            .position(|l| l == format!("- id: {id}"))
            .unwrap()
            + 1;
        assert_eq!(attr(tc, "line"), Some(&*line.to_string()));
        let title = o["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap()["title"]
            .as_str()
            .unwrap()
            .to_string();
        let props: Vec<(&str, &str)> = tc
            .elements()
            .filter(|e| e.local == "properties")
            .flat_map(|p| p.elements())
            .map(|p| (attr(p, "name").unwrap(), attr(p, "value").unwrap()))
            .collect();
        assert!(props.contains(&("title", title.as_str())), "{props:?}");
        assert_eq!(tc.elements().any(|e| e.local == "failure"), failed, "{id}");
    }
}

/// The console lines of a scenario: its own, then its indented findings.
fn console_block<'a>(stdout: &'a str, id: &str) -> Vec<&'a str> {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !l.starts_with(&format!("FAIL  {id} ")));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("no FAIL line for {id}:\n{stdout}"));
    std::iter::once(head)
        .chain(lines.take_while(|l| l.starts_with("  ")))
        .collect()
}

#[test]
fn the_console_lists_every_finding_of_a_failed_scenario_up_to_five() {
    let dir = tempfile::tempdir().unwrap();
    // Two defects, two causes in one answer: the missing idFluxRequete and the rounding.
    let (code, stdout, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "SIM-P04-ROUNDING",
        "--set",
        "sut.defects=float-rounding,no-idflux-echo",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}{err}");
    let block = console_block(&stdout, "SIM-P04-ROUNDING");
    assert!(
        block[1..]
            .iter()
            .any(|l| l.starts_with("  step 1 SIM [body] ") && l.contains("/idFluxRequete")),
        "{stdout}"
    );
    assert!(
        block[1..]
            .iter()
            .any(|l| l.starts_with("  step 1 SIM [body] ")
                && l.ends_with("/montantAmc: expected 12.35, got 12.34")),
        "{stdout}"
    );

    // Many findings: the first five, then how many more and where.
    let json = dir.path().join("many.json");
    let html = dir.path().join("many.html");
    let (code, stdout, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "SIM-OK-P04-MULTI",
        "--set",
        "sut.defects=wrong-namespace",
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{stdout}{err}");
    let total: usize = outcome(&json)["scenarios"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["findings"].as_array().unwrap().len())
        .sum();
    assert!(total > 5, "{total}");
    let block = console_block(&stdout, "SIM-OK-P04-MULTI");
    assert_eq!(block.len(), 1 + 5 + 1, "{stdout}");
    assert!(
        block[1..6]
            .iter()
            .all(|l| l.starts_with("  step 1 SIM [body] ")),
        "{stdout}"
    );
    assert_eq!(
        block[6],
        format!("  … and {} more (see {})", total - 5, html.display())
    );
}
