//! The AMC's rules (spec section 5): rights lookup for IDB, SIM and CLC, and the amounts of
//! SIM and CLC. Inputs are already schema-valid (lexical checks are the caller's); the
//! business checks here give `Ko` codes.

use super::population::{Beneficiaire, Droits, Garanties, Population};
use super::{
    Categorie, CodePrestation, Deviations, Domaine, Ko, TypePec, Version, dates, ids, money,
};
use rust_decimal::Decimal;
use time::Date;

/// Who the request is about and the stay's context (the `beneficiaire` and `contexte`
/// blocks, `numeroAmc`, version and category of the `entete`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demande {
    pub numero_amc: String,
    pub version: Version,
    /// `categorieEtablissement` when given.
    pub categorie: Option<Categorie>,
    pub nir: String,
    pub cle_nir: String,
    /// `YYYYMMDD`.
    pub date_naissance: String,
    pub rang: u8,
    pub numero_adherent: Option<String>,
    pub type_pec: TypePec,
    pub domaine: Domaine,
    /// `YYYY-MM-DD` (lexically valid; may be an impossible date: R05).
    pub date_entree: String,
    pub date_sortie: Option<String>,
}

/// One `prestation` line. Amounts are kept as written: their form is a business rule (R05).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prestation {
    pub code: CodePrestation,
    pub date_debut: String,
    pub date_fin: String,
    pub quantite: u32,
    pub montant_total: String,
    pub montant_amo: String,
    /// DH only; `true` when absent.
    pub praticien_optam: Option<bool>,
}

/// `periodeFacturation` of a V2 CLC, dates as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodeDemande {
    pub rang: u32,
    pub date_debut: String,
    pub date_fin: String,
    pub derniere: bool,
}

/// The beneficiary a request resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct Eligible {
    pub beneficiaire: Beneficiaire,
    /// True when the beneficiary was made up by the `unknown-beneficiary-ok` deviation.
    pub synthetic: bool,
    pub date_entree: Date,
    pub date_sortie: Option<Date>,
}

/// IDB OK answer.
#[derive(Debug, Clone, PartialEq)]
pub struct IdbOk {
    pub beneficiaire_id: String,
    pub droits: Droits,
    /// Allowed next calls, in this order: `SIM` (SEJOUR only), `CLC`, `DEL`.
    pub services: Vec<&'static str>,
}

/// SIM or CLC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Sim,
    Clc,
}

/// One computed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ligne {
    pub code: CodePrestation,
    pub montant_amc: Decimal,
    pub reste_a_charge: Decimal,
}

/// SIM or CLC OK answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Computation {
    pub eligible: Eligible,
    /// In request order.
    pub lignes: Vec<Ligne>,
    pub total_amc: Decimal,
    pub total_reste_a_charge: Decimal,
    /// Dates of the period, when the CLC carried one (validated).
    pub periode: Option<super::Periode>,
}

/// The beneficiary the `unknown-beneficiary-ok` deviation makes up: rights over 2026, every
/// domain, TM 100 %, forfait journalier covered, no private room, no practitioner fees.
pub fn synthetic_beneficiary(d: &Demande) -> Beneficiaire {
    Beneficiaire {
        id: "INCONNU".into(),
        numero_amc: d.numero_amc.clone(),
        nir: d.nir.clone(),
        cle_nir: d.cle_nir.clone(),
        date_naissance: d.date_naissance.clone(),
        rang_gemellaire: d.rang,
        numero_adherent: None,
        droits: Droits {
            debut: time::macros::date!(2026 - 01 - 01),
            fin: time::macros::date!(2026 - 12 - 31),
        },
        domaines: Domaine::ALL.to_vec(),
        garanties: Garanties {
            taux_tm: 100,
            forfait_journalier: true,
            plafond_cp: Decimal::ZERO,
            taux_dh: 0,
        },
        message_patient: None,
    }
}

/// Whether `numero_amc` is served by `endpoint` (R06 otherwise).
pub fn serves(pop: &Population, endpoint: &str, numero_amc: &str, dev: &Deviations) -> bool {
    match pop.amc(numero_amc) {
        Some(a) => dev.any_amc_served || a.endpoint == endpoint,
        None => false,
    }
}

/// The IDB checks, first failing wins (section 5): R06, R05 (NIR key, impossible dates,
/// including `extra_dates` and an end before its start), R01, R04, R02, R03.
/// `extra_dates` are further `YYYY-MM-DD` pairs `(start, end)` of the request (prestation
/// lines, billing period) whose calendar validity and order are part of R05.
pub fn check_rights(
    pop: &Population,
    endpoint: &str,
    d: &Demande,
    extra_dates: &[(&str, &str)],
    dev: &Deviations,
) -> Result<Eligible, Ko> {
    // 1. R06
    if !serves(pop, endpoint, &d.numero_amc, dev) {
        return Err(Ko::R06);
    }
    // 2. R05: NIR key, impossible dates.
    if !dev.nir_key_unchecked && !ids::nir_key_matches(&d.nir, &d.cle_nir) {
        return Err(Ko::R05);
    }
    if dates::parse_compact(&d.date_naissance).is_none() {
        return Err(Ko::R05);
    }
    let date_entree = dates::parse_iso(&d.date_entree).ok_or(Ko::R05)?;
    let date_sortie = match &d.date_sortie {
        Some(s) => Some(dates::parse_iso(s).ok_or(Ko::R05)?),
        None => None,
    };
    if date_sortie.is_some_and(|s| s < date_entree) {
        return Err(Ko::R05);
    }
    for (start, end) in extra_dates {
        let a = dates::parse_iso(start).ok_or(Ko::R05)?;
        let b = dates::parse_iso(end).ok_or(Ko::R05)?;
        if b < a {
            return Err(Ko::R05);
        }
    }
    // 3. R01
    let (r01, r02) = if dev.r01_r02_swapped {
        (Ko::R02, Ko::R01)
    } else {
        (Ko::R01, Ko::R02)
    };
    let found = if dev.twins_confused {
        pop.find_ignoring_rank(&d.numero_amc, &d.nir, &d.date_naissance)
    } else {
        pop.find(&d.numero_amc, &d.nir, &d.date_naissance, d.rang)
    };
    let (beneficiaire, synthetic) = match found {
        Some(b) => (b.clone(), false),
        None if dev.unknown_beneficiary_ok => (synthetic_beneficiary(d), true),
        None => return Err(r01),
    };
    // 4. R04
    if !dev.adherent_unchecked
        && let (Some(given), Some(known)) = (&d.numero_adherent, &beneficiaire.numero_adherent)
        && given != known
    {
        return Err(Ko::R04);
    }
    // 5. R02
    let droits = beneficiaire.droits;
    let open = if dev.rights_end_exclusive {
        droits.debut <= date_entree && date_entree < droits.fin
    } else {
        droits.contains(date_entree)
    };
    if !open {
        return Err(r02);
    }
    // 6. R03
    if !beneficiaire.domaines.contains(&d.domaine) {
        return Err(Ko::R03);
    }
    if d.version == Version::V1_04
        && !dev.v2_domain_in_v1
        && (d.domaine.is_v2_only() || d.categorie.is_some())
    {
        return Err(Ko::R03);
    }
    Ok(Eligible {
        beneficiaire,
        synthetic,
        date_entree,
        date_sortie,
    })
}

/// IDB: the checks, then the rights period and the services that may follow.
pub fn idb(pop: &Population, endpoint: &str, d: &Demande, dev: &Deviations) -> Result<IdbOk, Ko> {
    let e = check_rights(pop, endpoint, d, &[], dev)?;
    let mut services = Vec::new();
    if d.type_pec == TypePec::Sejour {
        services.push("SIM");
    }
    services.push("CLC");
    services.push("DEL");
    Ok(IdbOk {
        beneficiaire_id: e.beneficiaire.id.clone(),
        droits: e.beneficiaire.droits,
        services,
    })
}

/// SIM and CLC: the IDB checks (prestation and period dates included in R05), then R09 (SIM
/// on ACE), R07 (DH outside a `2.00` request from an EXOQN establishment), R05 on amounts
/// (other than two decimals, `montantAmo > montantTotal`), then the lines and totals.
pub fn compute(
    pop: &Population,
    endpoint: &str,
    d: &Demande,
    prestations: &[Prestation],
    periode: Option<&PeriodeDemande>,
    op: Operation,
    dev: &Deviations,
) -> Result<Computation, Ko> {
    let mut extra: Vec<(&str, &str)> = prestations
        .iter()
        .map(|p| (p.date_debut.as_str(), p.date_fin.as_str()))
        .collect();
    if let Some(p) = periode {
        extra.push((&p.date_debut, &p.date_fin));
    }
    let eligible = check_rights(pop, endpoint, d, &extra, dev)?;
    if op == Operation::Sim && d.type_pec == TypePec::Ace && !dev.sim_on_ace {
        return Err(Ko::R09);
    }
    let dh_allowed = d.version == Version::V2_00 && d.categorie == Some(Categorie::ExOqn);
    if !dh_allowed && prestations.iter().any(|p| p.code == CodePrestation::Dh) {
        return Err(Ko::R07);
    }
    let mut amounts = Vec::with_capacity(prestations.len());
    for p in prestations {
        let total = money::parse_amount(&p.montant_total).ok_or(Ko::R05)?;
        let amo = money::parse_amount(&p.montant_amo).ok_or(Ko::R05)?;
        if amo > total {
            return Err(Ko::R05);
        }
        amounts.push((total, amo));
    }
    let g = &eligible.beneficiaire.garanties;
    let lignes: Vec<Ligne> = prestations
        .iter()
        .zip(&amounts)
        .map(|(p, (total, amo))| compute_line(p, *total, *amo, g, dev))
        .collect();
    let (total_amc, total_reste_a_charge) = totals(&lignes, dev);
    let periode = periode.map(|p| super::Periode {
        rang: p.rang,
        // Validated by check_rights.
        date_debut: dates::parse_iso(&p.date_debut).unwrap_or(eligible.date_entree),
        date_fin: dates::parse_iso(&p.date_fin).unwrap_or(eligible.date_entree),
        derniere: p.derniere,
    });
    Ok(Computation {
        eligible,
        lignes,
        total_amc,
        total_reste_a_charge,
        periode,
    })
}

/// DH rate: `tauxDh` for an OPTAM practitioner, `min(tauxDh, 100) − 20` (never below 0)
/// otherwise.
pub fn dh_rate(taux_dh: u32, optam: bool) -> u32 {
    if optam {
        taux_dh
    } else {
        taux_dh.min(100).saturating_sub(20)
    }
}

/// One line: `reste = montantTotal − montantAmo`, then TM/FJ/CP/DH/PF as in section 5, and
/// `resteACharge = reste − montantAmc`.
pub fn compute_line(
    p: &Prestation,
    total: Decimal,
    amo: Decimal,
    g: &Garanties,
    dev: &Deviations,
) -> Ligne {
    let reste = total - amo;
    let pct = |rate: u32| {
        if dev.float_rounding {
            money::percent_f64(reste, rate)
        } else {
            money::percent(reste, rate)
        }
    };
    let montant_amc = match p.code {
        CodePrestation::Tm => pct(g.taux_tm),
        CodePrestation::Fj => {
            if g.forfait_journalier {
                reste
            } else {
                Decimal::ZERO
            }
        }
        CodePrestation::Cp => {
            if dev.cp_uncapped {
                reste
            } else {
                reste.min(g.plafond_cp * Decimal::from(p.quantite))
            }
        }
        CodePrestation::Dh => {
            let optam = p.praticien_optam.unwrap_or(true) || dev.optam_ignored;
            let rate = dh_rate(g.taux_dh, optam);
            reste.min(pct(rate))
        }
        CodePrestation::Pf => reste,
    };
    Ligne {
        code: p.code,
        montant_amc,
        reste_a_charge: reste - montant_amc,
    }
}

/// `(totalAmc, totalResteACharge)`: the sums of the lines.
pub fn totals(lignes: &[Ligne], dev: &Deviations) -> (Decimal, Decimal) {
    let counted = if dev.totals_not_sum && lignes.len() > 1 {
        &lignes[..lignes.len() - 1]
    } else {
        lignes
    };
    let amc = counted.iter().map(|l| l.montant_amc).sum();
    let reste = lignes.iter().map(|l| l.reste_a_charge).sum();
    (amc, reste)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn pop() -> Population {
        Population::from_yaml(include_str!(
            "../../scenarios/roc-v1-amc/data/population.yaml"
        ))
        .unwrap()
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    /// P01, MCO SEJOUR on 2026-03-02, 1.04.
    fn p01() -> Demande {
        Demande {
            numero_amc: "12345678".into(),
            version: Version::V1_04,
            categorie: None,
            nir: "1850775123456".into(),
            cle_nir: "08".into(),
            date_naissance: "19850712".into(),
            rang: 1,
            numero_adherent: Some("A00012345".into()),
            type_pec: TypePec::Sejour,
            domaine: Domaine::Mco,
            date_entree: "2026-03-02".into(),
            date_sortie: Some("2026-03-05".into()),
        }
    }

    fn who(
        amc: &str,
        nir: &str,
        cle: &str,
        naissance: &str,
        rang: u8,
        adherent: Option<&str>,
    ) -> Demande {
        Demande {
            numero_amc: amc.into(),
            nir: nir.into(),
            cle_nir: cle.into(),
            date_naissance: naissance.into(),
            rang,
            numero_adherent: adherent.map(Into::into),
            ..p01()
        }
    }

    fn line(code: &str, q: u32, total: &str, amo: &str) -> Prestation {
        Prestation {
            code: CodePrestation::parse(code).unwrap(),
            date_debut: "2026-03-02".into(),
            date_fin: "2026-03-05".into(),
            quantite: q,
            montant_total: total.into(),
            montant_amo: amo.into(),
            praticien_optam: None,
        }
    }

    const NO: Deviations = Deviations {
        float_rounding: false,
        r01_r02_swapped: false,
        unknown_beneficiary_ok: false,
        twins_confused: false,
        totals_not_sum: false,
        nir_key_unchecked: false,
        adherent_unchecked: false,
        any_amc_served: false,
        cp_uncapped: false,
        rights_end_exclusive: false,
        sim_on_ace: false,
        v2_domain_in_v1: false,
        double_del_accepted: false,
        r08_unchecked: false,
        last_period_ignored: false,
        dre_cancelled_engagement: false,
        dre_duplicate_number: false,
        dre_twice_invoiced: false,
        dre_amounts_unchecked: false,
        del_invoiced: false,
        anf_paid: false,
        anf_engagement_stays_invoiced: false,
        rsp_early_invoice_paid: false,
        rsp_amount_wrong: false,
        optam_ignored: false,
    };

    fn idb_a(d: &Demande) -> Result<IdbOk, Ko> {
        idb(&pop(), "A", d, &NO)
    }

    #[test]
    fn idb_ok_lists_services() {
        let ok = idb_a(&p01()).unwrap();
        assert_eq!(ok.beneficiaire_id, "P01");
        assert_eq!(ok.services, vec!["SIM", "CLC", "DEL"]);
        assert_eq!(ok.droits.debut, time::macros::date!(2026 - 01 - 01));
        let ace = Demande {
            type_pec: TypePec::Ace,
            ..p01()
        };
        assert_eq!(idb_a(&ace).unwrap().services, vec!["CLC", "DEL"]);
        // Adherent number is optional.
        let no_adh = Demande {
            numero_adherent: None,
            ..p01()
        };
        assert!(idb_a(&no_adh).is_ok());
    }

    #[test]
    fn r06_amc_not_served() {
        let d = who("87654321", "1990259000123", "11", "19990210", 1, None);
        assert_eq!(idb_a(&d), Err(Ko::R06));
        assert!(idb(&pop(), "B", &d, &NO).is_ok());
        let d = Demande {
            numero_amc: "99999999".into(),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R06));
        // R06 wins over everything else.
        let d = Demande {
            numero_amc: "99999999".into(),
            cle_nir: "00".into(),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R06));
    }

    #[test]
    fn any_amc_served_deviation() {
        let dev = Deviations {
            any_amc_served: true,
            ..NO
        };
        let d = who("87654321", "1990259000123", "11", "19990210", 1, None);
        assert!(idb(&pop(), "A", &d, &dev).is_ok());
        let d = Demande {
            numero_amc: "99999999".into(),
            ..p01()
        };
        assert_eq!(idb(&pop(), "A", &d, &dev), Err(Ko::R06));
    }

    #[test]
    fn r05_nir_key_and_dates() {
        let d = Demande {
            cle_nir: "09".into(),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R05));
        let dev = Deviations {
            nir_key_unchecked: true,
            ..NO
        };
        assert!(idb(&pop(), "A", &d, &dev).is_ok());
        let d = Demande {
            date_entree: "2026-02-30".into(),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R05));
        assert_eq!(idb(&pop(), "A", &d, &dev), Err(Ko::R05));
        let d = Demande {
            date_naissance: "19850231".into(),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R05));
        let d = Demande {
            date_sortie: Some("2026-04-31".into()),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R05));
        let d = Demande {
            date_sortie: Some("2026-03-01".into()),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R05));
        // R05 before R01: unknown beneficiary with a wrong key.
        let d = who("12345678", "1460831222333", "83", "19460812", 1, None);
        assert_eq!(idb_a(&d), Err(Ko::R05));
        // Corsica key.
        let d = who("12345678", "285112A123456", "79", "19851130", 1, None);
        assert_eq!(idb_a(&d).unwrap().beneficiaire_id, "P07");
    }

    #[test]
    fn r01_unknown() {
        let d = who("12345678", "1460831222333", "82", "19460812", 1, None);
        assert_eq!(idb_a(&d), Err(Ko::R01));
        // Known NIR, other birth date.
        let d = Demande {
            date_naissance: "19850713".into(),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R01));
        // Known to another AMC of the same endpoint only.
        let d = Demande {
            numero_amc: "23456789".into(),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R01));
    }

    #[test]
    fn unknown_beneficiary_ok_deviation() {
        let dev = Deviations {
            unknown_beneficiary_ok: true,
            ..NO
        };
        let d = who("12345678", "1460831222333", "82", "19460812", 1, Some("X1"));
        let ok = idb(&pop(), "A", &d, &dev).unwrap();
        assert_eq!(ok.droits.fin, time::macros::date!(2026 - 12 - 31));
        assert_eq!(ok.services, vec!["SIM", "CLC", "DEL"]);
        let c = compute(
            &pop(),
            "A",
            &d,
            &[line("TM", 1, "100.00", "80.00")],
            None,
            Operation::Sim,
            &dev,
        )
        .unwrap();
        assert_eq!(c.total_amc, dec("20.00"));
        // Known beneficiaries unaffected.
        assert_eq!(
            idb(&pop(), "A", &p01(), &dev).unwrap().beneficiaire_id,
            "P01"
        );
    }

    #[test]
    fn r04_adherent() {
        let d = Demande {
            numero_adherent: Some("A00099999".into()),
            ..p01()
        };
        assert_eq!(idb_a(&d), Err(Ko::R04));
        let dev = Deviations {
            adherent_unchecked: true,
            ..NO
        };
        assert!(idb(&pop(), "A", &d, &dev).is_ok());
    }

    #[test]
    fn r02_rights_and_inclusive_end() {
        let d = who("12345678", "2900133012345", "21", "19900115", 1, None);
        assert_eq!(idb_a(&d), Err(Ko::R02));
        let last = Demande {
            date_entree: "2026-02-28".into(),
            date_sortie: None,
            ..d.clone()
        };
        assert!(idb_a(&last).is_ok());
        let dev = Deviations {
            rights_end_exclusive: true,
            ..NO
        };
        assert_eq!(idb(&pop(), "A", &last, &dev), Err(Ko::R02));
        // First day is inside: P05 from 2026-03-01.
        let p05 = who("12345678", "2011275000111", "41", "20011203", 1, None);
        let first = Demande {
            date_entree: "2026-03-01".into(),
            ..p05.clone()
        };
        assert!(idb_a(&first).is_ok());
        assert!(idb(&pop(), "A", &first, &dev).is_ok());
        let before = Demande {
            date_entree: "2026-02-28".into(),
            date_sortie: None,
            ..p05
        };
        assert_eq!(idb_a(&before), Err(Ko::R02));
    }

    #[test]
    fn r01_r02_swapped_deviation() {
        let dev = Deviations {
            r01_r02_swapped: true,
            ..NO
        };
        let unknown = who("12345678", "1460831222333", "82", "19460812", 1, None);
        assert_eq!(idb(&pop(), "A", &unknown, &dev), Err(Ko::R02));
        let closed = who("12345678", "2900133012345", "21", "19900115", 1, None);
        assert_eq!(idb(&pop(), "A", &closed, &dev), Err(Ko::R01));
    }

    #[test]
    fn r03_domain() {
        // P02-like: P03-1 covers MCO only; in 2.00 SSR is a V2 domain it does not cover.
        let t1 = who("12345678", "2920892123004", "12", "19920805", 1, None);
        let ssr = Demande {
            version: Version::V2_00,
            domaine: Domaine::Ssr,
            ..t1
        };
        assert_eq!(idb_a(&ssr), Err(Ko::R03));
        // P01 covers SSR: fine in 2.00, R03 in 1.04.
        let p01_ssr = Demande {
            domaine: Domaine::Ssr,
            ..p01()
        };
        assert_eq!(idb_a(&p01_ssr), Err(Ko::R03));
        assert!(
            idb_a(&Demande {
                version: Version::V2_00,
                ..p01_ssr.clone()
            })
            .is_ok()
        );
        // categorieEtablissement in 1.04.
        let cat = Demande {
            categorie: Some(Categorie::ExDg),
            ..p01()
        };
        assert_eq!(idb_a(&cat), Err(Ko::R03));
        assert!(
            idb_a(&Demande {
                version: Version::V2_00,
                ..cat.clone()
            })
            .is_ok()
        );
        let dev = Deviations {
            v2_domain_in_v1: true,
            ..NO
        };
        assert!(idb(&pop(), "A", &p01_ssr, &dev).is_ok());
        assert!(idb(&pop(), "A", &cat, &dev).is_ok());
        // Not covered stays R03 under the deviation.
        let t1_ssr = Demande {
            domaine: Domaine::Ssr,
            ..who("12345678", "2920892123004", "12", "19920805", 1, None)
        };
        assert_eq!(idb(&pop(), "A", &t1_ssr, &dev), Err(Ko::R03));
    }

    #[test]
    fn twins() {
        let t2 = who(
            "12345678",
            "2920892123004",
            "12",
            "19920805",
            2,
            Some("B00000032"),
        );
        assert_eq!(idb_a(&t2).unwrap().beneficiaire_id, "P03-2");
        let t1 = Demande {
            rang: 1,
            numero_adherent: Some("B00000031".into()),
            ..t2.clone()
        };
        assert_eq!(idb_a(&t1).unwrap().beneficiaire_id, "P03-1");
        let t3 = Demande {
            rang: 3,
            numero_adherent: None,
            ..t2.clone()
        };
        assert_eq!(idb_a(&t3), Err(Ko::R01));
        let dev = Deviations {
            twins_confused: true,
            ..NO
        };
        let t2_no_adh = Demande {
            numero_adherent: None,
            ..t2.clone()
        };
        assert_eq!(
            idb(&pop(), "A", &t2_no_adh, &dev).unwrap().beneficiaire_id,
            "P03-1"
        );
        // Twin 2 computes at 80 %, confused with twin 1 at 100 %.
        let tm = [line("TM", 1, "100.00", "50.00")];
        let ok = compute(&pop(), "A", &t2_no_adh, &tm, None, Operation::Sim, &NO).unwrap();
        assert_eq!(ok.total_amc, dec("40.00"));
        let bad = compute(&pop(), "A", &t2_no_adh, &tm, None, Operation::Sim, &dev).unwrap();
        assert_eq!(bad.total_amc, dec("50.00"));
    }

    fn sim(d: &Demande, lines: &[Prestation]) -> Result<Computation, Ko> {
        compute(&pop(), "A", d, lines, None, Operation::Sim, &NO)
    }

    #[test]
    fn r09_sim_on_ace() {
        let ace = Demande {
            type_pec: TypePec::Ace,
            ..p01()
        };
        let l = [line("TM", 1, "30.00", "20.00")];
        assert_eq!(sim(&ace, &l), Err(Ko::R09));
        assert!(compute(&pop(), "A", &ace, &l, None, Operation::Clc, &NO).is_ok());
        let dev = Deviations {
            sim_on_ace: true,
            ..NO
        };
        assert!(compute(&pop(), "A", &ace, &l, None, Operation::Sim, &dev).is_ok());
        // The IDB checks come first.
        let ace_bad_key = Demande {
            cle_nir: "00".into(),
            ..ace
        };
        assert_eq!(sim(&ace_bad_key, &l), Err(Ko::R05));
    }

    fn p06() -> Demande {
        who("23456789", "1680344555666", "84", "19680305", 1, None)
    }

    #[test]
    fn r07_dh_only_v2_exoqn() {
        let dh = [line("DH", 1, "200.00", "0.00")];
        assert_eq!(sim(&p06(), &dh), Err(Ko::R07));
        let v2_dg = Demande {
            version: Version::V2_00,
            categorie: Some(Categorie::ExDg),
            ..p06()
        };
        assert_eq!(sim(&v2_dg, &dh), Err(Ko::R07));
        let v2_none = Demande {
            version: Version::V2_00,
            ..p06()
        };
        assert_eq!(sim(&v2_none, &dh), Err(Ko::R07));
        let v2_oqn = Demande {
            version: Version::V2_00,
            categorie: Some(Categorie::ExOqn),
            ..p06()
        };
        assert!(sim(&v2_oqn, &dh).is_ok());
        // R09 before R07.
        let ace = Demande {
            type_pec: TypePec::Ace,
            ..v2_dg
        };
        assert_eq!(sim(&ace, &dh), Err(Ko::R09));
    }

    #[test]
    fn r05_amounts() {
        for (t, a) in [
            ("12.5", "0.00"),
            ("12.500", "0.00"),
            ("12", "0.00"),
            ("12.50", "1.0"),
            ("10.00", "10.01"),
            ("-1.00", "0.00"),
        ] {
            assert_eq!(
                sim(
                    &p01(),
                    &[line("TM", 1, "5.00", "1.00"), line("TM", 1, t, a)]
                ),
                Err(Ko::R05),
                "{t} {a}"
            );
        }
        // Equal is fine.
        assert!(sim(&p01(), &[line("TM", 1, "10.00", "10.00")]).is_ok());
        // R07 comes before the amounts.
        assert_eq!(sim(&p01(), &[line("DH", 1, "1.0", "0.00")]), Err(Ko::R07));
        // Impossible line date.
        let mut l = line("TM", 1, "10.00", "0.00");
        l.date_fin = "2026-02-30".into();
        assert_eq!(sim(&p01(), &[l]), Err(Ko::R05));
    }

    fn p04() -> Demande {
        who("12345678", "1551013456789", "55", "19551020", 1, None)
    }

    #[test]
    fn tm_half_cent_rounding() {
        let c = sim(&p04(), &[line("TM", 1, "124.69", "100.00")]).unwrap();
        assert_eq!(c.lignes[0].montant_amc, dec("12.35"));
        assert_eq!(c.lignes[0].reste_a_charge, dec("12.34"));
        let dev = Deviations {
            float_rounding: true,
            ..NO
        };
        let f = compute(
            &pop(),
            "A",
            &p04(),
            &[line("TM", 1, "124.69", "100.00")],
            None,
            Operation::Sim,
            &dev,
        )
        .unwrap();
        assert_eq!(f.lignes[0].montant_amc, dec("12.34"));
        assert_eq!(f.lignes[0].reste_a_charge, dec("12.35"));
    }

    #[test]
    fn lines_of_p01_and_p04() {
        let lines = [
            line("TM", 1, "120.00", "96.00"),
            line("FJ", 3, "60.00", "0.00"),
            line("CP", 3, "200.00", "0.00"),
            line("PF", 1, "24.00", "0.00"),
        ];
        let c = sim(&p01(), &lines).unwrap();
        let amc: Vec<_> = c
            .lignes
            .iter()
            .map(|l| money::format(l.montant_amc))
            .collect();
        assert_eq!(amc, ["24.00", "60.00", "180.00", "24.00"]);
        assert_eq!(c.total_amc, dec("288.00"));
        assert_eq!(c.total_reste_a_charge, dec("20.00"));
        // P04: TM 50 %, no FJ, CP ceiling 0.
        let c = sim(&p04(), &lines).unwrap();
        let amc: Vec<_> = c
            .lignes
            .iter()
            .map(|l| money::format(l.montant_amc))
            .collect();
        assert_eq!(amc, ["12.00", "0.00", "0.00", "24.00"]);
        let rac: Vec<_> = c
            .lignes
            .iter()
            .map(|l| money::format(l.reste_a_charge))
            .collect();
        assert_eq!(rac, ["12.00", "60.00", "200.00", "0.00"]);
        assert_eq!(c.total_amc, dec("36.00"));
        assert_eq!(c.total_reste_a_charge, dec("272.00"));
    }

    #[test]
    fn cp_cap() {
        let p05 = who("12345678", "2011275000111", "41", "20011203", 1, None);
        // Cap 45.50 × 3 = 136.50.
        let c = sim(&p05, &[line("CP", 3, "150.00", "0.00")]).unwrap();
        assert_eq!(c.lignes[0].montant_amc, dec("136.50"));
        assert_eq!(c.lignes[0].reste_a_charge, dec("13.50"));
        // Under the cap: all of it.
        let c = sim(&p05, &[line("CP", 3, "120.00", "0.00")]).unwrap();
        assert_eq!(c.lignes[0].montant_amc, dec("120.00"));
        let dev = Deviations {
            cp_uncapped: true,
            ..NO
        };
        let c = compute(
            &pop(),
            "A",
            &p05,
            &[line("CP", 3, "150.00", "0.00")],
            None,
            Operation::Sim,
            &dev,
        )
        .unwrap();
        assert_eq!(c.lignes[0].montant_amc, dec("150.00"));
    }

    #[test]
    fn dh_rates() {
        assert_eq!(dh_rate(150, true), 150);
        assert_eq!(dh_rate(150, false), 80);
        assert_eq!(dh_rate(100, false), 80);
        assert_eq!(dh_rate(50, false), 30);
        assert_eq!(dh_rate(10, false), 0);
        assert_eq!(dh_rate(0, false), 0);
        let v2_oqn = Demande {
            version: Version::V2_00,
            categorie: Some(Categorie::ExOqn),
            ..p06()
        };
        let mut non_optam = line("DH", 1, "200.00", "50.00");
        non_optam.praticien_optam = Some(false);
        let mut optam = line("DH", 1, "200.00", "50.00");
        optam.praticien_optam = Some(true);
        let default = line("DH", 1, "33.33", "0.00");
        let c = sim(&v2_oqn, &[optam, non_optam, default]).unwrap();
        // OPTAM 150 %: capped at the reste 150.00.
        assert_eq!(c.lignes[0].montant_amc, dec("150.00"));
        assert_eq!(c.lignes[0].reste_a_charge, dec("0.00"));
        // Non-OPTAM: 80 % of 150.00.
        assert_eq!(c.lignes[1].montant_amc, dec("120.00"));
        assert_eq!(c.lignes[1].reste_a_charge, dec("30.00"));
        // Default OPTAM: min(33.33, 49.995 → 50.00) = 33.33.
        assert_eq!(c.lignes[2].montant_amc, dec("33.33"));
        // P01 has taux_dh 100; non-OPTAM gives 80 %, never negative with taux 0 (P04).
        let p04_oqn = Demande {
            version: Version::V2_00,
            categorie: Some(Categorie::ExOqn),
            ..p04()
        };
        let mut l = line("DH", 1, "100.00", "0.00");
        l.praticien_optam = Some(false);
        let c = sim(&p04_oqn, &[l]).unwrap();
        assert_eq!(c.lignes[0].montant_amc, dec("0.00"));
        assert_eq!(c.lignes[0].reste_a_charge, dec("100.00"));
    }

    #[test]
    fn dh_half_cent() {
        // P06 non-OPTAM, rate min(150, 100) − 20 = 80 %: 10.01 × 80 % = 8.008 → 8.01.
        let v2_oqn = Demande {
            version: Version::V2_00,
            categorie: Some(Categorie::ExOqn),
            ..p06()
        };
        let mut l = line("DH", 1, "10.01", "0.00");
        l.praticien_optam = Some(false);
        let c = sim(&v2_oqn, &[l]).unwrap();
        assert_eq!(c.lignes[0].montant_amc, dec("8.01"));
    }

    #[test]
    fn optam_ignored_deviation() {
        let v2_oqn = Demande {
            version: Version::V2_00,
            categorie: Some(Categorie::ExOqn),
            ..p06()
        };
        let mut non_optam = line("DH", 1, "200.00", "50.00");
        non_optam.praticien_optam = Some(false);
        let dev = Deviations {
            optam_ignored: true,
            ..NO
        };
        let lines = [non_optam, line("TM", 1, "100.00", "80.00")];
        let c = compute(&pop(), "A", &v2_oqn, &lines, None, Operation::Sim, &dev).unwrap();
        // 150 % (OPTAM) capped at the reste instead of 80 %: 150.00, not 120.00.
        assert_eq!(c.lignes[0].montant_amc, dec("150.00"));
        assert_eq!(c.lignes[1].montant_amc, dec("20.00"));
        assert_eq!(
            sim(&v2_oqn, &lines).unwrap().lignes[0].montant_amc,
            dec("120.00")
        );
    }

    #[test]
    fn totals_are_sums_and_deviation() {
        let lines = [
            line("TM", 1, "120.00", "96.00"),
            line("PF", 1, "24.00", "0.00"),
        ];
        let c = sim(&p01(), &lines).unwrap();
        assert_eq!(c.total_amc, dec("48.00"));
        let dev = Deviations {
            totals_not_sum: true,
            ..NO
        };
        let c = compute(&pop(), "A", &p01(), &lines, None, Operation::Sim, &dev).unwrap();
        assert_eq!(c.total_amc, dec("24.00"));
        assert_eq!(c.total_reste_a_charge, dec("0.00"));
        // One line: unaffected.
        let c = compute(&pop(), "A", &p01(), &lines[..1], None, Operation::Sim, &dev).unwrap();
        assert_eq!(c.total_amc, dec("24.00"));
    }

    #[test]
    fn periode_dates_are_checked() {
        let v2 = Demande {
            version: Version::V2_00,
            ..p01()
        };
        let per = PeriodeDemande {
            rang: 1,
            date_debut: "2026-03-02".into(),
            date_fin: "2026-03-31".into(),
            derniere: false,
        };
        let l = [line("TM", 1, "10.00", "0.00")];
        let c = compute(&pop(), "A", &v2, &l, Some(&per), Operation::Clc, &NO).unwrap();
        assert_eq!(
            c.periode.unwrap().date_fin,
            time::macros::date!(2026 - 03 - 31)
        );
        let bad = PeriodeDemande {
            date_fin: "2026-02-31".into(),
            ..per
        };
        assert_eq!(
            compute(&pop(), "A", &v2, &l, Some(&bad), Operation::Clc, &NO),
            Err(Ko::R05)
        );
    }
}
