//! Checks of the GAP session shown against a GAP that is not roclab's: the test plays a GAP of
//! its own behind an `http` driver hook (a plain-HTTP server on 127.0.0.1), which answers each
//! trigger at once and then, from a thread, does the GAP's calls over mutual TLS with the lab's
//! client certificate: the annuaire lookup, then the SEL requests to the addresses the annuaire
//! gave. Each trigger of `tests/data/gap-odd` says how this GAP misbehaves (input `gap`):
//! an IDB that is not well-formed XML, a CLC that leaves before the IDB answer came, or the
//! right flow. The pack is run once (its four scenarios concurrently) and each test checks one
//! scenario of the outcome.

mod common;

use common::*;
use roclab::mirror::amc::Op;
use roclab::mirror::annuaire;
use roclab::mirror::gap::{Patient, SelRequest, Stay, annuaire_query, sel_envelope, sel_headers};
use roclab::net::client::{Request, Timeouts, post_with};
use roclab::net::tls::{Identity, client_config};
use roclab::outcome::Exchange;
use roclab::soap::{self, SoapVersion};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const ODD: &str = "tests/data/gap-odd";
/// How long the test's GAP waits after sending the IDB before it sends the CLC in `clc-early`
/// (the lab holds the IDB answer back 1000 ms).
const EARLY_CLC_AFTER: Duration = Duration::from_millis(250);

/// The pack's outcome and what the test's GAP did (one line per call or error).
struct PackRun {
    outcome: Value,
    gap_log: Vec<String>,
    code: i32,
    output: String,
}

static RUN: OnceLock<PackRun> = OnceLock::new();

/// Run `tests/data/gap-odd` once against the test's GAP; every test reads the same run.
fn pack_run() -> &'static PackRun {
    RUN.get_or_init(|| {
        let log = Arc::new(Mutex::new(vec![]));
        let port = serve_hook(log.clone());
        let dir = tempfile::tempdir().unwrap();
        // `driver.quiet_ms` (late requests are awaited 300 ms, not 2 s) is not in the default
        // GAP profile, and `--set` gives a field the profile lacks as a string, which a number
        // field refuses: a profile file says it. The hook's URL (its port) comes by `--set`.
        let profile = dir.path().join("independent-gap.yaml");
        std::fs::write(
            &profile,
            "sut: {kind: gap, embedded: false}\n\
             driver: {kind: http, url: \"http://127.0.0.1:9/unset\", timeout_ms: 8000, quiet_ms: 300}\n\
             lab: {listen: {annuaire: \"127.0.0.1:0\", amc-A: \"127.0.0.1:0\", amc-B: \"127.0.0.1:0\"}}\n",
        )
        .unwrap();
        let json = dir.path().join("outcome.json");
        let url = format!("driver.url=http://127.0.0.1:{port}/hook");
        let t0 = Instant::now();
        let (code, out, err) = run(&[
            "run",
            ODD,
            "--profile",
            profile.to_str().unwrap(),
            "--set",
            "driver.kind=http",
            "--set",
            &url,
            "--set",
            "sut.embedded=false",
            "--out",
            dir.path().to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
            "--junit",
            dir.path().join("junit.xml").to_str().unwrap(),
        ]);
        assert!(json.exists(), "roclab exit {code}, no outcome:\n{out}\n{err}");
        eprintln!("gap-odd ran in {} ms", t0.elapsed().as_millis());
        let gap_log = log.lock().unwrap().clone();
        PackRun {
            outcome: outcome(&json),
            gap_log,
            code,
            output: format!("{out}\n{err}"),
        }
    })
}

/// The scenario `id` of the run, with a description of the run for assertion messages.
fn scenario(id: &str) -> (&'static Value, String) {
    let r = pack_run();
    let s = r.outcome["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no scenario {id}"));
    let about = format!(
        "roclab exit {}\n{}\ntest GAP:\n  {}\nscenario {id}:\n{}",
        r.code,
        r.output,
        r.gap_log.join("\n  "),
        serde_json::to_string_pretty(s).unwrap()
    );
    (s, about)
}

/// The step of `s` whose exchange is `actor operation`.
fn step<'a>(s: &'a Value, actor: &str, operation: &str, about: &str) -> &'a Value {
    s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["exchange"]["to"] == actor && st["exchange"]["operation"] == operation)
        .unwrap_or_else(|| panic!("no {actor} {operation} step\n{about}"))
}

/// Every finding of the scenario as `check: message`.
fn findings(s: &Value) -> Vec<String> {
    s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["findings"].as_array().unwrap().iter())
        .map(|f| format!("{}: {}", f["check"].as_str().unwrap(), f["message"]))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn a_request_that_is_not_well_formed_xml_fails_the_scenario() {
    let (s, about) = scenario("ODD-XML");
    assert_eq!(s["status"], "failed", "{about}");
    let idb = step(s, "amc-A", "IDB", &about);
    let f = idb["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "only the xml check: {about}");
    assert_eq!(f[0]["check"], "xml", "{about}");
    // The request is kept as sent; the message points at its defect: line 4 (the envelope's
    // content), where `</roc:idbRequete>` comes while `roc:entete` is still open.
    let body = idb["exchange"]["request"]["body"].as_str().unwrap();
    let col = body
        .lines()
        .nth(3)
        .unwrap()
        .find("</roc:idbRequete>")
        .unwrap()
        + 1;
    let m = f[0]["message"].as_str().unwrap();
    assert!(
        m.starts_with(&format!("the request is not well-formed XML (4:{col}: "))
            && m.contains("</roc:idbRequete>")
            && m.ends_with(')'),
        "{m}\n{about}"
    );
    assert_eq!(s["reason"], m, "{about}");
}

#[test]
fn a_request_sent_before_the_answer_it_depends_on_is_an_order_finding() {
    let (s, about) = scenario("ODD-ORDER-EARLY");
    assert_eq!(s["status"], "failed", "{about}");
    let clc = step(s, "amc-A", "CLC", &about);
    let f = clc["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "only the order check: {about}");
    assert_eq!(f[0]["check"], "order", "{about}");
    assert_eq!(
        f[0]["message"], "the GAP sent amc-A CLC before it had the answer to amc-A IDB",
        "{about}"
    );
    // Nothing else is wrong with the flow.
    assert_eq!(findings(s).len(), 1, "{about}");
    // The lab held the IDB answer back, and the test's GAP saw its CLC leave before it came
    // (the recorded `started` of a GAP's request has whole seconds only: no help here).
    let idb = &step(s, "amc-A", "IDB", &about)["exchange"];
    assert!(idb["duration_ms"].as_f64().unwrap() >= 1000.0, "{about}");
    assert!(
        pack_run()
            .gap_log
            .iter()
            .any(|l| l.starts_with("ODD-ORDER-EARLY: CLC left ")
                && l.ends_with(" ms before the IDB answer came")),
        "{about}"
    );
}

#[test]
fn the_same_flow_in_the_right_order_passes() {
    let (s, about) = scenario("ODD-ORDER-RIGHT");
    assert_eq!(s["status"], "passed", "{about}");
    assert!(findings(s).is_empty(), "{about}");
    // The mirror's own CLC answer holds an engagement: the capture is taken.
    let clc = step(s, "amc-A", "CLC", &about);
    let eng = clc["captures"]["engagement"].as_str().unwrap_or("");
    assert!(eng.starts_with("ENG-"), "{about}");
}

#[test]
fn a_capture_that_finds_nothing_in_the_answer_fails_the_scenario() {
    let (s, about) = scenario("ODD-CAPTURE");
    assert_eq!(s["status"], "failed", "{about}");
    let clc = step(s, "amc-A", "CLC", &about);
    let f = clc["findings"].as_array().unwrap();
    assert_eq!(f.len(), 1, "only the capture: {about}");
    assert_eq!(f[0]["check"], "capture", "{about}");
    assert_eq!(
        f[0]["message"],
        "cannot capture `engagement` from the answer: nothing at //roc:clcReponse/roc:numeroEngagement",
        "{about}"
    );
    assert_eq!(s["reason"], f[0]["message"], "{about}");
    // The answer the capture was tried on is the scenario's template, as sent.
    let answer = clc["exchange"]["response"]["body"].as_str().unwrap();
    assert!(
        answer.contains("<roc:totalAmc>24.00</roc:totalAmc>")
            && !answer.contains("numeroEngagement"),
        "{about}"
    );
    assert!(clc["captures"].get("engagement").is_none(), "{about}");
}

#[test]
fn the_run_is_not_conformant_and_only_the_defective_flows_fail() {
    let r = pack_run();
    for s in r.outcome["scenarios"].as_array().unwrap() {
        eprintln!("{} {} {:?}", s["id"], s["status"], findings(s));
    }
    eprintln!("test GAP: {:#?}", r.gap_log);
    assert_eq!(r.code, 1, "{}", r.output);
    assert_eq!(r.outcome["verdict"], "not_conformant");
    assert_eq!(r.outcome["sut"]["kind"], "gap");
    assert_eq!(r.outcome["sut"]["embedded"], false);
    assert_eq!(ids_with(&r.outcome, "passed"), ["ODD-ORDER-RIGHT"]);
    assert_eq!(
        ids_with(&r.outcome, "failed"),
        ["ODD-CAPTURE", "ODD-ORDER-EARLY", "ODD-XML"]
    );
    // The test's GAP itself met no trouble (every call got an HTTP answer).
    assert!(
        r.gap_log.iter().all(|l| !l.contains("error")),
        "{:#?}",
        r.gap_log
    );
}

// ---------------------------------------------------------------------------------------------
// The driver hook and the test's GAP

/// Serve the driver hook on a free port of 127.0.0.1: each POSTed trigger is answered `{}` at
/// once, then carried out from a thread of its own. Runs until the test process ends.
fn serve_hook(log: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let doc = match read_post(&mut stream) {
                    Ok(body) => serde_json::from_slice::<Value>(&body).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let answer = match &doc {
                    Ok(_) => {
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                    }
                    Err(_) => {
                        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    }
                };
                let _ = stream.write_all(answer.as_bytes());
                drop(stream);
                let doc = match doc {
                    Ok(d) => d,
                    Err(e) => {
                        log.lock().unwrap().push(format!("hook error: {e}"));
                        return;
                    }
                };
                let scenario = doc["scenario"].as_str().unwrap_or("?").to_string();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let result = rt.block_on(act(&doc, &log, &scenario));
                if let Err(e) = result {
                    log.lock().unwrap().push(format!("{scenario}: error: {e}"));
                }
            });
        }
    });
    port
}

/// The body of one HTTP/1.1 POST (its head read up to the blank line, then Content-Length).
fn read_post(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = vec![];
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed in the head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| std::io::Error::other("no Content-Length"))?;
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed in the body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf[head_end..head_end + len].to_vec())
}

/// What the test's GAP knows for one trigger.
struct Gap {
    tls: Arc<rustls::ClientConfig>,
    patient: Patient,
    stay: Stay,
    cle_nir: String,
    finess_juridique: String,
    finess_geographique: String,
}

/// Carry out one trigger the way its input `gap` says.
async fn act(doc: &Value, log: &Mutex<Vec<String>>, scenario: &str) -> Result<(), String> {
    let lab = &doc["lab"];
    let text = |v: &Value, what: &str| -> Result<String, String> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("trigger: {what} missing"))
    };
    let read = |key: &str| -> Result<String, String> {
        let path = text(&lab[key], &format!("lab.{key}"))?;
        std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))
    };
    let identity = Identity {
        cert_pem: read("client_cert")?,
        key_pem: read("client_key")?,
    };
    let gap = Gap {
        tls: client_config(&read("ca")?, Some(&identity)).map_err(|e| e.to_string())?,
        patient: Patient::from_json(&doc["data"]["patient"])?,
        stay: Stay::from_json(&doc["data"]["stay"])?,
        cle_nir: text(&doc["data"]["patient"]["cle_nir"], "data.patient.cle_nir")?,
        finess_juridique: text(&lab["finess_juridique"], "lab.finess_juridique")?,
        finess_geographique: text(&lab["finess_geographique"], "lab.finess_geographique")?,
    };
    let note = |line: String| log.lock().unwrap().push(format!("{scenario}: {line}"));

    // The annuaire: where the AMC's services are in this scenario.
    let query = annuaire_query(
        &stamp(false),
        "odd-gap",
        "0.1",
        &gap.patient,
        &gap.stay.domaine,
    );
    let body = soap::envelope(
        soap::SOAP11_ENV,
        &[],
        &annuaire::request_body(&query, annuaire::NS),
    );
    let url = text(&lab["annuaire_url"], "lab.annuaire_url")?;
    let ex = gap
        .post(&url, SoapVersion::V11.request_headers(""), body, "search")
        .await;
    note(summary(&ex));
    let answer = ex
        .response
        .as_ref()
        .and_then(|r| r.body.clone())
        .ok_or("annuaire: no answer")?;
    let (code, addresses) = annuaire::parse_response(&answer)?;
    if code != "00" {
        return Err(format!("annuaire answered code_retour {code}"));
    }
    let address = |op: Op| -> Result<String, String> {
        addresses
            .iter()
            .find(|a| a.code_service == op.name() && a.type_adresse == "URL")
            .map(|a| a.valeur.clone())
            .ok_or_else(|| format!("the annuaire gave no address for {}", op.name()))
    };
    let (idb_url, clc_url) = (address(Op::Idb)?, address(Op::Clc)?);

    match doc["inputs"]["gap"].as_str().unwrap_or("") {
        "idb-not-xml" => {
            // The end tag of `entete` is missing: `</roc:idbRequete>` closes it.
            let body = gap.sel(Op::Idb).replacen("</roc:entete>", "", 1);
            let ex = gap.post(&idb_url, sel_headers(Op::Idb), body, "IDB").await;
            note(summary(&ex));
        }
        "clc-early" => {
            let idb = async {
                let ex = gap
                    .post(&idb_url, sel_headers(Op::Idb), gap.sel(Op::Idb), "IDB")
                    .await;
                (ex, Instant::now())
            };
            let clc = async {
                tokio::time::sleep(EARLY_CLC_AFTER).await;
                let sent = Instant::now();
                let ex = gap
                    .post(&clc_url, sel_headers(Op::Clc), gap.sel(Op::Clc), "CLC")
                    .await;
                (ex, sent)
            };
            let ((idb, answered), (clc, sent)) = tokio::join!(idb, clc);
            note(summary(&idb));
            note(summary(&clc));
            note(match answered.checked_duration_since(sent) {
                Some(d) => format!("CLC left {} ms before the IDB answer came", d.as_millis()),
                None => "error: the CLC left after the IDB answer came".to_string(),
            });
        }
        "in-order" => {
            let ex = gap
                .post(&idb_url, sel_headers(Op::Idb), gap.sel(Op::Idb), "IDB")
                .await;
            note(summary(&ex));
            let ex = gap
                .post(&clc_url, sel_headers(Op::Clc), gap.sel(Op::Clc), "CLC")
                .await;
            note(summary(&ex));
        }
        other => return Err(format!("unknown inputs.gap `{other}`")),
    }
    Ok(())
}

impl Gap {
    /// A well-formed SEL request of `op` (norme 1.04) for the trigger's patient and stay.
    fn sel(&self, op: Op) -> String {
        let id_flux = uuid::Uuid::new_v4().to_string();
        sel_envelope(&SelRequest {
            op,
            id_flux: &id_flux,
            emission: &stamp(true),
            finess_juridique: &self.finess_juridique,
            finess_geographique: &self.finess_geographique,
            logiciel: "odd-gap",
            version_logiciel: "0.1",
            categorie: None,
            numero_amc: &self.patient.numero_amc,
            cle_nir: &self.cle_nir,
            patient: &self.patient,
            stay: &self.stay,
            numero_engagement: "",
            motif: "",
            norme: "1.04",
            periode: None,
            dre: None,
        })
    }

    /// POST over mutual TLS with the lab's client certificate.
    async fn post(
        &self,
        url: &str,
        headers: Vec<(String, String)>,
        body: String,
        operation: &str,
    ) -> Exchange {
        let req = Request {
            url: url.to_string(),
            headers,
            body: body.into_bytes(),
        };
        let timeouts = Timeouts {
            connect: Duration::from_secs(3),
            request: Duration::from_secs(5),
        };
        post_with(
            &req,
            self.tls.clone(),
            timeouts,
            ("gap", "lab", operation),
            None,
        )
        .await
    }
}

/// One line for the GAP's log: the operation and its HTTP status, or the transport error.
fn summary(ex: &Exchange) -> String {
    match (&ex.error, &ex.response) {
        (Some(e), _) => format!("{} error: {}", ex.operation, e.message),
        (None, Some(r)) => format!("{} -> HTTP {}", ex.operation, r.status.unwrap_or(0)),
        (None, None) => format!("{} error: no answer", ex.operation),
    }
}

/// Today (`YYYY-MM-DD`), or now as an xs:dateTime in UTC.
fn stamp(with_time: bool) -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = if with_time {
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00")
    } else {
        time::macros::format_description!("[year]-[month]-[day]")
    };
    now.format(&format).unwrap()
}
