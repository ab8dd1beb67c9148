//! `roclab serve amc`: the embedded reference AMC alone.

use roclab::error::Error;
use roclab::mirror::amc::Amc;
use roclab::pki::files;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The population served when no pack is at hand (a copy of the ROC model's).
const POPULATION: &str = include_str!("../../scenarios/roc-v1-amc/data/population.yaml");

/// The folder of payment-run requests when `--pay-on-request` names none, under `--returns`.
const REQUESTS: &str = ".payment-requests";

/// How often the request folder is looked at.
const REQUEST_POLL: Duration = Duration::from_millis(20);

#[derive(clap::Args)]
pub struct AmcArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,
    /// Defect switches to turn on (see `roclab defects`); repeatable.
    #[arg(long = "defect", value_name = "NAME")]
    defects: Vec<String>,
    /// The endpoint of the population to play (A or B).
    #[arg(long, default_value = "A")]
    endpoint: String,
    /// Test PKI folder, as `roclab pki init` writes it (written here if missing): the server
    /// presents amc-server.pem and trusts ca.pem for client certificates.
    #[arg(long, default_value = "pki")]
    pki: PathBuf,
    /// Test population [default: the ROC model's].
    #[arg(long)]
    population: Option<PathBuf>,
    /// The establishment's return drop: the folder payment runs write
    /// RSP-<numeroFacture>.xml files into (created if missing). Without --pay-on-request or
    /// --pay-every-ms, the AMC never pays.
    #[arg(long, value_name = "DIR")]
    returns: Option<PathBuf>,
    /// Run a payment run into --returns when asked: every file created in DIR (default
    /// <returns>/.payment-requests; names starting with `.` are ignored) asks for one; the
    /// files a run answers are removed once its RSP files are written, so a hook creates a
    /// file of its own (mktemp) and waits until it is gone. A failed run leaves
    /// `.<name>.error` holding the error.
    #[arg(
        long,
        value_name = "DIR",
        num_args = 0..=1,
        require_equals = true,
        requires = "returns"
    )]
    pay_on_request: Option<Option<PathBuf>>,
    /// Run a payment run into --returns every N ms, on the AMC's own.
    #[arg(long, value_name = "N", requires = "returns", value_parser = clap::value_parser!(u64).range(1..))]
    pay_every_ms: Option<u64>,
}

/// When the served AMC runs its payment runs.
struct PaymentPlan {
    drop: PathBuf,
    requests: Option<PathBuf>,
    every: Option<Duration>,
}

pub fn amc(a: AmcArgs) -> Result<i32, Error> {
    for d in &a.defects {
        if roclab::defects::find("amc", d).is_none() {
            return Err(Error::Usage(format!(
                "unknown defect `{d}` (see `roclab defects`)"
            )));
        }
    }
    if !a.pki.join(files::CA).exists() {
        super::pki::write_new(&a.pki, "750712184")?;
        eprintln!("test PKI written to {}", a.pki.display());
    }
    let pki = roclab::pki::load(&a.pki).map_err(Error::Usage)?;
    let text = match &a.population {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?
        }
        None => POPULATION.to_string(),
    };
    let population = roclab::roc::population::Population::from_yaml(&text).map_err(Error::Usage)?;
    let plan = match &a.returns {
        Some(drop) => {
            let requests = a
                .pay_on_request
                .clone()
                .map(|d| d.unwrap_or_else(|| drop.join(REQUESTS)));
            for d in std::iter::once(drop).chain(&requests) {
                std::fs::create_dir_all(d).map_err(|e| {
                    Error::Environment(format!("cannot create {}: {e}", d.display()))
                })?;
            }
            Some(PaymentPlan {
                drop: drop.clone(),
                requests,
                every: a.pay_every_ms.map(Duration::from_millis),
            })
        }
        None => None,
    };
    let cfg = roclab::mirror::amc::AmcConfig::new(
        population,
        &a.endpoint,
        a.defects.iter().cloned().collect(),
    );
    let rt = super::runtime()?;
    rt.block_on(async {
        let (server, amc) = roclab::mirror::amc::start_with_handle(&a.listen, &pki, cfg)
            .await
            .map_err(|e| Error::Environment(format!("cannot listen on {}: {e}", a.listen)))?;
        // Printing must never stop the server (e.g. a closed pipe).
        use std::io::Write;
        let mut so = std::io::stdout();
        let _ = writeln!(
            so,
            "reference AMC (endpoint {}) listening on https://{}  services: /IDB /SIM /CLC /DEL /DRE /ANF",
            a.endpoint, server.addr
        );
        let _ = writeln!(
            so,
            "CA: {}  defects: {}  {}",
            a.pki.join(files::CA).display(),
            if a.defects.is_empty() {
                "none".to_string()
            } else {
                a.defects.join(", ")
            },
            describe(plan.as_ref())
        );
        let _ = so.flush();
        let stop = Arc::new(tokio::sync::Notify::new());
        let runs = plan
            .filter(|p| p.requests.is_some() || p.every.is_some())
            .map(|p| tokio::spawn(payment_runs(amc, p, stop.clone())));
        let waited = tokio::signal::ctrl_c()
            .await
            .map_err(|e| Error::Environment(format!("cannot wait for Ctrl-C: {e}")));
        server.shutdown().await;
        // A payment run under way finishes (its files are written whole) before the exit.
        stop.notify_one();
        if let Some(r) = runs {
            let _ = r.await;
        }
        waited
    })?;
    Ok(0)
}

/// The billing part of the startup line.
fn describe(plan: Option<&PaymentPlan>) -> String {
    let Some(p) = plan else {
        return "returns: none (no payment runs)".into();
    };
    let mut when = vec![];
    if let Some(r) = &p.requests {
        when.push(format!("on request (a file in {})", r.display()));
    }
    if let Some(e) = p.every {
        when.push(format!("every {} ms", e.as_millis()));
    }
    format!(
        "returns: {}  payment runs: {}",
        p.drop.display(),
        if when.is_empty() {
            "never".to_string()
        } else {
            when.join(" and ")
        }
    )
}

/// Run the payment runs `plan` asks for until `stop` is notified, one line each on stdout
/// (runs that wrote nothing and nobody asked for are not printed).
async fn payment_runs(amc: Arc<Amc>, plan: PaymentPlan, stop: Arc<tokio::sync::Notify>) {
    let poll = match (plan.requests.is_some(), plan.every) {
        (true, Some(e)) => e.min(REQUEST_POLL),
        (true, None) => REQUEST_POLL,
        (false, Some(e)) => e,
        (false, None) => return,
    };
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    loop {
        tokio::select! {
            _ = stop.notified() => return,
            _ = tick.tick() => {}
        }
        // Requests are listed before the run starts: every invoice received before a request
        // was made is settled by the run that answers it.
        let asked = match &plan.requests {
            Some(d) => requests(d),
            None => vec![],
        };
        let due = plan.every.is_some_and(|e| last.elapsed() >= e);
        if asked.is_empty() && !due {
            continue;
        }
        if due {
            last = Instant::now();
        }
        let result = amc
            .payment_run_async(plan.drop.clone(), Default::default())
            .await;
        let why = match asked.len() {
            0 => format!("every {} ms", plan.every.unwrap_or_default().as_millis()),
            1 => "1 request".to_string(),
            n => format!("{n} requests"),
        };
        let line = match &result {
            Ok(written) if written.is_empty() && asked.is_empty() => None,
            Ok(written) => Some(format!(
                "{} payment run ({why}): {} return file(s) in {}{}",
                clock(),
                written.len(),
                plan.drop.display(),
                written
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| format!(" {}", n.to_string_lossy()))
                    .collect::<String>()
            )),
            Err(e) => Some(format!(
                "{} payment run ({why}) into {} failed: {e}",
                clock(),
                plan.drop.display()
            )),
        };
        // The line first: when a hook sees its request gone, the run is already reported.
        if let Some(line) = line {
            use std::io::Write;
            let mut so = std::io::stdout();
            let _ = writeln!(so, "{line}");
            let _ = so.flush();
        }
        for r in &asked {
            if let Err(e) = &result
                && let (Some(dir), Some(name)) = (r.parent(), r.file_name())
            {
                let _ = std::fs::write(
                    dir.join(format!(".{}.error", name.to_string_lossy())),
                    format!("payment run into {} failed: {e}\n", plan.drop.display()),
                );
            }
            let _ = std::fs::remove_file(r);
        }
    }
}

/// The pending payment-run requests: the files of `dir` whose name does not start with `.`.
fn requests(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .collect()
}

/// The profile of `serve lab` when none is given and the file is not at hand.
const DEFAULT_LAB_PROFILE: (&str, &str) = (
    "profiles/reference-gap.yaml",
    include_str!("../../profiles/reference-gap.yaml"),
);

#[derive(clap::Args)]
pub struct LabArgs {
    /// Profile giving the mirrors' listen addresses (lab.listen) and, if set, the PKI (tls.dir)
    /// [default: profiles/reference-gap.yaml, or its built-in copy: free ports, a test PKI].
    #[arg(long)]
    profile: Option<PathBuf>,
    /// The GAP pack whose actors to play.
    #[arg(long, default_value = "scenarios/roc-v1-gap")]
    pack: PathBuf,
    /// Test PKI folder used when the profile sets no tls.dir, as `roclab pki init` writes it
    /// (written here if missing).
    #[arg(long, default_value = "pki")]
    pki: PathBuf,
    /// Override a profile field (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
}

/// `roclab serve lab`: the annuaire and the mirror AMCs for exploratory work by an editor; one
/// line per exchange with its verdict. A request is first checked as in a run (client
/// certificate of the establishment, POST, Content-Type and SOAPAction of the actor's SOAP
/// version, a path the mirror serves); a refused one is answered with a SOAP fault and its line
/// says why.
pub fn lab(a: LabArgs) -> Result<i32, Error> {
    use roclab::mirror::lab::Lab;
    use roclab::profile::Profile;
    let (default_path, default_text) = DEFAULT_LAB_PROFILE;
    let profile = match &a.profile {
        Some(p) => Profile::load(p, &a.sets)?,
        None if Path::new(default_path).is_file() => {
            Profile::load(Path::new(default_path), &a.sets)?
        }
        None => Profile::parse(default_text, Path::new(default_path), &a.sets)?,
    };
    if !a.pack.join("pack.yaml").is_file() {
        return Err(Error::Usage(format!(
            "{}: no GAP pack here (no pack.yaml); give one with --pack DIR (e.g. scenarios/roc-v1-gap of the roclab repository)",
            a.pack.display()
        )));
    }
    let pack = roclab::pack::load(&a.pack, &Default::default())?.pack;
    // The CN the GAP's client certificate must have, as in a run.
    let finess = profile
        .vars
        .get("finess_juridique")
        .or(pack.variables.get("finess_juridique"))
        .cloned()
        .unwrap_or_else(|| "750712184".to_string());
    if pack.actors.is_empty() {
        return Err(Error::Usage(format!(
            "{}: the pack declares no actors",
            a.pack.display()
        )));
    }
    let pki_dir = match &profile.tls.dir {
        Some(_) => profile.tls_path(Path::new("")),
        None => {
            if !a.pki.join(files::CA).exists() {
                super::pki::write_new(&a.pki, &finess)?;
            }
            a.pki.clone()
        }
    };
    let pki = roclab::pki::load(&pki_dir).map_err(Error::Usage)?;
    let pop_path = pack
        .data_files
        .get("population")
        .ok_or_else(|| Error::Usage(format!("pack {} has no population data", pack.id)))?;
    let population = roclab::roc::population::Population::from_yaml(
        &std::fs::read_to_string(pop_path)
            .map_err(|e| Error::Usage(format!("{}: {e}", pop_path.display())))?,
    )
    .map_err(Error::Usage)?;
    let rt = super::runtime()?;
    rt.block_on(async {
        let mut lab = Lab::start(&pack, &profile.lab.listen, &pki, &Default::default(), &population)
            .await
            .map_err(|e| Error::Environment(format!("cannot start the lab: {e}")))?;
        use std::io::Write;
        let mut so = std::io::stdout();
        for (actor, url) in &lab.urls {
            let prefix = lab.prefixes.get(actor).map(String::as_str).unwrap_or("");
            let _ = writeln!(so, "{actor:<10} {url}{prefix}");
        }
        let _ = writeln!(
            so,
            "CA: {}  client certificate for the GAP: {}  (Ctrl-C to stop)",
            pki_dir.join(files::CA).display(),
            pki_dir.join(files::CLIENT_CERT).display()
        );
        let _ = so.flush();
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => break,
                Some(f) = lab.tls_failures.recv() => {
                    let _ = writeln!(so, "{} {:<10} TLS handshake failed: {}", clock(), f.actor, f.error);
                }
                Some(inc) = lab.incoming.recv() => {
                    let op = inc.operation.clone().unwrap_or_else(|| format!("? {}", inc.request.path));
                    let cn = inc.request.peer.common_name.clone().unwrap_or_else(|| "no client certificate".into());
                    let prefix = lab.prefixes.get(&inc.actor).cloned().unwrap_or_default();
                    let refused = pack
                        .actors
                        .get(&inc.actor)
                        .and_then(|actor| roclab::engine::gap::refusal(&finess, actor, &prefix, &inc));
                    if let Some(r) = refused {
                        let why = r.reasons.join("; ");
                        let why = if inc.operation.is_some() { format!("refused: {why}") } else { why };
                        let _ = writeln!(
                            so,
                            "{} {:<10} {:<6} from {cn:<22} -> HTTP {} {why}",
                            clock(),
                            inc.actor,
                            op,
                            r.response.status,
                        );
                        let _ = so.flush();
                        let _ = inc.reply.send(r.response);
                        continue;
                    }
                    let resp = lab.default_answer(&inc.actor, inc.request.clone()).await;
                    let verdict = verdict(&resp);
                    let _ = writeln!(
                        so,
                        "{} {:<10} {:<6} from {cn:<22} -> HTTP {} {verdict} ({:.0} ms)",
                        clock(),
                        inc.actor,
                        op,
                        resp.status,
                        inc.at.elapsed().as_secs_f64() * 1000.0
                    );
                    let _ = so.flush();
                    let _ = inc.reply.send(resp);
                }
            }
        }
        lab.shutdown().await;
        Ok::<_, Error>(())
    })?;
    Ok(0)
}

fn clock() -> String {
    roclab::pack::template::now_rfc3339()[11..19].to_string()
}

/// What the mirror's answer says of the request: a fault (the request was refused as
/// invalid), a business refusal, or accepted.
fn verdict(resp: &roclab::net::server::Response) -> String {
    let text = String::from_utf8_lossy(&resp.body);
    let Ok(root) = roclab::xml::parse(&text) else {
        return "answer is not XML".into();
    };
    if let Some(f) = roclab::soap::find_fault(&root) {
        let sub = f
            .subcode
            .map(|(_, l)| l)
            .or(f.code.map(|(_, l)| l))
            .unwrap_or_default();
        return format!("REFUSED fault {sub}: {}", f.reason);
    }
    // The first `statut`, `code_retour` and motif `code` values, wherever they are.
    fn first<'a>(e: &'a roclab::xml::Element, name: &str) -> Option<&'a roclab::xml::Element> {
        if e.local == name {
            return Some(e);
        }
        e.elements().find_map(|c| first(c, name))
    }
    let mut parts = vec![];
    for name in ["statut", "code_retour"] {
        if let Some(e) = first(&root, name) {
            parts.push(format!("{name} {}", e.text()));
        }
    }
    if let Some(m) = first(&root, "motif").and_then(|m| first(m, "code")) {
        parts.push(m.text());
    }
    if parts.is_empty() {
        "ok".into()
    } else {
        parts.join(" ")
    }
}
