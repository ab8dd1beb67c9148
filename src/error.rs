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

/// Turn a serde-saphyr error into a diagnostic at its line and column (the file is read again
/// to find an unclosed `[` or `{`; see [`yaml_diagnostic_in`]).
pub fn yaml_diagnostic(file: &Path, err: &serde_saphyr::Error) -> Diagnostic {
    match std::fs::read_to_string(file) {
        Ok(text) => yaml_diagnostic_in(file, &text, err),
        Err(_) => plain_yaml_diagnostic(file, err),
    }
}

/// Turn a serde-saphyr error on `text` (read from `file`) into a diagnostic. When the parser
/// stopped on a later line while a flow sequence or mapping was still open (a `]` or `}` left
/// out, so the next key reads as part of it), the diagnostic is put where the `[` or `{` was
/// opened, and says where the parser stopped.
pub fn yaml_diagnostic_in(file: &Path, text: &str, err: &serde_saphyr::Error) -> Diagnostic {
    let d = plain_yaml_diagnostic(file, err);
    match unclosed_flow(text, d.at.line as usize, d.at.col as usize) {
        Some((open, line, col)) => {
            let (what, close) = if open == '[' {
                ("flow sequence", ']')
            } else {
                ("flow mapping", '}')
            };
            Diagnostic {
                at: Location::new(file, line as u64, col as u64),
                message: format!(
                    "{what} `{open}` opened here is not closed: `{close}` missing (the YAML parser stopped at {}:{}: {})",
                    d.at.line, d.at.col, d.message
                ),
            }
        }
        None => d,
    }
}

/// The `[` or `{` (with its 1-based line and column) still open where a parser stopped at
/// `line:col`, when it was opened on an earlier line and the stopping line reads as a new block
/// entry (indented no more than the opener's line) or lies past the end of the text.
fn unclosed_flow(text: &str, line: usize, col: usize) -> Option<(char, usize, usize)> {
    if line == 0 {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let mut stack: Vec<(char, usize, usize)> = vec![];
    let mut quote: Option<char> = None;
    let mut block_scalar: Option<usize> = None;
    let mut node_start = true;
    'lines: for (i, l) in lines.iter().enumerate() {
        let ln = i + 1;
        if ln > line {
            break;
        }
        if let Some(bi) = block_scalar {
            if l.trim().is_empty() || indent(l) > bi {
                continue;
            }
            block_scalar = None;
        }
        if stack.is_empty() && quote.is_none() {
            node_start = true;
        }
        let chars: Vec<char> = l.chars().collect();
        let mut j = 0;
        while j < chars.len() {
            let c = chars[j];
            let next = chars.get(j + 1).copied();
            if ln == line && j + 1 >= col {
                break 'lines;
            }
            j += 1;
            if let Some(q) = quote {
                // An escape (`\x` in double quotes, `''` in single quotes) skips a character.
                if (q == '"' && c == '\\') || (c == q && q == '\'' && next == Some('\'')) {
                    j += 1;
                } else if c == q {
                    quote = None;
                    node_start = false;
                }
                continue;
            }
            let space_after = next.is_none_or(|n| n == ' ' || n == '\t');
            match c {
                ' ' | '\t' => {}
                '#' if j == 1 || matches!(chars[j - 2], ' ' | '\t') => continue 'lines,
                '[' | '{' if node_start => stack.push((c, ln, j)),
                ']' | '}' if !stack.is_empty() => {
                    stack.pop();
                    node_start = false;
                }
                ',' if !stack.is_empty() => node_start = true,
                '\'' | '"' if node_start => quote = Some(c),
                ':' if space_after
                    || (!stack.is_empty() && next.is_some_and(|n| ",[]{}".contains(n))) =>
                {
                    node_start = true
                }
                '-' | '?' if node_start && stack.is_empty() && space_after => {}
                '|' | '>' if node_start && stack.is_empty() => {
                    block_scalar = Some(indent(l));
                    continue 'lines;
                }
                '&' | '!' if node_start => {
                    while j < chars.len() && chars[j] != ' ' {
                        j += 1;
                    }
                }
                _ => node_start = false,
            }
        }
    }
    let &(open, ol, oc) = stack.last()?;
    if ol >= line {
        return None;
    }
    let past_end = lines[line.min(lines.len())..]
        .iter()
        .chain(lines.get(line - 1))
        .all(|l| l.trim().is_empty())
        || line > lines.len();
    let new_entry = lines
        .get(line - 1)
        .is_some_and(|l| !l.trim().is_empty() && indent(l) <= indent(lines[ol - 1]));
    (past_end || new_entry).then_some((open, ol, oc))
}

/// A serde-saphyr error as a diagnostic at the position it gives.
fn plain_yaml_diagnostic(file: &Path, err: &serde_saphyr::Error) -> Diagnostic {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(text: &str) -> Diagnostic {
        let err = serde_saphyr::from_str::<serde_json::Value>(text).unwrap_err();
        yaml_diagnostic_in(Path::new("f.yaml"), text, &err)
    }

    #[test]
    fn an_unclosed_flow_sequence_is_reported_where_it_was_opened() {
        let d = diag("- id: X\n  title: l'assuré # it's [here\n  verifies: [A, B\n  tags: [x]\n");
        assert_eq!((d.at.line, d.at.col), (3, 13), "{d}");
        assert!(d.message.contains("`[` opened here is not closed"), "{d}");
        assert!(d.message.contains("stopped at 4:"), "{d}");
        let d = diag("a:\n  b: {x: [1, 2]\n  c: 1\n");
        assert_eq!((d.at.line, d.at.col), (2, 6), "{d}");
        assert!(d.message.contains("flow mapping `{`"), "{d}");
        // At the end of the file the parser itself says so, at the opener.
        let d = diag("a: 1\nb: {x: [1, 2]\n");
        assert_eq!((d.at.line, d.at.col), (2, 4), "{d}");
        assert!(d.message.contains("unclosed"), "{d}");
    }

    #[test]
    fn other_errors_keep_their_position() {
        // Closed on the same line: the parser's own position.
        let d = diag("a: [1, 2]]\n");
        assert!(!d.message.contains("opened here"), "{d}");
        // A quoted `[` and a block scalar's brackets open nothing.
        let d = diag("a: \"[\"\nb: |\n  [x\nc: [1\n  , 2\nd: 1\n");
        assert_eq!(d.at.line, 4, "{d}");
    }
}
