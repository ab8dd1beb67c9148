//! The lab's test population (`population.yaml`, spec section 8): the AMC numbers with the
//! endpoint serving each, and the beneficiaries with their rights and guarantees.
//!
//! Loading is strict: unknown fields are refused, amounts are decimal strings with exactly two
//! decimals, dates are `YYYY-MM-DD` (`date_naissance` is `YYYYMMDD`), every NIR key is
//! checked, and every beneficiary's AMC number must be listed under `amcs`.

use super::{Domaine, ids, money};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use time::Date;

/// The whole population file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    pub version: u32,
    pub amcs: Vec<AmcEntry>,
    pub beneficiaires: Vec<Beneficiaire>,
}

/// One AMC number, the endpoint (`A` or `B`) serving it and its annuaire keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmcEntry {
    pub numero_amc: String,
    pub endpoint: String,
    pub nom: String,
    pub type_convention: String,
    /// CSR pattern, `?` matching any character (`94????????`).
    pub csr: String,
    /// Norme versions accepted (`1.04`, `2.00`).
    pub versions: Vec<String>,
}

/// One beneficiary of an AMC.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Beneficiaire {
    pub id: String,
    pub numero_amc: String,
    pub nir: String,
    pub cle_nir: String,
    /// `YYYYMMDD`, as on the wire.
    pub date_naissance: String,
    pub rang_gemellaire: u8,
    pub numero_adherent: Option<String>,
    pub droits: Droits,
    pub domaines: Vec<Domaine>,
    pub garanties: Garanties,
    #[serde(default)]
    pub message_patient: Option<String>,
}

/// Rights period, both ends inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Droits {
    #[serde(deserialize_with = "de_date")]
    pub debut: Date,
    #[serde(deserialize_with = "de_date")]
    pub fin: Date,
}

/// Guarantee parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Garanties {
    /// Percentage of the ticket modérateur covered, 0–100.
    pub taux_tm: u32,
    /// Whether the forfait journalier is covered.
    pub forfait_journalier: bool,
    /// Private room ceiling, € per day.
    #[serde(deserialize_with = "de_amount")]
    pub plafond_cp: Decimal,
    /// Practitioner fees rate, 0–300 % (V2).
    pub taux_dh: u32,
}

impl Droits {
    /// Whether `d` lies in the period (inclusive).
    pub fn contains(&self, d: Date) -> bool {
        self.debut <= d && d <= self.fin
    }
}

fn de_date<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
    let s = String::deserialize(d)?;
    super::dates::parse_iso(&s)
        .ok_or_else(|| serde::de::Error::custom(format!("invalid date `{s}` (YYYY-MM-DD)")))
}

fn de_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    let s = String::deserialize(d)?;
    money::parse_amount(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "invalid amount `{s}` (a non-negative number with exactly two decimals, as a string)"
        ))
    })
}

impl Population {
    /// Parse and check a population file.
    pub fn from_yaml(src: &str) -> Result<Population, String> {
        let pop: Population = serde_saphyr::from_str(src).map_err(|e| e.to_string())?;
        pop.validate()?;
        Ok(pop)
    }

    /// Read and parse a population file.
    pub fn from_file(path: &std::path::Path) -> Result<Population, String> {
        let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::from_yaml(&src).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn validate(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!("unsupported population version {}", self.version));
        }
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.amcs {
            let ctx = format!("amcs[{}]", a.numero_amc);
            if !ids::is_numero_amc(&a.numero_amc) {
                return Err(format!("{ctx}: numero_amc must be 8 digits"));
            }
            if !seen.insert(a.numero_amc.as_str()) {
                return Err(format!("{ctx}: numero_amc listed twice"));
            }
            if a.endpoint.is_empty() {
                return Err(format!("{ctx}: empty endpoint"));
            }
            if !ids::is_type_convention(&a.type_convention) {
                return Err(format!(
                    "{ctx}: type_convention must be 2 uppercase letters"
                ));
            }
            if a.csr.chars().count() > 10 {
                return Err(format!("{ctx}: csr longer than 10 characters"));
            }
            if a.versions.is_empty() {
                return Err(format!("{ctx}: no versions"));
            }
            for v in &a.versions {
                if super::Version::parse(v).is_none() {
                    return Err(format!("{ctx}: unknown version `{v}`"));
                }
            }
        }
        let mut ids_seen = std::collections::BTreeSet::new();
        let mut keys = std::collections::BTreeSet::new();
        for b in &self.beneficiaires {
            let ctx = format!("beneficiaires[{}]", b.id);
            if !ids_seen.insert(b.id.as_str()) {
                return Err(format!("{ctx}: id listed twice"));
            }
            if self.amc(&b.numero_amc).is_none() {
                return Err(format!("{ctx}: numero_amc {} not under amcs", b.numero_amc));
            }
            if !ids::is_nir(&b.nir) {
                return Err(format!("{ctx}: invalid nir `{}`", b.nir));
            }
            if ids::nir_key(&b.nir).map(|k| format!("{k:02}")).as_deref() != Some(&b.cle_nir) {
                return Err(format!(
                    "{ctx}: cle_nir {} does not match the NIR",
                    b.cle_nir
                ));
            }
            if super::dates::parse_compact(&b.date_naissance).is_none() {
                return Err(format!("{ctx}: invalid date_naissance (YYYYMMDD)"));
            }
            if !(1..=9).contains(&b.rang_gemellaire) {
                return Err(format!("{ctx}: rang_gemellaire must be 1-9"));
            }
            if let Some(n) = &b.numero_adherent
                && !ids::is_numero_adherent(n)
            {
                return Err(format!("{ctx}: numero_adherent must be 1-15 alphanumerics"));
            }
            if b.droits.debut > b.droits.fin {
                return Err(format!("{ctx}: droits.debut after droits.fin"));
            }
            if b.garanties.taux_tm > 100 {
                return Err(format!("{ctx}: taux_tm above 100"));
            }
            if b.garanties.taux_dh > 300 {
                return Err(format!("{ctx}: taux_dh above 300"));
            }
            if !keys.insert((
                b.numero_amc.as_str(),
                b.nir.as_str(),
                b.date_naissance.as_str(),
                b.rang_gemellaire,
            )) {
                return Err(format!(
                    "{ctx}: same AMC, NIR, birth date and rank as another beneficiary"
                ));
            }
        }
        Ok(())
    }

    /// The entry of an AMC number.
    pub fn amc(&self, numero_amc: &str) -> Option<&AmcEntry> {
        self.amcs.iter().find(|a| a.numero_amc == numero_amc)
    }

    /// AMC entries served by an endpoint (`A`, `B`).
    pub fn amcs_of_endpoint<'a>(&'a self, endpoint: &'a str) -> impl Iterator<Item = &'a AmcEntry> {
        self.amcs.iter().filter(move |a| a.endpoint == endpoint)
    }

    /// Versions accepted by at least one AMC of `endpoint`, in first-seen order.
    pub fn endpoint_versions(&self, endpoint: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for a in self.amcs_of_endpoint(endpoint) {
            for v in &a.versions {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }

    /// Beneficiary by population id (`P01`).
    pub fn by_id(&self, id: &str) -> Option<&Beneficiaire> {
        self.beneficiaires.iter().find(|b| b.id == id)
    }

    /// The beneficiary of `numero_amc` with that NIR, birth date (`YYYYMMDD`) and rank.
    pub fn find(
        &self,
        numero_amc: &str,
        nir: &str,
        date_naissance: &str,
        rang: u8,
    ) -> Option<&Beneficiaire> {
        self.beneficiaires.iter().find(|b| {
            b.numero_amc == numero_amc
                && b.nir == nir
                && b.date_naissance == date_naissance
                && b.rang_gemellaire == rang
        })
    }

    /// The first beneficiary of `numero_amc` with that NIR and birth date, whatever the rank.
    pub fn find_ignoring_rank(
        &self,
        numero_amc: &str,
        nir: &str,
        date_naissance: &str,
    ) -> Option<&Beneficiaire> {
        self.beneficiaires.iter().find(|b| {
            b.numero_amc == numero_amc && b.nir == nir && b.date_naissance == date_naissance
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// The ROC model's test population, as the reference pack ships it.
    const SPEC: &str = include_str!("../../scenarios/roc-v1-amc/data/population.yaml");

    #[test]
    fn loads_the_spec_population() {
        let p = Population::from_yaml(SPEC).expect("population loads");
        assert_eq!(p.version, 1);
        assert_eq!(p.amcs.len(), 3);
        assert_eq!(p.beneficiaires.len(), 9);
        let p06 = p.by_id("P06").unwrap();
        assert_eq!(p06.garanties.plafond_cp, dec("80.00"));
        assert_eq!(p06.garanties.taux_dh, 150);
        assert!(p06.message_patient.as_deref().unwrap().contains("80 €"));
        assert_eq!(p06.domaines, vec![Domaine::Mco, Domaine::Psy, Domaine::Had]);
        let p02 = p.by_id("P02").unwrap();
        assert_eq!(p02.droits.fin, time::macros::date!(2026 - 02 - 28));
        assert_eq!(p.amc("87654321").unwrap().versions, vec!["1.04"]);
        assert_eq!(p.endpoint_versions("A"), vec!["1.04", "2.00"]);
        assert_eq!(p.endpoint_versions("B"), vec!["1.04"]);
        assert_eq!(p.amcs_of_endpoint("A").count(), 2);
    }

    #[test]
    fn lookups() {
        let p = Population::from_yaml(SPEC).unwrap();
        let t2 = p.find("12345678", "2920892123004", "19920805", 2).unwrap();
        assert_eq!(t2.id, "P03-2");
        let t = p
            .find_ignoring_rank("12345678", "2920892123004", "19920805")
            .unwrap();
        assert_eq!(t.id, "P03-1");
        assert!(p.find("23456789", "2920892123004", "19920805", 1).is_none());
        assert!(p.find("12345678", "1460831222333", "19460812", 1).is_none());
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        let bad = SPEC.replace("version: 1\n", "version: 1\nextra: 2\n");
        assert!(Population::from_yaml(&bad).is_err());
        let bad = SPEC.replace("cle_nir: \"08\"", "cle_nir: \"09\"");
        assert!(Population::from_yaml(&bad).unwrap_err().contains("cle_nir"));
        let bad = SPEC.replace("plafond_cp: \"60.00\"", "plafond_cp: \"60.0\"");
        assert!(Population::from_yaml(&bad).is_err());
        let bad = SPEC.replace(
            "{debut: 2026-01-01, fin: 2026-12-31}",
            "{debut: 2026-01-01, fin: 2026-13-31}",
        );
        assert!(Population::from_yaml(&bad).is_err());
        let bad = SPEC.replace("domaines: [MCO]", "domaines: [XYZ]");
        assert!(Population::from_yaml(&bad).is_err());
    }
}
