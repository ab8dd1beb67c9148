//! Selecting scenarios: `--filter` expressions.
//!
//! `EXPR := TERM ('|' TERM)*`, `TERM := ATOM ('&' ATOM)*`, `ATOM := '!'? (tag:NAME | req:ID |
//! id:GLOB | GLOB)`. A glob matches scenario ids with `*` and `?`.

use super::model::Scenario;

#[derive(Debug, Clone)]
enum Atom {
    Tag(String),
    Req(String),
    Id(String),
}

#[derive(Debug, Clone)]
pub struct Filter {
    /// OR of ANDs of (negated, atom).
    terms: Vec<Vec<(bool, Atom)>>,
}

impl Filter {
    pub fn parse(expr: &str) -> Result<Self, String> {
        let mut terms = vec![];
        for t in expr.split('|') {
            let mut ands = vec![];
            for a in t.split('&') {
                let a = a.trim();
                let (neg, a) = match a.strip_prefix('!') {
                    Some(r) => (true, r.trim()),
                    None => (false, a),
                };
                if a.is_empty() {
                    return Err(format!("--filter `{expr}`: empty term"));
                }
                let atom = if let Some(x) = a.strip_prefix("tag:") {
                    Atom::Tag(x.to_string())
                } else if let Some(x) = a.strip_prefix("req:") {
                    Atom::Req(x.to_string())
                } else if let Some(x) = a.strip_prefix("id:") {
                    Atom::Id(x.to_string())
                } else if a.contains(':') {
                    return Err(format!(
                        "--filter `{expr}`: `{a}` — use tag:NAME, req:ID, id:GLOB or a bare id glob"
                    ));
                } else {
                    Atom::Id(a.to_string())
                };
                ands.push((neg, atom));
            }
            terms.push(ands);
        }
        Ok(Self { terms })
    }

    pub fn matches(&self, s: &Scenario) -> bool {
        self.terms.iter().any(|ands| {
            ands.iter().all(|(neg, a)| {
                let m = match a {
                    Atom::Tag(t) => s.tags.iter().any(|x| x == t),
                    Atom::Req(r) => s.verifies.iter().any(|x| x == r),
                    Atom::Id(g) => glob(g, &s.id),
                };
                m != *neg
            })
        })
    }
}

/// `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("IDB-*", "IDB-R01"));
        assert!(glob("*R0?", "IDB-R01"));
        assert!(!glob("SIM-*", "IDB-R01"));
        assert!(glob("*", ""));
    }
}
