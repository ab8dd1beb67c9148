//! `roclab report merge`: one report from the outcomes of a partitioned run.

use roclab::error::Error;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct MergeArgs {
    /// Outcome JSON files of the shares (`run --partition k/n --json …`).
    #[arg(required = true)]
    outcomes: Vec<PathBuf>,
    /// JUnit XML output.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Merged outcome JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// HTML report.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Language of the HTML report: fr or en.
    #[arg(long, default_value = "fr")]
    lang: roclab::report::html::Lang,
}

pub fn merge(a: MergeArgs) -> Result<i32, Error> {
    let mut parts = vec![];
    let mut names = vec![];
    for p in &a.outcomes {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
        let o = roclab::report::json::parse(&text)
            .map_err(|e| Error::Usage(format!("{}: not a roclab outcome: {e}", p.display())))?;
        parts.push(o);
        names.push(p.display().to_string());
    }
    let merged = roclab::report::merge::merge(parts, &names).map_err(Error::Usage)?;
    let write = |p: &PathBuf, s: String| {
        roclab::report::write_atomic(p, s.as_bytes())
            .map_err(|e| Error::Environment(format!("cannot write {}: {e}", p.display())))
    };
    if let Some(p) = &a.junit {
        write(p, roclab::report::junit::render(&merged))?;
    }
    if let Some(p) = &a.json {
        write(p, roclab::report::json::render(&merged))?;
    }
    if let Some(p) = &a.html {
        write(p, roclab::report::html::render(&merged, a.lang))?;
    }
    let c = &merged.counts;
    println!(
        "merged {} outcomes: {} scenarios: {} passed, {} failed, {} errored, {} skipped — {}",
        a.outcomes.len(),
        c.total,
        c.passed,
        c.failed,
        c.errored,
        c.skipped,
        super::run::verdict_line(&merged)
    );
    Ok(merged.exit_code())
}
