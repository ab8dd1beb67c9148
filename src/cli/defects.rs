//! `roclab defects`.

use roclab::error::Error;

pub fn list() -> Result<i32, Error> {
    println!("{:<28} {:<5} {:<22} description", "defect", "sut", "rule");
    for d in roclab::defects::all() {
        println!(
            "{:<28} {:<5} {:<22} {}",
            d.name, d.sut, d.rule, d.description
        );
    }
    Ok(0)
}
