//! `roclab serve amc`: the embedded reference AMC alone.

use roclab::error::Error;
use roclab::pki::files;
use std::path::{Path, PathBuf};

/// The population served when no pack is at hand (a copy of the ROC model's).
const POPULATION: &str = include_str!("../../scenarios/roc-v1-amc/data/population.yaml");

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
    /// Test PKI folder (created with `roclab pki init` if missing): the server presents
    /// amc-server.pem and trusts ca.pem for client certificates.
    #[arg(long, default_value = "reports/pki")]
    pki: PathBuf,
    /// Test population [default: the ROC model's].
    #[arg(long)]
    population: Option<PathBuf>,
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
    let cfg = roclab::mirror::amc::AmcConfig::new(
        population,
        &a.endpoint,
        a.defects.iter().cloned().collect(),
    );
    let rt = super::runtime()?;
    rt.block_on(async {
        let server = roclab::mirror::amc::start(&a.listen, &pki, cfg)
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
            "CA: {}  defects: {}",
            a.pki.join(files::CA).display(),
            if a.defects.is_empty() {
                "none".to_string()
            } else {
                a.defects.join(", ")
            }
        );
        let _ = so.flush();
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| Error::Environment(format!("cannot wait for Ctrl-C: {e}")))?;
        server.shutdown();
        Ok::<_, Error>(())
    })?;
    Ok(0)
}

#[derive(clap::Args)]
pub struct LabArgs {
    /// Profile giving the mirrors' listen addresses (lab.listen) and, if set, the PKI (tls.dir).
    #[arg(long, default_value = "profiles/reference-gap.yaml")]
    profile: PathBuf,
    /// The GAP pack whose actors to play.
    #[arg(long, default_value = "scenarios/roc-v1-gap")]
    pack: PathBuf,
    /// Test PKI folder used when the profile sets no tls.dir (created if missing).
    #[arg(long, default_value = "reports/pki")]
    pki: PathBuf,
    /// Override a profile field (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
}

/// `roclab serve lab`: the annuaire and the mirror AMCs for exploratory work by an editor; one
/// line per exchange with its verdict.
pub fn lab(a: LabArgs) -> Result<i32, Error> {
    use roclab::mirror::lab::Lab;
    let profile = roclab::profile::Profile::load(&a.profile, &a.sets)?;
    let pack = roclab::pack::load(&a.pack, &Default::default())?.pack;
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
                super::pki::write_new(&a.pki, "750712184")?;
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
        lab.shutdown();
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
