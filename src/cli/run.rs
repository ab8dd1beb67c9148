//! `roclab run PACK`: load, set up the target, run, report.

use roclab::engine::billing::PaymentRunner;
use roclab::engine::{self, ClientTls, Event, Target};
use roclab::error::Error;
use roclab::net::tls::{self, Identity};
use roclab::outcome::{Outcome, PackInfo, Plan, RequirementDef, ScenarioOutcome, Status, SutInfo};
use roclab::pack::{Pack, select::Filter};
use roclab::profile::Profile;
use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The profiles used when none is given (and the file is not at hand), by kind of SUT.
const DEFAULT_AMC_PROFILE: (&str, &str) = (
    "profiles/reference-amc.yaml",
    include_str!("../../profiles/reference-amc.yaml"),
);
const DEFAULT_GAP_PROFILE: (&str, &str) = (
    "profiles/reference-gap.yaml",
    include_str!("../../profiles/reference-gap.yaml"),
);

/// The kind of SUT a pack tests, read from its pack.yaml (errors are reported by the loader).
fn pack_sut(dir: &Path) -> String {
    #[derive(serde::Deserialize)]
    struct Head {
        sut: String,
    }
    std::fs::read_to_string(dir.join("pack.yaml"))
        .ok()
        .and_then(|t| serde_saphyr::from_str::<Head>(&t).ok())
        .map(|h| h.sut)
        .unwrap_or_default()
}

#[derive(clap::Args)]
pub struct Args {
    /// The pack folder (holding pack.yaml).
    pack: PathBuf,
    /// SUT profile [default: profiles/reference-amc.yaml (the embedded AMC) for an AMC pack,
    /// profiles/reference-gap.yaml (the embedded GAP) for a GAP pack].
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Override a profile field, e.g. --set sut.base_url=https://amc.test:8443/roc
    /// (repeatable; list fields take comma-separated values).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
    /// Select scenarios: tag:NAME, req:ID, id:GLOB or a bare id glob; `&` and, `|` or, `!` not.
    #[arg(long)]
    filter: Option<String>,
    /// Scenarios run at once (1 or more).
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    jobs: usize,
    /// JUnit XML output [default: OUT/<pack id>/junit.xml].
    #[arg(long)]
    junit: Option<PathBuf>,
    /// JSON outcome output [default: OUT/<pack id>/outcome.json].
    #[arg(long)]
    json: Option<PathBuf>,
    /// HTML report [default: OUT/<pack id>/report.html].
    #[arg(long)]
    html: Option<PathBuf>,
    /// Language of the HTML report: fr or en.
    #[arg(long, default_value = "fr")]
    lang: roclab::report::html::Lang,
    /// Folder of default report paths.
    #[arg(long, default_value = "reports")]
    out: PathBuf,
    /// Run only share k of n of the selected scenarios (CI machines; see `report merge`).
    #[arg(long, value_name = "K/N")]
    partition: Option<String>,
    /// Write the evidence bundle (every exchange as sent and received, the outcome, a manifest
    /// of SHA-256) into this folder.
    #[arg(long, value_name = "DIR")]
    evidence: Option<PathBuf>,
    /// Empty a non-empty evidence folder before the run (without it such a folder is refused).
    #[arg(long)]
    force: bool,
    /// Print the scenarios --filter (and --partition) select, with their title and source,
    /// and exit without running them.
    #[arg(long)]
    list: bool,
    /// Start no scenario after the first one that fails or errs; the others are reported as not
    /// run. A fail-fast run is not a complete run: its report covers part of the pack.
    #[arg(long)]
    fail_fast: bool,
    /// Print only the summary line and errors.
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
    /// Also print a line for each passed scenario, and each finding under its scenario.
    #[arg(short, long)]
    verbose: bool,
    /// Colour the PASS / FAIL / ERROR tags: auto (on a terminal, unless NO_COLOR is set),
    /// always, never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    color: ColorWhen,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

/// A count of 1 or more (`--jobs 0` would run nothing and wait forever).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a number of 1 or more")),
    }
}

pub fn run(a: Args) -> Result<i32, Error> {
    let (default_path, default_text) = if pack_sut(&a.pack) == "gap" {
        DEFAULT_GAP_PROFILE
    } else {
        DEFAULT_AMC_PROFILE
    };
    let profile = match &a.profile {
        Some(p) => Profile::load(p, &a.sets)?,
        None if Path::new(default_path).is_file() => {
            Profile::load(Path::new(default_path), &a.sets)?
        }
        None => Profile::parse(default_text, Path::new(default_path), &a.sets)?,
    };
    let extra: BTreeSet<String> = profile.vars.keys().cloned().collect();
    let loaded = roclab::pack::load(&a.pack, &extra)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    let pack = Arc::new(loaded.pack);
    if pack.sut != profile.sut.kind {
        return Err(Error::Usage(format!(
            "pack {} tests {} but the profile describes {} (sut.kind: {})",
            pack.id,
            super::sut_noun(&pack.sut),
            super::sut_noun(&profile.sut.kind),
            profile.sut.kind
        )));
    }
    let filter = a
        .filter
        .as_deref()
        .map(Filter::parse)
        .transpose()
        .map_err(Error::Usage)?;
    let selected: Vec<usize> = pack
        .scenarios
        .iter()
        .enumerate()
        .filter(|(_, s)| filter.as_ref().is_none_or(|f| f.matches(s)))
        .map(|(i, _)| i)
        .collect();
    if selected.is_empty() {
        return Err(Error::Usage("no scenario matches the filter".into()));
    }
    let share = a
        .partition
        .as_deref()
        .map(roclab::pack::select::parse_partition)
        .transpose()
        .map_err(Error::Usage)?;
    let selected = match share {
        Some((k, n)) => roclab::pack::select::partition(&selected, k, n),
        None => selected,
    };
    if a.list {
        list(&pack, &selected);
        return Ok(0);
    }
    let console = Console::new(&a);
    let junit_path = a
        .junit
        .clone()
        .unwrap_or_else(|| a.out.join(&pack.id).join("junit.xml"));
    let html_path = a
        .html
        .clone()
        .unwrap_or_else(|| a.out.join(&pack.id).join("report.html"));
    let json_path = a
        .json
        .clone()
        .unwrap_or_else(|| a.out.join(&pack.id).join("outcome.json"));
    // Folders created and proved writable, reports and evidence locked, evidence folder empty:
    // all before the first scenario.
    let _output = roclab::report::output::prepare(
        &[&junit_path, &html_path, &json_path],
        a.evidence.as_deref(),
        a.force,
    )?;

    let rt = super::runtime()?;
    // The scenario that stopped a --fail-fast run, and its status.
    let tripped: Tripped = Arc::new(Mutex::new(None));
    let started = roclab::pack::template::now_rfc3339();
    let t0 = Instant::now();
    let (scenarios, sut, interrupted) = rt.block_on(async {
        let (target, sut, _server, _scratch) = if pack.sut == "gap" {
            let (t, s, dir) = setup_gap(&pack, &profile)?;
            (t, s, None, Some(dir))
        } else {
            let (t, s, server, dir) = setup(&pack, &profile).await?;
            (t, s, server, dir)
        };
        // With fixed ports or a person at the keyboard, one scenario at a time.
        let sequential = target.gap.as_ref().is_some_and(|g| {
            matches!(g.driver.config, engine::driver::DriverConfig::Operator)
                || g.listen.values().any(|a| !a.ends_with(":0"))
        });
        let jobs = if sequential { 1 } else { a.jobs };
        let header = format!(
            "roclab {} — pack {} {} ({}) against {}",
            env!("CARGO_PKG_VERSION"),
            pack.id,
            pack.version,
            super::count(selected.len(), "scenario"),
            match (sut.kind.as_str(), sut.embedded) {
                ("amc", true) =>
                    format!("the embedded reference AMC{}", defects_label(&sut.defects)),
                ("gap", true) =>
                    format!("the embedded reference GAP{}", defects_label(&sut.defects)),
                ("gap", false) => format!("a GAP through the {} driver", sut.base_url),
                _ => sut.base_url.clone(),
            }
        );
        if !console.quiet {
            println!("{header}");
        }
        let listener = progress(&pack, selected.len(), console, &html_path);
        let stop = Arc::new(AtomicBool::new(false));
        // --fail-fast starts nothing new but lets the running scenarios finish their waits.
        let no_new = Arc::new(AtomicBool::new(false));
        let listener = match a.fail_fast {
            true => (
                fail_fast(listener.0, no_new.clone(), tripped.clone()),
                listener.1,
            ),
            false => listener,
        };
        let signals = tokio::spawn(watch_signals(stop.clone()));
        let out = engine::run(
            pack.clone(),
            Arc::new(target),
            selected,
            jobs,
            listener.0,
            stop.clone(),
            no_new,
        )
        .await;
        signals.abort();
        if let Some(pb) = listener.1 {
            pb.finish_and_clear();
        }
        // A fail-fast stop is not an interruption.
        let interrupted = stop.load(Ordering::SeqCst) && tripped_by(&tripped).is_none();
        Ok::<_, Error>((out, sut, interrupted))
    })?;
    let scenarios = fail_fast_reasons(scenarios, tripped_by(&tripped));
    let info = PackInfo {
        id: pack.id.clone(),
        title: pack.title.clone(),
        version: pack.version.clone(),
        norme: pack.norme.clone(),
        sut: pack.sut.clone(),
        path: pack.dir.display().to_string(),
        sha256: pack.sha256.clone(),
    };
    let reqs: Vec<RequirementDef> = pack
        .requirements
        .iter()
        .map(|r| RequirementDef {
            id: r.id.clone(),
            statement: r.statement.clone(),
            statement_fr: r.statement_fr.clone(),
            spec: r.spec.clone(),
            scenarios: pack
                .scenarios
                .iter()
                .filter(|s| s.verifies.contains(&r.id))
                .map(|s| s.id.clone())
                .collect(),
        })
        .collect();
    let plan = Plan {
        filter: a.filter.clone(),
        partition: share.map(|(k, n)| format!("{k}/{n}")),
        pack_scenarios: pack.scenarios.len(),
    };
    let outcome = Outcome::build(
        info,
        sut,
        &reqs,
        &plan,
        scenarios,
        started,
        t0.elapsed().as_secs_f64() * 1000.0,
        interrupted,
    );
    write_reports(&outcome, &junit_path, &json_path)?;
    roclab::report::write_atomic(
        &html_path,
        roclab::report::html::render(&outcome, a.lang).as_bytes(),
    )
    .map_err(|e| Error::Environment(format!("cannot write {}: {e}", html_path.display())))?;
    let mut written = vec![html_path.clone(), junit_path.clone(), json_path.clone()];
    if let Some(dir) = &a.evidence {
        let text = match &profile.source {
            Some(p) if p.is_file() => std::fs::read_to_string(p).unwrap_or_default(),
            _ => default_text.to_string(),
        };
        let manifest =
            roclab::report::evidence::write(dir, &outcome, &pack.dir, &text).map_err(|e| {
                Error::Environment(format!(
                    "cannot write the evidence into {}: {e}",
                    dir.display()
                ))
            })?;
        written.push(manifest);
    }
    let files: Vec<&Path> = written.iter().map(|p| p.as_path()).collect();
    if let Some((id, status)) = tripped_by(&tripped)
        && outcome.counts.not_run > 0
    {
        eprintln!(
            "roclab: --fail-fast: no scenario started after {id} {status}; {} not run — not a complete run",
            outcome.counts.not_run
        );
    }
    summary(&outcome, &files, console.quiet);
    Ok(outcome.exit_code())
}

/// First SIGINT or SIGTERM: scenarios not started yet are not run, the running ones finish and
/// the reports say "interrupted". A second signal stops at once.
async fn watch_signals(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    stop.store(true, Ordering::SeqCst);
    eprintln!(
        "roclab: interrupted — finishing the running scenarios and writing the reports (again to stop at once)"
    );
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    eprintln!("roclab: stopped at once; no report written");
    std::process::exit(130);
}

fn defects_label(d: &[String]) -> String {
    if d.is_empty() {
        String::new()
    } else {
        format!(" with defect {}", d.join(", "))
    }
}

fn write_reports(o: &Outcome, junit: &Path, json: &Path) -> Result<(), Error> {
    let w = |p: &Path, s: String| {
        roclab::report::write_atomic(p, s.as_bytes())
            .map_err(|e| Error::Environment(format!("cannot write {}: {e}", p.display())))
    };
    w(junit, roclab::report::junit::render(o))?;
    w(json, roclab::report::json::render(o))
}

fn summary(o: &Outcome, files: &[&Path], quiet: bool) {
    let c = &o.counts;
    println!(
        "{}: {} passed, {} failed, {} errored, {} skipped{} — {}",
        super::count(c.total, "scenario"),
        c.passed,
        c.failed,
        c.errored,
        c.skipped,
        if c.not_run > 0 {
            format!(", {} not run", c.not_run)
        } else {
            String::new()
        },
        verdict_line(o)
    );
    if quiet {
        return;
    }
    if !o.scope.complete {
        println!("scope: {}", o.scope.limits.join("; "));
        let ne = &o.scope.not_evaluated;
        if !ne.is_empty() {
            const SHOWN: usize = 12;
            let more = if ne.len() > SHOWN {
                format!(" … and {} more (see the report)", ne.len() - SHOWN)
            } else {
                String::new()
            };
            let shown: Vec<&str> = ne.iter().take(SHOWN).map(String::as_str).collect();
            println!("requirements not evaluated: {}{more}", shown.join(", "));
        }
    }
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    println!("reports: {}", names.join(", "));
}

/// The verdict as the console says it.
pub fn verdict_line(o: &Outcome) -> String {
    use roclab::outcome::verdict;
    let v = match o.verdict.as_str() {
        verdict::CONFORMANT => "CONFORME (conformant)",
        verdict::CONFORMANT_SCOPED => {
            "CONFORME SUR LE PÉRIMÈTRE TESTÉ (conformant on the tested scope only)"
        }
        verdict::NOT_CONFORMANT => "NON CONFORME (not conformant)",
        verdict::INTERRUPTED => "INTERROMPU (interrupted: no conformity verdict)",
        _ => "AUCUN VERDICT POSSIBLE (no verdict possible: the lab could not test)",
    };
    if o.interrupted && o.verdict == verdict::NOT_CONFORMANT {
        format!("{v}, interrupted")
    } else {
        v.to_string()
    }
}

type Progress = (engine::Listener, Option<indicatif::ProgressBar>);

/// Findings of a failed scenario shown on the console (all of them with `--verbose`); the
/// others are in the HTML report.
const CONSOLE_FINDINGS: usize = 5;

/// A scenario's console line; a failed or errored one is followed by its findings, one
/// indented line each (`  step 2 CLC [body] text at …: expected 12.35, got 12.34`), the first
/// [`CONSOLE_FINDINGS`], then how many more the report at `report` holds.
fn line(o: &ScenarioOutcome, c: Console, report: &Path) -> String {
    let (tag, colour) = match o.status {
        Status::Passed => ("PASS", "32"),
        Status::Failed => ("FAIL", "31"),
        Status::Errored => ("ERROR", "1;31"),
        Status::Skipped => ("SKIP", "33"),
        Status::NotRun => ("NOT RUN", "2"),
    };
    let tag = if c.color {
        format!("\x1b[{colour}m{tag:<5}\x1b[0m")
    } else {
        format!("{tag:<5}")
    };
    let findings: Vec<(&roclab::outcome::StepOutcome, &roclab::outcome::Finding)> = o
        .steps
        .iter()
        .flat_map(|st| st.findings.iter().map(move |f| (st, f)))
        .collect();
    let listed = matches!(o.status, Status::Failed | Status::Errored) && !findings.is_empty();
    let mut s = match &o.reason {
        // A failed scenario's reason is its first finding, listed below.
        Some(_) if o.status == Status::Failed && (listed || c.verbose) => {
            format!("{tag} {} ({:.0} ms)", o.id, o.duration_ms)
        }
        Some(r) if o.status != Status::Passed => {
            format!("{tag} {} ({:.0} ms): {r}", o.id, o.duration_ms)
        }
        _ => format!("{tag} {} ({:.0} ms)", o.id, o.duration_ms),
    };
    if c.verbose {
        for (st, f) in &findings {
            s.push_str(&finding_line(st, f));
        }
    } else if listed {
        for (st, f) in findings.iter().take(CONSOLE_FINDINGS) {
            let mut message = f.message.replace(['\r', '\n'], " ");
            if message.chars().count() > 300 {
                message = message.chars().take(300).collect::<String>() + "…";
            }
            s.push_str(&format!(
                "\n  step {} {} [{}] {message}",
                st.index + 1,
                st.label,
                f.check
            ));
        }
        if findings.len() > CONSOLE_FINDINGS {
            s.push_str(&format!(
                "\n  … and {} more (see {})",
                findings.len() - CONSOLE_FINDINGS,
                report.display()
            ));
        }
    }
    s
}

/// `--verbose`: one indented line per finding, under its scenario's line.
fn finding_line(st: &roclab::outcome::StepOutcome, f: &roclab::outcome::Finding) -> String {
    let short = |v: &str| {
        let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
        match v.char_indices().nth(80) {
            Some((i, _)) => format!("{}…", &v[..i]),
            None => v,
        }
    };
    let mut s = format!(
        "\n      step {} ({}) {}: {}",
        st.index + 1,
        st.label,
        f.check,
        f.message
    );
    // What the message does not say already.
    if let Some(l) = f
        .location
        .as_ref()
        .filter(|l| !f.message.contains(l.as_str()))
    {
        s.push_str(&format!(" at {l}"));
    }
    if f.message.contains("expected") || f.message.contains("got ") {
        return s;
    }
    match (&f.expected, &f.actual) {
        (Some(e), Some(a)) => s.push_str(&format!(" (expected {}, got {})", short(e), short(a))),
        (Some(e), None) => s.push_str(&format!(" (expected {})", short(e))),
        (None, Some(a)) => s.push_str(&format!(" (got {})", short(a))),
        (None, None) => {}
    }
    s
}

/// What the console shows of a run (`--quiet`, `--verbose`, `--color`).
#[derive(Clone, Copy)]
struct Console {
    quiet: bool,
    verbose: bool,
    color: bool,
}

impl Console {
    fn new(a: &Args) -> Console {
        // Scenario lines go to stderr under a progress bar (a terminal), else to stdout.
        let terminal = std::io::stderr().is_terminal() || std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Console {
            quiet: a.quiet,
            verbose: a.verbose,
            color: match a.color {
                ColorWhen::Always => true,
                ColorWhen::Never => false,
                ColorWhen::Auto => terminal && !no_color,
            },
        }
    }
}

/// `--list`: the selected scenarios, one a line: id, source, title.
fn list(pack: &Pack, selected: &[usize]) {
    let rows: Vec<(&str, String, &str)> = selected
        .iter()
        .map(|&i| {
            let s = &pack.scenarios[i];
            (s.id.as_str(), s.at.to_string(), s.title.as_str())
        })
        .collect();
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let ws = rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
    for (id, source, title) in rows {
        println!("{id:<w$}  {source:<ws$}  {title}");
    }
}

/// The scenario that stopped a `--fail-fast` run and how it ended (`failed` or `errored`).
type Tripped = Arc<Mutex<Option<(String, &'static str)>>>;

fn tripped_by(t: &Tripped) -> Option<(String, &'static str)> {
    t.lock().expect("lock").clone()
}

/// `--fail-fast`: the first failed or errored scenario sets `stop`, so that no other starts.
fn fail_fast(inner: engine::Listener, stop: Arc<AtomicBool>, tripped: Tripped) -> engine::Listener {
    Arc::new(move |e: &Event| {
        if let Event::Finished(o) = e {
            let how = match o.status {
                Status::Failed => Some("failed"),
                Status::Errored => Some("errored"),
                _ => None,
            };
            if let Some(how) = how {
                let mut t = tripped.lock().expect("lock");
                if t.is_none() {
                    *t = Some((o.id.clone(), how));
                    stop.store(true, Ordering::SeqCst);
                }
            }
        }
        inner(e)
    })
}

/// Scenarios a `--fail-fast` stop kept from starting say so.
fn fail_fast_reasons(
    mut scenarios: Vec<ScenarioOutcome>,
    tripped: Option<(String, &'static str)>,
) -> Vec<ScenarioOutcome> {
    if let Some((id, how)) = tripped {
        for s in scenarios.iter_mut().filter(|s| s.status == Status::NotRun) {
            s.reason = Some(format!("not run: --fail-fast after {id} {how}"));
        }
    }
    scenarios
}

/// A progress bar on a terminal, plain lines otherwise; nothing with `--quiet`.
fn progress(_pack: &Pack, n: usize, c: Console, report: &Path) -> Progress {
    let report = report.to_path_buf();
    if c.quiet {
        return (Arc::new(|_: &Event| {}), None);
    }
    if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new(n as u64);
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40.cyan/blue} {pos}/{len} {elapsed} {wide_msg}",
            )
            .expect("valid template"),
        );
        let bar = pb.clone();
        let running = Arc::new(Mutex::new(BTreeSet::<String>::new()));
        let l: engine::Listener = Arc::new(move |e: &Event| match e {
            Event::Started { id } => {
                let mut r = running.lock().expect("lock");
                r.insert(id.to_string());
                bar.set_message(r.iter().cloned().collect::<Vec<_>>().join(" "));
            }
            Event::Finished(o) => {
                let mut r = running.lock().expect("lock");
                r.remove(&o.id);
                bar.set_message(r.iter().cloned().collect::<Vec<_>>().join(" "));
                if o.status != Status::Passed || c.verbose {
                    bar.println(line(o, c, &report));
                }
                bar.inc(1);
            }
        });
        (l, Some(pb))
    } else {
        let l: engine::Listener = Arc::new(move |e: &Event| {
            if let Event::Finished(o) = e {
                println!("{}", line(o, c, &report));
            }
        });
        (l, None)
    }
}

fn read(p: &Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(p).map_err(|e| Error::Usage(format!("{what} {}: {e}", p.display())))
}

/// A TLS file the profile names; a missing one comes with the command that creates the lab PKI.
fn read_tls(p: &Path, what: &str) -> Result<String, Error> {
    std::fs::read_to_string(p)
        .map_err(|e| Error::Usage(format!("{what} {}", roclab::pki::read_error(p, &e))))
}

fn client(ca: &str, id: Option<&Identity>) -> Result<ClientTls, Error> {
    let config = tls::client_config(ca, id).map_err(|e| Error::Usage(e.to_string()))?;
    let subject = id.and_then(|i| tls::subject_of_pem(&i.cert_pem));
    Ok(ClientTls { config, subject })
}

/// Resolve the profile into a target; start the embedded SUT when the profile asks for it.
async fn setup(
    pack: &Pack,
    profile: &Profile,
) -> Result<
    (
        Target,
        SutInfo,
        Option<roclab::net::server::Server>,
        Option<Scratch>,
    ),
    Error,
> {
    let mut clients = BTreeMap::new();
    // The embedded AMC's return drop and payment runs.
    let mut drop: Option<(PathBuf, Option<PaymentRunner>)> = None;
    let mut scratch = None;
    let (base_url, server) = if profile.sut.embedded {
        let finess = profile
            .vars
            .get("finess_juridique")
            .or(pack.variables.get("finess_juridique"))
            .cloned()
            .unwrap_or_else(|| "750712184".into());
        let pki = roclab::pki::generate(&finess).map_err(Error::Environment)?;
        let pop_path = pack.data_files.get("population").ok_or_else(|| {
            Error::Usage(format!(
                "pack {} has no `population` data for the embedded AMC",
                pack.id
            ))
        })?;
        let population =
            roclab::roc::population::Population::from_yaml(&read(pop_path, "population")?)
                .map_err(|e| Error::Usage(format!("{}: {e}", pop_path.display())))?;
        let cfg = roclab::mirror::amc::AmcConfig::new(
            population,
            &profile.sut.endpoint,
            profile.sut.defects.iter().cloned().collect(),
        );
        let auth = roclab::mirror::amc::client_auth(&cfg.defects);
        let amc = roclab::mirror::amc::Amc::new(cfg);
        let tls = tls::server_config(&pki.ca_cert_pem, &pki.amc_server, auth)
            .map_err(|e| Error::Environment(e.to_string()))?;
        let server = roclab::net::server::Server::start("127.0.0.1:0", tls, amc.handler())
            .await
            .map_err(|e| {
                Error::Environment(format!("cannot start the embedded AMC on 127.0.0.1: {e}"))
            })?;
        let dir = Scratch::new()?;
        let returns = dir.0.join("returns");
        std::fs::create_dir_all(&returns)
            .map_err(|e| Error::Environment(format!("{}: {e}", returns.display())))?;
        drop = Some((returns, Some(PaymentRunner::Embedded(amc))));
        scratch = Some(dir);
        clients.insert("lab", client(&pki.ca_cert_pem, Some(&pki.client))?);
        clients.insert("none", client(&pki.ca_cert_pem, None)?);
        clients.insert(
            "untrusted",
            client(&pki.ca_cert_pem, Some(&pki.untrusted_client))?,
        );
        clients.insert(
            "expired",
            client(&pki.ca_cert_pem, Some(&pki.expired_client))?,
        );
        (format!("https://{}", server.addr), Some(server))
    } else {
        let t = &profile.tls;
        let need = |p: &Option<PathBuf>, field: &str| {
            p.as_ref().map(|p| profile.tls_path(p)).ok_or_else(|| {
                Error::Usage(format!("the profile needs tls.{field} to call a real SUT"))
            })
        };
        let ca = read_tls(&need(&t.ca, "ca")?, "tls.ca")?;
        let lab = Identity {
            cert_pem: read_tls(&need(&t.cert, "cert")?, "tls.cert")?,
            key_pem: read_tls(&need(&t.key, "key")?, "tls.key")?,
        };
        clients.insert("lab", client(&ca, Some(&lab))?);
        clients.insert("none", client(&ca, None)?);
        for (name, c, k) in [
            ("untrusted", &t.untrusted_cert, &t.untrusted_key),
            ("expired", &t.expired_cert, &t.expired_key),
        ] {
            if let (Some(c), Some(k)) = (c, k) {
                let id = Identity {
                    cert_pem: read_tls(&profile.tls_path(c), "certificate")?,
                    key_pem: read_tls(&profile.tls_path(k), "key")?,
                };
                clients.insert(name, client(&ca, Some(&id))?);
            }
        }
        (profile.sut.base_url.clone().unwrap_or_default(), None)
    };
    let mut urls = BTreeMap::new();
    for (op, o) in &pack.operations {
        let url = match profile.sut.services.get(op) {
            Some(u) => u.clone(),
            None if !base_url.is_empty() => {
                format!("{}/{}", base_url.trim_end_matches('/'), o.path)
            }
            None => {
                return Err(Error::Usage(format!(
                    "the profile gives no URL for {op}: set sut.base_url or sut.services.{op}"
                )));
            }
        };
        urls.insert(op.clone(), url);
    }
    let timeouts = roclab::net::client::Timeouts {
        connect: Duration::from_millis(profile.timeouts.connect_ms),
        request: Duration::from_millis(profile.timeouts.request_ms),
    };
    if !profile.sut.embedded {
        probe(&urls, timeouts.connect).await?;
    }
    let sut = SutInfo {
        profile: profile
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        kind: profile.sut.kind.clone(),
        embedded: profile.sut.embedded,
        base_url,
        defects: profile.sut.defects.clone(),
        sla_median_ms: profile.sla.median_ms,
        sla_limit_ms: profile.sla.limit_ms,
    };
    let billing = match (&drop, &profile.returns) {
        (Some((drop, runner)), _) => Some(roclab::engine::AmcBilling {
            drop: drop.clone(),
            runner: runner.clone(),
        }),
        (None, Some(r)) => {
            let runner =
                profile
                    .payment_run
                    .as_ref()
                    .and_then(|h| match (&h.command, h.delay_ms) {
                        (Some(c), _) => Some(PaymentRunner::Command(
                            c.clone(),
                            Duration::from_millis(h.timeout_ms.unwrap_or(60_000)),
                        )),
                        (None, Some(ms)) => Some(PaymentRunner::Delay(Duration::from_millis(ms))),
                        _ => None,
                    });
            Some(roclab::engine::AmcBilling {
                drop: profile.path_of(&r.dir),
                runner,
            })
        }
        (None, None) => None,
    };
    let target = Target {
        urls,
        tls: clients,
        timeouts,
        vars: profile.vars.clone(),
        capabilities: profile.capabilities.clone(),
        gap: None,
        billing,
    };
    Ok((target, sut, server, scratch))
}

/// A folder removed when dropped (trigger files, the PKI given to a GAP's driver).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, Error> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("roclab-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Environment(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The lab for a GAP under test: PKI, population, mirrors' addresses, driver.
fn setup_gap(pack: &Pack, profile: &Profile) -> Result<(Target, SutInfo, Scratch), Error> {
    use roclab::engine::driver::{DriverConfig, DriverContext};
    use roclab::engine::gap::GapSetup;
    let var = |name: &str, default: &str| {
        profile
            .vars
            .get(name)
            .or(pack.variables.get(name))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let finess_juridique = var("finess_juridique", "750712184");
    let finess_geographique = var("finess_geographique", "750100042");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let scratch =
        Scratch(std::env::temp_dir().join(format!("roclab-{}-{nanos}", std::process::id())));
    // The lab's PKI: the profile's folder (a real GAP trusts its CA), or a fresh one.
    let (pki, pki_dir) = match &profile.tls.dir {
        Some(_) => {
            let dir = profile.tls_path(Path::new(""));
            let pki = roclab::pki::load(&dir)
                .map_err(|e| Error::Usage(format!("tls.dir {}: {e}", dir.display())))?;
            (pki, dir)
        }
        None => {
            let pki = roclab::pki::generate(&finess_juridique).map_err(Error::Environment)?;
            let dir = scratch.0.join("pki");
            roclab::pki::write(&pki, &dir)
                .map_err(|e| Error::Environment(format!("cannot write {}: {e}", dir.display())))?;
            (pki, dir)
        }
    };
    let pop_path = pack.data_files.get("population").ok_or_else(|| {
        Error::Usage(format!(
            "pack {} has no `population` data for the mirror AMCs",
            pack.id
        ))
    })?;
    let population = roclab::roc::population::Population::from_yaml(&read(pop_path, "population")?)
        .map_err(|e| Error::Usage(format!("{}: {e}", pop_path.display())))?;
    let driver = profile.driver.clone().unwrap_or(roclab::profile::Driver {
        kind: "builtin".into(),
        command: None,
        url: None,
        timeout_ms: None,
        quiet_ms: None,
    });
    let config = match driver.kind.as_str() {
        "command" => DriverConfig::Command {
            command: driver.command.clone().unwrap_or_default(),
        },
        "http" => DriverConfig::Http {
            url: driver.url.clone().unwrap_or_default(),
        },
        "operator" => DriverConfig::Operator,
        _ => DriverConfig::Builtin {
            defects: profile.sut.defects.iter().cloned().collect(),
        },
    };
    let default_timeout = if driver.kind == "operator" {
        600_000
    } else {
        30_000
    };
    // The embedded GAP speaks the pack's norme unless the profile says otherwise.
    let builtin = matches!(config, DriverConfig::Builtin { .. });
    let version = if builtin {
        roclab::mirror::gap::GapVersion::parse(
            profile.sut.norme.as_deref().unwrap_or(&pack.norme),
            profile.sut.categorie.as_deref().unwrap_or("EXDG"),
        )
        .map_err(|e| {
            let at = profile
                .source
                .as_ref()
                .map(|p| format!("{}: ", p.display()))
                .unwrap_or_default();
            Error::Usage(format!("{at}sut.norme/sut.categorie: {e}"))
        })?
    } else {
        Default::default()
    };
    let gap = builtin.then(|| roclab::mirror::gap::GapConfig {
        finess_juridique: finess_juridique.clone(),
        finess_geographique: finess_geographique.clone(),
        logiciel: "roclab-reference-gap".into(),
        version_logiciel: env!("CARGO_PKG_VERSION").into(),
        ca_pem: pki.ca_cert_pem.clone(),
        identity: pki.client.clone(),
        defects: profile.sut.defects.iter().cloned().collect(),
        call_timeout: roclab::mirror::gap::DEFAULT_CALL_TIMEOUT,
        version,
    });
    for name in profile.lab.listen.keys() {
        if !pack.actors.contains_key(name) {
            return Err(Error::Usage(format!(
                "lab.listen.{name}: the pack has no actor `{name}` ({})",
                pack.actors.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let setup = GapSetup {
        pki,
        pki_dir,
        population,
        listen: profile.lab.listen.clone(),
        driver: DriverContext {
            config,
            gap,
            work_dir: scratch.0.join("triggers"),
            timeout: Duration::from_millis(driver.timeout_ms.unwrap_or(default_timeout)),
            operator_failed: Arc::new(AtomicBool::new(false)),
        },
        finess_juridique,
        finess_geographique,
        // The return drop the mirror AMCs write into (one folder per scenario under it).
        returns: match &profile.returns {
            Some(r) => profile.path_of(&r.dir),
            None => scratch.0.join("returns"),
        },
        quiet: Duration::from_millis(driver.quiet_ms.unwrap_or(2000)),
    };
    let sut = SutInfo {
        profile: profile
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        kind: "gap".into(),
        embedded: driver.kind == "builtin",
        base_url: driver.kind.clone(),
        defects: profile.sut.defects.clone(),
        sla_median_ms: profile.sla.median_ms,
        sla_limit_ms: profile.sla.limit_ms,
    };
    let target = Target {
        urls: BTreeMap::new(),
        tls: BTreeMap::new(),
        timeouts: roclab::net::client::Timeouts {
            connect: Duration::from_millis(profile.timeouts.connect_ms),
            request: Duration::from_millis(profile.timeouts.request_ms),
        },
        vars: profile.vars.clone(),
        capabilities: profile.capabilities.clone(),
        gap: Some(Arc::new(setup)),
        billing: None,
    };
    Ok((target, sut, scratch))
}

/// Every distinct host:port must accept a TCP connection, or the run stops with exit 3.
async fn probe(urls: &BTreeMap<String, String>, limit: Duration) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for url in urls.values() {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| Error::Usage(format!("{url}: only https:// URLs are supported")))?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let hostport = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hostport.to_string()
        } else {
            format!("{hostport}:443")
        };
        if !seen.insert(hostport.clone()) {
            continue;
        }
        match tokio::time::timeout(limit, tokio::net::TcpStream::connect(&hostport)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                return Err(Error::Environment(format!(
                    "cannot reach the SUT at {hostport} ({url}): {e}"
                )));
            }
            Err(_) => {
                return Err(Error::Environment(format!(
                    "cannot reach the SUT at {hostport} ({url}): no connection within {} ms",
                    limit.as_millis()
                )));
            }
        }
    }
    Ok(())
}
