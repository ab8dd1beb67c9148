//! SUT profiles: what is tested, where, with which TLS material, timeouts and capabilities.
//! Any field can be overridden on the command line with `--set path.to.field=value`.

use crate::error::{Diagnostic, Error, Location, yaml_diagnostic_in};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub sut: Sut,
    #[serde(default)]
    pub tls: TlsFiles,
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Capabilities the SUT declares; scenarios requiring others are skipped.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Overrides of pack variables (e.g. the AMC numbers an endpoint serves).
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    #[serde(default)]
    pub sla: Sla,
    /// For a GAP under test: how to make it act.
    #[serde(default)]
    pub driver: Option<Driver>,
    /// For a GAP under test: where the lab's mirrors listen.
    #[serde(default)]
    pub lab: Lab,
    /// For an AMC under test: how the lab obtains a payment run (billing scenarios).
    #[serde(default)]
    pub payment_run: Option<PaymentRunHook>,
    /// The establishment's return drop: for an AMC under test, where it writes RSP files;
    /// for a GAP under test, where the mirror AMCs write them (a folder per scenario) and
    /// the GAP reads them (default: a scratch folder of the run).
    #[serde(default)]
    pub returns: Option<Returns>,
    /// Where the profile was read from (not a YAML field).
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sut {
    /// `amc` or `gap`.
    pub kind: String,
    /// Start roclab's embedded reference SUT for this run instead of calling `base_url`.
    #[serde(default)]
    pub embedded: bool,
    /// Embedded AMC: which endpoint of the population it plays (`A` or `B`).
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Embedded SUT: defect switches (see `roclab defects`).
    #[serde(default)]
    pub defects: Vec<String>,
    /// Embedded GAP: the norme it speaks (`1.04` or `2.00`); default: the pack's `norme`.
    #[serde(default)]
    pub norme: Option<String>,
    /// Embedded GAP: the establishment's category (`EXDG`, or `EXOQN` for a private clinic;
    /// V2 only); default `EXDG`.
    #[serde(default)]
    pub categorie: Option<String>,
    /// Services at `<base_url>/<operation path>` unless `services` lists each URL.
    #[serde(default)]
    pub base_url: Option<String>,
    #[serde(default)]
    pub services: BTreeMap<String, String>,
}

/// How roclab makes a GAP act (docs/drivers.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Driver {
    /// `builtin` (the embedded reference GAP), `command`, `http` or `operator`.
    pub kind: String,
    /// `command`: run by `sh -c` for each trigger.
    #[serde(default)]
    pub command: Option<String>,
    /// `http`: the editor's test hook that receives each trigger.
    #[serde(default)]
    pub url: Option<String>,
    /// How long the GAP may take to act on a trigger (an operator: to do it by hand).
    #[serde(default, deserialize_with = "opt_u64")]
    pub timeout_ms: Option<u64>,
    /// After a scenario's last step, how long roclab keeps listening for late requests of a
    /// GAP whose driver may return before it is done (command, http, operator). Default 2000.
    #[serde(default, deserialize_with = "opt_u64")]
    pub quiet_ms: Option<u64>,
}

/// How to make an AMC under test settle its received invoices: a command (run by `sh -c`
/// with `ROCLAB_RETURN_DROP`), or the delay after which it does so on its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRunHook {
    /// Run by `sh -c` with `ROCLAB_RETURN_DROP`; returns when the AMC's run is done.
    #[serde(default)]
    pub command: Option<String>,
    /// Longest time the command may take (default 60 s): past it, it is killed and the
    /// scenario errs.
    #[serde(default, deserialize_with = "opt_u64")]
    pub timeout_ms: Option<u64>,
    /// Without a command: the AMC pays on its own; the lab waits this long.
    #[serde(default, deserialize_with = "opt_u64")]
    pub delay_ms: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Returns {
    /// Folder (relative to the profile) where `RSP-<numeroFacture>.xml` files arrive.
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lab {
    /// Actor of the pack -> listen address (`127.0.0.1:0`: any free port, told to the driver).
    #[serde(default)]
    pub listen: BTreeMap<String, String>,
}

fn default_endpoint() -> String {
    "A".into()
}

/// TLS material. Relative paths are resolved against `dir`, itself relative to the profile.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// CA certificate(s) the SUT's server certificate must chain to.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// The lab establishment's client certificate and key.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Negative material: a client certificate from another CA, and an expired one.
    #[serde(default)]
    pub untrusted_cert: Option<PathBuf>,
    #[serde(default)]
    pub untrusted_key: Option<PathBuf>,
    #[serde(default)]
    pub expired_cert: Option<PathBuf>,
    #[serde(default)]
    pub expired_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    #[serde(default = "default_connect")]
    pub connect_ms: u64,
    /// Whole exchange after connecting. Keep it above the latency limit checked by packs, so a
    /// late answer is reported as late rather than as missing.
    #[serde(default = "default_request")]
    pub request_ms: u64,
}

fn default_connect() -> u64 {
    3000
}
fn default_request() -> u64 {
    10000
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: default_connect(),
            request_ms: default_request(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    #[serde(default = "default_median")]
    pub median_ms: u64,
    #[serde(default = "default_limit")]
    pub limit_ms: u64,
}

fn default_median() -> u64 {
    400
}
fn default_limit() -> u64 {
    4000
}

impl Default for Sla {
    fn default() -> Self {
        Self {
            median_ms: default_median(),
            limit_ms: default_limit(),
        }
    }
}

impl Profile {
    /// Read a profile file and apply `--set` overrides (`a.b=value`; the value is read as
    /// YAML, and for a list field a comma-separated string is split).
    pub fn load(path: &Path, sets: &[String]) -> Result<Profile, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("{}: cannot read profile: {e}", path.display())))?;
        Self::parse(&text, path, sets)
    }

    /// Parse profile text read from `path` (used for messages and relative TLS paths).
    pub fn parse(text: &str, path: &Path, sets: &[String]) -> Result<Profile, Error> {
        // Typed first, so errors in the file come with their line and column.
        let mut profile: Profile = serde_saphyr::from_str(text)
            .map_err(|e| Error::Input(vec![yaml_diagnostic_in(path, text, &e)]))?;
        if !sets.is_empty() {
            let mut v = serde_json::to_value(&profile).expect("profile serialises");
            for s in sets {
                apply_set(&mut v, s)?;
            }
            profile = serde_json::from_value(v)
                .map_err(|e| Error::Usage(format!("--set {}: {e}", sets.join(" --set "))))?;
        }
        profile.source = Some(path.to_path_buf());
        profile.validate(path, sets)?;
        Ok(profile)
    }

    /// Check the values; each problem is blamed on the `--set` that gave the field, or else on
    /// the profile file.
    fn validate(&self, path: &Path, sets: &[String]) -> Result<(), Error> {
        let at = |field: &str| origin(path, sets, field);
        let mut d = vec![];
        if !matches!(self.sut.kind.as_str(), "amc" | "gap") {
            d.push(Diagnostic {
                at: at("sut.kind"),
                message: format!("sut.kind `{}` must be amc or gap", self.sut.kind),
            });
        }
        if self.sut.kind == "amc"
            && !self.sut.embedded
            && self.sut.base_url.is_none()
            && self.sut.services.is_empty()
        {
            d.push(Diagnostic {
                at: at("sut.base_url"),
                message: "sut.base_url (or sut.services) is required unless sut.embedded is true"
                    .into(),
            });
        }
        if !self.sut.embedded && !self.sut.defects.is_empty() {
            d.push(Diagnostic {
                at: at("sut.defects"),
                message: "sut.defects applies only to an embedded SUT".into(),
            });
        }
        for name in &self.sut.defects {
            if crate::defects::find(&self.sut.kind, name).is_none() {
                d.push(Diagnostic {
                    at: at("sut.defects"),
                    message: format!("unknown defect `{name}` (see `roclab defects`)"),
                });
            }
        }
        if let Some(dr) = &self.driver {
            let problem = match dr.kind.as_str() {
                "builtin" | "operator" => None,
                "command" if dr.command.is_none() => {
                    Some("driver.kind command needs driver.command")
                }
                "http" if dr.url.is_none() => Some("driver.kind http needs driver.url"),
                "command" | "http" => None,
                _ => Some("driver.kind must be builtin, command, http or operator"),
            };
            if let Some(p) = problem {
                d.push(Diagnostic {
                    at: at("driver"),
                    message: p.into(),
                });
            }
            if dr.kind != "builtin" && !self.sut.defects.is_empty() {
                d.push(Diagnostic {
                    at: at("sut.defects"),
                    message: "sut.defects applies only to the builtin driver".into(),
                });
            }
        }
        if self.timeouts.request_ms == 0 || self.timeouts.connect_ms == 0 {
            d.push(Diagnostic {
                at: at("timeouts"),
                message: "timeouts must be greater than 0".into(),
            });
        }
        if d.is_empty() {
            Ok(())
        } else {
            Err(Error::Input(d))
        }
    }

    /// Resolve a path the profile names against the profile's folder, without `..` after a
    /// folder name (`profiles/../pki` is `pki`), so messages show the path a person would type.
    pub fn path_of(&self, p: &Path) -> PathBuf {
        normalize(
            &self
                .source
                .as_ref()
                .and_then(|s| s.parent())
                .map(Path::to_path_buf)
                .unwrap_or_default()
                .join(p),
        )
    }

    /// Resolve a TLS file name against `tls.dir` and the profile's folder.
    pub fn tls_path(&self, p: &Path) -> PathBuf {
        self.path_of(&self.tls.dir.clone().unwrap_or_default().join(p))
    }
}

/// Where the value of `field` came from: the last `--set` of that field or of a field inside
/// it (shown as `--set path=value`), or else the profile file.
fn origin(path: &Path, sets: &[String], field: &str) -> Location {
    let gives = |s: &&String| {
        s.split_once('=').is_some_and(|(k, _)| {
            k == field || k.starts_with(&format!("{field}.")) || field.starts_with(&format!("{k}."))
        })
    };
    match sets.iter().rev().find(gives) {
        Some(s) => Location::new(Path::new(&format!("--set {s}")), 0, 0),
        None => Location::new(path, 0, 0),
    }
}

/// `p` with `.` dropped and each `..` removing the folder name before it (lexically: the
/// profile's folder is taken as written). An empty result is `.`.
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = vec![];
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    if out.is_empty() {
        PathBuf::from(".")
    } else {
        out.iter().collect()
    }
}

/// An optional count of milliseconds, from a number or from a string of digits: `--set` cannot
/// know the type of a field the profile leaves out, and gives it as a string.
fn opt_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::N(n)) => Ok(Some(n)),
        Some(Raw::S(t)) => t.trim().parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("`{t}` is not a number of milliseconds"))
        }),
    }
}

fn apply_set(root: &mut serde_json::Value, set: &str) -> Result<(), Error> {
    let (path, raw) = set
        .split_once('=')
        .ok_or_else(|| Error::Usage(format!("--set `{set}`: expected path.to.field=value")))?;
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, p) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let obj = cur
            .as_object_mut()
            .ok_or_else(|| Error::Usage(format!("--set `{set}`: `{p}` is not inside a mapping")))?;
        if last {
            let existing = obj.get(*p);
            let value = if existing.is_some_and(|e| e.is_array()) {
                serde_json::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| serde_json::Value::String(s.to_string()))
                        .collect(),
                )
            } else if existing.is_some_and(|e| e.is_string())
                || existing.is_none_or(|e| e.is_null())
            {
                serde_json::Value::String(raw.to_string())
            } else {
                serde_saphyr::from_str::<serde_json::Value>(raw)
                    .map_err(|e| Error::Usage(format!("--set `{set}`: {e}")))?
            };
            obj.insert((*p).to_string(), value);
            return Ok(());
        }
        cur = obj
            .entry((*p).to_string())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        // A section the profile leaves out (e.g. `driver`) is null: it becomes a mapping.
        if cur.is_null() {
            *cur = serde_json::Value::Object(Default::default());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_resolved_against_the_profile_without_dot_dot() {
        let mut p: Profile = serde_saphyr::from_str("sut: {kind: amc, embedded: true}\n").unwrap();
        p.source = Some(PathBuf::from("profiles/amc.yaml"));
        assert_eq!(p.path_of(Path::new("../pki")), PathBuf::from("pki"));
        p.tls.dir = Some(PathBuf::from("../pki"));
        assert_eq!(p.tls_path(Path::new("ca.pem")), PathBuf::from("pki/ca.pem"));
        p.tls.dir = Some(PathBuf::from("/etc/lab/./pki"));
        assert_eq!(
            p.tls_path(Path::new("ca.pem")),
            PathBuf::from("/etc/lab/pki/ca.pem")
        );
        p.source = Some(PathBuf::from("amc.yaml"));
        p.tls.dir = Some(PathBuf::from("../../pki"));
        assert_eq!(p.tls_path(Path::new("")), PathBuf::from("../../pki"));
        p.tls.dir = None;
        assert_eq!(p.tls_path(Path::new("")), PathBuf::from("."));
    }

    #[test]
    fn set_overrides_and_lists() {
        let p: Profile = serde_saphyr::from_str("sut: {kind: amc, embedded: true}\n").unwrap();
        let mut v = serde_json::to_value(&p).unwrap();
        apply_set(&mut v, "sut.defects=float-rounding,slow-clc").unwrap();
        apply_set(&mut v, "timeouts.request_ms=1500").unwrap();
        apply_set(&mut v, "vars.amc_served=99999999").unwrap();
        apply_set(&mut v, "sut.base_url=https://x:1/roc").unwrap();
        let p: Profile = serde_json::from_value(v).unwrap();
        assert_eq!(p.sut.defects, vec!["float-rounding", "slow-clc"]);
        assert_eq!(p.timeouts.request_ms, 1500);
        assert_eq!(p.vars["amc_served"], "99999999");
        assert_eq!(p.sut.base_url.as_deref(), Some("https://x:1/roc"));
        // Fields the profile leaves out take numbers too.
        let mut v = serde_json::to_value(&p).unwrap();
        apply_set(&mut v, "driver.kind=command").unwrap();
        apply_set(&mut v, "driver.quiet_ms=300").unwrap();
        apply_set(&mut v, "payment_run.timeout_ms=2500").unwrap();
        let q: Profile = serde_json::from_value(v).unwrap();
        assert_eq!(q.driver.unwrap().quiet_ms, Some(300));
        assert_eq!(q.payment_run.unwrap().timeout_ms, Some(2500));
        let mut v = serde_json::to_value(&p).unwrap();
        apply_set(&mut v, "payment_run.delay_ms=soon").unwrap();
        assert!(serde_json::from_value::<Profile>(v).is_err());
        let mut v = serde_json::to_value(&p).unwrap();
        apply_set(&mut v, "sut.nope=1").unwrap();
        assert!(serde_json::from_value::<Profile>(v).is_err());
    }
}
