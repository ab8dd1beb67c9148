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

/// Run and return (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out: Output = roclab().args(args).output().expect("roclab runs");
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
