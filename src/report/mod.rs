//! Reports read only the outcome. Each format is its own module; files are written atomically.

pub mod evidence;
pub mod html;
pub mod json;
pub mod junit;
pub mod merge;
pub mod output;

use crate::outcome::StepOutcome;
use std::path::Path;

/// The number each step is shown with: its index + 1, unique in the scenario. Exchanges a GAP
/// scenario answered on the side (tolerated requests) share the index of the step they came
/// during and come before it: they are shown as `2a`, `2b`, … and that step as `2`.
pub fn step_numbers(steps: &[StepOutcome]) -> Vec<String> {
    let mut out = Vec::with_capacity(steps.len());
    for (i, st) in steps.iter().enumerate() {
        let n = st.index + 1;
        // The last of a run of steps with the same index keeps the plain number.
        let last = steps.get(i + 1).is_none_or(|next| next.index != st.index);
        if last {
            out.push(n.to_string());
            continue;
        }
        let k = steps[..i]
            .iter()
            .rev()
            .take_while(|p| p.index == st.index)
            .count();
        out.push(match u8::try_from(k).ok().filter(|k| *k < 26) {
            Some(k) => format!("{n}{}", char::from(b'a' + k)),
            None => format!("{n}.{}", k + 1),
        });
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_steps_get_numbers_of_their_own() {
        let steps: Vec<StepOutcome> = [0, 1, 1, 1, 2, 3, 3]
            .iter()
            .map(|i| StepOutcome::new(*i, String::new()))
            .collect();
        assert_eq!(step_numbers(&steps), ["1", "2a", "2b", "2", "3", "4a", "4"]);
        let many: Vec<StepOutcome> = (0..30)
            .map(|_| StepOutcome::new(0, String::new()))
            .collect();
        let n = step_numbers(&many);
        assert_eq!(
            (n[0].as_str(), n[25].as_str(), n[26].as_str()),
            ("1a", "1z", "1.27")
        );
        assert_eq!(n[29], "1");
        let unique: std::collections::BTreeSet<&String> = n.iter().collect();
        assert_eq!(unique.len(), 30);
    }
}
