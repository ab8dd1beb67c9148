//! Structural comparison of an expected tree (which may hold placeholders) with an actual one.

use super::tree::{Attr, Element, Node, trim_xml};
use regex::Regex;
use serde::Serialize;
use similar::{Algorithm, DiffOp, TextDiff, capture_diff_slices};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// Element paths (local names from the root, e.g. `/Envelope/Body/clcReponse/lignes`)
    /// whose children are matched in any order.
    pub unordered: Vec<String>,
    /// Values already known (captures may only bind a name once).
    pub known: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// Element name or namespace differs.
    Name,
    Namespace,
    /// Text differs (or fails a placeholder).
    Text,
    AttributeMissing,
    AttributeUnexpected,
    AttributeValue,
    /// An expected child element is absent.
    Missing,
    /// An actual child element was not expected.
    Unexpected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// `/Envelope/Body/clcReponse/lignes/ligne[2]/montantAmc` (local names, 1-based positions
    /// among same-named siblings, shown when more than one).
    pub location: String,
    pub kind: DiffKind,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Comparison {
    pub differences: Vec<Difference>,
    /// Values bound by `{{capture:name}}` placeholders.
    pub captures: BTreeMap<String, String>,
}

/// Compare `expected` (which may hold placeholders) with `actual`.
///
/// Names are compared by namespace URI and local name (prefixes never matter); attributes
/// in any order; text after trimming (whitespace-only text counts as empty). Ordered
/// children are aligned by name, pairing same-named siblings so that the total number of
/// differences is smallest (a missing element in the middle of a list gives one `Missing`);
/// children of elements listed in `opts.unordered` are matched in any order. Differences come
/// in document order of the expected tree (unexpected elements after the others of the same
/// parent). When the root elements have different local names, only a `Name` difference is
/// reported.
pub fn compare(expected: &Element, actual: &Element, opts: &CompareOptions) -> Comparison {
    let unordered = opts.unordered.iter().map(|u| normalize_plain(u)).collect();
    let shared = Shared {
        opts,
        unordered,
        memo: RefCell::new(HashMap::new()),
        regexes: RefCell::new(HashMap::new()),
    };
    let mut ctx = Ctx::new(&shared, BTreeMap::new());
    let loc = format!("/{}", expected.local);
    ctx.compare_pair(expected, actual, &loc, &loc);
    Comparison {
        differences: ctx.diffs,
        captures: ctx.captures,
    }
}

/// Unified diff of two pretty-printed documents.
///
/// Headers `--- expected` / `+++ actual`, three lines of context; empty when equal.
pub fn unified(expected: &str, actual: &str) -> String {
    TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

/// The expected tree with every placeholder that matched replaced by the actual value, so a
/// unified diff of `pretty(resolve(..))` and `pretty(actual)` shows only real differences.
/// Elements are paired by name and position among same-named siblings; a text or an `{{ignore}}`
/// element is resolved only when no difference was reported at its location.
pub fn resolve(expected: &Element, actual: &Element, differences: &[Difference]) -> Element {
    let failed: std::collections::HashSet<&str> =
        differences.iter().map(|d| d.location.as_str()).collect();
    let mut out = expected.clone();
    resolve_into(&mut out, actual, &format!("/{}", expected.local), &failed);
    out
}

fn resolve_into(e: &mut Element, a: &Element, loc: &str, failed: &std::collections::HashSet<&str>) {
    if e.local != a.local || e.ns != a.ns || failed.contains(loc) {
        return;
    }
    let text = e.text();
    let has_ph =
        text.starts_with(OPTIONAL) || segments(&text).iter().any(|s| matches!(s, Seg::Ph(_)));
    if has_ph && e.elements().next().is_none() {
        if matches!(segments(&text).as_slice(), [Seg::Ph(Ph::Ignore)]) {
            let (prefix, decls) = (e.prefix.clone(), e.ns_decls.clone());
            *e = a.clone();
            e.prefix = prefix;
            e.ns_decls = decls;
        } else {
            e.children = vec![Node::Text(a.text())];
        }
        return;
    }
    let actual_children: Vec<&Element> = a.elements().collect();
    let expected_keys: Vec<(Option<String>, String)> = e
        .elements()
        .map(|c| (c.ns.clone(), c.local.clone()))
        .collect();
    let labels = {
        let refs: Vec<&Element> = e.elements().collect();
        labels(&refs, loc)
    };
    let mut seen: HashMap<(Option<String>, String), usize> = HashMap::new();
    let mut i = 0;
    for child in e.children.iter_mut() {
        let Node::Element(c) = child else { continue };
        let k = expected_keys[i].clone();
        let n = {
            let n = seen.entry(k.clone()).or_default();
            *n += 1;
            *n
        };
        if let Some(ac) = actual_children
            .iter()
            .filter(|x| x.ns == k.0 && x.local == k.1)
            .nth(n - 1)
        {
            resolve_into(c, ac, &labels[i], failed);
        }
        i += 1;
    }
}

/// An expected element whose text starts with this may be absent from the actual document;
/// when present, its text must match the rest (`<numeroAdherent>{{optional}}A00012345<…>`).
pub const OPTIONAL: &str = "{{optional}}";

fn is_optional(e: &Element) -> bool {
    e.elements().next().is_none() && e.text().starts_with(OPTIONAL)
}

/// Above this many (expected x actual) same-parent children, alignment uses names only.
const ALIGN_LIMIT: usize = 10_000;

/// `/a:Envelope/Body[1]/` -> `/Envelope/Body`.
fn normalize_plain(path: &str) -> String {
    let mut out = String::new();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.split('[').next().unwrap_or(seg);
        let seg = seg.rsplit(':').next().unwrap_or(seg);
        out.push('/');
        out.push_str(seg.trim());
    }
    out
}

fn clark(ns: Option<&str>, local: &str) -> String {
    match ns {
        Some(uri) => format!("{{{uri}}}{local}"),
        None => local.to_string(),
    }
}

fn key(e: &Element) -> (Option<&str>, &str) {
    (e.ns.as_deref(), e.local.as_str())
}

/// Location labels of children: `name` or `name[n]` when the name occurs more than once.
fn labels(children: &[&Element], parent_loc: &str) -> Vec<String> {
    let mut totals: HashMap<(Option<&str>, &str), usize> = HashMap::new();
    for c in children {
        *totals.entry(key(c)).or_default() += 1;
    }
    let mut seen: HashMap<(Option<&str>, &str), usize> = HashMap::new();
    children
        .iter()
        .map(|c| {
            let n = seen.entry(key(c)).or_default();
            *n += 1;
            if totals[&key(c)] > 1 {
                format!("{parent_loc}/{}[{n}]", c.local)
            } else {
                format!("{parent_loc}/{}", c.local)
            }
        })
        .collect()
}

struct Shared<'o> {
    opts: &'o CompareOptions,
    unordered: Vec<String>,
    /// Number of differences of (expected, actual) pairs, by address, with no capture bound.
    memo: RefCell<HashMap<(usize, usize), usize>>,
    regexes: RefCell<HashMap<String, Result<Regex, String>>>,
}

struct Ctx<'s, 'o> {
    sh: &'s Shared<'o>,
    diffs: Vec<Difference>,
    captures: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Match(usize, usize),
    Del(usize),
    Ins(usize),
}

impl<'s, 'o> Ctx<'s, 'o> {
    fn new(sh: &'s Shared<'o>, captures: BTreeMap<String, String>) -> Self {
        Ctx {
            sh,
            diffs: Vec::new(),
            captures,
        }
    }

    fn push(
        &mut self,
        location: String,
        kind: DiffKind,
        expected: Option<String>,
        actual: Option<String>,
    ) {
        self.diffs.push(Difference {
            location,
            kind,
            expected,
            actual,
        });
    }

    /// Value a capture name is already bound to (in this comparison, else in `known`).
    fn bound(&self, name: &str) -> Option<&String> {
        self.captures
            .get(name)
            .or_else(|| self.sh.opts.known.get(name))
    }

    /// Compile a pattern once per comparison.
    fn regex(&self, pattern: &str) -> Result<Regex, String> {
        if let Some(r) = self.sh.regexes.borrow().get(pattern) {
            return r.clone();
        }
        let r = Regex::new(pattern).map_err(|e| regex_error(&e));
        self.sh
            .regexes
            .borrow_mut()
            .insert(pattern.to_string(), r.clone());
        r
    }

    /// Differences of a pair compared in isolation (no capture bound yet), memoized.
    fn cost(&self, e: &Element, a: &Element, plain: &str) -> usize {
        let k = (e as *const Element as usize, a as *const Element as usize);
        if let Some(&c) = self.sh.memo.borrow().get(&k) {
            return c;
        }
        let mut sub = Ctx::new(self.sh, BTreeMap::new());
        sub.compare_pair(e, a, "", plain);
        let c = sub.diffs.len();
        self.sh.memo.borrow_mut().insert(k, c);
        c
    }

    fn compare_pair(&mut self, e: &Element, a: &Element, loc: &str, plain: &str) {
        if e.local != a.local {
            self.push(
                loc.to_string(),
                DiffKind::Name,
                Some(clark(e.ns.as_deref(), &e.local)),
                Some(clark(a.ns.as_deref(), &a.local)),
            );
            return;
        }
        if e.ns != a.ns {
            self.push(
                loc.to_string(),
                DiffKind::Namespace,
                Some(clark(e.ns.as_deref(), &e.local)),
                Some(clark(a.ns.as_deref(), &a.local)),
            );
        }
        let ignore_all = e.elements().next().is_none()
            && matches!(segments(&e.text()).as_slice(), [Seg::Ph(Ph::Ignore)]);
        self.compare_attrs(e, a, loc, ignore_all);
        if ignore_all {
            return;
        }
        let (et, at) = (e.text(), a.text());
        if let Err(exp) = self.match_value(&et, &at) {
            self.push(loc.to_string(), DiffKind::Text, Some(exp), Some(at));
        }
        self.compare_children(e, a, loc, plain);
    }

    fn compare_attrs(&mut self, e: &Element, a: &Element, loc: &str, only_expected: bool) {
        let find = |list: &'_ [Attr], x: &Attr| -> Option<usize> {
            list.iter().position(|y| y.ns == x.ns && y.local == x.local)
        };
        for ea in &e.attrs {
            let aloc = format!("{loc}/@{}", ea.local);
            match find(&a.attrs, ea) {
                None => self.push(
                    aloc,
                    DiffKind::AttributeMissing,
                    Some(ea.value.clone()),
                    None,
                ),
                Some(j) => {
                    let av = trim_xml(&a.attrs[j].value);
                    if let Err(exp) = self.match_value(trim_xml(&ea.value), av) {
                        self.push(
                            aloc,
                            DiffKind::AttributeValue,
                            Some(exp),
                            Some(a.attrs[j].value.clone()),
                        );
                    }
                }
            }
        }
        if only_expected {
            return;
        }
        for aa in &a.attrs {
            if find(&e.attrs, aa).is_none() {
                self.push(
                    format!("{loc}/@{}", aa.local),
                    DiffKind::AttributeUnexpected,
                    None,
                    Some(aa.value.clone()),
                );
            }
        }
    }

    fn compare_children(&mut self, e: &Element, a: &Element, loc: &str, plain: &str) {
        let ec: Vec<&Element> = e.elements().collect();
        let ac: Vec<&Element> = a.elements().collect();
        if ec.is_empty() && ac.is_empty() {
            return;
        }
        let elabels = labels(&ec, loc);
        let alabels = labels(&ac, loc);
        if self.sh.unordered.iter().any(|u| u == plain) {
            self.compare_unordered(&ec, &ac, &elabels, &alabels, plain);
            return;
        }
        let ops = self.align(&ec, &ac, plain);
        let mut dels = Vec::new();
        let mut ins = Vec::new();
        for op in ops {
            match op {
                Op::Match(i, j) => {
                    self.flush_hunk(&ec, &ac, &elabels, &alabels, plain, &mut dels, &mut ins);
                    let cp = format!("{plain}/{}", ec[i].local);
                    self.compare_pair(ec[i], ac[j], &elabels[i], &cp);
                }
                Op::Del(i) => dels.push(i),
                Op::Ins(j) => ins.push(j),
            }
        }
        self.flush_hunk(&ec, &ac, &elabels, &alabels, plain, &mut dels, &mut ins);
    }

    /// Report a run of unaligned children: same-named ones (same URI first, then same local
    /// name with another URI) are paired in order and compared; the rest are missing or
    /// unexpected.
    #[allow(clippy::too_many_arguments)]
    fn flush_hunk(
        &mut self,
        ec: &[&Element],
        ac: &[&Element],
        elabels: &[String],
        alabels: &[String],
        plain: &str,
        dels: &mut Vec<usize>,
        ins: &mut Vec<usize>,
    ) {
        if dels.is_empty() && ins.is_empty() {
            return;
        }
        let mut pairs: Vec<(usize, Option<usize>)> = dels.iter().map(|&i| (i, None)).collect();
        let mut used = vec![false; ins.len()];
        for same_ns in [true, false] {
            for (i, pair) in pairs.iter_mut() {
                if pair.is_some() {
                    continue;
                }
                let found = ins.iter().enumerate().find(|(k, j)| {
                    !used[*k]
                        && ac[**j].local == ec[*i].local
                        && (!same_ns || ac[**j].ns == ec[*i].ns)
                });
                if let Some((k, &j)) = found {
                    used[k] = true;
                    *pair = Some(j);
                }
            }
        }
        for (i, pair) in pairs {
            match pair {
                Some(j) => {
                    let cp = format!("{plain}/{}", ec[i].local);
                    self.compare_pair(ec[i], ac[j], &elabels[i], &cp);
                }
                // `{{optional}}` elements may be absent.
                None if is_optional(ec[i]) => {}
                None => self.push(
                    elabels[i].clone(),
                    DiffKind::Missing,
                    Some(clark(ec[i].ns.as_deref(), &ec[i].local)),
                    None,
                ),
            }
        }
        for (k, &j) in ins.iter().enumerate() {
            if !used[k] {
                self.push(
                    alabels[j].clone(),
                    DiffKind::Unexpected,
                    None,
                    Some(clark(ac[j].ns.as_deref(), &ac[j].local)),
                );
            }
        }
        dels.clear();
        ins.clear();
    }

    /// Align ordered children: as many same-named pairs as possible, and among those the
    /// pairing with the fewest inner differences.
    fn align(&self, ec: &[&Element], ac: &[&Element], plain: &str) -> Vec<Op> {
        let ek: Vec<_> = ec.iter().map(|e| key(e)).collect();
        let ak: Vec<_> = ac.iter().map(|a| key(a)).collect();
        if ek == ak {
            return (0..ec.len()).map(|i| Op::Match(i, i)).collect();
        }
        // Identical leading and trailing pairs are matched as they are.
        let cost0 = |i: usize, j: usize| {
            ek[i] == ak[j] && self.cost(ec[i], ac[j], &format!("{plain}/{}", ec[i].local)) == 0
        };
        let (n, m) = (ec.len(), ac.len());
        let mut pre = 0;
        while pre < n.min(m) && cost0(pre, pre) {
            pre += 1;
        }
        let mut suf = 0;
        while suf < (n - pre).min(m - pre) && cost0(n - 1 - suf, m - 1 - suf) {
            suf += 1;
        }
        let mut ops: Vec<Op> = (0..pre).map(|i| Op::Match(i, i)).collect();
        let shift = |op: Op| match op {
            Op::Match(i, j) => Op::Match(i + pre, j + pre),
            Op::Del(i) => Op::Del(i + pre),
            Op::Ins(j) => Op::Ins(j + pre),
        };
        let middle = self.align_middle(&ec[pre..n - suf], &ac[pre..m - suf], plain);
        ops.extend(middle.into_iter().map(shift));
        ops.extend((0..suf).rev().map(|k| Op::Match(n - 1 - k, m - 1 - k)));
        ops
    }

    fn align_middle(&self, ec: &[&Element], ac: &[&Element], plain: &str) -> Vec<Op> {
        let ek: Vec<_> = ec.iter().map(|e| key(e)).collect();
        let ak: Vec<_> = ac.iter().map(|a| key(a)).collect();
        let (n, m) = (ec.len(), ac.len());
        if n * m > ALIGN_LIMIT {
            let mut ops = Vec::new();
            for op in capture_diff_slices(Algorithm::Myers, &ek, &ak) {
                match op {
                    DiffOp::Equal {
                        old_index,
                        new_index,
                        len,
                    } => ops.extend((0..len).map(|k| Op::Match(old_index + k, new_index + k))),
                    DiffOp::Delete {
                        old_index, old_len, ..
                    } => ops.extend((old_index..old_index + old_len).map(Op::Del)),
                    DiffOp::Insert {
                        new_index, new_len, ..
                    } => ops.extend((new_index..new_index + new_len).map(Op::Ins)),
                    DiffOp::Replace {
                        old_index,
                        old_len,
                        new_index,
                        new_len,
                    } => {
                        ops.extend((old_index..old_index + old_len).map(Op::Del));
                        ops.extend((new_index..new_index + new_len).map(Op::Ins));
                    }
                }
            }
            return ops;
        }
        // best[i][j]: (pairs, -differences) for ec[i..] against ac[j..].
        let w = m + 1;
        let mut best = vec![(0usize, 0isize); (n + 1) * w];
        let mut choice = vec![Op::Del(0); (n + 1) * w];
        for i in (0..=n).rev() {
            for j in (0..=m).rev() {
                if i == n && j == m {
                    continue;
                }
                let mut cands: Vec<((usize, isize), Op)> = Vec::with_capacity(3);
                if i < n && j < m && ek[i] == ak[j] {
                    let cp = format!("{plain}/{}", ec[i].local);
                    let c = self.cost(ec[i], ac[j], &cp) as isize;
                    let (p, s) = best[(i + 1) * w + j + 1];
                    cands.push(((p + 1, s - c), Op::Match(i, j)));
                }
                if i < n {
                    cands.push((best[(i + 1) * w + j], Op::Del(i)));
                }
                if j < m {
                    cands.push((best[i * w + j + 1], Op::Ins(j)));
                }
                // First best wins: match, then missing, then unexpected.
                let mut top = cands[0];
                for c in &cands[1..] {
                    if c.0 > top.0 {
                        top = *c;
                    }
                }
                best[i * w + j] = top.0;
                choice[i * w + j] = top.1;
            }
        }
        let mut ops = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            let op = choice[i * w + j];
            match op {
                Op::Match(..) => {
                    i += 1;
                    j += 1;
                }
                Op::Del(_) => i += 1,
                Op::Ins(_) => j += 1,
            }
            ops.push(op);
        }
        ops
    }

    fn compare_unordered(
        &mut self,
        ec: &[&Element],
        ac: &[&Element],
        elabels: &[String],
        alabels: &[String],
        plain: &str,
    ) {
        let mut used = vec![false; ac.len()];
        let mut left = Vec::new();
        for (i, e) in ec.iter().enumerate() {
            let cp = format!("{plain}/{}", e.local);
            let mut matched = false;
            for (j, a) in ac.iter().enumerate() {
                if used[j] || key(e) != key(a) || self.cost(e, a, &cp) > 0 {
                    continue;
                }
                let mut trial = Ctx::new(self.sh, self.captures.clone());
                trial.compare_pair(e, a, &elabels[i], &cp);
                if trial.diffs.is_empty() {
                    self.captures = trial.captures;
                    used[j] = true;
                    matched = true;
                    break;
                }
            }
            if !matched {
                left.push(i);
            }
        }
        let mut ins: Vec<usize> = (0..ac.len()).filter(|&j| !used[j]).collect();
        self.flush_hunk(ec, ac, elabels, alabels, plain, &mut left, &mut ins);
    }

    /// Match an actual (trimmed) value against an expected one that may hold placeholders.
    /// On failure, return what to show as the expected value.
    fn match_value(&mut self, expected: &str, actual: &str) -> Result<(), String> {
        // An optional element, when present, must hold the rest of the value.
        let expected = expected
            .strip_prefix(OPTIONAL)
            .unwrap_or(expected)
            .trim_start();
        let segs = segments(expected);
        if !segs.iter().any(|s| matches!(s, Seg::Ph(_))) {
            return if expected == actual {
                Ok(())
            } else {
                Err(expected.to_string())
            };
        }
        if let [Seg::Ph(ph)] = segs.as_slice() {
            return self.match_single(ph, expected, actual);
        }
        self.match_composite(&segs, expected, actual)
    }

    fn match_single(&mut self, ph: &Ph<'_>, expected: &str, actual: &str) -> Result<(), String> {
        let fail = || Err(expected.to_string());
        match ph {
            Ph::Ignore => Ok(()),
            Ph::Regex(p) => match self.regex(&format!(r"\A(?:{p})\z")) {
                Err(e) => Err(format!("{expected} (invalid regex: {e})")),
                Ok(re) if re.is_match(actual) => Ok(()),
                Ok(_) => fail(),
            },
            Ph::Uuid if UUID_RE.is_match(actual) => Ok(()),
            Ph::Date if is_date(actual) => Ok(()),
            Ph::DateTime if is_datetime(actual) => Ok(()),
            Ph::Amount if AMOUNT_RE.is_match(actual) => Ok(()),
            Ph::Capture(name) => {
                if actual.is_empty() {
                    return Err(format!("{expected} (a non-empty value)"));
                }
                match self.bound(name) {
                    Some(v) if v != actual => Err(format!("{expected} (already bound to \"{v}\")")),
                    _ => {
                        self.captures.insert(name.to_string(), actual.to_string());
                        Ok(())
                    }
                }
            }
            _ => fail(),
        }
    }

    fn match_composite(
        &mut self,
        segs: &[Seg<'_>],
        expected: &str,
        actual: &str,
    ) -> Result<(), String> {
        let mut pattern = String::from(r"\A(?:");
        // Group name -> what to check after matching.
        let mut checks: Vec<(String, Ph<'_>)> = Vec::new();
        for seg in segs {
            match seg {
                Seg::Lit(l) => pattern.push_str(&regex::escape(l)),
                Seg::Ph(ph) => {
                    let g = format!("g{}", checks.len());
                    let inner = match ph {
                        Ph::Ignore => r"(?s:.*?)".to_string(),
                        Ph::Regex(p) => format!("(?:{p})"),
                        Ph::Uuid => UUID_PAT.to_string(),
                        Ph::Date => DATE_PAT.to_string(),
                        Ph::DateTime => DATETIME_PAT.to_string(),
                        Ph::Amount => AMOUNT_PAT.to_string(),
                        Ph::Capture(name) => match self.bound(name) {
                            Some(v) => regex::escape(v),
                            None => r"(?s:.+?)".to_string(),
                        },
                    };
                    pattern.push_str(&format!("(?P<{g}>{inner})"));
                    checks.push((g, *ph));
                }
            }
        }
        pattern.push_str(r")\z");
        let re = self
            .regex(&pattern)
            .map_err(|e| format!("{expected} (invalid regex: {e})"))?;
        let caps = re.captures(actual).ok_or_else(|| expected.to_string())?;
        let mut bound: Vec<(&str, &str)> = Vec::new();
        for (g, ph) in &checks {
            let v = caps.name(g).map(|m| m.as_str()).unwrap_or("");
            let ok = match ph {
                Ph::Date => is_date(v),
                Ph::DateTime => is_datetime(v),
                Ph::Capture(name) => match bound.iter().find(|(n, _)| n == name) {
                    Some((_, prev)) => *prev == v,
                    None => {
                        bound.push((name, v));
                        true
                    }
                },
                _ => true,
            };
            if !ok {
                return Err(expected.to_string());
            }
        }
        for (name, v) in bound {
            self.captures.insert(name.to_string(), v.to_string());
        }
        Ok(())
    }
}

/// The last meaningful line of a regex error (the others repeat the pattern).
fn regex_error(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ph<'a> {
    Ignore,
    Regex(&'a str),
    Uuid,
    Date,
    DateTime,
    Amount,
    Capture(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seg<'a> {
    Lit(&'a str),
    Ph(Ph<'a>),
}

/// Split a value into literal parts and `{{...}}` placeholders. Unknown placeholders are kept
/// as literal text. A run of more than two closing braces closes with its last two, so
/// `{{regex:[0-9]{2}}}` holds the pattern `[0-9]{2}`.
fn segments(s: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    let mut lit_start = 0;
    let mut pos = 0;
    while let Some(off) = s[pos..].find("{{") {
        let open = pos + off;
        let Some(close_off) = s[open + 2..].find("}}") else {
            break;
        };
        let mut close = open + 2 + close_off;
        while s[close + 2..].starts_with('}') {
            close += 1;
        }
        let inner = s[open + 2..close].trim();
        let ph = match inner.split_once(':') {
            None => match inner {
                "ignore" => Some(Ph::Ignore),
                "uuid" => Some(Ph::Uuid),
                "date" => Some(Ph::Date),
                "datetime" => Some(Ph::DateTime),
                "amount" => Some(Ph::Amount),
                _ => None,
            },
            Some((kind, arg)) => match kind.trim() {
                "regex" => Some(Ph::Regex(arg)),
                "capture" if !arg.trim().is_empty() => Some(Ph::Capture(arg.trim())),
                _ => None,
            },
        };
        match ph {
            Some(ph) => {
                if lit_start < open {
                    out.push(Seg::Lit(&s[lit_start..open]));
                }
                out.push(Seg::Ph(ph));
                pos = close + 2;
                lit_start = pos;
            }
            None => pos = open + 2,
        }
    }
    if lit_start < s.len() || out.is_empty() {
        out.push(Seg::Lit(&s[lit_start..]));
    }
    out
}

const UUID_PAT: &str =
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const DATE_PAT: &str = "[0-9]{4}-[0-9]{2}-[0-9]{2}";
const DATETIME_PAT: &str = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})";
const AMOUNT_PAT: &str = r"-?[0-9]+\.[0-9]{2}";

static UUID_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"\A{UUID_PAT}\z")).unwrap());
static AMOUNT_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"\A{AMOUNT_PAT}\z")).unwrap());
static DATETIME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\A([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:Z|[+-]([0-9]{2}):([0-9]{2}))\z",
    )
    .unwrap()
});

/// `YYYY-MM-DD`, a real calendar date (year 0001 to 9999).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = &s[r];
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}

/// xs:dateTime with a mandatory offset (`Z` or `±hh:mm`), optional fractional seconds.
fn is_datetime(s: &str) -> bool {
    let Some(c) = DATETIME_RE.captures(s) else {
        return false;
    };
    let n = |i: usize| -> u32 { c.get(i).map_or(0, |m| m.as_str().parse().unwrap_or(99)) };
    let offset_ok = c.get(5).is_none() || (n(5) < 14 && n(6) < 60) || (n(5) == 14 && n(6) == 0);
    is_date(&c[1]) && n(2) < 24 && n(3) < 60 && n(4) < 60 && offset_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::tree::parse;

    fn cmp_with(expected: &str, actual: &str, opts: &CompareOptions) -> Comparison {
        compare(&parse(expected).unwrap(), &parse(actual).unwrap(), opts)
    }

    fn cmp(expected: &str, actual: &str) -> Comparison {
        cmp_with(expected, actual, &CompareOptions::default())
    }

    fn diffs(expected: &str, actual: &str) -> Vec<Difference> {
        cmp(expected, actual).differences
    }

    fn one(expected: &str, actual: &str) -> Difference {
        let d = diffs(expected, actual);
        assert_eq!(d.len(), 1, "{d:#?}");
        d.into_iter().next().unwrap()
    }

    fn d(
        location: &str,
        kind: DiffKind,
        expected: Option<&str>,
        actual: Option<&str>,
    ) -> Difference {
        Difference {
            location: location.into(),
            kind,
            expected: expected.map(str::to_string),
            actual: actual.map(str::to_string),
        }
    }

    #[test]
    fn namespaces_by_uri_not_prefix() {
        let e = r#"<a:Envelope xmlns:a="urn:env"><a:Body><x:v xmlns:x="urn:v">1</x:v></a:Body></a:Envelope>"#;
        let a = r#"<Envelope xmlns="urn:env"><Body><v xmlns="urn:v">1</v></Body></Envelope>"#;
        assert!(diffs(e, a).is_empty());
        let a2 = r#"<s:Envelope xmlns:s="urn:env"><s:Body><s:v>1</s:v></s:Body></s:Envelope>"#;
        assert_eq!(
            diffs(e, a2),
            vec![d(
                "/Envelope/Body/v",
                DiffKind::Namespace,
                Some("{urn:v}v"),
                Some("{urn:env}v")
            )]
        );
        // A namespace difference is reported once and the children are still compared.
        let e = r#"<r xmlns="urn:a"><c>1</c></r>"#;
        let a = r#"<r xmlns="urn:b"><c>2</c></r>"#;
        assert_eq!(
            diffs(e, a),
            vec![
                d(
                    "/r",
                    DiffKind::Namespace,
                    Some("{urn:a}r"),
                    Some("{urn:b}r")
                ),
                d(
                    "/r/c",
                    DiffKind::Namespace,
                    Some("{urn:a}c"),
                    Some("{urn:b}c")
                ),
                d("/r/c", DiffKind::Text, Some("1"), Some("2")),
            ]
        );
    }

    #[test]
    fn root_name_difference() {
        assert_eq!(
            diffs("<a><x/></a>", "<b><y/></b>"),
            vec![d("/a", DiffKind::Name, Some("a"), Some("b"))]
        );
    }

    #[test]
    fn attributes_in_any_order() {
        let e = r#"<r xmlns:p="urn:p" a="1" p:b="2"/>"#;
        let a = r#"<r xmlns:q="urn:p" q:b="2" a="1"/>"#;
        assert!(diffs(e, a).is_empty());
        assert_eq!(
            diffs(e, r#"<r xmlns:q="urn:p" q:b="3" c="4"/>"#),
            vec![
                d("/r/@a", DiffKind::AttributeMissing, Some("1"), None),
                d("/r/@b", DiffKind::AttributeValue, Some("2"), Some("3")),
                d("/r/@c", DiffKind::AttributeUnexpected, None, Some("4")),
            ]
        );
        // An attribute in another namespace is not the same attribute.
        let d2 = diffs(r#"<r b="2"/>"#, r#"<r xmlns:q="urn:p" q:b="2"/>"#);
        assert_eq!(d2.len(), 2, "{d2:?}");
    }

    #[test]
    fn whitespace_is_ignored() {
        let e = "<r>\n  <a> x </a>\n  <b/>\n</r>";
        let a = "<r><a>x</a><b>   </b></r>";
        assert!(diffs(e, a).is_empty());
        assert_eq!(
            one("<r><a>x</a></r>", "<r><a>y</a></r>"),
            d("/r/a", DiffKind::Text, Some("x"), Some("y"))
        );
        assert_eq!(
            one("<r><a/></r>", "<r><a>y</a></r>"),
            d("/r/a", DiffKind::Text, Some(""), Some("y"))
        );
    }

    #[test]
    fn missing_middle_element_gives_one_difference() {
        let e = "<r><a>1</a><b>2</b><c>3</c><d>4</d></r>";
        let a = "<r><a>1</a><c>3</c><d>4</d></r>";
        assert_eq!(
            diffs(e, a),
            vec![d("/r/b", DiffKind::Missing, Some("b"), None)]
        );
        assert_eq!(
            diffs(a, e),
            vec![d("/r/b", DiffKind::Unexpected, None, Some("b"))]
        );
    }

    #[test]
    fn missing_repeated_element_is_aligned_by_content() {
        let e = r#"<Envelope xmlns="urn:s"><Body><clcReponse xmlns="urn:roc"><lignes>
            <ligne><code>A</code><montantAmc>1.00</montantAmc></ligne>
            <ligne><code>B</code><montantAmc>2.00</montantAmc></ligne>
            <ligne><code>C</code><montantAmc>3.00</montantAmc></ligne>
        </lignes></clcReponse></Body></Envelope>"#;
        let a = r#"<Envelope xmlns="urn:s"><Body><clcReponse xmlns="urn:roc"><lignes>
            <ligne><code>A</code><montantAmc>1.00</montantAmc></ligne>
            <ligne><code>C</code><montantAmc>3.00</montantAmc></ligne>
        </lignes></clcReponse></Body></Envelope>"#;
        assert_eq!(
            diffs(e, a),
            vec![d(
                "/Envelope/Body/clcReponse/lignes/ligne[2]",
                DiffKind::Missing,
                Some("{urn:roc}ligne"),
                None
            )]
        );
        let a = a.replace(
            "<code>C</code><montantAmc>3.00",
            "<code>C</code><montantAmc>3.50",
        );
        assert_eq!(
            diffs(e, &a),
            vec![
                d(
                    "/Envelope/Body/clcReponse/lignes/ligne[2]",
                    DiffKind::Missing,
                    Some("{urn:roc}ligne"),
                    None
                ),
                d(
                    "/Envelope/Body/clcReponse/lignes/ligne[3]/montantAmc",
                    DiffKind::Text,
                    Some("3.00"),
                    Some("3.50")
                ),
            ]
        );
    }

    #[test]
    fn positions_in_locations() {
        let e = "<r><l><m>1</m></l><l><m>2</m><m>3</m></l><x/></r>";
        let a = "<r><l><m>1</m></l><l><m>2</m><m>4</m></l><x/></r>";
        assert_eq!(
            one(e, a),
            d("/r/l[2]/m[2]", DiffKind::Text, Some("3"), Some("4"))
        );
        let a = "<r><l><m>1</m></l><l><m>2</m><m>3</m></l><x/><x/></r>";
        assert_eq!(
            one(e, a),
            d("/r/x[2]", DiffKind::Unexpected, None, Some("x"))
        );
        let a = "<r><l><m>1</m></l><l><m>2</m><m>3</m></l><x a='1'/></r>";
        assert_eq!(
            one(e, a),
            d("/r/x/@a", DiffKind::AttributeUnexpected, None, Some("1"))
        );
    }

    #[test]
    fn replaced_element_is_missing_and_unexpected() {
        assert_eq!(
            diffs("<r><a/><b/><c/></r>", "<r><a/><z/><c/></r>"),
            vec![
                d("/r/b", DiffKind::Missing, Some("b"), None),
                d("/r/z", DiffKind::Unexpected, None, Some("z")),
            ]
        );
    }

    #[test]
    fn ordered_children_report_order_changes() {
        let d = diffs("<r><a/><b/></r>", "<r><b/><a/></r>");
        assert_eq!(d.len(), 2, "{d:?}");
    }

    fn check(expected_text: &str, actual_text: &str) -> Vec<Difference> {
        diffs(
            &format!("<r><v>{expected_text}</v></r>"),
            &format!("<r><v>{actual_text}</v></r>"),
        )
    }

    fn ok(expected_text: &str, actual_text: &str) {
        let d = check(expected_text, actual_text);
        assert!(d.is_empty(), "{expected_text} vs {actual_text}: {d:?}");
    }

    fn ko(expected_text: &str, actual_text: &str) {
        let d = check(expected_text, actual_text);
        assert_eq!(d.len(), 1, "{expected_text} vs {actual_text}: {d:?}");
        assert_eq!(d[0].kind, DiffKind::Text);
        assert_eq!(d[0].location, "/r/v");
    }

    #[test]
    fn placeholder_ignore() {
        ok("{{ignore}}", "anything");
        ok("{{ignore}}", "");
        ok(" {{ignore}} ", "<deep><er a='1'>x</er></deep>");
        // Ignoring the content still requires the element.
        let d = diffs("<r><v>{{ignore}}</v></r>", "<r/>");
        assert_eq!(
            d,
            vec![Difference {
                location: "/r/v".into(),
                kind: DiffKind::Missing,
                expected: Some("v".into()),
                actual: None,
            }]
        );
        // Attributes written on the ignored element are still checked; others are not.
        assert!(diffs(r#"<r><v>{{ignore}}</v></r>"#, r#"<r><v b="2"><x/></v></r>"#).is_empty());
        let d = diffs(
            r#"<r><v a="1">{{ignore}}</v></r>"#,
            r#"<r><v a="2" b="2"/></r>"#,
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DiffKind::AttributeValue);
        // Not alone: only the text is ignored, children are compared.
        let d = diffs("<r><v>{{ignore}}<x/></v></r>", "<r><v>t<y/></v></r>");
        assert_eq!(d.len(), 2, "{d:?}");
    }

    #[test]
    fn placeholder_regex() {
        ok("{{regex:[0-9]+}}", "12345");
        ko("{{regex:[0-9]+}}", "12a45");
        ko("{{regex:[0-9]}}", "12"); // anchored
        ko("{{regex:1|2}}", "12"); // alternation anchored as a whole
        ok("{{regex:[0-9]{2}}}", "42");
        ko("{{regex:[0-9]{2}}}", "423");
        let d = check("{{regex:[0-9}}", "1");
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, DiffKind::Text);
        assert!(
            d[0].expected.as_deref().unwrap().contains("invalid regex"),
            "{d:?}"
        );
    }

    #[test]
    fn placeholder_uuid() {
        ok("{{uuid}}", "123e4567-e89b-12d3-a456-426614174000");
        ok("{{uuid}}", "123E4567-E89B-12D3-A456-426614174000");
        ok("{{ uuid }}", "123e4567-e89b-12d3-a456-426614174000");
        ko("{{uuid}}", "123e4567e89b12d3a456426614174000");
        ko("{{uuid}}", "123e4567-e89b-12d3-a456-42661417400");
        ko("{{uuid}}", "g23e4567-e89b-12d3-a456-426614174000");
    }

    #[test]
    fn placeholder_date() {
        ok("{{date}}", "2024-02-29");
        ok("{{date}}", "2000-02-29");
        ko("{{date}}", "2023-02-29");
        ko("{{date}}", "1900-02-29");
        ko("{{date}}", "2024-13-01");
        ko("{{date}}", "2024-04-31");
        ko("{{date}}", "2024-4-1");
        ko("{{date}}", "20240401");
        ko("{{date}}", "2024-04-01T00:00:00Z");
    }

    #[test]
    fn placeholder_datetime() {
        ok("{{datetime}}", "2024-05-01T12:30:00Z");
        ok("{{datetime}}", "2024-05-01T12:30:00.123+02:00");
        ok("{{datetime}}", "2024-05-01T23:59:59-05:30");
        ko("{{datetime}}", "2024-05-01T12:30:00");
        ko("{{datetime}}", "2024-05-01 12:30:00Z");
        ko("{{datetime}}", "2024-05-01T24:30:00Z");
        ko("{{datetime}}", "2024-02-30T12:30:00Z");
        ko("{{datetime}}", "2024-05-01T12:60:00Z");
        ko("{{datetime}}", "2024-05-01T12:30:00+2:00");
        ko("{{datetime}}", "2024-05-01");
    }

    #[test]
    fn placeholder_amount() {
        ok("{{amount}}", "12.50");
        ok("{{amount}}", "-0.01");
        ok("{{amount}}", "0.00");
        ko("{{amount}}", "12.5");
        ko("{{amount}}", "12");
        ko("{{amount}}", "12.500");
        ko("{{amount}}", "+1.00");
        ko("{{amount}}", "1,00");
    }

    #[test]
    fn placeholders_in_attributes() {
        let e = r#"<r id="{{uuid}}" at="{{datetime}}" n="{{capture:n}}"/>"#;
        let c = cmp(
            e,
            r#"<r id="123e4567-e89b-12d3-a456-426614174000" at="2024-01-01T00:00:00Z" n="7"/>"#,
        );
        assert!(c.differences.is_empty(), "{:?}", c.differences);
        assert_eq!(c.captures.get("n").map(String::as_str), Some("7"));
        let d = diffs(e, r#"<r id="nope" at="2024-01-01T00:00:00Z" n="7"/>"#);
        assert_eq!(
            d,
            vec![Difference {
                location: "/r/@id".into(),
                kind: DiffKind::AttributeValue,
                expected: Some("{{uuid}}".into()),
                actual: Some("nope".into()),
            }]
        );
    }

    #[test]
    fn captures_and_known_values() {
        let c = cmp(
            "<r><id>{{capture:id}}</id><ref>{{capture:id}}</ref></r>",
            "<r><id> ABC </id><ref>ABC</ref></r>",
        );
        assert!(c.differences.is_empty(), "{:?}", c.differences);
        assert_eq!(c.captures.get("id").map(String::as_str), Some("ABC"));

        // A name binds once: a second, different value is a difference.
        let c = cmp(
            "<r><id>{{capture:id}}</id><ref>{{capture:id}}</ref></r>",
            "<r><id>ABC</id><ref>XYZ</ref></r>",
        );
        assert_eq!(c.differences.len(), 1);
        assert_eq!(c.differences[0].location, "/r/ref");

        // Empty values cannot be captured.
        ko("{{capture:x}}", "");

        // Known values must be matched.
        let mut opts = CompareOptions::default();
        opts.known.insert("id".into(), "ABC".into());
        let c = cmp_with(
            "<r><id>{{capture:id}}</id></r>",
            "<r><id>ABC</id></r>",
            &opts,
        );
        assert!(c.differences.is_empty());
        let c = cmp_with(
            "<r><id>{{capture:id}}</id></r>",
            "<r><id>XYZ</id></r>",
            &opts,
        );
        assert_eq!(c.differences.len(), 1);
        assert_eq!(c.differences[0].kind, DiffKind::Text);
        assert_eq!(c.differences[0].actual.as_deref(), Some("XYZ"));
        assert!(
            c.differences[0]
                .expected
                .as_deref()
                .unwrap()
                .contains("ABC")
        );
    }

    #[test]
    fn placeholders_inside_text() {
        ok("ENG-{{regex:[0-9]+}}", "ENG-42");
        ko("ENG-{{regex:[0-9]+}}", "ENG-4a");
        ko("ENG-{{regex:[0-9]+}}", "XENG-42");
        ok("a.b {{amount}} EUR", "a.b 12.00 EUR");
        ko("a.b {{amount}} EUR", "aXb 12.00 EUR");
        ok("le {{date}} à {{regex:[0-9]{2}}}h", "le 2024-02-29 à 10h");
        ko("le {{date}} à {{regex:[0-9]{2}}}h", "le 2023-02-29 à 10h");
        ok("id={{uuid}};", "id=123e4567-e89b-12d3-a456-426614174000;");
        ok("x{{ignore}}y", "x anything y");
        ok("{{unknown}}", "{{unknown}}");
        ko("{{unknown}}", "x");

        let c = cmp(
            "<r><v>ENG-{{capture:num}}-{{regex:[A-Z]}}</v></r>",
            "<r><v>ENG-123-Z</v></r>",
        );
        assert!(c.differences.is_empty(), "{:?}", c.differences);
        assert_eq!(c.captures.get("num").map(String::as_str), Some("123"));

        let mut opts = CompareOptions::default();
        opts.known.insert("num".into(), "123".into());
        let c = cmp_with(
            "<r><v>ENG-{{capture:num}}</v></r>",
            "<r><v>ENG-124</v></r>",
            &opts,
        );
        assert_eq!(c.differences.len(), 1);
        let c = cmp_with(
            "<r><v>ENG-{{capture:num}}</v></r>",
            "<r><v>ENG-123</v></r>",
            &opts,
        );
        assert!(c.differences.is_empty());

        let d = check("A-{{regex:(}}", "A-1");
        assert!(d[0].expected.as_deref().unwrap().contains("invalid regex"));
    }

    fn lignes(items: &[(&str, &str)]) -> String {
        let mut s = String::from(r#"<Envelope xmlns="urn:s"><Body><clcReponse><lignes>"#);
        for (code, amount) in items {
            s.push_str(&format!(
                "<ligne><code>{code}</code><montantAmc>{amount}</montantAmc></ligne>"
            ));
        }
        s.push_str("</lignes></clcReponse></Body></Envelope>");
        s
    }

    fn unordered() -> CompareOptions {
        CompareOptions {
            unordered: vec!["/Envelope/Body/clcReponse/lignes".into()],
            known: BTreeMap::new(),
        }
    }

    #[test]
    fn unordered_children() {
        let e = lignes(&[("A", "1.00"), ("B", "{{amount}}"), ("C", "{{capture:c}}")]);
        let a = lignes(&[("C", "3.00"), ("A", "1.00"), ("B", "2.00")]);
        let c = cmp_with(&e, &a, &unordered());
        assert!(c.differences.is_empty(), "{:?}", c.differences);
        assert_eq!(c.captures.get("c").map(String::as_str), Some("3.00"));
        // Without the option the order matters.
        assert!(!cmp(&e, &a).differences.is_empty());

        // Leftovers of the same name are compared with each other.
        let a = lignes(&[("C", "3.00"), ("B", "2.0"), ("A", "1.00")]);
        let c = cmp_with(&e, &a, &unordered());
        assert_eq!(
            c.differences,
            vec![Difference {
                location: "/Envelope/Body/clcReponse/lignes/ligne[2]/montantAmc".into(),
                kind: DiffKind::Text,
                expected: Some("{{amount}}".into()),
                actual: Some("2.0".into()),
            }]
        );

        // Missing and unexpected.
        let a = lignes(&[("C", "3.00"), ("A", "1.00")]);
        let c = cmp_with(&e, &a, &unordered());
        assert_eq!(c.differences.len(), 1, "{:?}", c.differences);
        assert_eq!(c.differences[0].kind, DiffKind::Missing);
        assert_eq!(
            c.differences[0].location,
            "/Envelope/Body/clcReponse/lignes/ligne[2]"
        );
        let full = lignes(&[("A", "1.00"), ("B", "2.00"), ("C", "3.00")]);
        let c = cmp_with(&a, &full, &unordered());
        assert_eq!(c.differences.len(), 1, "{:?}", c.differences);
        assert_eq!(c.differences[0].kind, DiffKind::Unexpected);
        assert_eq!(
            c.differences[0].location,
            "/Envelope/Body/clcReponse/lignes/ligne[2]"
        );

        // The unordered path may be written with prefixes.
        let opts = CompareOptions {
            unordered: vec!["/s:Envelope/s:Body/clcReponse/lignes/".into()],
            known: BTreeMap::new(),
        };
        let a = lignes(&[("C", "3.00"), ("A", "1.00"), ("B", "2.00")]);
        assert!(cmp_with(&e, &a, &opts).differences.is_empty());
    }

    #[test]
    fn unordered_captures_are_consistent() {
        // The same capture in two children must hold the same value.
        let e = lignes(&[("{{capture:x}}", "1.00"), ("{{capture:x}}", "2.00")]);
        let a = lignes(&[("K", "2.00"), ("K", "1.00")]);
        let c = cmp_with(&e, &a, &unordered());
        assert!(c.differences.is_empty(), "{:?}", c.differences);
        let a = lignes(&[("K", "2.00"), ("L", "1.00")]);
        let c = cmp_with(&e, &a, &unordered());
        assert_eq!(c.differences.len(), 1, "{:?}", c.differences);
    }

    #[test]
    fn large_lists_fall_back_to_names() {
        let n = 250;
        let mut e = String::from("<r>");
        let mut a = String::from("<r>");
        for i in 0..n {
            e.push_str(&format!("<i>{i}</i>"));
            if i != 100 {
                a.push_str(&format!("<i>{i}</i>"));
            }
        }
        e.push_str("<end/></r>");
        a.push_str("</r>");
        let d = diffs(&e, &a);
        assert!(
            d.iter()
                .any(|x| x.kind == DiffKind::Missing && x.location == "/r/end")
        );
    }

    #[test]
    fn unified_diff() {
        assert_eq!(unified("a\nb\n", "a\nb\n"), "");
        let u = unified("a\nb\nc\n", "a\nx\nc\n");
        assert!(u.starts_with("--- expected\n+++ actual\n@@"), "{u}");
        assert!(u.contains("-b\n+x\n"), "{u}");
        let long_e: String = (0..20).map(|i| format!("{i}\n")).collect();
        let long_a = long_e.replace("10\n", "ten\n");
        let u = unified(&long_e, &long_a);
        assert!(
            u.contains(" 7\n") && !u.contains(" 6\n"),
            "three lines of context: {u}"
        );
    }

    #[test]
    fn differences_serialize() {
        let d = one("<r><a x='1'/></r>", "<r><a/></r>");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["kind"], "attribute_missing");
        assert_eq!(json["location"], "/r/a/@x");
    }
}

#[cfg(test)]
mod resolve_tests {
    use super::*;
    use crate::xml::{parse, pretty};

    #[test]
    fn optional_elements_may_be_absent_but_must_match_when_present() {
        let e = parse("<r><a>1</a><opt>{{optional}}X1</opt><b>2</b></r>").unwrap();
        let absent = parse("<r><a>1</a><b>2</b></r>").unwrap();
        assert!(
            compare(&e, &absent, &CompareOptions::default())
                .differences
                .is_empty()
        );
        let same = parse("<r><a>1</a><opt>X1</opt><b>2</b></r>").unwrap();
        assert!(
            compare(&e, &same, &CompareOptions::default())
                .differences
                .is_empty()
        );
        let other = parse("<r><a>1</a><opt>X2</opt><b>2</b></r>").unwrap();
        let d = compare(&e, &other, &CompareOptions::default()).differences;
        assert_eq!(d.len(), 1);
        assert_eq!(
            (d[0].location.as_str(), d[0].kind),
            ("/r/opt", DiffKind::Text)
        );
        // Not optional: absence is a difference.
        let strict = parse("<r><a>1</a><opt>X1</opt><b>2</b></r>").unwrap();
        assert_eq!(
            compare(&strict, &absent, &CompareOptions::default())
                .differences
                .len(),
            1
        );
    }

    #[test]
    fn matched_placeholders_take_the_actual_values_and_failures_stay() {
        let e = parse("<r><id>{{uuid}}</id><n>{{regex:[0-9]+}}</n><x>{{ignore}}</x><a>1</a></r>")
            .unwrap();
        let a = parse(
            "<r><id>0b6f7a52-6d0e-4f3a-9d7e-6c1b2c3d4e5f</id><n>abc</n><x><y>z</y></x><a>2</a></r>",
        )
        .unwrap();
        let c = compare(&e, &a, &CompareOptions::default());
        let r = resolve(&e, &a, &c.differences);
        let text = pretty(&r);
        assert!(
            text.contains("<id>0b6f7a52-6d0e-4f3a-9d7e-6c1b2c3d4e5f</id>"),
            "{text}"
        );
        assert!(text.contains("{{regex:[0-9]+}}"), "{text}");
        assert!(text.contains("<y>z</y>"), "{text}");
        assert!(text.contains("<a>1</a>"), "{text}");
        let d = unified(&pretty(&r), &pretty(&a));
        assert_eq!(
            d.lines()
                .filter(|l| l.starts_with('-') && !l.starts_with("---"))
                .count(),
            2,
            "{d}"
        );
    }
}
