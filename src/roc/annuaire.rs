//! The annuaire of ROC model (spec section 6) as pure functions: validation of a `search`
//! request and the lookup of an AMC's typed addresses.
//!
//! The wire mapping (element names, namespace, envelope) lives in `mirror::annuaire`; the
//! field names of [`Query`] and [`Address`] are the spec's element names.
//!
//! # Mandatory fields
//!
//! Section 6 gives an empty value a meaning for four fields only: `code_csr` (no CSR given),
//! `domaine_conventionnel` (any domain), `code_service` (every service) and
//! `version_norme_service` (every version). Those four are optional: absent and empty mean
//! the same. Every other field is mandatory and must be non-empty ([`validate`]):
//!
//! | field | value |
//! |---|---|
//! | `version` | `R01` (the only interface version of the model) |
//! | `date_demande` | a calendar date `YYYY-MM-DD` |
//! | `editeur`, `logiciel`, `version_logiciel` | any non-empty text |
//! | `numero_amc` | any non-empty text (an unknown or malformed number is answered `01`) |
//! | `code_type_convention` | any non-empty text (a mismatch is answered `02`) |
//! | `code_norme_service` | `ROC` |
//! | `type_adresse` | at least one item, each `URL` or `MEL` |
//! | `domaine_conventionnel` | empty, `MCO`, `SSR`, `PSY` or `HAD` |
//!
//! `code_csr`, `code_service` and `version_norme_service` take any value: one that matches
//! nothing (a CSR longer than the pattern, an unknown service, version `3.00`) is answered
//! `02`, not refused.

use super::population::{AmcEntry, Population};
use super::{Domaine, Version, dates};
use std::collections::BTreeMap;

/// The only interface version (`requete/version`) of ROC model.
pub const INTERFACE_VERSION: &str = "R01";
/// The only `code_norme_service` of ROC model.
pub const NORME_ROC: &str = "ROC";
/// Address type of the web services (SEL and DRE).
pub const TYPE_URL: &str = "URL";
/// Address type for mail; the model gives no AMC a mail address.
pub const TYPE_MEL: &str = "MEL";
/// Services that exist only from norme `2.00`: listed only for an AMC that accepts it.
pub const V2_ONLY_SERVICES: [&str; 1] = ["ANF"];

/// A `search` request: every field of section 6, as text (absent optional elements are
/// empty strings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    // requete
    /// Interface version, `R01`.
    pub version: String,
    /// `YYYY-MM-DD`.
    pub date_demande: String,
    pub editeur: String,
    pub logiciel: String,
    pub version_logiciel: String,
    // adressage
    pub numero_amc: String,
    pub code_type_convention: String,
    /// Empty: no CSR given (matches every pattern).
    pub code_csr: String,
    /// `MCO`, `SSR`, `PSY`, `HAD`; empty: any domain.
    pub domaine_conventionnel: String,
    /// `IDB`, `SIM`, …; empty: every service.
    pub code_service: String,
    /// `ROC`.
    pub code_norme_service: String,
    /// `1.04`, `2.00`; empty: every version.
    pub version_norme_service: String,
    // typage
    /// `typage/type_adresse/item` values (`URL`, `MEL`), in request order.
    pub type_adresse: Vec<String>,
}

/// `code_retour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeRetour {
    /// `00`: addresses found.
    Found,
    /// `01`: AMC inconnue.
    UnknownAmc,
    /// `02`: no address for that service, domain, type or version (or the convention type
    /// or CSR does not match).
    NoAddress,
}

impl CodeRetour {
    pub fn code(self) -> &'static str {
        match self {
            Self::Found => "00",
            Self::UnknownAmc => "01",
            Self::NoAddress => "02",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "00" => Some(Self::Found),
            "01" => Some(Self::UnknownAmc),
            "02" => Some(Self::NoAddress),
            _ => None,
        }
    }
}

/// One `adresses/item` of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub numero_amc: String,
    /// `IDB`, `SIM`, `CLC`, `DEL`, `DRE`, `ANF`.
    pub code_service: String,
    /// `URL`.
    pub type_adresse: String,
    /// `<base URL of the AMC's endpoint>/<service>`.
    pub valeur: String,
    /// `2.00` for an AMC that accepts `2.00` (and therefore `1.04` too), else `1.04`.
    pub version_norme_service: String,
}

/// The answer to a valid query: `adresses` is empty unless the code is `00`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub code_retour: CodeRetour,
    pub adresses: Vec<Address>,
}

impl Answer {
    fn code(code_retour: CodeRetour) -> Answer {
        Answer {
            code_retour,
            adresses: Vec::new(),
        }
    }
}

/// Why a query is refused (answered with a fault, not a `code_retour`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The [`Query`] field at fault (`date_demande`, `type_adresse`, …).
    pub field: &'static str,
    /// French wording, without the field name.
    pub reason: String,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} : {}", self.field, self.reason)
    }
}

/// Whether a request's `code_csr` matches an AMC's CSR pattern: each character of the code
/// must equal the pattern's character at the same position, `?` in the pattern matching any
/// character (`94????????` matches `9412` and `9400000001`, not `95`). A code longer than
/// the pattern does not match (so an empty pattern matches only an empty code).
///
/// An empty `code` means "no CSR given" and matches every pattern: section 6 makes the CSR
/// a narrowing key, and a request without one is not narrowed.
pub fn csr_matches(pattern: &str, code: &str) -> bool {
    let mut pattern = pattern.chars();
    code.chars()
        .all(|c| matches!(pattern.next(), Some(p) if p == '?' || p == c))
}

/// Check the values of a query (see the module documentation for the rules). The first
/// failing field, in document order, is reported.
pub fn validate(q: &Query) -> Result<(), Invalid> {
    fn required(field: &'static str, value: &str) -> Result<(), Invalid> {
        if value.is_empty() {
            Err(Invalid {
                field,
                reason: "élément obligatoire absent ou vide".into(),
            })
        } else {
            Ok(())
        }
    }
    let bad = |field: &'static str, reason: String| Err(Invalid { field, reason });
    required("version", &q.version)?;
    if q.version != INTERFACE_VERSION {
        return bad(
            "version",
            format!(
                "version d'interface « {} » non supportée ({INTERFACE_VERSION} attendu)",
                q.version
            ),
        );
    }
    required("date_demande", &q.date_demande)?;
    if dates::parse_iso(&q.date_demande).is_none() {
        return bad(
            "date_demande",
            format!("date « {} » invalide (AAAA-MM-JJ attendu)", q.date_demande),
        );
    }
    required("editeur", &q.editeur)?;
    required("logiciel", &q.logiciel)?;
    required("version_logiciel", &q.version_logiciel)?;
    required("numero_amc", &q.numero_amc)?;
    required("code_type_convention", &q.code_type_convention)?;
    if !q.domaine_conventionnel.is_empty() && Domaine::parse(&q.domaine_conventionnel).is_none() {
        return bad(
            "domaine_conventionnel",
            format!(
                "domaine « {} » inconnu (MCO, SSR, PSY, HAD ou vide attendu)",
                q.domaine_conventionnel
            ),
        );
    }
    required("code_norme_service", &q.code_norme_service)?;
    if q.code_norme_service != NORME_ROC {
        return bad(
            "code_norme_service",
            format!(
                "norme « {} » inconnue ({NORME_ROC} attendu)",
                q.code_norme_service
            ),
        );
    }
    if q.type_adresse.is_empty() {
        return bad("type_adresse", "au moins un type d'adresse attendu".into());
    }
    if let Some(t) = q
        .type_adresse
        .iter()
        .find(|t| t.as_str() != TYPE_URL && t.as_str() != TYPE_MEL)
    {
        return bad(
            "type_adresse",
            format!("type d'adresse « {t} » inconnu ({TYPE_URL} ou {TYPE_MEL} attendu)"),
        );
    }
    Ok(())
}

/// Versions of `amc` usable for an exchange in `domaine` (empty: any domain): SSR, PSY and
/// HAD exist only from `2.00`, so an AMC accepting only `1.04` has none for them.
fn usable_versions<'a>(amc: &'a AmcEntry, domaine: &str) -> Vec<&'a str> {
    let v2_only = match domaine {
        "" => false,
        d => match Domaine::parse(d) {
            Some(d) => d.is_v2_only(),
            // Unknown domain (refused by `validate`): no address.
            None => return Vec::new(),
        },
    };
    amc.versions
        .iter()
        .map(String::as_str)
        .filter(|v| Version::parse(v).is_some())
        .filter(|v| !v2_only || *v == Version::V2_00.label())
        .collect()
}

/// Look a (valid, see [`validate`]) query up, section 6:
///
/// 1. `numero_amc` not in the population → `01`.
/// 2. `code_type_convention` different from the AMC's, or `code_csr` not matching its
///    pattern ([`csr_matches`]) → `02`.
/// 3. No `URL` among `type_adresse` (`MEL` only: the model has no mail address) → `02`.
/// 4. Domain: the AMC must accept a version usable in that domain (SSR, PSY and HAD need
///    `2.00`; an AMC that accepts only `1.04` has addresses for MCO only) → else `02`.
/// 5. Version: a non-empty `version_norme_service` must be one of those usable versions
///    (`1.04` is accepted by a `2.00` AMC for MCO, not for SSR/PSY/HAD) → else `02`.
/// 6. Services: `services` (in order, duplicates dropped), or only `code_service` when it is
///    given and among them; a V2-only service ([`V2_ONLY_SERVICES`]) only for an AMC that
///    accepts `2.00`; no base URL in `urls` for the AMC's endpoint → no address. None left
///    → `02`.
///
/// Otherwise `00`, one `URL` address per service: `valeur` = `<base URL>/<service>` (a
/// trailing `/` of the base dropped), `version_norme_service` = `2.00` when the AMC accepts
/// `2.00`, else `1.04`.
pub fn search(
    pop: &Population,
    q: &Query,
    urls: &BTreeMap<String, String>,
    services: &[&str],
) -> Answer {
    let Some(amc) = pop.amc(&q.numero_amc) else {
        return Answer::code(CodeRetour::UnknownAmc);
    };
    if amc.type_convention != q.code_type_convention || !csr_matches(&amc.csr, &q.code_csr) {
        return Answer::code(CodeRetour::NoAddress);
    }
    if !q.type_adresse.iter().any(|t| t == TYPE_URL) {
        return Answer::code(CodeRetour::NoAddress);
    }
    let usable = usable_versions(amc, &q.domaine_conventionnel);
    if usable.is_empty()
        || (!q.version_norme_service.is_empty()
            && !usable.contains(&q.version_norme_service.as_str()))
    {
        return Answer::code(CodeRetour::NoAddress);
    }
    let Some(base) = urls.get(&amc.endpoint) else {
        return Answer::code(CodeRetour::NoAddress);
    };
    let accepts_v2 = amc.versions.iter().any(|v| v == Version::V2_00.label());
    let version = if accepts_v2 {
        Version::V2_00
    } else {
        Version::V1_04
    };
    let base = base.trim_end_matches('/');
    let mut seen: Vec<&str> = Vec::new();
    let mut adresses = Vec::new();
    for &service in services {
        if seen.contains(&service) {
            continue;
        }
        seen.push(service);
        if !q.code_service.is_empty() && q.code_service != service {
            continue;
        }
        if V2_ONLY_SERVICES.contains(&service) && !accepts_v2 {
            continue;
        }
        adresses.push(Address {
            numero_amc: amc.numero_amc.clone(),
            code_service: service.to_string(),
            type_adresse: TYPE_URL.to_string(),
            valeur: format!("{base}/{service}"),
            version_norme_service: version.label().to_string(),
        });
    }
    if adresses.is_empty() {
        return Answer::code(CodeRetour::NoAddress);
    }
    Answer {
        code_retour: CodeRetour::Found,
        adresses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = include_str!("../../scenarios/roc-v1-amc/data/population.yaml");
    const SERVICES: [&str; 4] = ["IDB", "SIM", "CLC", "DEL"];

    fn pop() -> Population {
        Population::from_yaml(SPEC).unwrap()
    }

    fn urls() -> BTreeMap<String, String> {
        [
            ("A".to_string(), "https://127.0.0.1:4001/amc-a".to_string()),
            ("B".to_string(), "https://127.0.0.1:4002/amc-b/".to_string()),
        ]
        .into_iter()
        .collect()
    }

    /// A valid query for AMC 12345678, every service, any domain and version.
    fn query() -> Query {
        Query {
            version: "R01".into(),
            date_demande: "2026-03-02".into(),
            editeur: "Éditeur Modèle".into(),
            logiciel: "GAP-X".into(),
            version_logiciel: "4.2".into(),
            numero_amc: "12345678".into(),
            code_type_convention: "RO".into(),
            code_csr: "9412".into(),
            domaine_conventionnel: String::new(),
            code_service: String::new(),
            code_norme_service: "ROC".into(),
            version_norme_service: String::new(),
            type_adresse: vec!["URL".into()],
        }
    }

    fn run(q: &Query) -> Answer {
        validate(q).expect("valid query");
        search(&pop(), q, &urls(), &SERVICES)
    }

    fn code(q: &Query) -> &'static str {
        run(q).code_retour.code()
    }

    #[test]
    fn csr_wildcards() {
        assert!(csr_matches("94????????", "9412"));
        assert!(csr_matches("94????????", "9400000001"));
        assert!(csr_matches("94????????", "94"));
        assert!(csr_matches("94????????", "9"));
        assert!(!csr_matches("94????????", "95"));
        assert!(!csr_matches("94????????", "49"));
        assert!(!csr_matches("94????????", "94000000011"));
        // Empty code: not given, matches.
        assert!(csr_matches("94????????", ""));
        assert!(csr_matches("", ""));
        assert!(!csr_matches("", "9"));
        // `?` in the code is a literal character.
        assert!(!csr_matches("9412", "9?"));
        assert!(csr_matches("9?", "9?"));
        // Characters, not bytes.
        assert!(csr_matches("é?", "éa"));
        assert!(!csr_matches("é", "éa"));
    }

    #[test]
    fn code_00_lists_every_service_with_the_endpoint_url() {
        let a = run(&query());
        assert_eq!(a.code_retour, CodeRetour::Found);
        let services: Vec<&str> = a.adresses.iter().map(|a| a.code_service.as_str()).collect();
        assert_eq!(services, SERVICES);
        let idb = &a.adresses[0];
        assert_eq!(idb.numero_amc, "12345678");
        assert_eq!(idb.type_adresse, "URL");
        assert_eq!(idb.valeur, "https://127.0.0.1:4001/amc-a/IDB");
        assert_eq!(idb.version_norme_service, "2.00");
        // Endpoint B, trailing slash of the base dropped, 1.04 only.
        let mut q = query();
        q.numero_amc = "87654321".into();
        q.code_type_convention = "SP".into();
        q.code_csr = "59".into();
        let b = run(&q);
        assert_eq!(b.code_retour, CodeRetour::Found);
        assert_eq!(b.adresses.len(), 4);
        assert_eq!(b.adresses[3].valeur, "https://127.0.0.1:4002/amc-b/DEL");
        assert!(b.adresses.iter().all(|a| a.version_norme_service == "1.04"));
    }

    #[test]
    fn a_specific_service_gives_one_address() {
        let mut q = query();
        q.code_service = "CLC".into();
        let a = run(&q);
        assert_eq!(a.code_retour, CodeRetour::Found);
        assert_eq!(a.adresses.len(), 1);
        assert_eq!(a.adresses[0].code_service, "CLC");
        assert_eq!(a.adresses[0].valeur, "https://127.0.0.1:4001/amc-a/CLC");
        // A service the endpoints do not expose, or an unknown one.
        q.code_service = "DRE".into();
        assert_eq!(code(&q), "02");
        q.code_service = "XYZ".into();
        assert_eq!(code(&q), "02");
    }

    #[test]
    fn code_01_for_an_unknown_amc() {
        let mut q = query();
        q.numero_amc = "99999999".into();
        let a = run(&q);
        assert_eq!(a.code_retour, CodeRetour::UnknownAmc);
        assert!(a.adresses.is_empty());
        q.numero_amc = "123".into();
        assert_eq!(code(&q), "01");
    }

    #[test]
    fn code_02_for_convention_csr_and_type() {
        let mut q = query();
        q.code_type_convention = "SP".into();
        assert_eq!(code(&q), "02");
        let mut q = query();
        q.code_csr = "95".into();
        assert_eq!(code(&q), "02");
        q.code_csr = "94000000011".into();
        assert_eq!(code(&q), "02");
        q.code_csr = String::new();
        assert_eq!(code(&q), "00");
        let mut q = query();
        q.type_adresse = vec!["MEL".into()];
        let a = run(&q);
        assert_eq!(a.code_retour, CodeRetour::NoAddress);
        assert!(a.adresses.is_empty());
        q.type_adresse = vec!["MEL".into(), "URL".into()];
        assert_eq!(code(&q), "00");
    }

    #[test]
    fn version_and_domain_filters() {
        // 87654321 accepts only 1.04.
        let mut q = query();
        q.numero_amc = "87654321".into();
        q.code_type_convention = "SP".into();
        q.code_csr = "5900000001".into();
        q.domaine_conventionnel = "MCO".into();
        assert_eq!(code(&q), "00");
        for d in ["SSR", "PSY", "HAD"] {
            q.domaine_conventionnel = d.into();
            assert_eq!(code(&q), "02", "{d}");
        }
        q.domaine_conventionnel = String::new();
        q.version_norme_service = "2.00".into();
        assert_eq!(code(&q), "02");
        q.version_norme_service = "1.04".into();
        assert_eq!(code(&q), "00");
        // 12345678 accepts both: every domain; 1.04 only for MCO.
        let mut q = query();
        for d in ["MCO", "SSR", "PSY", "HAD"] {
            q.domaine_conventionnel = d.into();
            assert_eq!(code(&q), "00", "{d}");
        }
        q.version_norme_service = "2.00".into();
        assert_eq!(code(&q), "00");
        q.version_norme_service = "1.04".into();
        assert_eq!(code(&q), "02");
        q.domaine_conventionnel = "MCO".into();
        let a = run(&q);
        assert_eq!(a.code_retour, CodeRetour::Found);
        assert!(a.adresses.iter().all(|a| a.version_norme_service == "2.00"));
        q.version_norme_service = "3.00".into();
        assert_eq!(code(&q), "02");
    }

    #[test]
    fn v2_only_services_and_missing_urls() {
        let services = ["IDB", "ANF", "IDB"];
        let mut q = query();
        let a = search(&pop(), &q, &urls(), &services);
        let got: Vec<&str> = a.adresses.iter().map(|a| a.code_service.as_str()).collect();
        assert_eq!(got, ["IDB", "ANF"]);
        q.numero_amc = "87654321".into();
        q.code_type_convention = "SP".into();
        q.code_csr = String::new();
        let b = search(&pop(), &q, &urls(), &services);
        assert_eq!(b.adresses.len(), 1);
        q.code_service = "ANF".into();
        assert_eq!(
            search(&pop(), &q, &urls(), &services).code_retour,
            CodeRetour::NoAddress
        );
        let only_a: BTreeMap<String, String> =
            urls().into_iter().filter(|(k, _)| k == "A").collect();
        q.code_service = String::new();
        assert_eq!(
            search(&pop(), &q, &only_a, &services).code_retour,
            CodeRetour::NoAddress
        );
    }

    #[test]
    fn validation() {
        assert_eq!(validate(&query()), Ok(()));
        let field = |f: fn(&mut Query)| {
            let mut q = query();
            f(&mut q);
            validate(&q).unwrap_err().field
        };
        assert_eq!(field(|q| q.version.clear()), "version");
        assert_eq!(field(|q| q.version = "R02".into()), "version");
        assert_eq!(field(|q| q.date_demande.clear()), "date_demande");
        assert_eq!(
            field(|q| q.date_demande = "02/03/2026".into()),
            "date_demande"
        );
        assert_eq!(
            field(|q| q.date_demande = "20260302".into()),
            "date_demande"
        );
        assert_eq!(
            field(|q| q.date_demande = "2026-02-30".into()),
            "date_demande"
        );
        assert_eq!(field(|q| q.editeur.clear()), "editeur");
        assert_eq!(field(|q| q.logiciel.clear()), "logiciel");
        assert_eq!(field(|q| q.version_logiciel.clear()), "version_logiciel");
        assert_eq!(field(|q| q.numero_amc.clear()), "numero_amc");
        assert_eq!(
            field(|q| q.code_type_convention.clear()),
            "code_type_convention"
        );
        assert_eq!(
            field(|q| q.code_norme_service.clear()),
            "code_norme_service"
        );
        assert_eq!(
            field(|q| q.code_norme_service = "SEL".into()),
            "code_norme_service"
        );
        assert_eq!(
            field(|q| q.domaine_conventionnel = "XYZ".into()),
            "domaine_conventionnel"
        );
        assert_eq!(
            field(|q| q.domaine_conventionnel = "mco".into()),
            "domaine_conventionnel"
        );
        assert_eq!(field(|q| q.type_adresse.clear()), "type_adresse");
        assert_eq!(field(|q| q.type_adresse.push("FTP".into())), "type_adresse");
        // Optional fields may be empty.
        let mut q = query();
        q.code_csr.clear();
        q.domaine_conventionnel.clear();
        q.code_service.clear();
        q.version_norme_service.clear();
        assert_eq!(validate(&q), Ok(()));
        let e = validate(&Query {
            code_norme_service: "X".into(),
            ..query()
        })
        .unwrap_err();
        assert!(e.to_string().starts_with("code_norme_service : "), "{e}");
    }

    #[test]
    fn codes_round_trip() {
        for c in [
            CodeRetour::Found,
            CodeRetour::UnknownAmc,
            CodeRetour::NoAddress,
        ] {
            assert_eq!(CodeRetour::parse(c.code()), Some(c));
        }
        assert_eq!(CodeRetour::parse("03"), None);
    }
}
