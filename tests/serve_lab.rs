//! `roclab serve lab` checks every request as a run does (client certificate of the
//! establishment, Content-Type of the actor's SOAP version, a path the mirror serves), answers a
//! refused one with a SOAP fault and prints why; it runs from any folder with its built-in
//! default profile.

mod common;

use common::*;
use roclab::net::client;
use roclab::net::tls;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The lab's printed lines, as they come.
struct Lab {
    child: Child,
    lines: mpsc::Receiver<String>,
    urls: BTreeMap<String, String>,
}

impl Lab {
    /// `serve lab` for the mini GAP pack, started in `cwd` (outside the repository).
    fn start(cwd: &std::path::Path, pki: &std::path::Path) -> Lab {
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("roclab"))
            .current_dir(cwd)
            .args(["serve", "lab", "--pack"])
            .arg(root().join("tests/data/gap-mini"))
            .arg("--pki")
            .arg(pki)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let mut urls = BTreeMap::new();
        loop {
            let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) else {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "serve lab printed no addresses: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            if line.starts_with("CA:") {
                break;
            }
            let mut w = line.split_whitespace();
            if let (Some(a), Some(u)) = (w.next(), w.next()) {
                urls.insert(a.to_string(), u.to_string());
            }
        }
        Lab { child, lines, urls }
    }

    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line for the request")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CT12: &str = "application/soap+xml; charset=utf-8; action=\"urn:roc:model:sel:IDB\"";

fn post(url: &str, content_type: &str, with_cert: bool, pki: &roclab::pki::Pki) -> (u16, String) {
    let config = tls::client_config(&pki.ca_cert_pem, with_cert.then_some(&pki.client)).unwrap();
    let req = client::Request {
        url: url.to_string(),
        headers: vec![("Content-Type".into(), content_type.into())],
        body: b"<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body/></env:Envelope>".to_vec(),
    };
    let timeouts = client::Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(10),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ex = rt.block_on(client::post(
        &req,
        config,
        timeouts,
        ("gap", "amc-A", "IDB"),
    ));
    let r = ex
        .response
        .unwrap_or_else(|| panic!("no answer: {:?}", ex.error));
    (r.status.unwrap(), r.text())
}

#[test]
fn serve_lab_refuses_what_a_run_refuses_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    // Outside the repository: the default profile is the built-in one.
    let lab = Lab::start(dir.path(), &pki_dir);
    let pki = roclab::pki::load(&pki_dir).unwrap();
    let amc = &lab.urls["amc-A"];
    assert!(amc.contains("/s-"), "{amc}");
    let (base, prefix) = amc.split_at(amc.find("/s-").unwrap());

    // Without a client certificate.
    let (status, body) = post(&format!("{amc}/IDB"), CT12, false, &pki);
    let line = lab.next_line();
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("Fault") && body.contains("no client certificate"),
        "{body}"
    );
    assert!(
        line.contains("refused: the GAP presented no client certificate"),
        "{line}"
    );

    // With it, but the Content-Type of SOAP 1.1.
    let (status, body) = post(&format!("{amc}/IDB"), "text/xml; charset=utf-8", true, &pki);
    let line = lab.next_line();
    assert_eq!(status, 415, "{body}");
    assert!(
        line.contains("refused: Content-Type text/xml is not application/soap+xml (SOAP 1.2)"),
        "{line}"
    );
    assert!(line.contains("HTTP 415"), "{line}");

    // Without the path prefix the annuaire gives.
    let (status, _) = post(&format!("{base}/IDB"), CT12, true, &pki);
    let line = lab.next_line();
    assert_eq!(status, 404);
    assert!(
        line.contains("unknown path /IDB: the mirror amc-A serves ")
            && line.contains(&format!(" {prefix}/IDB")),
        "{line}"
    );

    // A conformant request is answered by the mirror (here: a fault on the empty body).
    let (status, body) = post(&format!("{amc}/IDB"), CT12, true, &pki);
    let line = lab.next_line();
    assert!(!line.contains("refused"), "{line}");
    assert!(line.contains("750712184"), "{line}");
    assert_ne!(status, 415, "{body}");
}
