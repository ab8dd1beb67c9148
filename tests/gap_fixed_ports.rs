//! A GAP configured once talks to the lab on fixed addresses: every scenario's mirrors listen
//! on the same ports, one scenario after the other, and the packs pass against the embedded
//! reference GAP as they do on free ports.

mod common;

use common::*;

/// A port no one listens on now (bound, then released), so CI jobs do not clash.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn run_on_fixed_ports(pack: &'static str) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("o.json");
        let mut args: Vec<String> = vec![
            "run".into(),
            pack.into(),
            "--profile".into(),
            "profiles/reference-gap.yaml".into(),
            "--json".into(),
            json.to_str().unwrap().into(),
            "--junit".into(),
            dir.path().join("j.xml").to_str().unwrap().into(),
            "--html".into(),
            dir.path().join("r.html").to_str().unwrap().into(),
        ];
        let mut ports = vec![];
        for actor in ["annuaire", "amc-A", "amc-B"] {
            let addr = format!("127.0.0.1:{}", free_port());
            args.push("--set".into());
            args.push(format!("lab.listen.{actor}={addr}"));
            ports.push(addr);
        }
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = run(&a);
        assert_eq!(code, 0, "{pack} on {ports:?}:\n{out}\n{err}");
        let o = outcome(&json);
        assert!(ids_with(&o, "errored").is_empty(), "{pack}: {out}");
        assert!(ids_with(&o, "failed").is_empty(), "{pack}: {out}");
        assert!(!ids_with(&o, "passed").is_empty(), "{pack}: {out}");
        // The exchanges went to the fixed addresses.
        let text = std::fs::read_to_string(&json).unwrap();
        assert!(
            text.contains(&format!("https://{}", ports[1])),
            "{pack}: no exchange with amc-A on {}",
            ports[1]
        );
    })
}

#[test]
fn v1_and_v2_gap_packs_pass_on_fixed_listen_ports() {
    let v1 = run_on_fixed_ports("scenarios/roc-v1-gap");
    let v2 = run_on_fixed_ports("scenarios/roc-v2-gap");
    v1.join().unwrap();
    v2.join().unwrap();
}
