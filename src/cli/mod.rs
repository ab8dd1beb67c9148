//! Commands: one module each.

mod defects;
mod gap;
mod pack;
mod pki;
mod report;
mod run;
mod serve;

use clap::{Parser, Subcommand};
use roclab::error::Error;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "roclab",
    version,
    about = "Conformity-test laboratory for ROC exchanges (hospitals and complementary insurers)",
    after_help = "Exit codes: 0 conformant (the whole pack, or the tested scope of a partial run), \
                  1 not conformant (a check of the SUT failed), 2 usage or input error, \
                  3 no verdict possible (the lab could not test: cannot bind, SUT unreachable, \
                  its TLS identity not verifiable, output not writable), 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario pack against a system under test and write the reports.
    Run(run::Args),
    /// Work with packs.
    Pack {
        #[command(subcommand)]
        cmd: PackCmd,
    },
    /// Test PKI for the lab and its counterparts.
    Pki {
        #[command(subcommand)]
        cmd: PkiCmd,
    },
    /// Run a reference counterpart alone (for exploratory work or to test against).
    Serve {
        #[command(subcommand)]
        cmd: ServeCmd,
    },
    /// List the defect switches of the embedded reference SUTs.
    Defects,
    /// Work with reports.
    Report {
        #[command(subcommand)]
        cmd: ReportCmd,
    },
    /// The embedded reference GAP.
    Gap {
        #[command(subcommand)]
        cmd: GapCmd,
    },
    /// Print a completion script for a shell, e.g. `roclab completions bash >
    /// ~/.local/share/bash-completion/completions/roclab`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum ReportCmd {
    /// Merge the outcomes of the shares of a partitioned run into one report; without --junit,
    /// --json or --html, writes reports/<pack id>/junit.xml, outcome.json and report.html.
    Merge(report::MergeArgs),
}

#[derive(Subcommand)]
enum GapCmd {
    /// Carry out one trigger (docs/drivers.md) and print the report; usable as a command driver.
    Act(gap::ActArgs),
}

#[derive(Subcommand)]
enum PackCmd {
    /// Load and validate a pack without running it (exit 0 clean, 1 warnings, 2 errors).
    Check {
        /// The pack folder (holding pack.yaml).
        pack: PathBuf,
    },
}

#[derive(Subcommand)]
enum PkiCmd {
    /// Write a test CA, the lab's client certificate, server certificates and negative material.
    Init(pki::Args),
}

#[derive(Subcommand)]
enum ServeCmd {
    /// The embedded reference AMC (HTTPS, SOAP 1.2, mutual TLS).
    Amc(serve::AmcArgs),
    /// The annuaire and the mirror AMCs of a GAP pack, answering a GAP by hand.
    Lab(serve::LabArgs),
}

pub fn dispatch(cli: Cli) -> Result<i32, Error> {
    match cli.cmd {
        Command::Run(a) => run::run(a),
        Command::Pack {
            cmd: PackCmd::Check { pack },
        } => pack::check(&pack),
        Command::Pki {
            cmd: PkiCmd::Init(a),
        } => pki::init(a),
        Command::Serve {
            cmd: ServeCmd::Amc(a),
        } => serve::amc(a),
        Command::Serve {
            cmd: ServeCmd::Lab(a),
        } => serve::lab(a),
        Command::Defects => defects::list(),
        Command::Report {
            cmd: ReportCmd::Merge(a),
        } => report::merge(a),
        Command::Gap {
            cmd: GapCmd::Act(a),
        } => gap::act(a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "roclab", &mut std::io::stdout());
            Ok(0)
        }
    }
}

/// `n` and the noun, plural unless `n` is 1: "1 scenario", "3 scenarios".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The kind of SUT with its article, for messages: "an AMC", "a GAP".
pub fn sut_noun(kind: &str) -> String {
    match kind {
        "amc" => "an AMC".into(),
        "gap" => "a GAP".into(),
        other => format!("a SUT of kind `{other}`"),
    }
}

/// A multi-threaded runtime for commands that do network work.
pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Environment(format!("cannot start the async runtime: {e}")))
}
