//! `roclab gap act TRIGGER`: the embedded reference GAP carries out one trigger (the JSON a
//! driver receives, docs/drivers.md) and prints its report. Usable as a `command` driver, and
//! by editors as a reference client to compare their GAP with.

use roclab::error::Error;
use roclab::mirror::gap::{DEFAULT_CALL_TIMEOUT, GapConfig, GapVersion, ReferenceGap};
use roclab::net::tls::Identity;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct ActArgs {
    /// The trigger JSON file (`$ROCLAB_TRIGGER` under the command driver).
    trigger: PathBuf,
    /// Defect switches of the reference GAP (see `roclab defects`); repeatable.
    #[arg(long = "defect", value_name = "NAME")]
    defects: Vec<String>,
    /// The norme the GAP speaks: 1.04 (V1 GAP) or 2.00 (V2 GAP).
    #[arg(long, default_value = "1.04")]
    norme: String,
    /// The establishment's category: EXDG, or EXOQN (private clinic, V2 only).
    #[arg(long, default_value = "EXDG")]
    categorie: String,
}

pub fn act(a: ActArgs) -> Result<i32, Error> {
    for d in &a.defects {
        if roclab::defects::find("gap", d).is_none() {
            return Err(Error::Usage(format!(
                "unknown defect `{d}` (see `roclab defects`)"
            )));
        }
    }
    let version = GapVersion::parse(&a.norme, &a.categorie).map_err(Error::Usage)?;
    let text = std::fs::read_to_string(&a.trigger)
        .map_err(|e| Error::Usage(format!("{}: {e}", a.trigger.display())))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Usage(format!("{}: not JSON: {e}", a.trigger.display())))?;
    let lab = &doc["lab"];
    let file = |key: &str| -> Result<String, Error> {
        let p = lab[key]
            .as_str()
            .ok_or_else(|| Error::Usage(format!("{}: lab.{key} missing", a.trigger.display())))?;
        std::fs::read_to_string(p).map_err(|e| Error::Usage(format!("lab.{key} {p}: {e}")))
    };
    let cfg = GapConfig {
        finess_juridique: lab["finess_juridique"]
            .as_str()
            .unwrap_or("750712184")
            .into(),
        finess_geographique: lab["finess_geographique"]
            .as_str()
            .unwrap_or("750100042")
            .into(),
        logiciel: "roclab-reference-gap".into(),
        version_logiciel: env!("CARGO_PKG_VERSION").into(),
        ca_pem: file("ca")?,
        identity: Identity {
            cert_pem: file("client_cert")?,
            key_pem: file("client_key")?,
        },
        defects: a.defects.iter().cloned().collect(),
        call_timeout: DEFAULT_CALL_TIMEOUT,
        version,
    };
    let rt = super::runtime()?;
    let gap = ReferenceGap::new(cfg);
    match rt.block_on(gap.perform(&doc)) {
        Ok(report) => {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
            Ok(0)
        }
        Err(e) => {
            eprintln!("roclab gap act: {e}");
            Ok(1)
        }
    }
}
