//! roclab command line: parse, call the library, map errors to exit codes
//! (0 conformant, 1 not conformant, 2 usage or input error, 3 no verdict possible / environment
//! error, 130 interrupted).

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let code = match cli::dispatch(args) {
        Ok(code) => code,
        Err(roclab::error::Error::Input(diags)) => {
            for d in &diags {
                eprintln!("error: {d}");
            }
            eprintln!(
                "roclab: {} in the input; nothing was run",
                cli::count(diags.len(), "error")
            );
            2
        }
        Err(e) => {
            eprintln!("roclab: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
