//! `roclab defects`.

use roclab::error::Error;

/// `rows` laid out in columns as wide as their widest cell (the last one is not padded).
fn table(rows: &[[&str; 4]]) -> String {
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2)];
    let mut out = String::new();
    for r in rows {
        for (cell, w) in r.iter().zip(widths) {
            out.push_str(&format!("{cell:<w$}  "));
        }
        out.push_str(r[3]);
        out.push('\n');
    }
    out
}

pub fn list() -> Result<i32, Error> {
    let mut rows = vec![["defect", "sut", "rule", "description"]];
    rows.extend(roclab::defects::all().map(|d| [d.name, d.sut, d.rule, d.description]));
    // A closed pipe (`roclab defects | head`) is not an error.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), table(&rows).as_bytes());
    Ok(0)
}
