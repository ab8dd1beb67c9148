//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn pack(name: &str) -> PathBuf {
    root().join("scenarios").join(name)
}

pub fn roclab() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("roclab").expect("binary built");
    c.current_dir(root());
    c
}

/// A fresh folder of its own for a `run` of this test binary: runs at once must not share an
/// output folder (the second would find it locked).
pub fn own_out() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let exe = std::env::current_exe().unwrap();
    let stem = exe.file_stem().unwrap().to_string_lossy().into_owned();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("out")
        .join(stem)
        .join(n.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Run and return (exit code, stdout, stderr). A `run` without `--out` writes its default
/// reports into a folder of its own.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    if args.first().is_some_and(|a| a == "run") && !args.iter().any(|a| a == "--out") {
        args.push("--out".into());
        args.push(own_out().to_str().unwrap().into());
    }
    let out: Output = roclab().args(&args).output().expect("roclab runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn outcome(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("outcome written");
    serde_json::from_str(&text).expect("outcome is JSON")
}

/// Ids of scenarios with the given status.
pub fn ids_with(o: &serde_json::Value, status: &str) -> Vec<String> {
    let mut v: Vec<String> = o["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .filter(|s| s["status"] == status)
        .map(|s| s["id"].as_str().expect("id").to_string())
        .collect();
    v.sort();
    v
}

/// Copy a folder recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let q = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &q);
        } else {
            std::fs::copy(&p, &q).unwrap();
        }
    }
}

/// defect -> scenarios that must fail (every other one must pass), from a table file.
pub fn defect_table(file: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

/// Run `pack` once per defect of `table` (a few at a time, each its own process and embedded
/// SUT) and return every mismatch between the scenarios that failed and those expected to.
/// `extra` gives more arguments for a defect (e.g. a shorter timeout).
pub fn check_defects(
    pack: &str,
    table: std::collections::BTreeMap<String, Vec<String>>,
    extra: fn(&str) -> Vec<String>,
) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut mismatches = vec![];
    let entries: Vec<(String, Vec<String>)> = table.into_iter().collect();
    for chunk in entries.chunks(6) {
        let handles: Vec<_> = chunk
            .iter()
            .cloned()
            .map(|(defect, mut expected)| {
                let json = dir.path().join(format!("{defect}.json"));
                let pack = pack.to_string();
                std::thread::spawn(move || {
                    let mut args = vec![
                        "run".to_string(),
                        pack,
                        "--set".into(),
                        format!("sut.defects={defect}"),
                        "--json".into(),
                        json.to_str().unwrap().into(),
                        "--junit".into(),
                        json.with_extension("xml").to_str().unwrap().into(),
                        "--jobs".into(),
                        "16".into(),
                    ];
                    args.extend(extra(&defect));
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
    mismatches
}

/// Run a pack into a temporary folder; (exit code, stdout, outcome, junit, html).
pub fn run_with_reports(
    pack: &str,
    args: &[&str],
) -> (i32, String, serde_json::Value, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let junit = dir.path().join("j.xml");
    let html = dir.path().join("r.html");
    let mut all = vec![
        "run",
        pack,
        "--json",
        json.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let (code, out, err) = run(&all);
    assert!(json.is_file(), "no outcome: {out}\n{err}");
    (
        code,
        format!("{out}\n{err}"),
        outcome(&json),
        std::fs::read_to_string(&junit).unwrap(),
        std::fs::read_to_string(&html).unwrap(),
    )
}
