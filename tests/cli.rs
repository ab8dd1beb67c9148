//! Command-line behaviour: pack check, bad packs (exit 2 with file:line:column), unreachable
//! SUT (exit 3), test PKI, and a run through a real-endpoint profile against `serve amc`.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

#[test]
fn pack_check_accepts_the_reference_pack() {
    let (code, out, err) = run(&["pack", "check", "scenarios/roc-v1-amc"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("every requirement verified"), "{out}");
}

/// Copy the reference pack, let `mutate` break it, and return `pack check`'s exit and stderr.
fn broken(mutate: impl FnOnce(&Path)) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pack");
    copy_dir(&pack("roc-v1-amc"), &p);
    mutate(&p);
    let (code, _, err) = run(&["pack", "check", p.to_str().unwrap()]);
    (code, err)
}

fn first_scenario_file(p: &Path) -> std::path::PathBuf {
    let mut files: Vec<_> = std::fs::read_dir(p.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.remove(0)
}

/// Append a scenario to the first scenario file.
fn add_scenario(p: &Path, yaml: &str) -> (std::path::PathBuf, usize) {
    let f = first_scenario_file(p);
    let mut text = std::fs::read_to_string(&f).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let line = text.lines().count() + 1;
    text.push_str(yaml);
    std::fs::write(&f, text).unwrap();
    (f, line)
}

fn a_requirement(p: &Path) -> String {
    let text = std::fs::read_to_string(p.join("pack.yaml")).unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    v["requirements"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone()
}

#[test]
fn unknown_key_is_reported_with_its_position() {
    let mut at = (Default::default(), 0);
    let (code, err) = broken(|p| {
        let req = a_requirement(p);
        at = add_scenario(
            p,
            &format!(
                "- id: BROKEN-1\n  title: t\n  verifies: [{req}]\n  colour: blue\n  steps:\n    - call: IDB\n      request: idb.xml\n"
            ),
        );
    });
    assert_eq!(code, 2, "{err}");
    let name = at.0.file_name().unwrap().to_str().unwrap().to_string();
    assert!(err.contains(&format!("{name}:{}:3", at.1 + 3)), "{err}");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn bad_yaml_is_reported_with_its_position() {
    let (code, err) = broken(|p| {
        let f = p.join("pack.yaml");
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, format!("{text}\nbroken: [unclosed\n")).unwrap();
    });
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("pack.yaml:"), "{err}");
    let re = regex::Regex::new(r"pack\.yaml:\d+:\d+").unwrap();
    assert!(re.is_match(&err), "{err}");
}

#[test]
fn missing_template_undefined_variable_and_unknown_requirement_are_reported() {
    let mut at = (Default::default(), 0);
    let (code, err) = broken(|p| {
        let req = a_requirement(p);
        at = add_scenario(
            p,
            &format!(
                "- id: BROKEN-2\n  title: t\n  verifies: [{req}, NO-SUCH-REQ]\n  steps:\n    - call: IDB\n      request: no-such-template.xml\n    - call: IDB\n      request: idb.xml\n      expect:\n        body: no-such-body.xml\n        assert:\n          - {{path: \"//roc:statut\", equals: \"{{{{undefined_var}}}}\"}}\n"
            ),
        );
    });
    assert_eq!(code, 2, "{err}");
    let name = at.0.file_name().unwrap().to_str().unwrap().to_string();
    let l = at.1;
    assert!(
        err.contains(&format!("{name}:{}:", l + 2)) && err.contains("NO-SUCH-REQ"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{name}:{}:", l + 5)) && err.contains("no-such-template.xml"),
        "{err}"
    );
    assert!(err.contains("no-such-body.xml"), "{err}");
    assert!(
        err.contains(&format!("{name}:{}:", l + 11)) && err.contains("undefined_var"),
        "{err}"
    );
}

#[test]
fn undefined_variable_in_a_template_is_reported_in_the_template() {
    let (code, err) = broken(|p| {
        std::fs::write(
            p.join("templates/broken.xml"),
            "<roc:x>\n  {{not_a_variable}}\n</roc:x>\n",
        )
        .unwrap();
        let req = a_requirement(p);
        add_scenario(
            p,
            &format!(
                "- id: BROKEN-3\n  title: t\n  verifies: [{req}]\n  steps:\n    - call: IDB\n      request: broken.xml\n"
            ),
        );
    });
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("broken.xml:2:3") && err.contains("not_a_variable"),
        "{err}"
    );
}

#[test]
fn a_requirement_without_scenario_is_a_warning_of_pack_check() {
    let (code, err) = broken(|p| {
        let f = p.join("pack.yaml");
        let text = std::fs::read_to_string(&f).unwrap();
        let text = text.replacen(
            "requirements:\n",
            "requirements:\n  ZZ-UNCOVERED: {statement: nobody checks this, spec: \"§0\"}\n",
            1,
        );
        std::fs::write(&f, text).unwrap();
    });
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ZZ-UNCOVERED") && err.contains("verified by no scenario"),
        "{err}"
    );
}

#[test]
fn pki_init_writes_keys_readable_by_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("pki");
    let (code, out, err) = run(&["pki", "init", d.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let mut keys = 0;
    for e in std::fs::read_dir(&d).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "key") {
            keys += 1;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
    assert!(keys >= 8);
    let (code, _, err) = run(&["pki", "init", d.to_str().unwrap()]);
    assert_eq!(code, 2, "refuses to overwrite: {err}");
}

#[test]
fn an_unreachable_sut_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("pki");
    assert_eq!(run(&["pki", "init", d.to_str().unwrap()]).0, 0);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--profile",
        "profiles/amc-example.yaml",
        "--set",
        &format!("sut.base_url=https://127.0.0.1:{port}/roc"),
        "--set",
        &format!("tls.dir={}", d.display()),
        "--json",
        dir.path().join("o.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("cannot reach"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["run", "scenarios/no-such-pack"]).0, 2);
    assert_eq!(
        run(&["run", "scenarios/roc-v1-amc", "--set", "sut.colour=red"]).0,
        2
    );
    assert_eq!(
        run(&[
            "run",
            "scenarios/roc-v1-amc",
            "--set",
            "sut.defects=no-such-defect"
        ])
        .0,
        2
    );
    assert_eq!(
        run(&[
            "run",
            "scenarios/roc-v1-amc",
            "--filter",
            "nothing-matches-this"
        ])
        .0,
        2
    );
    assert_eq!(run(&["no-such-command"]).0, 2);
    let (code, _, err) = run(&["run", "scenarios/roc-v1-amc", "--jobs", "0"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--jobs"), "{err}");
}

/// A real-endpoint profile (`profiles/amc-example.yaml` with `--set`) against `roclab serve amc`
/// in another process: the same pack passes through files, URLs and the negative material.
#[test]
fn example_profile_against_a_served_amc() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("pki");
    assert_eq!(run(&["pki", "init", d.to_str().unwrap()]).0, 0);
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("roclab"))
        .current_dir(root())
        .args([
            "serve",
            "amc",
            "--listen",
            "127.0.0.1:0",
            "--pki",
            d.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--profile",
        "profiles/amc-example.yaml",
        "--set",
        &format!("sut.base_url={addr}"),
        "--set",
        &format!("tls.dir={}", d.display()),
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.path().join("j.xml").to_str().unwrap(),
    ]);
    // A profile whose CA is not the one of the SUT's certificate: no verdict can be given,
    // not even "refused" for the TLS scenarios — every scenario is errored.
    let json2 = dir.path().join("o2.json");
    let (code2, out2, err2) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--profile",
        "profiles/amc-example.yaml",
        "--set",
        &format!("sut.base_url={addr}"),
        "--set",
        &format!("tls.dir={}", d.display()),
        "--set",
        "tls.ca=untrusted-ca.pem",
        "--json",
        json2.to_str().unwrap(),
        "--junit",
        dir.path().join("j2.xml").to_str().unwrap(),
    ]);
    child.kill().ok();
    child.wait().ok();
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(outcome(&json)["sut"]["embedded"], false);
    // The lab could not verify the SUT's identity: exit 3, no verdict possible.
    assert_eq!(code2, 3, "{out2}\n{err2}");
    assert!(out2.contains("AUCUN VERDICT POSSIBLE"), "{out2}");
    let o2 = outcome(&json2);
    assert_eq!(o2["verdict"], "no_verdict");
    let n = o2["scenarios"].as_array().unwrap().len();
    assert_eq!(ids_with(&o2, "errored").len(), n, "{}", o2["counts"]);
    let reason = o2["scenarios"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("certificate was refused"), "{reason}");
}

/// SIGINT in the middle of a run: running scenarios finish, the others are listed as not run,
/// and both reports are written, valid, and say "interrupted".
#[test]
fn an_interrupted_run_leaves_valid_partial_reports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let junit = dir.path().join("j.xml");
    let html = dir.path().join("r.html");
    // slow-clc makes each CLC answer take 4.3 s: with one job the run lasts long enough.
    let child = Command::new(assert_cmd::cargo::cargo_bin("roclab"))
        .current_dir(root())
        .args([
            "run",
            "scenarios/roc-v1-amc",
            "--jobs",
            "1",
            "--set",
            "sut.defects=slow-clc",
        ])
        .args([
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let o = outcome(&json);
    assert_eq!(o["interrupted"], true);
    assert_eq!(o["verdict"], "not_conformant");
    let not_run = o["counts"]["not_run"].as_u64().unwrap();
    assert!(not_run > 0, "{}", o["counts"]);
    assert!(o["counts"]["passed"].as_u64().unwrap() + o["counts"]["failed"].as_u64().unwrap() > 0);
    let text = std::fs::read_to_string(&junit).unwrap();
    roclab::xml::parse(&text).expect("junit is well-formed");
    assert!(text.contains("name=\"interrupted\" value=\"true\""));
    assert_eq!(text.matches("<skipped").count() as u64, not_run);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("INTERROMPU"),
        "the HTML report says interrupted"
    );
    assert!(page.trim_end().ends_with("</html>"));
}

#[test]
fn a_reference_gap_version_that_does_not_exist_is_a_usage_error() {
    for (set, says) in [
        ("sut.categorie=EXQN", "categorie 'EXQN'"),
        ("sut.norme=3.00", "norme '3.00'"),
    ] {
        let (code, _, err) = run(&["run", "scenarios/roc-v2-gap", "--set", set]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("profiles/reference-gap.yaml"), "{err}");
        assert!(err.contains(says), "{err}");
    }
    // A V1 GAP bills for ex-DG establishments only.
    let (code, _, err) = run(&[
        "run",
        "scenarios/roc-v2-gap",
        "--set",
        "sut.norme=1.04",
        "--profile",
        "profiles/reference-gap-exoqn.yaml",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("needs norme 2.00"), "{err}");
}

#[test]
fn a_rejection_asked_of_an_amc_under_test_is_refused_with_its_position() {
    // `payment_run: {reject: …}` makes a mirror AMC reject invoices; an AMC under test decides
    // its own rejections, so an AMC pack may not ask for them.
    let mut at = (std::path::PathBuf::new(), 0);
    let (code, err) = broken(|p| {
        let req = a_requirement(p);
        at = add_scenario(
            p,
            &format!(
                "- id: BROKEN-REJECT\n  title: t\n  verifies: [{req}]\n  steps:\n    - payment_run: {{reject: [F1]}}\n"
            ),
        );
    });
    assert_eq!(code, 2, "{err}");
    let name = at.0.file_name().unwrap().to_str().unwrap().to_string();
    assert!(err.contains(&format!("{name}:{}:", at.1 + 4)), "{err}");
    assert!(err.contains("reject needs the mirror AMC's actor"), "{err}");
}

/// `roclab defects`: one row per defect, every column starting where its header does.
#[test]
fn defects_are_listed_in_aligned_columns() {
    let (code, out, err) = run(&["defects"]);
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let header: Vec<char> = lines.next().unwrap().chars().collect();
    let col = |name: &str| {
        let h: String = header.iter().collect();
        h[..h.find(name).unwrap()].chars().count()
    };
    let (sut, rule, description) = (col("sut"), col("rule"), col("description"));
    let all: Vec<_> = roclab::defects::all().collect();
    assert_eq!(lines.clone().count(), all.len(), "{out}");
    for (line, d) in lines.zip(all) {
        let chars: Vec<char> = line.chars().collect();
        let at = |i: usize| chars[i..].iter().collect::<String>();
        assert!(line.starts_with(&format!("{} ", d.name)), "{line}");
        assert!(at(sut).starts_with(&format!("{} ", d.sut)), "{line}");
        assert!(at(rule).starts_with(d.rule), "{line}");
        assert_eq!(at(description), d.description, "{line}");
        assert_eq!(chars[description - 1], ' ', "{line}");
    }
}

/// Run in another folder and return (exit code, stdout, stderr).
fn run_in(cwd: &Path, args: &[&str]) -> (i32, String, String) {
    let out = roclab().current_dir(cwd).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One PKI folder for everything: `pki init` with no folder writes `pki/`, which is where the
/// example profile (`tls.dir: ../pki`, relative to `profiles/`) looks. A missing file is named
/// as a person would type it, with the command that creates it.
#[test]
fn a_missing_lab_pki_names_the_command_that_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path();
    std::fs::create_dir_all(project.join("profiles")).unwrap();
    std::fs::copy(
        root().join("profiles/amc-example.yaml"),
        project.join("profiles/amc-example.yaml"),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("sut.base_url=https://127.0.0.1:{port}/roc");
    let pack = pack("roc-v1-amc");
    let args = [
        "run",
        pack.to_str().unwrap(),
        "--profile",
        "profiles/amc-example.yaml",
        "--set",
        &url,
    ];
    let (code, out, err) = run_in(project, &args);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("tls.ca pki/ca.pem: ")
            && err.contains("— create the lab PKI with: roclab pki init pki/"),
        "{err}"
    );
    // The same through an absolute profile path: no `profiles/../` either.
    let abs = project.join("profiles/amc-example.yaml");
    let (code, _, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--profile",
        abs.to_str().unwrap(),
        "--set",
        &url,
    ]);
    assert_eq!(code, 2, "{err}");
    let want = project.join("pki");
    assert!(
        err.contains(&format!("tls.ca {}: ", want.join("ca.pem").display()))
            && err.contains(&format!("roclab pki init {}/", want.display()))
            && !err.contains("/../"),
        "{err}"
    );
    // Doing what the message says makes the PKI found: the run goes on to the SUT (absent).
    let (code, out, err) = run_in(project, &["pki", "init"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(project.join("pki/ca.pem").is_file(), "{out}");
    let (code, out, err) = run_in(project, &args);
    assert_eq!(code, 3, "{out}\n{err}");
    assert!(err.contains("cannot reach"), "{err}");
}

/// A GAP profile whose PKI folder is missing: the same hint, from the PKI loader.
#[test]
fn a_missing_gap_lab_pki_names_the_command_that_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nopki");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-gap",
        "--set",
        &format!("tls.dir={}", missing.display()),
    ]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!("{}: ", missing.join("ca.pem").display()))
            && err.contains(&format!("roclab pki init {}/", missing.display())),
        "{err}"
    );
}

/// A value given on the command line is blamed on the `--set` that gave it, not on the file.
#[test]
fn a_value_given_by_set_is_blamed_on_the_set() {
    let (code, _, err) = run(&["run", "scenarios/roc-v1-amc", "--set", "sut.defects=typo"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--set sut.defects=typo: unknown defect `typo`"),
        "{err}"
    );
    assert!(!err.contains("reference-amc.yaml"), "{err}");
    // The same mistake in the file is blamed on the file.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("amc.yaml");
    std::fs::write(&p, "sut: {kind: amc, embedded: true, defects: [typo]}\n").unwrap();
    let (code, _, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--profile",
        p.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}: unknown defect `typo`", p.display())),
        "{err}"
    );
}

/// `verifies: [A, B` without its `]`: the parser stops on the next key, but the error is put on
/// the line where the `[` was left open.
#[test]
fn a_missing_closing_bracket_is_reported_on_its_own_line() {
    let mut at = (std::path::PathBuf::new(), 0, 0);
    let (code, err) = broken(|p| {
        let f = first_scenario_file(p);
        let text = std::fs::read_to_string(&f).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let i = lines
            .iter()
            .position(|l| l.trim_start().starts_with("verifies: [") && l.ends_with(']'))
            .unwrap();
        lines[i].pop();
        at = (f.clone(), i + 1, lines[i].find('[').unwrap() + 1);
        std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    });
    assert_eq!(code, 2, "{err}");
    let name = at.0.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        err.contains(&format!(
            "{name}:{}:{}: flow sequence `[` opened here is not closed",
            at.1, at.2
        )),
        "{err}"
    );
    assert!(err.contains(&format!("stopped at {}:", at.1 + 1)), "{err}");
}

/// `report merge` with no output option writes the default set, as `run` does, and says where.
#[test]
fn report_merge_without_outputs_writes_the_default_set() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    for k in 1..=2 {
        let (code, _, err) = run(&[
            "run",
            "scenarios/roc-v1-amc",
            "--filter",
            "id:IDB-*",
            "--partition",
            &format!("{k}/2"),
            "--out",
            &p("shares"),
            "--json",
            &p(&format!("s{k}.json")),
        ]);
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = run(&[
        "report",
        "merge",
        &p("s1.json"),
        &p("s2.json"),
        "--out",
        &p("merged"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let d = dir.path().join("merged/roc-v1-amc");
    for f in ["junit.xml", "outcome.json", "report.html"] {
        assert!(d.join(f).is_file(), "{f} not written: {out}");
        assert!(out.contains(&d.join(f).display().to_string()), "{out}");
    }
    let passed = |f: &Path| outcome(f)["counts"]["passed"].as_u64().unwrap();
    let shares = passed(&dir.path().join("s1.json")) + passed(&dir.path().join("s2.json"));
    assert!(shares > 1);
    assert_eq!(passed(&d.join("outcome.json")), shares);
    // With an output named, only that one.
    let (code, _, err) = run(&[
        "report",
        "merge",
        &p("s1.json"),
        &p("s2.json"),
        "--json",
        &p("only.json"),
        "--out",
        &p("none"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.path().join("only.json").is_file());
    assert!(!dir.path().join("none").exists());
}

/// Console messages count in English: "1 scenario", and name SUTs with their article.
#[test]
fn console_messages_count_and_name_suts_in_english() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "id:IDB-OK-P01",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(1 scenario) against"), "{out}");
    assert!(out.contains("\n1 scenario: 1 passed"), "{out}");
    let (code, _, err) = run(&[
        "run",
        "scenarios/roc-v1-gap",
        "--profile",
        "profiles/reference-amc.yaml",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("tests a GAP but the profile describes an AMC"),
        "{err}"
    );
}

#[test]
fn completions_are_printed_for_a_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(
            out.contains("roclab") && out.contains("run"),
            "{shell}: {out}"
        );
        assert!(
            out.contains("--filter") || out.contains("filter"),
            "{shell}"
        );
    }
    let (code, _, _) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2);
}

/// `run --list` prints what a filter selects (id, source, title) and runs nothing.
#[test]
fn run_list_prints_the_selection_without_running_it() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("reports");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "id:IDB-OK-*",
        "--list",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() > 1, "{out}");
    for l in &lines {
        assert!(l.starts_with("IDB-OK-"), "{out}");
        assert!(
            l.contains("scenarios/roc-v1-amc/scenarios/01-idb.yaml:"),
            "{out}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("IDB-OK-P01 ") && l.contains("Nominal IDB")),
        "{out}"
    );
    assert!(!out_dir.exists(), "nothing run, no report");
}

/// `--fail-fast`: after the first failure no scenario starts; the others are not run, with the
/// reason, and the run is not marked interrupted.
#[test]
fn fail_fast_stops_after_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("o.json");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "id:IDB-*",
        "--set",
        "sut.defects=rights-end-exclusive",
        "--jobs",
        "1",
        "--fail-fast",
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{out}\n{err}");
    let o = outcome(&json);
    assert_eq!(ids_with(&o, "failed"), ["IDB-OK-P02-LAST-DAY"]);
    assert_eq!(o["interrupted"], false);
    assert_eq!(o["verdict"], "not_conformant");
    let not_run: Vec<&serde_json::Value> = o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "not_run")
        .collect();
    assert!(!not_run.is_empty(), "{}", o["counts"]);
    for s in &not_run {
        assert_eq!(
            s["reason"], "not run: --fail-fast after IDB-OK-P02-LAST-DAY failed",
            "{s}"
        );
    }
    assert!(err.contains("not a complete run"), "{err}");
    // Without it, every selected scenario runs.
    let (code, _, _) = run(&[
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "id:IDB-*",
        "--set",
        "sut.defects=rights-end-exclusive",
        "--out",
        dir.path().to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(outcome(&json)["counts"]["not_run"], 0);
}

/// `-q`: the summary line only; `-v`: also each finding under its scenario.
#[test]
fn quiet_and_verbose_set_what_the_console_shows() {
    let dir = tempfile::tempdir().unwrap();
    let base = [
        "run",
        "scenarios/roc-v1-amc",
        "--filter",
        "id:IDB-OK-*",
        "--set",
        "sut.defects=rights-end-exclusive",
        "--out",
        dir.path().to_str().unwrap(),
    ];
    let (code, out, err) = run(&[&base[..], &["-q"]].concat());
    assert_eq!(code, 1, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("1 failed") && out.contains("NON CONFORME"),
        "{out}"
    );
    let (code, plain, _) = run(&base);
    assert_eq!(code, 1);
    assert!(plain.contains("PASS  IDB-OK-P01 ") && plain.contains("FAIL  IDB-OK-P02-LAST-DAY"));
    assert!(!plain.contains("      step "), "{plain}");
    let (code, out, _) = run(&[&base[..], &["--verbose"]].concat());
    assert_eq!(code, 1);
    let fail = out
        .lines()
        .position(|l| l.starts_with("FAIL  IDB-OK-P02-LAST-DAY"))
        .unwrap();
    let next = out.lines().nth(fail + 1).unwrap();
    assert!(
        next.starts_with("      step ") && next.contains("statut"),
        "{out}"
    );
    let (code, _, err) = run(&[&base[..], &["-q", "-v"]].concat());
    assert_eq!(code, 2, "{err}");
}

/// `--color`: escape codes around the tags with `always` (even beside NO_COLOR), none with
/// `never` or, off a terminal, with `auto`.
#[test]
fn color_colours_the_tags_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let args = |when: &str| {
        vec![
            "run".to_string(),
            "scenarios/roc-v1-amc".into(),
            "--filter".into(),
            "id:IDB-OK-P01".into(),
            "--out".into(),
            dir.path().to_str().unwrap().into(),
            "--color".into(),
            when.into(),
        ]
    };
    let out = roclab()
        .args(args("always"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\x1b[32mPASS \x1b[0m IDB-OK-P01"), "{text:?}");
    for when in ["never", "auto"] {
        let out = roclab()
            .args(args(when))
            .env_remove("NO_COLOR")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("PASS  IDB-OK-P01") && !text.contains('\x1b'),
            "{when}: {text:?}"
        );
    }
}
