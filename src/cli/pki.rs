//! `roclab pki init [DIR]`.

use roclab::error::Error;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Folder to write (created if needed); `pki`, the folder the example profiles and
    /// `serve` use, unless given.
    #[arg(default_value = "pki")]
    dir: PathBuf,
    /// FINESS juridique of the lab establishment (the client certificate's CN).
    #[arg(long, default_value = "750712184")]
    finess: String,
    /// Replace the files of an existing PKI in DIR.
    #[arg(long)]
    force: bool,
}

pub fn init(a: Args) -> Result<i32, Error> {
    if a.dir.join(roclab::pki::files::CA).exists() && !a.force {
        return Err(Error::Usage(format!(
            "{} already holds a PKI (use --force to replace it)",
            a.dir.display()
        )));
    }
    let written = write_new(&a.dir, &a.finess)?;
    for p in &written {
        println!("{}", p.display());
    }
    println!(
        "test PKI written: {} in {}",
        super::count(written.len(), "file"),
        a.dir.display()
    );
    Ok(0)
}

pub fn write_new(dir: &Path, finess: &str) -> Result<Vec<PathBuf>, Error> {
    let pki = roclab::pki::generate(finess).map_err(Error::Environment)?;
    roclab::pki::write(&pki, dir).map_err(|e| {
        Error::Environment(format!("cannot write the PKI into {}: {e}", dir.display()))
    })
}
