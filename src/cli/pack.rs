//! `roclab pack check PACK`.

use roclab::error::Error;
use std::collections::BTreeSet;
use std::path::Path;

pub fn check(dir: &Path) -> Result<i32, Error> {
    let loaded = roclab::pack::load(dir, &BTreeSet::new())?;
    let p = &loaded.pack;
    let steps: usize = p.scenarios.iter().map(|s| s.steps.len()).sum();
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "{} {} ({}): {}, {}, {}{}",
        p.id,
        p.version,
        p.title,
        super::count(p.scenarios.len(), "scenario"),
        super::count(steps, "step"),
        super::count(p.requirements.len(), "requirement"),
        if loaded.warnings.is_empty() {
            ", every requirement verified".to_string()
        } else {
            format!(", {}", super::count(loaded.warnings.len(), "warning"))
        }
    );
    Ok(if loaded.warnings.is_empty() { 0 } else { 1 })
}
