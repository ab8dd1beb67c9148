//! Reports read only the outcome. Each format is its own module; files are written atomically.

pub mod evidence;
pub mod html;
pub mod json;
pub mod junit;
pub mod merge;
pub mod output;

use std::path::Path;

/// Write `bytes` to `path` through a temporary file in the same folder, then rename, so a
/// reader never sees a half-written report.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
