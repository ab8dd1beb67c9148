//! The run's output folders, made ready before the first scenario: every folder a report or the
//! evidence goes into is created, locked against a second run and proved writable; the evidence
//! folder must be empty (or is emptied with `--force`). A run that cannot write its reports
//! stops before testing anything, rather than after.

use crate::error::Error;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock of an evidence folder, inside it; a report file's lock is `.<file name>` +
/// [`LOCK_SUFFIX`] beside it.
pub const LOCK_FILE: &str = ".roclab.lock";
pub const LOCK_SUFFIX: &str = ".roclab.lock";

/// The lock files of a run, removed when this is dropped (at the end of the run, or on an
/// error).
#[derive(Debug)]
pub struct Locked {
    locks: Vec<PathBuf>,
}

impl Locked {
    /// The lock files held.
    pub fn locks(&self) -> &[PathBuf] {
        &self.locks
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        for l in &self.locks {
            let _ = std::fs::remove_file(l);
        }
    }
}

/// The folder a report file goes into (`.` for a bare file name).
fn folder_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The lock of a report file: `.<file name>.roclab.lock` in its folder.
pub fn report_lock(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    folder_of(file).join(format!(".{name}{LOCK_SUFFIX}"))
}

/// Make the output ready: `reports` are the report files (JUnit, JSON, HTML), `evidence` the
/// evidence folder if any. Creates the folders and checks each accepts a new file; takes a
/// lock on each report file and on the evidence folder, so that a second run writing one of
/// them fails at once (two runs never mix their reports, while runs writing distinct files of
/// one folder do not disturb each other); refuses a non-empty evidence folder unless `force`,
/// which empties it. Errors: a non-empty evidence folder is a usage error (exit 2); a folder
/// that cannot be created or written, a report path that is a folder, or a lock held by a live
/// run are environment errors (exit 3).
pub fn prepare(reports: &[&Path], evidence: Option<&Path>, force: bool) -> Result<Locked, Error> {
    for r in reports {
        if r.is_dir() {
            return Err(Error::Environment(format!(
                "cannot write the report {}: it is a folder; nothing was run",
                r.display()
            )));
        }
    }
    let mut folders: BTreeSet<PathBuf> = reports.iter().map(|r| folder_of(r)).collect();
    if let Some(e) = evidence {
        folders.insert(e.to_path_buf());
    }
    for f in &folders {
        std::fs::create_dir_all(f).map_err(|e| {
            Error::Environment(format!(
                "cannot create the output folder {}: {e}; nothing was run",
                f.display()
            ))
        })?;
        probe(f)?;
    }
    // Locks in a fixed order (of two runs racing, one gets them all), each once even when
    // named two ways (`reports/x` and `reports/./x`).
    let canonical = |lock: &Path| {
        let folder = folder_of(lock);
        let folder = folder.canonicalize().unwrap_or(folder);
        folder.join(lock.file_name().unwrap_or_default())
    };
    let mut wanted: BTreeMap<PathBuf, (PathBuf, String)> = BTreeMap::new();
    for r in reports {
        let l = report_lock(r);
        wanted.insert(canonical(&l), (l, format!("the report {}", r.display())));
    }
    if let Some(e) = evidence {
        let l = e.join(LOCK_FILE);
        wanted.insert(
            canonical(&l),
            (l, format!("into the evidence folder {}", e.display())),
        );
    }
    let mut locked = Locked { locks: vec![] };
    for (lock_path, what) in wanted.values() {
        lock(lock_path, what)?;
        locked.locks.push(lock_path.clone());
    }
    if let Some(dir) = evidence {
        empty_evidence(dir, force, &locked)?;
    }
    Ok(locked)
}

/// Create the lock file `path` holding our pid; a lock left by a process that no longer exists
/// is taken over. `what` says what it guards, for the message.
fn lock(path: &Path, what: &str) -> Result<(), Error> {
    let folder = folder_of(path);
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut f) => {
                writeln!(f, "{}", std::process::id()).map_err(|e| {
                    Error::Environment(format!(
                        "cannot write into the output folder {} ({}: {e}); nothing was run",
                        folder.display(),
                        path.display()
                    ))
                })?;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let pid = text.trim().parse::<u32>().ok();
                match pid {
                    Some(pid) if !alive(pid) => {
                        // Stale: its run died without removing it.
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    _ => {
                        let holder = pid
                            .map(|p| format!("pid {p}"))
                            .unwrap_or_else(|| "pid unknown".into());
                        return Err(Error::Environment(format!(
                            "another roclab run ({holder}) is writing {what}: lock file {} \
                             exists; wait for that run to end or choose another output \
                             (remove the lock file if no run is under way); nothing was run",
                            path.display()
                        )));
                    }
                }
            }
            Err(e) => {
                return Err(Error::Environment(format!(
                    "cannot write into the output folder {} ({}: {e}); nothing was run",
                    folder.display(),
                    path.display()
                )));
            }
        }
    }
    Err(Error::Environment(format!(
        "cannot take the lock {}: another run took it over; nothing was run",
        path.display()
    )))
}

/// Whether a process with this pid exists (when /proc cannot tell, it is assumed to).
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

fn same_folder(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Write and remove a file in `folder`.
fn probe(folder: &Path) -> Result<(), Error> {
    let p = folder.join(format!(".roclab-probe-{}", std::process::id()));
    let r = std::fs::write(&p, b"probe").and_then(|_| std::fs::remove_file(&p));
    r.map_err(|e| {
        Error::Environment(format!(
            "cannot write into the output folder {} ({}: {e}); nothing was run",
            folder.display(),
            p.display()
        ))
    })
}

/// Refuse a non-empty evidence folder (its old exchange folders would lie beside the new ones)
/// unless `force`, which empties it. The run's own locks are not counted and not removed.
/// `force` never empties the current folder or one above it.
fn empty_evidence(dir: &Path, force: bool, ours: &Locked) -> Result<(), Error> {
    let ours: BTreeSet<std::ffi::OsString> = ours
        .locks
        .iter()
        .filter(|l| same_folder(&folder_of(l), dir))
        .filter_map(|l| l.file_name().map(|n| n.to_os_string()))
        .collect();
    let entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Environment(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| !ours.contains(&e.file_name()))
        .map(|e| e.path())
        .collect();
    if entries.is_empty() {
        return Ok(());
    }
    if !force {
        return Err(Error::Usage(format!(
            "the evidence folder {} is not empty ({} entries): its old files would lie beside \
             the new ones; give another folder, or add --force to empty it first",
            dir.display(),
            entries.len()
        )));
    }
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if let Ok(cwd) = std::env::current_dir().and_then(|c| c.canonicalize())
        && cwd.starts_with(&canonical)
    {
        return Err(Error::Usage(format!(
            "--force would empty {}, which holds the current folder; give the evidence a \
             folder of its own",
            dir.display()
        )));
    }
    for p in entries {
        let r = if p.is_dir() && !p.is_symlink() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        r.map_err(|e| {
            Error::Environment(format!(
                "cannot empty the evidence folder {} ({}: {e}); nothing was run",
                dir.display(),
                p.display()
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_prepare_of_the_same_report_fails_until_the_first_is_dropped() {
        let d = tempfile::tempdir().unwrap();
        let json = d.path().join("x/outcome.json");
        let first = prepare(&[&json], None, false).unwrap();
        let lock = d.path().join("x/.outcome.json.roclab.lock");
        assert_eq!(first.locks(), std::slice::from_ref(&lock));
        let err = prepare(&[&json], None, false).unwrap_err().to_string();
        assert!(err.contains(lock.to_str().unwrap()), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        // Another file of the same folder is free.
        let other = prepare(&[&d.path().join("x/other.json")], None, false).unwrap();
        drop(first);
        assert!(!lock.exists());
        prepare(&[&json], None, false).unwrap();
        drop(other);
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let d = tempfile::tempdir().unwrap();
        // A pid above the kernel's maximum never exists.
        std::fs::write(d.path().join(".a.xml.roclab.lock"), "4194305\n").unwrap();
        let l = prepare(&[&d.path().join("a.xml")], None, false).unwrap();
        let text = std::fs::read_to_string(&l.locks()[0]).unwrap();
        assert_eq!(text.trim(), std::process::id().to_string());
    }

    #[test]
    fn an_evidence_folder_is_refused_when_not_empty_and_emptied_with_force() {
        let d = tempfile::tempdir().unwrap();
        let ev = d.path().join("ev");
        std::fs::create_dir_all(ev.join("exchanges/OLD")).unwrap();
        std::fs::write(ev.join("manifest.json"), "{}").unwrap();
        let e = prepare(&[], Some(&ev), false).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("--force"), "{e}");
        assert!(ev.join("manifest.json").exists());
        assert!(!ev.join(LOCK_FILE).exists(), "the lock is released");
        let l = prepare(&[], Some(&ev), true).unwrap();
        let left: Vec<_> = std::fs::read_dir(&ev)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from(LOCK_FILE)]);
        drop(l);
    }

    #[test]
    fn a_file_in_place_of_the_folder_is_an_environment_error() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("out"), "").unwrap();
        let e = prepare(&[&d.path().join("out/x/junit.xml")], None, false).unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.to_string().contains("out"), "{e}");
    }
}
