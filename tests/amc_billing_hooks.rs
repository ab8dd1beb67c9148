//! The billing scenarios of `roc-v2-amc` against an AMC that is not embedded: `roclab serve amc`
//! in another process, writing its RSP files into the establishment's return drop
//! (`returns.dir` of the profile, relative to the profile file), with the profile's
//! payment-run hook in both forms:
//! - `payment_run.command`: a shell script asks the served AMC for a payment run
//!   (`--pay-on-request`: a file of its own in `$ROCLAB_RETURN_DROP/.payment-requests`) and
//!   returns once the AMC has removed it, i.e. once the RSP files are written;
//! - `payment_run.delay_ms`: the served AMC pays on its own (`--pay-every-ms`), the lab waits.
//!
//! And the checks fail when they must: a wrong amount in a return, a hook that fails, a return
//! that never comes.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The scenarios of the pack with a payment run and an expected return (tag `rsp`).
const RSP_SCENARIOS: [&str; 7] = [
    "ANF-R24-PAID",
    "ANF-R24-REJECTED",
    "RSP-PAID-ON-END-DAY",
    "RSP-PAID-P05",
    "RSP-R25-PERIOD",
    "RSP-R25-REINVOICE",
    "RSP-TWO-PAYMENTS",
];

/// The payment runs those scenarios ask for (two in each RSP-R25-* scenario).
const RSP_PAYMENT_RUNS: usize = 9;

/// The payment-run hook: ask the served AMC for a run with a request file of its own in `$2`
/// (default: the AMC's default request folder under the return drop), wait until the AMC
/// removes it (the run is done), at most `$1` seconds; relay the AMC's error if the run
/// failed; then list the return drop (recorded as the payment run's answer).
const HOOK: &str = r#"limit="${1:-10}"
d="${2:-$ROCLAB_RETURN_DROP/.payment-requests}"
req=$(mktemp "$d/run-XXXXXXXX") || exit 2
n=0
while [ -e "$req" ]; do
  n=$((n + 1))
  if [ "$n" -gt $((limit * 20)) ]; then
    rm -f "$req"
    echo "no payment run within $limit s: is an AMC watching $d?" >&2
    exit 1
  fi
  sleep 0.05
done
err="$d/.$(basename "$req").error"
if [ -e "$err" ]; then cat "$err" >&2; rm -f "$err"; exit 1; fi
ls "$ROCLAB_RETURN_DROP"
"#;

/// `roclab serve amc` in another process, killed when dropped (even on a failed assertion).
struct Served {
    child: Child,
    /// `https://127.0.0.1:<port>`, as printed.
    addr: String,
    /// The lines it printed after the first.
    lines: Arc<Mutex<Vec<String>>>,
}

impl Served {
    /// Serve endpoint A with a fresh PKI in `dir/pki` (written by `serve` itself) and `extra`
    /// options.
    fn start(dir: &Path, extra: &[&str]) -> Served {
        let stderr = std::fs::File::create(dir.join("serve.err")).unwrap();
        let pki = dir.join("pki");
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("roclab"))
            .current_dir(root())
            .args(["serve", "amc", "--listen", "127.0.0.1:0", "--pki"])
            .arg(&pki)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("roclab serve amc starts");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        out.read_line(&mut first).unwrap();
        let served = |addr: String| Served {
            child,
            addr,
            lines: Arc::new(Mutex::new(vec![])),
        };
        let Some(addr) = first
            .split_whitespace()
            .find(|w| w.starts_with("https://"))
            .map(str::to_string)
        else {
            drop(served(String::new()));
            panic!(
                "no address in {first:?}; stderr: {}",
                std::fs::read_to_string(dir.join("serve.err")).unwrap_or_default()
            );
        };
        let s = served(addr);
        // Drain stdout so the server never blocks on a full pipe.
        let lines = s.lines.clone();
        std::thread::spawn(move || {
            for l in out.lines() {
                let Ok(l) = l else { break };
                lines.lock().unwrap().push(l);
            }
        });
        s
    }

    /// The printed lines containing `what`, waiting up to 2 s for at least `n` of them.
    fn lines_with(&self, what: &str, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let found: Vec<String> = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(what))
                .cloned()
                .collect();
            if found.len() >= n || Instant::now() >= deadline {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Write `dir/profile.yaml` for the served AMC: its PKI in `dir/pki`, the return drop
/// `dir/returns` (given relative to the profile), and `hook` (the `payment_run` mapping).
fn profile(dir: &Path, s: &Served, hook: &str) -> PathBuf {
    let path = dir.join("profile.yaml");
    let text = format!(
        "sut:\n  kind: amc\n  base_url: {}\n\
         tls:\n  dir: pki\n  ca: ca.pem\n  cert: client.pem\n  key: client.key\n\
         capabilities: [v2.periods, v2.exoqn, billing, billing.on-demand]\n\
         returns:\n  dir: returns\n\
         payment_run: {hook}\n",
        s.addr
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A `payment_run.command` running [`HOOK`] with a limit of `limit_s` seconds and the
/// request folder `requests` (None: the default one).
fn command_hook(dir: &Path, limit_s: u32, requests: Option<&Path>) -> String {
    let script = dir.join("pay.sh");
    std::fs::write(&script, HOOK).unwrap();
    let mut cmd = format!("sh '{}' {limit_s}", script.display());
    if let Some(r) = requests {
        cmd.push_str(&format!(" '{}'", r.display()));
    }
    // JSON strings are YAML flow scalars.
    format!("{{command: {}}}", serde_json::Value::String(cmd))
}

/// Run the pack's scenarios selected by `filter` with `profile`: (exit code, outcome, output).
fn run_pack(dir: &Path, profile: &Path, filter: &str) -> (i32, serde_json::Value, String) {
    let json = dir.join("o.json");
    let (code, out, err) = run(&[
        "run",
        "scenarios/roc-v2-amc",
        "--profile",
        profile.to_str().unwrap(),
        "--filter",
        filter,
        "--json",
        json.to_str().unwrap(),
        "--junit",
        dir.join("j.xml").to_str().unwrap(),
        "--html",
        dir.join("r.html").to_str().unwrap(),
    ]);
    let o = if json.exists() {
        outcome(&json)
    } else {
        serde_json::Value::Null
    };
    (code, o, format!("stdout:\n{out}\nstderr:\n{err}"))
}

fn scenario<'a>(o: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    o["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no scenario {id} in the outcome"))
}

/// The steps of `s` whose exchange is the operation `op`.
fn exchanges<'a>(s: &'a serde_json::Value, op: &str) -> Vec<&'a serde_json::Value> {
    s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| &st["exchange"])
        .filter(|e| e["operation"] == op)
        .collect()
}

/// Every RSP scenario passed (none skipped), against the served AMC, with its return files
/// read from the profile's return drop.
fn assert_rsp_scenarios_passed(code: i32, o: &serde_json::Value, out: &str, returns: &Path) {
    assert_eq!(code, 0, "{out}");
    // A filtered run: conformant on the tested scope.
    assert_eq!(o["verdict"], "conformant_scoped", "{out}");
    assert_eq!(o["sut"]["embedded"], false);
    assert_eq!(ids_with(o, "passed"), RSP_SCENARIOS, "{}", o["counts"]);
    assert_eq!(
        o["scenarios"].as_array().unwrap().len(),
        RSP_SCENARIOS.len()
    );
    let drop = returns.canonicalize().unwrap();
    for id in RSP_SCENARIOS {
        let s = scenario(o, id);
        assert!(
            !exchanges(s, "payment run").is_empty(),
            "{id}: no payment run"
        );
        let rsp = exchanges(s, "RSP");
        assert!(!rsp.is_empty(), "{id}: no return checked");
        for e in rsp {
            let url = e["url"].as_str().unwrap();
            let file = Path::new(url.strip_prefix("file://").unwrap());
            assert_eq!(
                file.parent().unwrap().canonicalize().unwrap(),
                drop,
                "{url}"
            );
            assert!(file.exists(), "{url}");
        }
    }
}

#[test]
fn rsp_scenarios_pass_through_a_payment_run_command() {
    let dir = tempfile::tempdir().unwrap();
    let returns = dir.path().join("returns");
    let s = Served::start(
        dir.path(),
        &["--returns", returns.to_str().unwrap(), "--pay-on-request"],
    );
    let p = profile(dir.path(), &s, &command_hook(dir.path(), 10, None));
    let (code, o, out) = run_pack(dir.path(), &p, "tag:rsp");
    assert_rsp_scenarios_passed(code, &o, &out, &returns);
    // The hook ran with ROCLAB_RETURN_DROP = the profile's returns.dir and returned after the
    // AMC had written the scenario's file: its listing of the drop (the payment run's
    // answer) already names it.
    let run = &exchanges(scenario(&o, "RSP-PAID-P05"), "payment run")[0];
    let listing = run["response"]["body"].as_str().unwrap();
    // (Invoice numbers are F<run token>RSP-PAID-1: four characters drawn once per run.)
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("RSP-F") && l.ends_with("RSP-PAID-1.xml")),
        "{run}"
    );
    // One payment run of the served AMC per request, nothing else.
    let runs = s.lines_with("payment run (", RSP_PAYMENT_RUNS);
    assert_eq!(runs.len(), RSP_PAYMENT_RUNS, "{runs:#?}");
    assert!(runs.iter().all(|l| l.contains("(1 request)")), "{runs:#?}");
    assert!(
        std::fs::read_dir(returns.join(".payment-requests"))
            .unwrap()
            .next()
            .is_none(),
        "requests left behind"
    );
}

#[test]
fn rsp_scenarios_pass_when_the_amc_pays_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let returns = dir.path().join("returns");
    let s = Served::start(
        dir.path(),
        &[
            "--returns",
            returns.to_str().unwrap(),
            "--pay-every-ms",
            "50",
        ],
    );
    let p = profile(dir.path(), &s, "{delay_ms: 150}");
    let (code, o, out) = run_pack(dir.path(), &p, "tag:rsp");
    assert_rsp_scenarios_passed(code, &o, &out, &returns);
    let run = &exchanges(scenario(&o, "RSP-PAID-P05"), "payment run")[0];
    assert!(
        run["response"]["body"]
            .as_str()
            .unwrap()
            .contains("waited 150 ms"),
        "{run}"
    );
    assert!(!s.lines_with("payment run (every 50 ms)", 1).is_empty());
}

#[test]
fn a_wrong_amount_in_a_return_fails_through_the_command_hook() {
    let dir = tempfile::tempdir().unwrap();
    let returns = dir.path().join("returns");
    let s = Served::start(
        dir.path(),
        &[
            "--returns",
            returns.to_str().unwrap(),
            "--pay-on-request",
            "--defect",
            "rsp-amount-wrong",
        ],
    );
    let p = profile(dir.path(), &s, &command_hook(dir.path(), 10, None));
    let (code, o, out) = run_pack(dir.path(), &p, "id:RSP-PAID-P05");
    assert_eq!(code, 1, "{out}");
    assert_eq!(ids_with(&o, "failed"), ["RSP-PAID-P05"], "{out}");
    let sc = scenario(&o, "RSP-PAID-P05");
    // The payment run went through; the return file was found and is wrong.
    assert!(!exchanges(sc, "RSP").is_empty(), "{sc}");
    let reason = sc["reason"].as_str().unwrap();
    assert!(
        reason.contains("montantPaye") && reason.contains("expected 256.50, got 256.49"),
        "{reason}"
    );
}

#[test]
fn a_failing_payment_run_hook_errors_the_scenario_with_its_message() {
    // The served AMC writes returns but does not watch for requests (as if its batch were
    // down): the hook gives up after its 1 s limit, with a message and a non-zero exit.
    let dir = tempfile::tempdir().unwrap();
    let returns = dir.path().join("returns");
    std::fs::create_dir_all(returns.join(".payment-requests")).unwrap();
    let s = Served::start(dir.path(), &["--returns", returns.to_str().unwrap()]);
    let p = profile(dir.path(), &s, &command_hook(dir.path(), 1, None));
    let t0 = Instant::now();
    let (code, o, out) = run_pack(dir.path(), &p, "id:RSP-PAID-P05");
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    // The lab could not test: no verdict possible.
    assert_eq!(code, 3, "{out}");
    assert_eq!(ids_with(&o, "errored"), ["RSP-PAID-P05"], "{out}");
    let reason = scenario(&o, "RSP-PAID-P05")["reason"].as_str().unwrap();
    assert!(reason.contains("payment-run hook"), "{reason}");
    assert!(reason.contains("no payment run within 1 s"), "{reason}");
}

#[test]
fn a_hanging_payment_run_hook_is_killed_at_its_time_limit() {
    // A hook that never returns (here a sleep of a minute): the lab kills it at
    // payment_run.timeout_ms and the scenario errs; the run does not hang.
    let dir = tempfile::tempdir().unwrap();
    let returns = dir.path().join("returns");
    let s = Served::start(dir.path(), &["--returns", returns.to_str().unwrap()]);
    let p = profile(dir.path(), &s, "{command: \"sleep 60\", timeout_ms: 300}");
    let t0 = Instant::now();
    let (code, o, out) = run_pack(dir.path(), &p, "id:RSP-PAID-P05");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    // The lab could not test: no verdict possible.
    assert_eq!(code, 3, "{out}");
    assert_eq!(ids_with(&o, "errored"), ["RSP-PAID-P05"], "{out}");
    let reason = scenario(&o, "RSP-PAID-P05")["reason"].as_str().unwrap();
    assert!(reason.contains("did not return within 300 ms"), "{reason}");
}

#[test]
fn a_failed_payment_run_is_relayed_by_the_hook() {
    // Requests in a folder of their own (`--pay-on-request=DIR`); once the AMC is up, its
    // return drop is replaced by a plain file, so its payment run fails: the AMC leaves the
    // error next to the request, the hook relays it, the scenario is errored with it.
    let dir = tempfile::tempdir().unwrap();
    let returns = dir.path().join("returns");
    let requests = dir.path().join("requests");
    let s = Served::start(
        dir.path(),
        &[
            "--returns",
            returns.to_str().unwrap(),
            &format!("--pay-on-request={}", requests.display()),
        ],
    );
    std::fs::remove_dir(&returns).unwrap();
    std::fs::write(&returns, "not a folder").unwrap();
    let p = profile(
        dir.path(),
        &s,
        &command_hook(dir.path(), 10, Some(&requests)),
    );
    let (code, o, out) = run_pack(dir.path(), &p, "id:RSP-PAID-P05");
    // The lab could not test: no verdict possible.
    assert_eq!(code, 3, "{out}");
    assert_eq!(ids_with(&o, "errored"), ["RSP-PAID-P05"], "{out}");
    let reason = scenario(&o, "RSP-PAID-P05")["reason"].as_str().unwrap();
    assert!(reason.contains("payment-run hook"), "{reason}");
    let amc_error = format!("payment run into {} failed: ", returns.display());
    assert!(reason.contains(&amc_error), "{reason}");
    assert_eq!(s.lines_with("failed", 1).len(), 1);
    // The request was answered (removed) and the error file taken by the hook.
    assert!(std::fs::read_dir(&requests).unwrap().next().is_none());
}

#[test]
fn a_return_that_never_comes_fails_with_its_file_name() {
    // A delay hook against an AMC that never pays: the pack's within_ms (5000) runs out.
    let dir = tempfile::tempdir().unwrap();
    let returns = dir.path().join("returns");
    let s = Served::start(dir.path(), &["--returns", returns.to_str().unwrap()]);
    let p = profile(dir.path(), &s, "{delay_ms: 100}");
    let (code, o, out) = run_pack(dir.path(), &p, "id:RSP-PAID-ON-END-DAY");
    assert_eq!(code, 1, "{out}");
    assert_eq!(ids_with(&o, "failed"), ["RSP-PAID-ON-END-DAY"], "{out}");
    let reason = scenario(&o, "RSP-PAID-ON-END-DAY")["reason"]
        .as_str()
        .unwrap();
    assert!(
        reason.contains("/RSP-F") && reason.contains("RSP-END-DAY-1.xml"),
        "{reason}"
    );
    assert!(reason.contains("within 5000 ms"), "{reason}");
    let printed = s.lines.lock().unwrap().clone();
    assert!(
        printed.iter().all(|l| !l.contains("payment run (")),
        "{printed:#?}"
    );
}

#[test]
fn payment_run_options_need_a_return_drop() {
    for opt in ["--pay-on-request", "--pay-every-ms=100"] {
        let (code, _, err) = run(&["serve", "amc", "--listen", "127.0.0.1:0", opt]);
        assert_eq!(code, 2, "{opt}: {err}");
        assert!(err.contains("--returns"), "{opt}: {err}");
    }
}

#[test]
fn the_billing_scenarios_pass_again_against_the_same_amc() {
    // An AMC keeps its registry between runs: the pack's invoice numbers and period dossiers
    // carry {{run}}, so a second run against the same AMC and return drop meets none of the
    // first run's numbers (no R22, no R08) nor its return files.
    let dir = tempfile::tempdir().unwrap();
    let returns = dir.path().join("returns");
    let s = Served::start(
        dir.path(),
        &["--returns", returns.to_str().unwrap(), "--pay-on-request"],
    );
    let p = profile(dir.path(), &s, &command_hook(dir.path(), 10, None));
    let filter = "tag:billing | tag:periods";
    let (code, first, out) = run_pack(dir.path(), &p, filter);
    assert_eq!(code, 0, "{out}");
    let n = ids_with(&first, "passed").len();
    assert_eq!(n, first["scenarios"].as_array().unwrap().len());
    assert!(n >= 30, "{n} scenarios");
    let files = std::fs::read_dir(&returns).unwrap().count();
    let (code, again, out) = run_pack(dir.path(), &p, filter);
    assert_eq!(code, 0, "second run:\n{out}");
    assert_eq!(ids_with(&again, "passed").len(), n);
    assert!(std::fs::read_dir(&returns).unwrap().count() > files);
}
