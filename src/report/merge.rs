//! Merging the outcomes of a partitioned run (`run --partition k/n` on several machines) into
//! one outcome whose verdicts are those of an unpartitioned run.

use crate::outcome::{Outcome, Plan, RequirementDef};
use std::collections::BTreeSet;

/// `file:line:column` -> a key that sorts scenarios in pack order.
fn source_key(source: &str) -> (String, u64, u64) {
    let mut parts = source.rsplitn(3, ':');
    let col = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
    let file = parts.next().unwrap_or("").to_string();
    (file, line, col)
}

/// Merge shard outcomes. `names` label them in errors (file names). Every shard must come from
/// the same pack (same SHA-256) and kind of SUT; partitioned shards must be all of `1/n … n/n`,
/// each once; no scenario may appear twice.
pub fn merge(parts: Vec<Outcome>, names: &[String]) -> Result<Outcome, String> {
    let first = parts.first().ok_or("nothing to merge")?;
    let name = |i: usize| {
        names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("outcome {}", i + 1))
    };
    for (i, p) in parts.iter().enumerate() {
        if p.pack.id != first.pack.id || p.pack.sha256 != first.pack.sha256 {
            return Err(format!(
                "{}: pack {} (sha256 {}) differs from {}: pack {} (sha256 {})",
                name(i),
                p.pack.id,
                p.pack.sha256,
                name(0),
                first.pack.id,
                first.pack.sha256
            ));
        }
        if p.sut.kind != first.sut.kind
            || p.sut.profile != first.sut.profile
            || p.sut.defects != first.sut.defects
        {
            return Err(format!(
                "{}: another SUT or profile than {}",
                name(i),
                name(0)
            ));
        }
    }
    // Shares of a partitioned run: all of them, once.
    let shares: Vec<Option<(usize, usize)>> = parts
        .iter()
        .map(|p| {
            p.partition.as_deref().and_then(|s| {
                let (k, n) = s.split_once('/')?;
                Some((k.parse().ok()?, n.parse().ok()?))
            })
        })
        .collect();
    if shares.iter().any(|s| s.is_some()) {
        let n = shares.iter().flatten().map(|(_, n)| *n).max().unwrap_or(0);
        let mut seen = BTreeSet::new();
        for (i, s) in shares.iter().enumerate() {
            match s {
                None => return Err(format!("{}: not a share of a partitioned run", name(i))),
                Some((_, m)) if *m != n => {
                    return Err(format!(
                        "{}: share of {m}, the others are shares of {n}",
                        name(i)
                    ));
                }
                Some((k, _)) if !seen.insert(*k) => {
                    return Err(format!("{}: share {k}/{n} given twice", name(i)));
                }
                _ => {}
            }
        }
        let missing: Vec<String> = (1..=n)
            .filter(|k| !seen.contains(k))
            .map(|k| format!("{k}/{n}"))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "share(s) {} missing: a merged report without them would not be the whole run",
                missing.join(", ")
            ));
        }
    }
    let mut ids = BTreeSet::new();
    let mut scenarios = vec![];
    for (i, p) in parts.iter().enumerate() {
        for s in &p.scenarios {
            if !ids.insert(s.id.clone()) {
                return Err(format!(
                    "{}: scenario {} is in another outcome too",
                    name(i),
                    s.id
                ));
            }
            scenarios.push(s.clone());
        }
    }
    scenarios.sort_by_key(|s| source_key(&s.source));
    let requirements: Vec<RequirementDef> = first
        .requirements
        .iter()
        .map(RequirementDef::from)
        .collect();
    // The shares of one run share its filter; shares filtered differently are not one run.
    for (i, p) in parts.iter().enumerate() {
        if p.scope.filter != first.scope.filter {
            return Err(format!(
                "{}: filter {:?}, {} has {:?}: the shares are not of one run",
                name(i),
                p.scope.filter,
                name(0),
                first.scope.filter
            ));
        }
    }
    let plan = Plan {
        filter: first.scope.filter.clone(),
        partition: None,
        pack_scenarios: first.scope.pack_scenarios,
    };
    let started = parts
        .iter()
        .map(|p| p.started.clone())
        .min()
        .unwrap_or_default();
    let duration = parts.iter().map(|p| p.duration_ms).fold(0.0, f64::max);
    let interrupted = parts.iter().any(|p| p.interrupted);
    Ok(Outcome::build(
        first.pack.clone(),
        first.sut.clone(),
        &requirements,
        &plan,
        scenarios,
        started,
        duration,
        interrupted,
    ))
}
