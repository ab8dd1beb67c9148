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

/// `k/n`: the k-th of n shares of the selected scenarios (1 <= k <= n).
pub fn parse_partition(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--partition `{s}`: expected k/n with 1 <= k <= n, e.g. 2/3");
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (usize, usize) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// The share `k` of `n` of `selected` (pack order): every n-th scenario from the k-th, so
/// shares are balanced and the same on every machine.
pub fn partition<T: Clone>(selected: &[T], k: usize, n: usize) -> Vec<T> {
    selected
        .iter()
        .enumerate()
        .filter(|(i, _)| i % n == k - 1)
        .map(|(_, x)| x.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_everything_once() {
        let all: Vec<usize> = (0..10).collect();
        let mut seen: Vec<usize> = (1..=3).flat_map(|k| partition(&all, k, 3)).collect();
        seen.sort();
        assert_eq!(seen, all);
        assert_eq!(partition(&all, 2, 3), vec![1, 4, 7]);
        assert!(parse_partition("0/3").is_err() && parse_partition("4/3").is_err());
        assert_eq!(parse_partition("2/3"), Ok((2, 3)));
    }

    #[test]
    fn globs() {
        assert!(glob("IDB-*", "IDB-R01"));
        assert!(glob("*R0?", "IDB-R01"));
        assert!(!glob("SIM-*", "IDB-R01"));
        assert!(glob("*", ""));
    }
}
