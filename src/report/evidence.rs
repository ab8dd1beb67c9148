//! The evidence bundle: every exchange as sent and received, the outcome, and a manifest with
//! the SHA-256 of every file and of the pack and profile, so an editor can hand its proof over.

use crate::outcome::{Exchange, HttpMessage, Outcome};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A file-name-safe form of an id.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
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
/// `.response.http`, `outcome.json`, and `manifest.json` (written last). `profile` is the
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
    for s in &o.scenarios {
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
                "exchanges/{}/{n:02}-{}-{}-{}",
                safe(&s.id),
                safe(from),
                safe(to),
                safe(operation)
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
