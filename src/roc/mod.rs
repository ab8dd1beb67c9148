//! ROC model business rules as pure functions over a neutral model: population and rights
//! lookup, amount computation (decimal, never floats), engagement registry.
//!
//! Nothing here does I/O, reads the clock or draws random numbers: callers pass dates and
//! generated identifiers in. The wire mapping (element names, namespaces) lives with the
//! callers (`mirror::amc`). Deliberate deviations from the rules, used by the defect switches
//! of the reference AMC, are passed as a [`Deviations`] value (its default is the spec).

pub mod annuaire;
pub mod dates;
pub mod ids;
pub mod money;
pub mod population;
pub mod registry;
pub mod rules;

pub use population::{AmcEntry, Beneficiaire, Droits, Garanties, Population};
pub use registry::{
    DreDemande, Engagement, EngagementState, Facture, FactureState, Periode, Registry, Reglement,
    Settlement,
};
pub use rules::{
    Computation, Demande, IdbOk, Ligne, Operation, Prestation, check_rights, compute, idb,
};

use serde::Deserialize;

/// Norme version of a SEL exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// `1.04` (V1).
    V1_04,
    /// `2.00` (V2).
    V2_00,
}

impl Version {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "1.04" => Some(Self::V1_04),
            "2.00" => Some(Self::V2_00),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::V1_04 => "1.04",
            Self::V2_00 => "2.00",
        }
    }
}

/// Care domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Domaine {
    #[serde(rename = "MCO")]
    Mco,
    #[serde(rename = "SSR")]
    Ssr,
    #[serde(rename = "PSY")]
    Psy,
    #[serde(rename = "HAD")]
    Had,
}

impl Domaine {
    pub const ALL: [Domaine; 4] = [Domaine::Mco, Domaine::Ssr, Domaine::Psy, Domaine::Had];
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "MCO" => Some(Self::Mco),
            "SSR" => Some(Self::Ssr),
            "PSY" => Some(Self::Psy),
            "HAD" => Some(Self::Had),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Mco => "MCO",
            Self::Ssr => "SSR",
            Self::Psy => "PSY",
            Self::Had => "HAD",
        }
    }
    /// SSR, PSY and HAD exist only from norme `2.00`.
    pub fn is_v2_only(self) -> bool {
        self != Self::Mco
    }
}

/// `typePriseEnCharge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypePec {
    Sejour,
    Ace,
}

impl TypePec {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "SEJOUR" => Some(Self::Sejour),
            "ACE" => Some(Self::Ace),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Sejour => "SEJOUR",
            Self::Ace => "ACE",
        }
    }
}

/// `categorieEtablissement` (V2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Categorie {
    ExDg,
    ExOqn,
}

impl Categorie {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "EXDG" => Some(Self::ExDg),
            "EXOQN" => Some(Self::ExOqn),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::ExDg => "EXDG",
            Self::ExOqn => "EXOQN",
        }
    }
}

/// Prestation line code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePrestation {
    /// Ticket modérateur.
    Tm,
    /// Forfait journalier.
    Fj,
    /// Chambre particulière.
    Cp,
    /// Dépassement d'honoraires (V2, EXOQN).
    Dh,
    /// Participation forfaitaire.
    Pf,
}

impl CodePrestation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TM" => Some(Self::Tm),
            "FJ" => Some(Self::Fj),
            "CP" => Some(Self::Cp),
            "DH" => Some(Self::Dh),
            "PF" => Some(Self::Pf),
            _ => None,
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Self::Tm => "TM",
            Self::Fj => "FJ",
            Self::Cp => "CP",
            Self::Dh => "DH",
            Self::Pf => "PF",
        }
    }
}

/// A business refusal (`statut` KO) with its code; [`Ko::libelle`] gives the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ko {
    R01,
    R02,
    R03,
    R04,
    R05,
    R06,
    R07,
    R08,
    R09,
    R10,
    R11,
    R12,
    R20,
    R21,
    R22,
    R23,
    R24,
    R25,
    R26,
}

impl Ko {
    pub fn code(self) -> &'static str {
        match self {
            Self::R01 => "R01",
            Self::R02 => "R02",
            Self::R03 => "R03",
            Self::R04 => "R04",
            Self::R05 => "R05",
            Self::R06 => "R06",
            Self::R07 => "R07",
            Self::R08 => "R08",
            Self::R09 => "R09",
            Self::R10 => "R10",
            Self::R11 => "R11",
            Self::R12 => "R12",
            Self::R20 => "R20",
            Self::R21 => "R21",
            Self::R22 => "R22",
            Self::R23 => "R23",
            Self::R24 => "R24",
            Self::R25 => "R25",
            Self::R26 => "R26",
        }
    }
    /// Wording of the code: the spec's where it gives one (section 5), ours otherwise
    /// (R10–R12, R20–R24).
    pub fn libelle(self) -> &'static str {
        match self {
            Self::R01 => "bénéficiaire inconnu",
            Self::R02 => "droits non ouverts à la date de référence",
            Self::R03 => "domaine non couvert",
            Self::R04 => "numéro d'adhérent incohérent",
            Self::R05 => "paramètres incorrects",
            Self::R06 => "AMC non gérée par ce service",
            Self::R07 => "prestation non autorisée",
            Self::R08 => "période déjà engagée",
            Self::R09 => "simulation réservée aux séjours",
            Self::R10 => "engagement inconnu",
            Self::R11 => "engagement déjà annulé",
            Self::R12 => "engagement facturé",
            Self::R20 => "engagement inconnu ou annulé",
            Self::R21 => "montants différents de l'engagement",
            Self::R22 => "facture déjà reçue",
            Self::R23 => "facture inconnue",
            Self::R24 => "facture déjà payée ou rejetée",
            Self::R25 => "facture antérieure à la fin des soins",
            Self::R26 => "engagement déjà facturé",
        }
    }
}

impl std::fmt::Display for Ko {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.libelle())
    }
}

/// Deliberate deviations from the rules, one per defect switch of the reference AMC that
/// lives in the business rules. `Deviations::default()` is the spec.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deviations {
    /// TM and DH percentages computed in `f64` and printed with `{:.2}`.
    pub float_rounding: bool,
    /// R01 and R02 codes exchanged.
    pub r01_r02_swapped: bool,
    /// An unknown beneficiary gets [`rules::synthetic_beneficiary`] instead of R01.
    pub unknown_beneficiary_ok: bool,
    /// `rangGemellaire` ignored by the lookup.
    pub twins_confused: bool,
    /// With more than one line, `totalAmc` leaves out the last line.
    pub totals_not_sum: bool,
    /// Wrong `cleNir` not refused.
    pub nir_key_unchecked: bool,
    /// R04 never raised.
    pub adherent_unchecked: bool,
    /// R06 never raised for an AMC number of the population.
    pub any_amc_served: bool,
    /// CP lines not capped.
    pub cp_uncapped: bool,
    /// The last day of the rights period is outside.
    pub rights_end_exclusive: bool,
    /// R09 never raised.
    pub sim_on_ace: bool,
    /// V2 domains and `categorieEtablissement` accepted in `1.04`.
    pub v2_domain_in_v1: bool,
    /// DEL of a cancelled engagement accepted.
    pub double_del_accepted: bool,
    /// R08 for a `(idDossier, rang)` already engaged never raised (the `derniere` rule
    /// still holds).
    pub r08_unchecked: bool,
    /// R08 for a new `rang` after an engaged `derniere` period never raised.
    pub last_period_ignored: bool,
    /// DRE on a cancelled engagement processed as on an active one (unknown stays R20).
    pub dre_cancelled_engagement: bool,
    /// R22 (invoice number already received) never raised.
    pub dre_duplicate_number: bool,
    /// R26 (engagement already invoiced under another number) never raised.
    pub dre_twice_invoiced: bool,
    /// R21 (amounts different from the engagement) never raised.
    pub dre_amounts_unchecked: bool,
    /// DEL of an invoiced engagement accepted (the engagement is cancelled): no R12.
    pub del_invoiced: bool,
    /// ANF of a paid invoice accepted (a rejected one is still R24).
    pub anf_paid: bool,
    /// After an ANF the engagement stays `invoiced` (held by the cancelled invoice).
    pub anf_engagement_stays_invoiced: bool,
    /// R25 never raised at the payment run: early invoices are paid.
    pub rsp_early_invoice_paid: bool,
    /// `montantPaye` is `totalAmc − 0.01` on every payment.
    pub rsp_amount_wrong: bool,
    /// `praticienOptam` false treated as true (the OPTAM rate for every DH line).
    pub optam_ignored: bool,
}
