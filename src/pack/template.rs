//! Templates: `{{name}}`, `{{#if name}}…{{/if}}`, `{{> file}}`, generators and matchers.

use crate::error::{Diagnostic, Location};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Matchers left in an expected body for the comparator to interpret.
const MATCHERS: &[&str] = &["ignore", "uuid", "date", "datetime", "amount", "optional"];
const MATCHER_PREFIXES: &[&str] = &["regex:", "capture:"];
/// Generators: values made when a request is rendered. `run` is the same in every template of
/// one run and differs between runs ([`run_token`]).
const GENERATORS: &[&str] = &["uuid", "now", "today", "run"];

#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    /// A variable, with where it is written.
    Var {
        name: String,
        at: Location,
    },
    /// A generator or matcher token, as written between the braces.
    Special {
        token: String,
        at: Location,
    },
    If {
        name: String,
        body: Vec<Piece>,
    },
}

/// A parsed template, includes expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Where it comes from (a file, or a YAML value's position).
    pub origin: Location,
    pub pieces: Vec<Piece>,
}

/// How special tokens are treated when rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Requests and variable values: generators produce values; matchers are errors.
    Request,
    /// Expected bodies: matchers are kept for the comparator; `now`/`today` are generated.
    Expected,
    /// Plain text (assert values): like `Expected` but values are not XML-escaped.
    Text,
}

/// A variable referenced by a template, for load-time checks.
#[derive(Debug, Clone)]
pub struct VarRef {
    pub name: String,
    pub at: Location,
}

pub fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn is_special(token: &str) -> bool {
    MATCHERS.contains(&token)
        || GENERATORS.contains(&token)
        || MATCHER_PREFIXES.iter().any(|p| token.starts_with(p))
}

/// Resolves an include name to the file's path and text.
pub type Include<'a> = &'a dyn Fn(&str) -> Result<(PathBuf, String), String>;

/// Parses template text. `origin` gives the file and the position of the text's first
/// character (line 1 column 1 for a whole file).
pub struct Parser<'a> {
    /// Resolves `{{> name}}` includes to (path, text); `None` when includes are not allowed.
    pub include: Option<Include<'a>>,
}

impl Parser<'_> {
    pub fn parse(&self, text: &str, origin: &Location) -> Result<Template, Diagnostic> {
        let mut stack = vec![];
        let pieces = self.parse_into(text, origin, &mut stack)?;
        Ok(Template {
            origin: origin.clone(),
            pieces,
        })
    }

    fn parse_into(
        &self,
        text: &str,
        origin: &Location,
        including: &mut Vec<PathBuf>,
    ) -> Result<Vec<Piece>, Diagnostic> {
        // Frames of open `#if` blocks: (name, pieces before the block, where it opened).
        let mut frames: Vec<(String, Vec<Piece>, Location)> = vec![];
        let mut cur: Vec<Piece> = vec![];
        let mut rest = text;
        let mut offset = 0usize;
        let at = |off: usize| position(text, off, origin);
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                cur.push(Piece::Text(rest[..start].to_string()));
            }
            let open = offset + start;
            let after = &rest[start + 2..];
            let Some(mut end) = after.find("}}") else {
                return Err(Diagnostic {
                    at: at(open),
                    message: "`{{` without a closing `}}`".into(),
                });
            };
            // `{{regex:a{2}}}`: a closing brace of the content comes before the final `}}`.
            while after[end + 2..].starts_with('}') {
                end += 1;
            }
            let raw = &after[..end];
            let token = raw.trim();
            let here = at(open);
            if let Some(name) = token.strip_prefix("#if ") {
                let name = name.trim();
                if !is_var_name(name) {
                    return Err(Diagnostic {
                        at: here,
                        message: format!("`#if` needs a variable name, found `{name}`"),
                    });
                }
                frames.push((name.to_string(), std::mem::take(&mut cur), here));
            } else if token == "/if" {
                let Some((name, before, _)) = frames.pop() else {
                    return Err(Diagnostic {
                        at: here,
                        message: "`{{/if}}` without an open `{{#if …}}`".into(),
                    });
                };
                let body = std::mem::replace(&mut cur, before);
                cur.push(Piece::If { name, body });
            } else if let Some(file) = token.strip_prefix('>') {
                let file = file.trim();
                let Some(include) = self.include else {
                    return Err(Diagnostic {
                        at: here,
                        message: "includes are only allowed in template files".into(),
                    });
                };
                let (path, inc_text) = include(file).map_err(|m| Diagnostic {
                    at: here.clone(),
                    message: m,
                })?;
                if including.contains(&path) {
                    return Err(Diagnostic {
                        at: here,
                        message: format!("`{file}` includes itself"),
                    });
                }
                including.push(path.clone());
                let inc_origin = Location::new(&path, 1, 1);
                let mut inc = self.parse_into(&inc_text, &inc_origin, including)?;
                including.pop();
                // An included file's final newline would break the including line.
                if let Some(Piece::Text(t)) = inc.last_mut() {
                    let trimmed = t.trim_end_matches('\n').len();
                    t.truncate(trimmed);
                }
                cur.extend(inc);
            } else if is_special(token) {
                cur.push(Piece::Special {
                    token: token.to_string(),
                    at: here,
                });
            } else if is_var_name(token) {
                cur.push(Piece::Var {
                    name: token.to_string(),
                    at: here,
                });
            } else {
                return Err(Diagnostic {
                    at: here,
                    message: format!(
                        "`{{{{{raw}}}}}` is not a variable, include, block or placeholder"
                    ),
                });
            }
            let consumed = start + 2 + end + 2;
            offset += consumed;
            rest = &rest[consumed..];
        }
        if !rest.is_empty() {
            cur.push(Piece::Text(rest.to_string()));
        }
        if let Some((name, _, opened)) = frames.pop() {
            return Err(Diagnostic {
                at: opened,
                message: format!("`{{{{#if {name}}}}}` is never closed by `{{{{/if}}}}`"),
            });
        }
        Ok(cur)
    }
}

/// Position of byte `off` of `text`, given where `text` starts.
fn position(text: &str, off: usize, origin: &Location) -> Location {
    let before = &text[..off];
    let newlines = before.matches('\n').count() as u64;
    let col = match before.rfind('\n') {
        Some(i) => before[i + 1..].chars().count() as u64 + 1,
        None => before.chars().count() as u64 + origin.col.max(1),
    };
    Location {
        file: origin.file.clone(),
        line: origin.line + newlines,
        col,
    }
}

impl Template {
    /// A template of literal text only.
    pub fn literal(text: &str, origin: Location) -> Self {
        Self {
            origin,
            pieces: vec![Piece::Text(text.to_string())],
        }
    }

    /// Variables that must be defined: every reference, except those of a variable inside
    /// an `{{#if}}` on that same variable (written only when it is defined).
    pub fn var_refs(&self) -> Vec<VarRef> {
        fn walk(p: &[Piece], guarded: &mut Vec<String>, out: &mut Vec<VarRef>) {
            for x in p {
                match x {
                    Piece::Var { name, at } if !guarded.contains(name) => out.push(VarRef {
                        name: name.clone(),
                        at: at.clone(),
                    }),
                    Piece::If { name, body } => {
                        guarded.push(name.clone());
                        walk(body, guarded, out);
                        guarded.pop();
                    }
                    _ => {}
                }
            }
        }
        let mut v = vec![];
        walk(&self.pieces, &mut vec![], &mut v);
        v
    }

    /// Special tokens (generators, matchers) with their positions.
    pub fn specials(&self) -> Vec<(String, Location)> {
        fn walk(p: &[Piece], out: &mut Vec<(String, Location)>) {
            for x in p {
                match x {
                    Piece::Special { token, at } => out.push((token.clone(), at.clone())),
                    Piece::If { body, .. } => walk(body, out),
                    _ => {}
                }
            }
        }
        let mut v = vec![];
        walk(&self.pieces, &mut v);
        v
    }

    /// Names bound by `{{capture:name}}` matchers.
    pub fn capture_names(&self) -> Vec<String> {
        self.specials()
            .into_iter()
            .filter_map(|(t, _)| t.strip_prefix("capture:").map(|n| n.trim().to_string()))
            .collect()
    }

    /// Check the tokens allowed in `mode`; returns the first misuse.
    pub fn check_mode(&self, mode: Mode) -> Result<(), Diagnostic> {
        if mode != Mode::Request {
            return Ok(());
        }
        for (token, at) in self.specials() {
            if !GENERATORS.contains(&token.as_str()) {
                return Err(Diagnostic {
                    at,
                    message: format!(
                        "`{{{{{token}}}}}` is a matcher of expected bodies; requests and variables may use only {{{{uuid}}}}, {{{{now}}}}, {{{{today}}}}, {{{{run}}}}"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Render with `vars`. Unknown variables are an error naming the first one.
    pub fn render(
        &self,
        vars: &BTreeMap<String, String>,
        mode: Mode,
    ) -> Result<String, Diagnostic> {
        let mut out = String::new();
        render_into(&self.pieces, vars, mode, &mut out)?;
        Ok(out)
    }
}

fn render_into(
    pieces: &[Piece],
    vars: &BTreeMap<String, String>,
    mode: Mode,
    out: &mut String,
) -> Result<(), Diagnostic> {
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var { name, at } => match vars.get(name) {
                Some(v) if mode == Mode::Text => out.push_str(v),
                Some(v) => out.push_str(&crate::soap::escape(v)),
                None => {
                    return Err(Diagnostic {
                        at: at.clone(),
                        message: format!("variable `{name}` is not defined"),
                    });
                }
            },
            Piece::Special { token, .. } => match (token.as_str(), mode) {
                ("uuid", Mode::Request) => out.push_str(&uuid::Uuid::new_v4().to_string()),
                ("now", _) => out.push_str(&now_rfc3339()),
                ("today", _) => out.push_str(&now_rfc3339()[..10]),
                ("run", _) => out.push_str(run_token()),
                _ => {
                    out.push_str("{{");
                    out.push_str(token);
                    out.push_str("}}");
                }
            },
            Piece::If { name, body } => {
                if vars.get(name).is_some_and(|v| !v.is_empty()) {
                    render_into(body, vars, mode, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Four characters of `[A-Z0-9]`, drawn once per process: `{{run}}` in a pack makes values that
/// a SUT keeps from one run to the next (invoice numbers, the idDossier of billing periods)
/// new in every run, so a re-run against the same AMC is not refused as a duplicate.
pub fn run_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let mut n = uuid::Uuid::new_v4().as_u128();
        (0..4)
            .map(|_| {
                let c = ALPHABET[(n % 36) as usize] as char;
                n /= 36;
                c
            })
            .collect()
    })
}

/// Current local time as xs:dateTime with offset, to the second.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    now.format(&fmt).unwrap_or_default()
}

/// Cache of template files of one pack, so each is read and parsed once.
#[derive(Default)]
pub struct Cache {
    pub files: BTreeMap<PathBuf, Arc<Template>>,
}

impl Cache {
    /// Load `name` relative to `dir`; `at` is where it is named, for errors.
    pub fn get(
        &mut self,
        dir: &Path,
        name: &str,
        at: &Location,
    ) -> Result<Arc<Template>, Diagnostic> {
        let path = dir.join(name);
        if let Some(t) = self.files.get(&path) {
            return Ok(t.clone());
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Diagnostic {
            at: at.clone(),
            message: format!("template `{name}` cannot be read ({}): {e}", path.display()),
        })?;
        let include = |inc: &str| -> Result<(PathBuf, String), String> {
            let p = dir.join(inc);
            std::fs::read_to_string(&p)
                .map(|t| (p.clone(), t))
                .map_err(|e| {
                    format!(
                        "included template `{inc}` cannot be read ({}): {e}",
                        p.display()
                    )
                })
        };
        let parser = Parser {
            include: Some(&include),
        };
        let t = Arc::new(parser.parse(&text, &Location::new(&path, 1, 1))?);
        self.files.insert(path, t.clone());
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Template, Diagnostic> {
        Parser { include: None }.parse(s, &Location::new(Path::new("t.xml"), 1, 1))
    }

    #[test]
    fn renders_vars_ifs_and_generators() {
        let t = parse("<a>{{x}}</a>{{#if y}}<b>{{y}}</b>{{/if}}<c>{{uuid}}</c>").unwrap();
        let mut v = BTreeMap::new();
        v.insert("x".to_string(), "1 < 2".to_string());
        let r = t.render(&v, Mode::Request).unwrap();
        assert!(r.starts_with("<a>1 &lt; 2</a><c>"));
        assert_eq!(r.len(), "<a>1 &lt; 2</a><c></c>".len() + 36);
        v.insert("y".into(), "z".into());
        let r = t.render(&v, Mode::Expected).unwrap();
        assert_eq!(r, "<a>1 &lt; 2</a><b>z</b><c>{{uuid}}</c>");
    }

    #[test]
    fn regex_with_braces_and_positions() {
        let t = parse("x\n  <n>ENG-{{regex:[0-9A-F]{12}}}</n> {{bad name}}");
        let e = t.unwrap_err();
        assert_eq!((e.at.line, e.at.col), (2, 37));
        let t = parse("x\n  <n>ENG-{{regex:[0-9A-F]{12}}}</n>").unwrap();
        assert_eq!(t.specials()[0].0, "regex:[0-9A-F]{12}");
        assert_eq!(t.specials()[0].1.col, 10);
    }

    #[test]
    fn matchers_refused_in_requests_and_unknown_vars_named() {
        let t = parse("{{date}}").unwrap();
        assert!(t.check_mode(Mode::Request).is_err());
        assert!(t.check_mode(Mode::Expected).is_ok());
        let t = parse("a {{missing}}").unwrap();
        let e = t.render(&BTreeMap::new(), Mode::Request).unwrap_err();
        assert!(e.message.contains("missing"));
        assert_eq!(e.at.col, 3);
        assert!(parse("{{#if a}}x").is_err());
        // Inside an `#if` on a variable, that variable need not be defined; others must.
        let t = parse("{{#if opt}}<x>{{opt}}{{other}}</x>{{/if}}").unwrap();
        let refs: Vec<String> = t.var_refs().into_iter().map(|r| r.name).collect();
        assert_eq!(refs, vec!["other"]);
        assert_eq!(t.render(&BTreeMap::new(), Mode::Request).unwrap(), "");
        assert!(parse("x{{/if}}").is_err());
    }
}
