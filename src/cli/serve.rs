//! `roclab serve amc`: the embedded reference AMC alone.

use roclab::error::Error;
use roclab::net::tls::Identity;
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

fn read(dir: &Path, name: &str) -> Result<String, Error> {
    let p = dir.join(name);
    std::fs::read_to_string(&p).map_err(|e| Error::Usage(format!("{}: {e}", p.display())))
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
    // Only the CA certificate and the AMC server identity are needed to serve.
    let mut pki = roclab::pki::generate("750712184").map_err(Error::Environment)?;
    pki.ca_cert_pem = read(&a.pki, files::CA)?;
    pki.amc_server = Identity {
        cert_pem: read(&a.pki, files::AMC_SERVER_CERT)?,
        key_pem: read(&a.pki, files::AMC_SERVER_KEY)?,
    };
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
            "reference AMC (endpoint {}) listening on https://{}  services: /IDB /SIM /CLC /DEL",
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
