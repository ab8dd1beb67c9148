//! The whole outcome as JSON (documented in the README).

use crate::outcome::Outcome;

pub fn render(o: &Outcome) -> String {
    let mut s = serde_json::to_string_pretty(o).expect("outcome serialises");
    s.push('\n');
    s
}

pub fn parse(text: &str) -> Result<Outcome, serde_json::Error> {
    serde_json::from_str(text)
}
