//! The evidence bundle: every exchange as sent and received, the outcome, and a manifest with
//! the SHA-256 of every file and of the pack and profile, so an editor can hand its proof over.

use crate::outcome::{Exchange, HttpMessage, Outcome};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The longest file-name component built from one id, in bytes.
const MAX_NAME: usize = 80;

/// A file-name component for `s`, one-to-one and bounded: ASCII letters, digits, `-` and `_`
/// are kept; `.` too, except in front (no `.`, `..` or hidden name); every other byte of the
/// UTF-8 text is written `%XX`; the empty id is `%`. A result longer than `max` bytes is cut
/// and ends with `~` and 8 hex digits of the SHA-256 of `s` (`~` never appears otherwise).
pub fn file_name(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, b) in s.bytes().enumerate() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    if out.len() > max {
        let mut cut = max.saturating_sub(9);
        // Do not split an escape.
        while cut > 0 && out[..cut].rfind('%').is_some_and(|p| p + 3 > cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('~');
        out.push_str(&sha256(s.as_bytes())[..8]);
    }
    out
}

/// The folder of each scenario under `exchanges/`, in order: [`file_name`] of its id, made
/// unique (also on a case-insensitive file system) by a hash suffix, then a counter.
pub fn scenario_folders<'a>(ids: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut used = std::collections::BTreeSet::new();
    let mut out = vec![];
    for id in ids {
        let mut name = file_name(id, MAX_NAME);
        if used.contains(&name.to_lowercase()) {
            let base = file_name(id, MAX_NAME - 9);
            let base = base.split('~').next().unwrap_or(&base).to_string();
            name = format!("{base}~{}", &sha256(id.as_bytes())[..8]);
            let mut n = 2;
            while used.contains(&name.to_lowercase()) {
                name = format!("{base}~{}-{n}", &sha256(id.as_bytes())[..8]);
                n += 1;
            }
        }
        used.insert(name.to_lowercase());
        out.push(name);
    }
    out
}

/// The HTTP message: start line, headers, blank line, body bytes as recorded.
fn http_bytes(m: &HttpMessage) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(m.start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in &m.headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    match (&m.body, &m.body_base64) {
        (Some(b), _) => out.extend_from_slice(b.as_bytes()),
        (None, Some(b64)) => out.extend_from_slice(&crate::net::client::base64_decode(b64)),
        _ => {}
    }
    out
}

/// Write the bundle into `dir`: `exchanges/<scenario>/<nn>-<from>-<to>-<op>.request.http` and
/// `.response.http` (names from [`scenario_folders`] and [`file_name`]; the manifest's
/// `scenarios` gives each scenario's folder), `outcome.json`, and `manifest.json` (written last). `profile` is the
/// profile's text (the embedded default when no file was given).
pub fn write(dir: &Path, o: &Outcome, pack_dir: &Path, profile: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let mut files: Vec<(String, String)> = vec![];
    let mut put = |rel: String, bytes: &[u8]| -> std::io::Result<()> {
        let p = dir.join(&rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)?;
        }
        super::write_atomic(&p, bytes)?;
        files.push((rel, sha256(bytes)));
        Ok(())
    };
    let folders = scenario_folders(o.scenarios.iter().map(|s| s.id.as_str()));
    let mut index = vec![];
    for (s, folder) in o.scenarios.iter().zip(&folders) {
        index.push(serde_json::json!({"scenario": s.id, "folder": format!("exchanges/{folder}")}));
        let mut n = 0;
        let exchanges = s.steps.iter().filter_map(|st| st.exchange.as_ref());
        for ex in exchanges {
            n += 1;
            let Exchange {
                from,
                to,
                operation,
                ..
            } = ex;
            let base = format!(
                "exchanges/{folder}/{n:02}-{}-{}-{}",
                file_name(from, 40),
                file_name(to, 40),
                file_name(operation, 40)
            );
            put(format!("{base}.request.http"), &http_bytes(&ex.request))?;
            if let Some(r) = &ex.response {
                put(format!("{base}.response.http"), &http_bytes(r))?;
            }
        }
    }
    put("outcome.json".into(), super::json::render(o).as_bytes())?;
    let manifest = serde_json::json!({
        "roclab_version": o.roclab_version,
        "pack": {"id": o.pack.id, "version": o.pack.version, "path": pack_dir.display().to_string(), "sha256": o.pack.sha256},
        "profile": {"path": o.sut.profile, "sha256": sha256(profile.as_bytes())},
        "verdict": o.verdict,
        "started": o.started,
        "scenarios": index,
        "files": files.iter().map(|(p, h)| serde_json::json!({"path": p, "sha256": h})).collect::<Vec<_>>(),
    });
    let path = dir.join("manifest.json");
    super::write_atomic(
        &path,
        serde_json::to_string_pretty(&manifest)
            .expect("json")
            .as_bytes(),
    )?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_ids_get_distinct_safe_bounded_folders() {
        let long = "x".repeat(300);
        let long2 = format!("{}y", "x".repeat(299));
        let ids = [
            "a b", "a_b", "a%20b", "..", ".", "", "/", "a/b", "a\\b", ".hidden", "été", "ete",
            "CLC-OK", "clc-ok", &long, &long2, "a~b", "%",
        ];
        let names = scenario_folders(ids.iter().copied());
        let unique: std::collections::BTreeSet<String> =
            names.iter().map(|n| n.to_lowercase()).collect();
        assert_eq!(unique.len(), ids.len(), "{names:?}");
        for n in &names {
            assert!(n.len() <= MAX_NAME, "{n}");
            assert!(!n.starts_with('.'), "{n}");
            assert!(
                n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.%~".contains(&b)),
                "{n}"
            );
        }
        assert_eq!(names[0], "a%20b");
        assert_eq!(names[1], "a_b");
        assert_eq!(names[2], "a%2520b");
        assert_eq!(names[3], "%2E.");
        assert_eq!(names[10], "%C3%A9t%C3%A9");
        assert_eq!(names[12], "CLC-OK");
        assert!(names[13].starts_with("clc-ok~"), "{}", names[13]);
        assert!(names[14].contains('~') && names[15].contains('~'));
    }

    #[test]
    fn a_long_name_is_not_cut_inside_an_escape() {
        for k in 0..4 {
            let id = format!("{}{}", "a".repeat(k), "é".repeat(100));
            let n = file_name(&id, 40);
            assert!(n.len() <= 40, "{n}");
            let head = n.split('~').next().unwrap();
            assert!(
                head.rfind('%')
                    .is_none_or(|p| p + 3 == head.len() || p + 3 < head.len()),
                "{n}"
            );
            assert_eq!(head.len() % 3, k % 3, "{n}");
        }
    }
}
