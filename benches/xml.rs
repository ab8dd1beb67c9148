//! Throughput of the XML work done on every exchange, against a baseline in the same run:
//! parsing into the tree (baseline) vs. structural comparison, path evaluation, and the
//! pretty-print + unified diff a failing comparison adds. Run: `cargo bench --bench xml`.

use roclab::xml::{self, CompareOptions, Path};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

fn response(lines: usize, amount_of_last: &str) -> String {
    let mut l = String::new();
    for i in 0..lines {
        let amount = if i + 1 == lines {
            amount_of_last
        } else {
            "12.35"
        };
        l.push_str(&format!(
            "<roc:ligne><roc:code>TM</roc:code><roc:montantAmc>{amount}</roc:montantAmc><roc:resteACharge>0.00</roc:resteACharge></roc:ligne>"
        ));
    }
    format!(
        r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:roc="urn:roc:model:sel"><env:Body><roc:clcReponse><roc:enteteReponse><roc:idFlux>0b6f7a52-6d0e-4f3a-9d7e-6c1b2c3d4e5f</roc:idFlux><roc:idFluxRequete>1b6f7a52-6d0e-4f3a-9d7e-6c1b2c3d4e5f</roc:idFluxRequete><roc:dateHeureReponse>2026-03-02T10:15:00+01:00</roc:dateHeureReponse><roc:versionNorme>1.04</roc:versionNorme></roc:enteteReponse><roc:statut>OK</roc:statut><roc:numeroEngagement>ENG-0123456789AB</roc:numeroEngagement><roc:lignes>{l}</roc:lignes><roc:totalAmc>99.99</roc:totalAmc><roc:totalResteACharge>0.00</roc:totalResteACharge></roc:clcReponse></env:Body></env:Envelope>"#
    )
}

fn time<F: FnMut()>(n: u32, mut f: F) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn main() {
    let n = 2000;
    println!(
        "{:<8} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "lines", "parse µs", "compare µs", "ratio", "path µs", "diff µs"
    );
    for lines in [4, 40, 400] {
        let actual_text = response(lines, "12.34");
        let expected_text = response(lines, "12.35")
            .replace("0b6f7a52-6d0e-4f3a-9d7e-6c1b2c3d4e5f", "{{uuid}}")
            .replace("2026-03-02T10:15:00+01:00", "{{datetime}}")
            .replace("ENG-0123456789AB", "{{capture:engagement}}");
        let expected = xml::parse(&expected_text).unwrap();
        let actual = xml::parse(&actual_text).unwrap();
        let opts = CompareOptions::default();
        let ns: BTreeMap<String, String> =
            [("roc".to_string(), "urn:roc:model:sel".to_string())].into();
        let path = Path::compile("count(//roc:ligne[roc:code='TM'])", &ns).unwrap();
        let n = if lines > 100 { n / 10 } else { n };
        let parse = time(n, || {
            black_box(xml::parse(black_box(&actual_text)).unwrap());
        });
        let cmp = time(n, || {
            let c = xml::compare(black_box(&expected), black_box(&actual), &opts);
            assert_eq!(c.differences.len(), 1);
        });
        let p = time(n, || {
            black_box(path.eval(black_box(&actual)));
        });
        let diff = time(n / 4, || {
            black_box(xml::diff::unified(
                &xml::pretty(&expected),
                &xml::pretty(&actual),
            ));
        });
        println!(
            "{lines:<8} {parse:>12.1} {cmp:>12.1} {:>11.2}x {p:>12.1} {diff:>12.1}",
            cmp / parse
        );
    }
    println!("ratio = compare time / parse time of the same document (baseline).");
}
