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
    /// Without --junit, --json or --html, the three reports are written as `run` writes them:
    /// OUT/<pack id>/junit.xml, outcome.json and report.html.
    #[arg(long, default_value = "reports")]
    out: PathBuf,
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
    // No output named: the default set, as `run` writes it.
    let (junit, json, html) = if a.junit.is_none() && a.json.is_none() && a.html.is_none() {
        let dir = a.out.join(&merged.pack.id);
        (
            Some(dir.join("junit.xml")),
            Some(dir.join("outcome.json")),
            Some(dir.join("report.html")),
        )
    } else {
        (a.junit, a.json, a.html)
    };
    let mut written = vec![];
    if let Some(p) = html {
        write(&p, roclab::report::html::render(&merged, a.lang))?;
        written.push(p);
    }
    if let Some(p) = junit {
        write(&p, roclab::report::junit::render(&merged))?;
        written.push(p);
    }
    if let Some(p) = json {
        write(&p, roclab::report::json::render(&merged))?;
        written.push(p);
    }
    let c = &merged.counts;
    println!(
        "merged {}: {}: {} passed, {} failed, {} errored, {} skipped — {}",
        super::count(a.outcomes.len(), "outcome"),
        super::count(c.total, "scenario"),
        c.passed,
        c.failed,
        c.errored,
        c.skipped,
        super::run::verdict_line(&merged)
    );
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("reports: {}", names.join(", "));
    Ok(merged.exit_code())
}
