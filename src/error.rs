//! Typed errors of the library. Input errors name the file, line and column at fault.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in an input file (1-based line and column; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: u64,
    pub col: u64,
}

impl Location {
    pub fn new(file: &Path, line: u64, col: u64) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            col,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
        }
    }
}

/// One problem found in an input (pack, profile, template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub at: Location,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Errors that stop a command before or while it runs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pack, profile or a command-line value is wrong (exit 2).
    #[error("{}", render(.0))]
    Input(Vec<Diagnostic>),
    /// Usage problem not tied to a file (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The environment prevents running: cannot bind, SUT unreachable, cannot write (exit 3).
    #[error("{0}")]
    Environment(String),
}

fn render(d: &[Diagnostic]) -> String {
    let mut s = String::new();
    for (i, x) in d.iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(&x.to_string());
    }
    s
}

impl Error {
    pub fn input(at: Location, message: impl Into<String>) -> Self {
        Error::Input(vec![Diagnostic {
            at,
            message: message.into(),
        }])
    }
    /// Process exit code: 2 for input and usage errors, 3 for environment errors.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) | Error::Usage(_) => 2,
            Error::Environment(_) => 3,
        }
    }
}

/// Turn a serde-saphyr error into a diagnostic at its line and column.
pub fn yaml_diagnostic(file: &Path, err: &serde_saphyr::Error) -> Diagnostic {
    let (line, col) = err
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((0, 0));
    // The error's own text may repeat the position; keep its first line, which is the message.
    let text = err.to_string();
    let first = text.lines().next().unwrap_or("invalid YAML");
    // Drop the position the library puts in front: the diagnostic carries it.
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let message = match first.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((pos, rest)) if pos.contains(" column ") => rest.to_string(),
        _ => first.to_string(),
    };
    Diagnostic {
        at: Location::new(file, line, col),
        message,
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
