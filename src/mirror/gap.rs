//! The embedded reference GAP (the establishment's billing software): a client of ROC model,
//! V1 (norme `1.04`, ex-DG) or V2 ([`GapConfig::version`]), that carries out the triggers of a GAP pack
//! (`docs/drivers.md`) against the annuaire and the AMCs, following spec section 7. Defect
//! switches ([`crate::defects::GAP`]) each break one obligation.
//!
//! # Actions
//!
//! - `admission`: annuaire lookup (unless cached), then IDB (always asked again).
//! - `simulate`: IDB when the stay has no IDB answer yet, then SIM when IDB was OK and listed
//!   `SIM`.
//! - `compute`: IDB when the stay has no IDB answer yet; when IDB was OK and listed `CLC`:
//!   DEL of the stay's active engagement (if any; the action stops unless DEL is OK), then CLC
//!   (its `numeroEngagement` becomes the stay's active engagement).
//! - `cancel`: DEL of the stay's active engagement (none: no call).
//!
//! The actions of one [`ReferenceGap`] run one at a time, in the order they were asked for
//! (a trigger fired while another action is still under way waits for it).
//!
//! A stay in SSR, PSY or HAD needs `2.00`, which a V1 GAP never uses: such an action makes no
//! call at all (not even the annuaire) and reports `paper fallback`.
//!
//! # V2 ([`GapConfig::version`], [`GapVersion::v2`])
//!
//! A V2 GAP sends `2.00` (with `categorieEtablissement`) to an address listing `2.00`, else
//! `1.04`; a stay in SSR/PSY/HAD, with `periodes`, or from an `EXOQN` establishment that
//! meets a 1.04-only AMC makes no SEL call (`paper fallback`). More actions (any GAP):
//! `invoice` (inputs `numero_facture`, `date_facture`, optional `periode`: DRE of the active
//! engagement; results `invoiced <n>`, `no engagement`, `already paid`,
//! `already invoiced <n>`, `refused: date before end of care`,
//! `refused: numero_facture <n> already used`) and `read_returns` (every `RSP-*.xml` of
//! `lab.return_drop`; report `returns`). `compute` of a stay with `periodes` engages them
//! in order (`inputs.periode`: that one only). Report extras, only when relevant:
//! `message_patient`, `periodes` (rang -> active engagement), `returns`.
//!
//! # Calls
//!
//! Every call is a fresh HTTPS connection presenting [`GapConfig::identity`] and verifying the
//! server against [`GapConfig::ca_pem`] and the URL host. A stay's IDB answer (OK or KO) is
//! kept; a failed IDB (fault, timeout, TLS, …) is not, so a later action asks again.
//! Annuaire answers with `code_retour` `00` are cached per AMC number for the life of the
//! [`ReferenceGap`]; other answers are not cached.
//!
//! SEL answers are classified in this order: transport failure (`tls`, `timeout`, `connect`,
//! `protocol`); a Content-Type other than `application/soap+xml` (`content_type`); a body
//! that is not XML or not a SOAP 1.2 envelope (`malformed`); a SOAP fault (`fault`); then the
//! operation's response element with `statut` OK or KO (`ok`, `ko`; anything else is
//! `malformed`). Only an `env:Receiver` fault and a timeout are retried, at most twice, each
//! retry a new request with a new `idFlux`. Everything else ends the action.
//!
//! # Report
//!
//! [`ReferenceGap::perform`] returns one JSON object per action:
//!
//! ```text
//! { "scenario", "action", "stay", "numero_amc" (or null), "norme": "1.04",
//!   "calls": [ { "actor": "annuaire" | "amc", "url", "operation": "search" | "IDB" | …,
//!                "attempt" (1, 2, …), "id_flux" (null for search), "http_status" (or null),
//!                "duration_ms", "outcome", "detail", "retried" (another attempt follows),
//!                "code" (KO only), "code_retour" (search answered only) } ],
//!   "result", "services" (the stay's IDB services, or null), "engagement" (the stay's
//!   active engagement after the action, or null), "total_amc" (SIM/CLC OK, or null),
//!   "notes": [ … ] }
//! ```
//!
//! `outcome`: `ok`, `ko`, `fault`, `tls`, `server_certificate`, `timeout`, `connect`,
//! `protocol`, `content_type`, `malformed`. `result`: `admitted`, `simulated`, the engagement
//! number (compute), `cancelled <numero>`, `nothing to cancel`, `refused: KO <code>`,
//! `no address`, `paper fallback`, `SIM not available`, `CLC not available`,
//! `<OP> failed: <detail>[ (<n> attempts)]`, `search failed: <detail>`.

use crate::mirror::amc::{Op, SEL_NS};
use crate::mirror::annuaire;
use crate::net::client::{self, Request, Timeouts};
use crate::net::tls::{self, Identity};
use crate::outcome::{Exchange, TransportErrorKind};
use crate::roc::ids;
use crate::soap::{self, SoapVersion};
use crate::xml::{self, Element};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The norme version a V1 GAP always uses.
pub const NORME: &str = "1.04";
/// The norme version of a V2 GAP, when the AMC's address accepts it.
pub const NORME_V2: &str = "2.00";
/// `requete/editeur` of the annuaire lookups.
pub const EDITEUR: &str = "roclab";
/// Retries after an `env:Receiver` fault or a timeout (spec section 7).
pub const MAX_RETRIES: u32 = 2;
/// Retries under the `too-many-retries` defect.
pub const TOO_MANY_RETRIES: u32 = 3;
/// The SLA hard limit: no answer by then is a timeout.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(4);
/// `motifAnnulation` of the DEL requests.
pub const MOTIF_ANNULATION: &str = "Recalcul du séjour";
/// `motifAnnulation` of a DEL requested by a `cancel` trigger.
pub const MOTIF_ANNULATION_CANCEL: &str = "Annulation du séjour";

/// The establishment and how the GAP behaves.
#[derive(Debug, Clone)]
pub struct GapConfig {
    pub finess_juridique: String,
    pub finess_geographique: String,
    pub logiciel: String,
    pub version_logiciel: String,
    /// CA (PEM) the servers' certificates must chain to.
    pub ca_pem: String,
    /// The GAP's client certificate and key.
    pub identity: Identity,
    /// Names of [`crate::defects::GAP`] switches that are on (unknown names are ignored).
    pub defects: BTreeSet<String>,
    /// Longest wait for one answer ([`DEFAULT_CALL_TIMEOUT`], the SLA hard limit).
    pub call_timeout: Duration,
    /// The norme it speaks and the establishment's category.
    pub version: GapVersion,
}

impl GapConfig {
    /// Names in `defects` that are not GAP defects (of [`crate::defects::GAP`]).
    pub fn unknown_defects(&self) -> Vec<String> {
        self.defects
            .iter()
            .filter(|d| crate::defects::find("gap", d).is_none())
            .cloned()
            .collect()
    }
}

/// Which norme the GAP speaks and what kind of establishment it bills for. Default: a V1
/// GAP (`1.04`, `EXDG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapVersion {
    /// `1.04` (V1 GAP) or `2.00` (V2 GAP).
    pub norme: String,
    /// `categorieEtablissement`: `EXDG` or `EXOQN`.
    pub categorie: String,
}

impl Default for GapVersion {
    fn default() -> Self {
        GapVersion {
            norme: NORME.to_string(),
            categorie: "EXDG".to_string(),
        }
    }
}

impl GapVersion {
    /// A V2 GAP of an establishment of `categorie`.
    pub fn v2(categorie: &str) -> Self {
        GapVersion {
            norme: NORME_V2.to_string(),
            categorie: categorie.to_string(),
        }
    }

    /// The version a profile names: `norme` `1.04` or `2.00`, `categorie` `EXDG` or
    /// `EXOQN` (a V1 GAP is always `EXDG`: `categorieEtablissement` is V2 only).
    pub fn parse(norme: &str, categorie: &str) -> Result<Self, String> {
        if norme != NORME && norme != NORME_V2 {
            return Err(format!(
                "norme '{norme}': the reference GAP speaks {NORME} or {NORME_V2}"
            ));
        }
        if categorie != "EXDG" && categorie != "EXOQN" {
            return Err(format!(
                "categorie '{categorie}': EXDG (ex-DG) or EXOQN (private clinic, ex-OQN)"
            ));
        }
        if norme == NORME && categorie != "EXDG" {
            return Err(format!(
                "categorie {categorie} needs norme {NORME_V2} (a V1 GAP bills for EXDG only)"
            ));
        }
        Ok(GapVersion {
            norme: norme.to_string(),
            categorie: categorie.to_string(),
        })
    }

    fn is_v2(&self) -> bool {
        self.norme == NORME_V2
    }
}

/// Defect switches, read once.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    skips_annuaire: bool,
    clc_without_idb: bool,
    clc_after_ko_idb: bool,
    retries_ko: bool,
    reuses_idflux: bool,
    wrong_nir_key: bool,
    accepts_any_server_cert: bool,
    no_client_cert: bool,
    v2_field_in_v1: bool,
    soap11_requests: bool,
    recompute_without_del: bool,
    wrong_endpoint: bool,
    no_retry: bool,
    too_many_retries: bool,
    v2_to_v1_only_amc: bool,
    no_paper_fallback: bool,
    periods_out_of_order: bool,
    last_period_unmarked: bool,
    invoice_without_engagement: bool,
    invoice_amounts_recomputed: bool,
    invoice_before_end: bool,
    reinvoice_paid: bool,
    message_patient_dropped: bool,
    rsp_ignored: bool,
}

impl Flags {
    fn of(defects: &BTreeSet<String>) -> Flags {
        let on = |n: &str| defects.contains(n);
        Flags {
            skips_annuaire: on("skips-annuaire"),
            clc_without_idb: on("clc-without-idb"),
            clc_after_ko_idb: on("clc-after-ko-idb"),
            retries_ko: on("retries-ko"),
            reuses_idflux: on("reuses-idflux"),
            wrong_nir_key: on("wrong-nir-key"),
            accepts_any_server_cert: on("accepts-any-server-cert"),
            no_client_cert: on("no-client-cert"),
            v2_field_in_v1: on("v2-field-in-v1"),
            soap11_requests: on("soap11-requests"),
            recompute_without_del: on("recompute-without-del"),
            wrong_endpoint: on("wrong-endpoint"),
            no_retry: on("no-retry"),
            too_many_retries: on("too-many-retries"),
            v2_to_v1_only_amc: on("v2-to-v1-only-amc"),
            no_paper_fallback: on("no-paper-fallback"),
            periods_out_of_order: on("periods-out-of-order"),
            last_period_unmarked: on("last-period-unmarked"),
            invoice_without_engagement: on("invoice-without-engagement"),
            invoice_amounts_recomputed: on("invoice-amounts-recomputed"),
            invoice_before_end: on("invoice-before-end"),
            reinvoice_paid: on("reinvoice-paid"),
            message_patient_dropped: on("message-patient-dropped"),
            rsp_ignored: on("rsp-ignored"),
        }
    }

    fn max_retries(self) -> u32 {
        if self.no_retry {
            0
        } else if self.too_many_retries {
            TOO_MANY_RETRIES
        } else {
            MAX_RETRIES
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Trigger data

/// The patient of a trigger (`data.patient`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Patient {
    pub nir: String,
    pub date_naissance: String,
    pub rang_gemellaire: String,
    pub numero_adherent: Option<String>,
    pub numero_amc: String,
    pub type_convention: String,
    pub csr: String,
    /// `A` or `B`: only read by the `skips-annuaire` defect.
    pub endpoint: Option<String>,
}

/// One `prestation` line of a stay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prestation {
    pub code: String,
    pub date_debut: String,
    pub date_fin: String,
    pub quantite: String,
    pub montant_total: String,
    pub montant_amo: String,
    pub praticien_optam: Option<String>,
}

/// The stay of a trigger (`data.stay`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stay {
    pub id: String,
    pub type_prise_en_charge: String,
    pub domaine: String,
    pub date_entree: String,
    pub date_sortie: Option<String>,
    pub prestations: Vec<Prestation>,
    /// Billing periods of a long stay (V2; read by a V2 GAP only).
    pub periodes: Vec<Periode>,
}

/// One billing period of a stay (`data.stay.periodes[]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Periode {
    pub rang: u32,
    pub date_debut: String,
    pub date_fin: String,
    /// `derniere` as given; `None`: the last period of the list is the last.
    pub derniere: Option<bool>,
    pub prestations: Vec<Prestation>,
}

/// A scalar of the trigger JSON as text (strings as they are, numbers and booleans printed).
fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}

fn required(obj: &Value, path: &str, key: &str) -> Result<String, String> {
    scalar(obj.get(key)).ok_or_else(|| format!("trigger: {path}.{key} missing or empty"))
}

impl Patient {
    /// `data.patient` of a trigger.
    pub fn from_json(v: &Value) -> Result<Patient, String> {
        let p = "data.patient";
        if !v.is_object() {
            return Err(format!("trigger: {p} missing"));
        }
        Ok(Patient {
            nir: required(v, p, "nir")?,
            date_naissance: required(v, p, "date_naissance")?,
            rang_gemellaire: required(v, p, "rang_gemellaire")?,
            numero_adherent: scalar(v.get("numero_adherent")),
            numero_amc: required(v, p, "numero_amc")?,
            type_convention: required(v, p, "type_convention")?,
            csr: required(v, p, "csr")?,
            endpoint: scalar(v.get("endpoint")),
        })
    }
}

impl Stay {
    /// `data.stay` of a trigger.
    pub fn from_json(v: &Value) -> Result<Stay, String> {
        let p = "data.stay";
        if !v.is_object() {
            return Err(format!("trigger: {p} missing"));
        }
        let prestations = prestations_from_json(v, p)?;
        let mut periodes = Vec::new();
        if let Some(list) = v.get("periodes").filter(|l| !l.is_null()) {
            let list = list
                .as_array()
                .ok_or_else(|| format!("trigger: {p}.periodes is not a list"))?;
            for (i, e) in list.iter().enumerate() {
                let pp = format!("{p}.periodes[{i}]");
                let rang = required(e, &pp, "rang")?;
                periodes.push(Periode {
                    rang: rang
                        .parse()
                        .ok()
                        .filter(|r| *r >= 1)
                        .ok_or_else(|| format!("trigger: {pp}.rang '{rang}' is not a rank"))?,
                    date_debut: required(e, &pp, "date_debut")?,
                    date_fin: required(e, &pp, "date_fin")?,
                    derniere: scalar(e.get("derniere")).map(|d| d == "true"),
                    prestations: prestations_from_json(e, &pp)?,
                });
            }
        }
        Ok(Stay {
            id: required(v, p, "id")?,
            type_prise_en_charge: required(v, p, "type_prise_en_charge")?,
            domaine: required(v, p, "domaine")?,
            date_entree: required(v, p, "date_entree")?,
            date_sortie: scalar(v.get("date_sortie")),
            prestations,
            periodes,
        })
    }

    /// The end of care of the stay, or of its period `rang`.
    fn end_of(&self, rang: Option<u32>) -> Option<String> {
        match rang {
            Some(r) => self
                .periodes
                .iter()
                .find(|p| p.rang == r)
                .map(|p| p.date_fin.clone()),
            None => self.date_sortie.clone(),
        }
    }
}

/// `prestations` of `v` (absent: none).
fn prestations_from_json(v: &Value, p: &str) -> Result<Vec<Prestation>, String> {
    let mut prestations = Vec::new();
    if let Some(lines) = v.get("prestations") {
        let lines = lines
            .as_array()
            .ok_or_else(|| format!("trigger: {p}.prestations is not a list"))?;
        for (i, l) in lines.iter().enumerate() {
            let lp = format!("{p}.prestations[{i}]");
            prestations.push(Prestation {
                code: required(l, &lp, "code")?,
                date_debut: required(l, &lp, "date_debut")?,
                date_fin: required(l, &lp, "date_fin")?,
                quantite: required(l, &lp, "quantite")?,
                montant_total: required(l, &lp, "montant_total")?,
                montant_amo: required(l, &lp, "montant_amo")?,
                praticien_optam: scalar(l.get("praticien_optam")),
            });
        }
    }
    Ok(prestations)
}

// ---------------------------------------------------------------------------------------------
// Request building

/// `cleNir` the GAP computes from the NIR (spec section 3). With `wrong`, the `wrong-nir-key`
/// defect: `2A`/`2B` are read as `20` instead of being replaced by `19`/`18`.
/// `None` when `nir` is not a NIR.
pub fn cle_nir(nir: &str, wrong: bool) -> Option<String> {
    let key = if wrong {
        if !ids::is_nir(nir) {
            return None;
        }
        let n: u64 = nir.replace(['A', 'B'], "0").parse().ok()?;
        (97 - n % 97) as u8
    } else {
        ids::nir_key(nir)?
    };
    Some(format!("{key:02}"))
}

/// `dateHeureEmission`: now, local time with its offset (UTC when the offset is unknown).
fn now_stamp() -> String {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    now.format(&format).unwrap_or_default()
}

/// Today, `YYYY-MM-DD` (local date).
fn today() -> String {
    let now = time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    crate::roc::dates::format_iso(now.date())
}

/// SEL elements with the `roc` prefix (declared on the envelope).
struct Xml(String);

impl Xml {
    fn open(&mut self, name: &str) {
        self.0.push_str(&format!("<roc:{name}>"));
    }
    fn close(&mut self, name: &str) {
        self.0.push_str(&format!("</roc:{name}>"));
    }
    fn leaf(&mut self, name: &str, text: &str) {
        self.0
            .push_str(&format!("<roc:{name}>{}</roc:{name}>", soap::escape(text)));
    }
}

/// Everything one SEL request is built from.
#[derive(Debug, Clone)]
pub struct SelRequest<'a> {
    pub op: Op,
    pub id_flux: &'a str,
    /// `dateHeureEmission`.
    pub emission: &'a str,
    pub finess_juridique: &'a str,
    pub finess_geographique: &'a str,
    pub logiciel: &'a str,
    pub version_logiciel: &'a str,
    /// `categorieEtablissement`, only written when given (never in a correct 1.04 request).
    pub categorie: Option<&'a str>,
    pub numero_amc: &'a str,
    /// `cleNir` as computed.
    pub cle_nir: &'a str,
    pub patient: &'a Patient,
    pub stay: &'a Stay,
    /// DEL: the engagement cancelled.
    pub numero_engagement: &'a str,
    /// DEL: `motifAnnulation`.
    pub motif: &'a str,
    /// `versionNorme` ([`NORME`] or [`NORME_V2`]).
    pub norme: &'a str,
    /// CLC: `periodeFacturation` (2.00 only).
    pub periode: Option<PeriodeFacturation<'a>>,
    /// DRE: the invoice (its `numeroEngagement` is [`SelRequest::numero_engagement`]).
    pub dre: Option<&'a Dre>,
}

/// `periodeFacturation` of a CLC.
#[derive(Debug, Clone, Copy)]
pub struct PeriodeFacturation<'a> {
    pub rang: u32,
    pub date_debut: &'a str,
    pub date_fin: &'a str,
    pub derniere: bool,
}

/// The body of a DRE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dre {
    pub numero_facture: String,
    pub date_facture: String,
    /// The lines invoiced, each with its `montantAmc`.
    pub lignes: Vec<(Prestation, String)>,
    pub total_amc: String,
}

fn prestation_xml(x: &mut Xml, l: &Prestation, montant_amc: Option<&str>) {
    x.open("prestation");
    x.leaf("code", &l.code);
    x.leaf("dateDebut", &l.date_debut);
    x.leaf("dateFin", &l.date_fin);
    x.leaf("quantite", &l.quantite);
    x.leaf("montantTotal", &l.montant_total);
    x.leaf("montantAmo", &l.montant_amo);
    if let Some(o) = &l.praticien_optam {
        x.leaf("praticienOptam", o);
    }
    if let Some(m) = montant_amc {
        x.leaf("montantAmc", m);
    }
    x.close("prestation");
}

/// The SOAP 1.2 envelope of a SEL request (`roc` bound to [`SEL_NS`] on the envelope).
/// Element order as spec sections 3 and 4 list them.
pub fn sel_envelope(r: &SelRequest<'_>) -> String {
    let mut x = Xml(String::new());
    let root = r.op.request_root();
    x.open(root);
    x.open("entete");
    x.leaf("idFlux", r.id_flux);
    x.leaf("dateHeureEmission", r.emission);
    x.leaf("versionNorme", r.norme);
    x.open("emetteur");
    x.leaf("finessJuridique", r.finess_juridique);
    x.leaf("finessGeographique", r.finess_geographique);
    if let Some(c) = r.categorie {
        x.leaf("categorieEtablissement", c);
    }
    x.leaf("logiciel", r.logiciel);
    x.leaf("versionLogiciel", r.version_logiciel);
    x.close("emetteur");
    x.leaf("numeroAmc", r.numero_amc);
    x.close("entete");
    if r.op == Op::Dre {
        let empty = Dre {
            numero_facture: String::new(),
            date_facture: String::new(),
            lignes: Vec::new(),
            total_amc: String::new(),
        };
        let d = r.dre.unwrap_or(&empty);
        x.leaf("numeroEngagement", r.numero_engagement);
        x.leaf("numeroFacture", &d.numero_facture);
        x.leaf("dateFacture", &d.date_facture);
        x.open("prestations");
        for (l, m) in &d.lignes {
            prestation_xml(&mut x, l, Some(m));
        }
        x.close("prestations");
        x.leaf("totalAmc", &d.total_amc);
    } else if r.op == Op::Del {
        x.leaf("numeroEngagement", r.numero_engagement);
        x.leaf("motifAnnulation", r.motif);
    } else {
        let p = r.patient;
        x.open("beneficiaire");
        x.leaf("nir", &p.nir);
        x.leaf("cleNir", r.cle_nir);
        x.leaf("dateNaissance", &p.date_naissance);
        x.leaf("rangGemellaire", &p.rang_gemellaire);
        if let Some(a) = &p.numero_adherent {
            x.leaf("numeroAdherent", a);
        }
        x.close("beneficiaire");
        x.open("contrat");
        x.leaf("typeConvention", &p.type_convention);
        x.leaf("critereSecondaire", &p.csr);
        x.close("contrat");
        let s = r.stay;
        x.open("contexte");
        x.leaf("typePriseEnCharge", &s.type_prise_en_charge);
        x.leaf("domaine", &s.domaine);
        x.leaf("dateEntree", &s.date_entree);
        if let Some(d) = &s.date_sortie {
            x.leaf("dateSortie", d);
        }
        x.close("contexte");
        if r.op == Op::Clc {
            x.leaf("idDossier", &s.id);
            if let Some(p) = &r.periode {
                x.open("periodeFacturation");
                x.leaf("rang", &p.rang.to_string());
                x.leaf("dateDebut", p.date_debut);
                x.leaf("dateFin", p.date_fin);
                x.leaf("derniere", if p.derniere { "true" } else { "false" });
                x.close("periodeFacturation");
            }
        }
        if matches!(r.op, Op::Sim | Op::Clc) {
            x.open("prestations");
            for l in &s.prestations {
                prestation_xml(&mut x, l, None);
            }
            x.close("prestations");
        }
    }
    x.close(root);
    soap::envelope(soap::SOAP12_ENV, &[("roc", SEL_NS)], &x.0)
}

/// HTTP headers of a SEL request: SOAP 1.2 with `action="urn:roc:model:sel:<OP>"`.
pub fn sel_headers(op: Op) -> Vec<(String, String)> {
    SoapVersion::V12.request_headers(&format!("{SEL_NS}:{}", op.name()))
}

/// The annuaire `search` query for an AMC number (spec section 6): every service, norme
/// `ROC`, any version, URL addresses.
pub fn annuaire_query(
    date_demande: &str,
    logiciel: &str,
    version_logiciel: &str,
    patient: &Patient,
    domaine: &str,
) -> annuaire::Query {
    annuaire::Query {
        version: "R01".to_string(),
        date_demande: date_demande.to_string(),
        editeur: EDITEUR.to_string(),
        logiciel: logiciel.to_string(),
        version_logiciel: version_logiciel.to_string(),
        numero_amc: patient.numero_amc.clone(),
        code_type_convention: patient.type_convention.clone(),
        code_csr: patient.csr.clone(),
        domaine_conventionnel: domaine.to_string(),
        code_service: String::new(),
        code_norme_service: "ROC".to_string(),
        version_norme_service: String::new(),
        type_adresse: vec!["URL".to_string()],
    }
}

// ---------------------------------------------------------------------------------------------
// Answers

/// What one SEL call gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ok(OkAnswer),
    Ko {
        code: String,
        libelle: String,
    },
    /// A SOAP fault: code and subcode as `prefix:local` (`env:Receiver`, `roc:ErreurInterne`).
    Fault {
        code: String,
        subcode: String,
        reason: String,
        receiver: bool,
    },
    Transport {
        kind: TransportErrorKind,
        message: String,
    },
    /// A Content-Type other than SOAP 1.2.
    ContentType(String),
    /// Not XML, not a SOAP 1.2 envelope, not the operation's answer.
    Malformed(String),
}

/// The parts of an OK answer the GAP uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OkAnswer {
    /// IDB: `servicesDisponibles/service`.
    pub services: Vec<String>,
    /// CLC: `numeroEngagement`.
    pub numero_engagement: Option<String>,
    /// SIM, CLC: `totalAmc`.
    pub total_amc: Option<String>,
    /// DEL: `dateAnnulation`.
    pub date_annulation: Option<String>,
    /// SIM, CLC: `lignes/ligne/montantAmc`, in order.
    pub montants: Vec<String>,
    /// CLC (2.00): `messagePatient`.
    pub message_patient: Option<String>,
    /// DRE: `accuseReception/numeroFacture`.
    pub numero_facture: Option<String>,
}

impl Answer {
    /// Short outcome label of the report.
    fn label(&self) -> &'static str {
        match self {
            Answer::Ok(_) => "ok",
            Answer::Ko { .. } => "ko",
            Answer::Fault { .. } => "fault",
            Answer::Transport { kind, .. } => match kind {
                TransportErrorKind::Connect => "connect",
                TransportErrorKind::Tls => "tls",
                TransportErrorKind::PeerCertificate => "server_certificate",
                TransportErrorKind::Timeout => "timeout",
                TransportErrorKind::Protocol => "protocol",
            },
            Answer::ContentType(_) => "content_type",
            Answer::Malformed(_) => "malformed",
        }
    }

    fn detail(&self) -> String {
        match self {
            Answer::Ok(ok) => {
                let mut parts = vec!["statut OK".to_string()];
                if !ok.services.is_empty() {
                    parts.push(format!("services {}", ok.services.join(" ")));
                }
                if let Some(n) = &ok.numero_engagement {
                    parts.push(format!("numeroEngagement {n}"));
                }
                if let Some(t) = &ok.total_amc {
                    parts.push(format!("totalAmc {t}"));
                }
                if let Some(d) = &ok.date_annulation {
                    parts.push(format!("dateAnnulation {d}"));
                }
                parts.join(", ")
            }
            Answer::Ko { code, libelle } => format!("KO {code} {libelle}").trim().to_string(),
            Answer::Fault {
                code,
                subcode,
                reason,
                ..
            } => format!("fault {code} {subcode}: {reason}"),
            Answer::Transport { message, .. } => message.clone(),
            Answer::ContentType(ct) => format!("wrong content type: {ct}"),
            Answer::Malformed(m) => format!("malformed answer: {m}"),
        }
    }

    /// Whether the spec lets the GAP retry it: an `env:Receiver` fault or a timeout.
    fn retryable(&self) -> bool {
        matches!(
            self,
            Answer::Fault { receiver: true, .. }
                | Answer::Transport {
                    kind: TransportErrorKind::Timeout,
                    ..
                }
        )
    }

    /// The result of an action that ended on this answer (not OK).
    fn failure(&self, op: Op) -> String {
        match self {
            Answer::Ko { code, .. } => format!("refused: KO {code}"),
            Answer::Ok(_) => format!("{} OK", op.name()),
            other => format!("{} failed: {}", op.name(), other.detail()),
        }
    }
}

fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn qname_label(q: &Option<(String, String)>, env_prefix: &str) -> String {
    match q {
        Some((ns, local)) if ns == soap::SOAP12_ENV || ns == soap::SOAP11_ENV => {
            format!("{env_prefix}:{local}")
        }
        Some((ns, local)) if ns == SEL_NS => format!("roc:{local}"),
        Some((ns, local)) => format!("{{{ns}}}{local}"),
        None => String::new(),
    }
}

fn sel_text(parent: &Element, local: &str) -> Option<String> {
    parent.child(SEL_NS, local).map(|e| e.text())
}

/// Classify the exchange of a SEL call of `op`.
pub fn classify(op: Op, ex: &Exchange) -> Answer {
    if let Some(e) = &ex.error {
        return Answer::Transport {
            kind: e.kind,
            message: e.message.clone(),
        };
    }
    let Some(resp) = &ex.response else {
        return Answer::Transport {
            kind: TransportErrorKind::Protocol,
            message: "no response".to_string(),
        };
    };
    let ct = resp.header("content-type").unwrap_or("");
    if media_type(ct) != "application/soap+xml" {
        return Answer::ContentType(if ct.is_empty() {
            "(none)".to_string()
        } else {
            ct.to_string()
        });
    }
    let Some(text) = &resp.body else {
        return Answer::Malformed("body is not UTF-8".to_string());
    };
    classify_body(op, resp.status.unwrap_or(0), text)
}

/// Classify a SOAP 1.2 answer body of `op` received with HTTP `status`.
pub fn classify_body(op: Op, status: u16, text: &str) -> Answer {
    let root = match xml::parse(text) {
        Ok(r) => r,
        Err(e) => return Answer::Malformed(format!("not XML ({e})")),
    };
    if root.local != "Envelope" || root.ns.as_deref() != Some(soap::SOAP12_ENV) {
        return Answer::Malformed(format!(
            "root is {{{}}}{}, not a SOAP 1.2 Envelope",
            root.ns.as_deref().unwrap_or(""),
            root.local
        ));
    }
    if let Some(f) = soap::find_fault(&root) {
        let receiver = f
            .code
            .as_ref()
            .is_some_and(|(ns, local)| ns == soap::SOAP12_ENV && local == "Receiver");
        return Answer::Fault {
            code: qname_label(&f.code, "env"),
            subcode: qname_label(&f.subcode, "env"),
            reason: f.reason,
            receiver,
        };
    }
    let Some(body) = root.child(soap::SOAP12_ENV, "Body") else {
        return Answer::Malformed("no Body in the envelope".to_string());
    };
    let Some(answer) = body.child(SEL_NS, op.response_root()) else {
        return Answer::Malformed(format!("no {{{SEL_NS}}}{} in the Body", op.response_root()));
    };
    if status != 200 {
        return Answer::Malformed(format!("HTTP {status} with a business answer"));
    }
    match sel_text(answer, "statut").as_deref() {
        Some("KO") => {
            let motif = answer.child(SEL_NS, "motif");
            let code = motif.and_then(|m| sel_text(m, "code"));
            let libelle = motif.and_then(|m| sel_text(m, "libelle"));
            match code {
                Some(code) if !code.is_empty() => Answer::Ko {
                    code,
                    libelle: libelle.unwrap_or_default(),
                },
                _ => Answer::Malformed("KO without motif/code".to_string()),
            }
        }
        Some("OK") => {
            let services = answer
                .child(SEL_NS, "servicesDisponibles")
                .map(|s| {
                    s.elements()
                        .filter(|e| e.local == "service" && e.ns.as_deref() == Some(SEL_NS))
                        .map(|e| e.text())
                        .collect()
                })
                .unwrap_or_default();
            let ok = OkAnswer {
                services,
                numero_engagement: sel_text(answer, "numeroEngagement"),
                total_amc: sel_text(answer, "totalAmc"),
                date_annulation: sel_text(answer, "dateAnnulation"),
                montants: answer
                    .child(SEL_NS, "lignes")
                    .map(|ls| {
                        ls.elements()
                            .filter(|e| e.local == "ligne" && e.ns.as_deref() == Some(SEL_NS))
                            .map(|e| sel_text(e, "montantAmc").unwrap_or_default())
                            .collect()
                    })
                    .unwrap_or_default(),
                message_patient: sel_text(answer, "messagePatient"),
                numero_facture: answer
                    .child(SEL_NS, "accuseReception")
                    .and_then(|a| sel_text(a, "numeroFacture")),
            };
            if op == Op::Clc && ok.numero_engagement.as_deref().is_none_or(str::is_empty) {
                return Answer::Malformed("CLC OK without numeroEngagement".to_string());
            }
            Answer::Ok(ok)
        }
        Some(other) => Answer::Malformed(format!("statut « {other} »")),
        None => Answer::Malformed("no statut".to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// The GAP

/// One return (RSP file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rsp {
    pub numero_facture: String,
    pub numero_engagement: String,
    /// `rejet/code`; `None`: paid.
    pub rejet: Option<String>,
}

/// An RSP document (`roc:rsp`); `None` when it is not one.
pub fn parse_rsp(text: &str) -> Option<Rsp> {
    let root = xml::parse(text).ok()?;
    if root.local != "rsp" || root.ns.as_deref() != Some(SEL_NS) {
        return None;
    }
    let numero_facture = sel_text(&root, "numeroFacture").filter(|n| !n.is_empty())?;
    let rejet = match (root.child(SEL_NS, "paiement"), root.child(SEL_NS, "rejet")) {
        (Some(_), None) => None,
        (None, Some(r)) => Some(sel_text(r, "code").unwrap_or_default()),
        _ => return None,
    };
    Some(Rsp {
        numero_facture,
        numero_engagement: sel_text(&root, "numeroEngagement").unwrap_or_default(),
        rejet,
    })
}

/// One address from the annuaire.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Addr {
    code_service: String,
    type_adresse: String,
    valeur: String,
    version: String,
}

/// A stay's IDB answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Idb {
    Ok { services: Vec<String> },
    Ko { code: String },
}

/// An active engagement of a stay.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Engaged {
    numero: String,
    numero_amc: String,
    /// The norme it was engaged in (its DEL and DRE use it too).
    norme: String,
    /// The period engaged (`None`: the whole stay).
    rang: Option<u32>,
    /// The end of what was engaged: the stay's `dateSortie` or the period's `dateFin`.
    end: Option<String>,
    /// The lines sent, and the `montantAmc` the AMC engaged for each.
    lines: Vec<Prestation>,
    montants: Vec<String>,
    total_amc: Option<String>,
}

/// Where the invoice of an engagement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Billing {
    /// DRE acknowledged under this number, no return read yet.
    Invoiced(String),
    /// A return said it was paid.
    Paid(String),
}

#[derive(Debug, Clone, Default)]
struct StayState {
    idb: Option<Idb>,
    engagement: Option<Engaged>,
    /// V2: the active engagement of each period.
    periodes: BTreeMap<u32, Engaged>,
    /// V2: every period ever engaged.
    engaged_rangs: BTreeSet<u32>,
    /// The last engagement of the stay (`None`) or of a period, kept after its DEL.
    last: BTreeMap<Option<u32>, Engaged>,
}

#[derive(Debug, Default)]
struct State {
    stays: BTreeMap<String, StayState>,
    /// AMC number (or `*` under `wrong-endpoint`) -> addresses.
    annuaire: BTreeMap<String, Vec<Addr>>,
    /// Engagement number -> where its invoice stands.
    billing: BTreeMap<String, Billing>,
    /// Every invoice number sent (acknowledged) -> its engagement number.
    invoices: BTreeMap<String, String>,
}

/// The embedded reference GAP. One per scenario: per stay, it keeps the IDB answer and the
/// active engagement; per AMC number, the annuaire addresses.
pub struct ReferenceGap {
    cfg: GapConfig,
    version: GapVersion,
    flags: Flags,
    tls: Result<Arc<rustls::ClientConfig>, String>,
    state: Mutex<State>,
    /// Held for the whole of an action: the actions of one instance run one at a time, in
    /// the order they were asked for (as one workstation of a billing software would).
    actions: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for ReferenceGap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferenceGap")
            .field("finess_juridique", &self.cfg.finess_juridique)
            .field("defects", &self.cfg.defects)
            .finish()
    }
}

/// Why an action stopped before its end: the report's `result`.
type Stop = String;

/// How a SEL operation ended when it did not answer OK.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Failed {
    /// A business refusal (`KO` with this code).
    Ko(String),
    /// Anything else: the report's `result`.
    Stop(Stop),
}

impl Failed {
    fn result(self) -> String {
        match self {
            Failed::Ko(code) => format!("refused: KO {code}"),
            Failed::Stop(s) => s,
        }
    }
}

/// One action under way: the calls made so far.
struct Run<'a> {
    patient: &'a Patient,
    stay: &'a Stay,
    lab: &'a Value,
    calls: Vec<Value>,
    total_amc: Option<String>,
    /// The stay needs `2.00` (SSR/PSY/HAD, EXOQN, periods).
    needs_v2: bool,
    /// The norme of the last SEL request sent.
    norme: Option<String>,
    message_patient: Option<String>,
}

/// What a SEL call carries besides the stay of the action.
#[derive(Debug, Clone, Copy, Default)]
struct Extra<'a> {
    /// DEL: the engagement cancelled and the `motifAnnulation`.
    del: Option<(&'a Engaged, &'a str)>,
    /// CLC of a period: the period and the stay with the period's lines.
    periode: Option<(PeriodeFacturation<'a>, &'a Stay)>,
    /// DRE: the engagement invoiced and the invoice.
    dre: Option<(&'a Engaged, &'a Dre)>,
}

/// Amount in cents (`12.50` -> 1250).
fn cents(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (i, f) = s.split_once('.').unwrap_or((s, "00"));
    if f.len() != 2 || i.is_empty() {
        return None;
    }
    let v = i.parse::<i64>().ok()? * 100 + f.parse::<i64>().ok()?;
    Some(if neg { -v } else { v })
}

fn format_cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", c.abs() / 100, c.abs() % 100)
}

impl ReferenceGap {
    /// A GAP speaking `cfg.version`.
    pub fn new(cfg: GapConfig) -> Self {
        let version = cfg.version.clone();
        let flags = Flags::of(&cfg.defects);
        let identity = (!flags.no_client_cert).then_some(&cfg.identity);
        let tls = if flags.accepts_any_server_cert {
            tls::client_config_insecure(identity)
        } else {
            tls::client_config(&cfg.ca_pem, identity)
        }
        .map_err(|e| format!("GAP TLS configuration: {e}"));
        ReferenceGap {
            cfg,
            version,
            flags,
            tls,
            state: Mutex::new(State::default()),
            actions: tokio::sync::Mutex::new(()),
        }
    }

    pub fn config(&self) -> &GapConfig {
        &self.cfg
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The active engagement of stay `id`, if any.
    pub fn engagement(&self, stay: &str) -> Option<String> {
        self.state()
            .stays
            .get(stay)
            .and_then(|s| s.engagement.as_ref())
            .map(|e| e.numero.clone())
    }

    /// Carry out one trigger (the JSON of `docs/drivers.md`). Returns the report of what was
    /// done, or `Err` when the GAP could not act (unknown action, missing data, unusable TLS
    /// material).
    pub async fn perform(&self, trigger: &Value) -> Result<Value, String> {
        let action = trigger
            .get("action")
            .and_then(Value::as_str)
            .ok_or("trigger: action missing")?;
        if !matches!(
            action,
            "admission" | "simulate" | "compute" | "cancel" | "invoice" | "read_returns"
        ) {
            return Err(format!(
                "unknown action '{action}' (the reference GAP knows admission, simulate, compute, cancel, invoice, read_returns)"
            ));
        }
        let input = |k: &str| scalar(trigger.get("inputs").and_then(|i| i.get(k)));
        let periode = match input("periode") {
            Some(r) => Some(
                r.parse::<u32>()
                    .map_err(|_| format!("trigger: inputs.periode '{r}' is not a rank"))?,
            ),
            None => None,
        };
        let facture = if action == "invoice" {
            Some((
                input("numero_facture").ok_or("trigger: inputs.numero_facture missing")?,
                input("date_facture").ok_or("trigger: inputs.date_facture missing")?,
            ))
        } else {
            None
        };
        let tls = self.tls.clone()?;
        let _one_at_a_time = self.actions.lock().await;
        let null = Value::Null;
        let data = trigger.get("data").unwrap_or(&null);
        let lab = trigger.get("lab").unwrap_or(&null);
        let stay_json = data.get("stay").unwrap_or(&null);
        let stay_id = scalar(stay_json.get("id"))
            .or_else(|| input("stay"))
            .or_else(|| (action == "read_returns").then(String::new))
            .ok_or("trigger: data.stay.id missing")?;

        let lenient = matches!(action, "cancel" | "invoice" | "read_returns");
        let (patient, stay) = if lenient {
            // Only the stay's engagement is needed; the rest is used when present.
            (
                Patient::from_json(data.get("patient").unwrap_or(&null)).unwrap_or_default(),
                Stay::from_json(stay_json).unwrap_or_else(|_| Stay {
                    id: stay_id.clone(),
                    ..Stay::default()
                }),
            )
        } else {
            let patient = Patient::from_json(data.get("patient").unwrap_or(&null))?;
            let stay = Stay::from_json(stay_json)?;
            if ids::nir_key(&patient.nir).is_none() {
                return Err(format!(
                    "trigger: data.patient.nir '{}' is not a NIR",
                    patient.nir
                ));
            }
            if matches!(action, "simulate" | "compute")
                && stay.prestations.is_empty()
                && (action == "simulate" || stay.periodes.is_empty())
            {
                return Err("trigger: data.stay.prestations is empty".to_string());
            }
            (patient, stay)
        };

        let mut notes = Vec::new();
        if let (Some(card), Some(computed)) = (
            scalar(data.get("patient").and_then(|p| p.get("cle_nir"))),
            cle_nir(&patient.nir, self.flags.wrong_nir_key),
        ) && !lenient
            && card != computed
        {
            notes.push(format!(
                "cle_nir {card} of the card is not the key of NIR {}: {computed} sent",
                patient.nir
            ));
        }
        let mut run = Run {
            patient: &patient,
            stay: &stay,
            lab,
            calls: Vec::new(),
            total_amc: None,
            needs_v2: false,
            norme: None,
            message_patient: None,
        };
        let v2_domain = matches!(stay.domaine.as_str(), "SSR" | "PSY" | "HAD");
        let exoqn = self.version.categorie == "EXOQN";
        let periods = self.version.is_v2() && !stay.periodes.is_empty();
        run.needs_v2 = v2_domain || exoqn || periods;
        let mut returns = None;
        let engaging = matches!(action, "admission" | "simulate" | "compute");
        let result =
            if engaging && run.needs_v2 && !self.version.is_v2() && !self.flags.no_paper_fallback {
                "paper fallback".to_string()
            } else {
                match action {
                    "admission" => self.admission(&tls, &mut run).await,
                    "simulate" => self.simulate(&tls, &mut run).await,
                    "compute" => self.compute(&tls, &mut run, periode).await,
                    "invoice" => {
                        let (numero, date) = facture.unwrap_or_default();
                        self.invoice(&tls, &mut run, periode, &numero, &date).await
                    }
                    "read_returns" => {
                        let (result, list) = self.read_returns(&run);
                        returns = Some(list);
                        result
                    }
                    _ => self.cancel(&tls, &mut run, &stay_id).await,
                }
            };
        let (services, engagement, periodes) = {
            let st = self.state();
            let s = st.stays.get(&stay_id);
            (
                s.and_then(|s| match &s.idb {
                    Some(Idb::Ok { services }) => Some(services.clone()),
                    _ => None,
                }),
                s.and_then(|s| s.engagement.as_ref())
                    .map(|e| e.numero.clone()),
                s.map(|s| {
                    s.periodes
                        .iter()
                        .map(|(r, e)| (r.to_string(), json!(e.numero)))
                        .collect::<Map<String, Value>>()
                })
                .unwrap_or_default(),
            )
        };
        let mut report = Map::new();
        report.insert(
            "scenario".into(),
            trigger.get("scenario").cloned().unwrap_or(Value::Null),
        );
        report.insert("action".into(), json!(action));
        report.insert("stay".into(), json!(stay_id));
        report.insert(
            "numero_amc".into(),
            if patient.numero_amc.is_empty() {
                Value::Null
            } else {
                json!(patient.numero_amc)
            },
        );
        report.insert(
            "norme".into(),
            json!(
                run.norme
                    .clone()
                    .unwrap_or_else(|| self.version.norme.clone())
            ),
        );
        report.insert("calls".into(), Value::Array(run.calls));
        report.insert("result".into(), json!(result));
        report.insert("services".into(), json!(services));
        report.insert("engagement".into(), json!(engagement));
        report.insert("total_amc".into(), json!(run.total_amc));
        report.insert("notes".into(), json!(notes));
        if let Some(m) = run.message_patient {
            report.insert("message_patient".into(), json!(m));
        }
        if periods {
            report.insert("periodes".into(), Value::Object(periodes));
        }
        if let Some(list) = returns {
            report.insert("returns".into(), Value::Array(list));
        }
        Ok(Value::Object(report))
    }

    fn stay_state(&self, id: &str) -> StayState {
        self.state().stays.get(id).cloned().unwrap_or_default()
    }

    fn set_idb(&self, id: &str, idb: Idb) {
        self.state().stays.entry(id.to_string()).or_default().idb = Some(idb);
    }

    fn set_engagement(&self, id: &str, e: Option<Engaged>) {
        let mut st = self.state();
        let ss = st.stays.entry(id.to_string()).or_default();
        if let Some(e) = &e {
            ss.last.insert(None, e.clone());
        }
        ss.engagement = e;
    }

    async fn admission(&self, tls: &Arc<rustls::ClientConfig>, run: &mut Run<'_>) -> String {
        match self.idb(tls, run).await {
            Ok(Idb::Ok { .. }) => "admitted".to_string(),
            Ok(Idb::Ko { code }) => format!("refused: KO {code}"),
            Err(stop) => stop,
        }
    }

    async fn simulate(&self, tls: &Arc<rustls::ClientConfig>, run: &mut Run<'_>) -> String {
        match self.ensure_idb(tls, run).await {
            Ok(Idb::Ok { services }) if services.iter().any(|s| s == "SIM") => {}
            Ok(Idb::Ok { .. }) => return "SIM not available".to_string(),
            Ok(Idb::Ko { code }) => return format!("refused: KO {code}"),
            Err(stop) => return stop,
        }
        match self.sel(tls, run, Op::Sim, Extra::default()).await {
            Ok(ok) => {
                run.total_amc = ok.total_amc;
                "simulated".to_string()
            }
            Err(f) => f.result(),
        }
    }

    async fn compute(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
        periode: Option<u32>,
    ) -> String {
        let id = run.stay.id.clone();
        if !self.flags.clc_without_idb {
            match self.ensure_idb(tls, run).await {
                Ok(Idb::Ok { services }) if services.iter().any(|s| s == "CLC") => {}
                Ok(Idb::Ok { .. }) => return "CLC not available".to_string(),
                Ok(Idb::Ko { .. }) if self.flags.clc_after_ko_idb => {}
                Ok(Idb::Ko { code }) => return format!("refused: KO {code}"),
                Err(stop) => return stop,
            }
        }
        if self.version.is_v2() && !run.stay.periodes.is_empty() {
            return self.compute_periods(tls, run, periode).await;
        }
        if !self.flags.recompute_without_del
            && let Some(e) = self.stay_state(&id).engagement
        {
            if let Err(f) = self.del(tls, run, &e, MOTIF_ANNULATION).await {
                return f.result();
            }
            self.set_engagement(&id, None);
        }
        match self.sel(tls, run, Op::Clc, Extra::default()).await {
            Ok(ok) => {
                let numero = ok.numero_engagement.clone().unwrap_or_default();
                let stay = run.stay;
                let e = self.engaged(run, &ok, None, stay);
                self.set_engagement(&id, Some(e));
                run.total_amc = ok.total_amc;
                numero
            }
            Err(f) => f.result(),
        }
    }

    /// The engagement a CLC OK answer made.
    fn engaged(&self, run: &mut Run<'_>, ok: &OkAnswer, rang: Option<u32>, sent: &Stay) -> Engaged {
        if !self.flags.message_patient_dropped && ok.message_patient.is_some() {
            run.message_patient = ok.message_patient.clone();
        }
        Engaged {
            numero: ok.numero_engagement.clone().unwrap_or_default(),
            numero_amc: run.patient.numero_amc.clone(),
            norme: run.norme.clone().unwrap_or_else(|| NORME.to_string()),
            rang,
            end: run.stay.end_of(rang),
            lines: sent.prestations.clone(),
            montants: ok.montants.clone(),
            total_amc: ok.total_amc.clone(),
        }
    }

    /// V2 compute of a stay billed by periods: `periode` given, that period (every earlier
    /// one must be engaged); otherwise every period not engaged yet, in order. A period
    /// with an active engagement is cancelled (DEL) first.
    async fn compute_periods(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
        periode: Option<u32>,
    ) -> String {
        let id = run.stay.id.clone();
        let mut order: Vec<Periode> = run.stay.periodes.clone();
        order.sort_by_key(|p| p.rang);
        let last_rang = order.last().map(|p| p.rang);
        let engaged = self.stay_state(&id).engaged_rangs;
        let mut todo: Vec<Periode> = match periode {
            Some(r) => {
                let Some(pos) = order.iter().position(|p| p.rang == r) else {
                    return format!("unknown period {r}");
                };
                if !self.flags.periods_out_of_order
                    && let Some(p) = order[..pos].iter().find(|p| !engaged.contains(&p.rang))
                {
                    return format!("refused: period {} not engaged", p.rang);
                }
                vec![order[pos].clone()]
            }
            None => order
                .iter()
                .filter(|p| !engaged.contains(&p.rang))
                .cloned()
                .collect(),
        };
        if todo.is_empty() {
            return "nothing to engage".to_string();
        }
        if self.flags.periods_out_of_order {
            todo.reverse();
        }
        let mut numeros = Vec::new();
        let mut total = 0i64;
        for p in &todo {
            if !self.flags.recompute_without_del
                && let Some(e) = self.stay_state(&id).periodes.get(&p.rang).cloned()
            {
                if let Err(f) = self.del(tls, run, &e, MOTIF_ANNULATION).await {
                    return f.result();
                }
                self.state()
                    .stays
                    .entry(id.clone())
                    .or_default()
                    .periodes
                    .remove(&p.rang);
            }
            let sent = Stay {
                prestations: p.prestations.clone(),
                periodes: Vec::new(),
                ..run.stay.clone()
            };
            let derniere =
                !self.flags.last_period_unmarked && p.derniere.unwrap_or(Some(p.rang) == last_rang);
            let pf = PeriodeFacturation {
                rang: p.rang,
                date_debut: &p.date_debut,
                date_fin: &p.date_fin,
                derniere,
            };
            let ok = match self
                .sel(
                    tls,
                    run,
                    Op::Clc,
                    Extra {
                        periode: Some((pf, &sent)),
                        ..Extra::default()
                    },
                )
                .await
            {
                Ok(ok) => ok,
                Err(f) => return f.result(),
            };
            let e = self.engaged(run, &ok, Some(p.rang), &sent);
            total += ok.total_amc.as_deref().and_then(cents).unwrap_or(0);
            numeros.push(e.numero.clone());
            let mut st = self.state();
            let ss = st.stays.entry(id.clone()).or_default();
            ss.engaged_rangs.insert(p.rang);
            ss.last.insert(Some(p.rang), e.clone());
            ss.periodes.insert(p.rang, e);
        }
        run.total_amc = Some(format_cents(total));
        numeros.join(" ")
    }

    async fn cancel(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
        stay_id: &str,
    ) -> String {
        let Some(e) = self.stay_state(stay_id).engagement else {
            return "nothing to cancel".to_string();
        };
        match self.del(tls, run, &e, MOTIF_ANNULATION_CANCEL).await {
            Ok(_) => {
                self.set_engagement(stay_id, None);
                format!("cancelled {}", e.numero)
            }
            Err(f) => f.result(),
        }
    }

    /// DRE of the active engagement of the stay (or of its period `rang`).
    async fn invoice(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
        rang: Option<u32>,
        numero_facture: &str,
        date_facture: &str,
    ) -> String {
        let st = self.stay_state(&run.stay.id);
        let active = match rang {
            Some(r) => st.periodes.get(&r).cloned(),
            None => st.engagement.clone(),
        };
        let e = match active {
            Some(e) => e,
            None if self.flags.invoice_without_engagement => match st.last.get(&rang) {
                Some(e) => e.clone(),
                None => return "no engagement".to_string(),
            },
            None => return "no engagement".to_string(),
        };
        {
            let state = self.state();
            match state.billing.get(&e.numero) {
                Some(Billing::Paid(_)) if !self.flags.reinvoice_paid => {
                    return "already paid".to_string();
                }
                Some(Billing::Invoiced(n)) => return format!("already invoiced {n}"),
                _ => {}
            }
            if state.invoices.contains_key(numero_facture) {
                return format!("refused: numero_facture {numero_facture} already used");
            }
        }
        let date = if self.flags.invoice_before_end {
            run.stay.date_entree.clone()
        } else {
            if let Some(end) = &e.end
                && date_facture < end.as_str()
            {
                return "refused: date before end of care".to_string();
            }
            date_facture.to_string()
        };
        let mut lignes: Vec<(Prestation, String)> = e
            .lines
            .iter()
            .cloned()
            .zip(e.montants.iter().cloned())
            .collect();
        let mut total = e.total_amc.clone().unwrap_or_default();
        if self.flags.invoice_amounts_recomputed
            && let Some((_, m)) = lignes.last_mut()
        {
            *m = format_cents(cents(m).unwrap_or(0) - 1);
            total = format_cents(lignes.iter().filter_map(|(_, m)| cents(m)).sum());
        }
        let dre = Dre {
            numero_facture: numero_facture.to_string(),
            date_facture: date,
            lignes,
            total_amc: total.clone(),
        };
        run.total_amc = Some(total);
        match self
            .sel(
                tls,
                run,
                Op::Dre,
                Extra {
                    dre: Some((&e, &dre)),
                    ..Extra::default()
                },
            )
            .await
        {
            Ok(_) => {
                let mut state = self.state();
                state
                    .billing
                    .insert(e.numero.clone(), Billing::Invoiced(numero_facture.into()));
                state
                    .invoices
                    .insert(numero_facture.to_string(), e.numero.clone());
                format!("invoiced {numero_facture}")
            }
            Err(f) => f.result(),
        }
    }

    /// Read every `RSP-*.xml` of `lab.return_drop`: the report's `returns`, and the state of
    /// the invoices (paid: never invoiced again; rejected: the engagement may be invoiced
    /// again under a new number).
    fn read_returns(&self, run: &Run<'_>) -> (String, Vec<Value>) {
        let Some(dir) = run.lab.get("return_drop").and_then(Value::as_str) else {
            return (
                "no return drop: lab.return_drop missing".to_string(),
                Vec::new(),
            );
        };
        if self.flags.rsp_ignored {
            return ("0 return(s)".to_string(), Vec::new());
        }
        let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("RSP-") && n.ends_with(".xml"))
                })
                .collect(),
            Err(e) => return (format!("return drop {dir}: {e}"), Vec::new()),
        };
        files.sort();
        let mut list = Vec::new();
        for f in files {
            let Some(r) = std::fs::read_to_string(&f).ok().and_then(|t| parse_rsp(&t)) else {
                continue;
            };
            let mut state = self.state();
            if let Some(eng) = state.invoices.get(&r.numero_facture).cloned() {
                match &r.rejet {
                    None => {
                        state
                            .billing
                            .insert(eng, Billing::Paid(r.numero_facture.clone()));
                    }
                    Some(_) => {
                        if state.billing.get(&eng)
                            == Some(&Billing::Invoiced(r.numero_facture.clone()))
                        {
                            state.billing.remove(&eng);
                        }
                    }
                }
            }
            list.push(json!({
                "numero_facture": r.numero_facture,
                "outcome": if r.rejet.is_some() { "rejected" } else { "paid" },
                "code": r.rejet,
            }));
        }
        (format!("{} return(s)", list.len()), list)
    }

    /// The stay's IDB answer: the one kept, or a new IDB call.
    async fn ensure_idb(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
    ) -> Result<Idb, Stop> {
        match self.stay_state(&run.stay.id).idb {
            Some(idb) => Ok(idb),
            None => self.idb(tls, run).await,
        }
    }

    /// Call IDB and keep its answer (OK or KO) for the stay.
    async fn idb(&self, tls: &Arc<rustls::ClientConfig>, run: &mut Run<'_>) -> Result<Idb, Stop> {
        let idb = match self.sel(tls, run, Op::Idb, Extra::default()).await {
            Ok(ok) => Idb::Ok {
                services: ok.services,
            },
            Err(Failed::Ko(code)) => Idb::Ko { code },
            Err(Failed::Stop(stop)) => return Err(stop),
        };
        self.set_idb(&run.stay.id, idb.clone());
        Ok(idb)
    }

    /// Where to send `op` for `numero_amc`: the annuaire's address (looked up when not
    /// cached), or the static configuration under `skips-annuaire`.
    async fn address(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
        op: Op,
        numero_amc: &str,
    ) -> Result<(String, String), Stop> {
        if self.flags.skips_annuaire {
            let endpoint = run
                .patient
                .endpoint
                .clone()
                .ok_or("no address: data.patient.endpoint missing (skips-annuaire)")?;
            let base = run
                .lab
                .get("amc_urls")
                .and_then(|u| u.get(&endpoint))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("no address: lab.amc_urls.{endpoint} missing"))?;
            return Ok((
                format!("{}/{}", base.trim_end_matches('/'), op.name()),
                String::new(),
            ));
        }
        let key = if self.flags.wrong_endpoint {
            "*".to_string()
        } else {
            numero_amc.to_string()
        };
        let cached = self.state().annuaire.get(&key).cloned();
        let addrs = match cached {
            Some(a) => a,
            None => {
                let addrs = self.search(tls, run, numero_amc).await?;
                self.state().annuaire.insert(key, addrs.clone());
                addrs
            }
        };
        let all: Vec<&Addr> = addrs
            .iter()
            .filter(|a| {
                a.code_service.eq_ignore_ascii_case(op.name())
                    && a.type_adresse.eq_ignore_ascii_case("URL")
                    && !a.valeur.is_empty()
            })
            .collect();
        let lists = |a: &&&Addr, n: &str| a.version.split_whitespace().any(|v| v == n);
        let v2 = if self.version.is_v2() {
            all.iter().find(|a| lists(a, NORME_V2))
        } else {
            None
        };
        v2.or_else(|| all.iter().find(|a| lists(a, NORME)))
            .or_else(|| all.first())
            .map(|a| (a.valeur.clone(), a.version.clone()))
            .ok_or_else(|| "no address".to_string())
    }

    /// Annuaire `search` for `numero_amc`; the addresses when `code_retour` is `00`.
    async fn search(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
        numero_amc: &str,
    ) -> Result<Vec<Addr>, Stop> {
        let url = run
            .lab
            .get("annuaire_url")
            .and_then(Value::as_str)
            .ok_or("no address: lab.annuaire_url missing")?
            .to_string();
        let mut patient = run.patient.clone();
        patient.numero_amc = numero_amc.to_string();
        let q = annuaire_query(
            &today(),
            &self.cfg.logiciel,
            &self.cfg.version_logiciel,
            &patient,
            &run.stay.domaine,
        );
        let body = soap::envelope(
            soap::SOAP11_ENV,
            &[],
            &annuaire::request_body(&q, annuaire::NS),
        );
        let req = Request {
            url: url.clone(),
            headers: SoapVersion::V11.request_headers(""),
            body: body.into_bytes(),
        };
        let ex = client::post_with(
            &req,
            tls.clone(),
            self.timeouts(),
            ("establishment", "annuaire", "search"),
            None,
        )
        .await;
        let mut call = Map::new();
        call.insert("actor".into(), json!("annuaire"));
        call.insert("url".into(), json!(url));
        call.insert("operation".into(), json!("search"));
        call.insert("attempt".into(), json!(1));
        call.insert("id_flux".into(), Value::Null);
        call.insert(
            "http_status".into(),
            json!(ex.response.as_ref().and_then(|r| r.status)),
        );
        call.insert("duration_ms".into(), json!(ex.duration_ms));
        let parsed: Result<(String, Vec<Addr>), (&str, String)> = match (&ex.error, &ex.response) {
            (Some(e), _) => Err((
                Answer::Transport {
                    kind: e.kind,
                    message: String::new(),
                }
                .label(),
                e.message.clone(),
            )),
            (None, None) => Err(("protocol", "no response".to_string())),
            (None, Some(resp)) => {
                let ct = resp.header("content-type").unwrap_or("");
                if media_type(ct) != "text/xml" {
                    Err(("content_type", format!("wrong content type: {ct}")))
                } else {
                    match annuaire::parse_response(&resp.text()) {
                        Ok((code, addrs)) => Ok((
                            code,
                            addrs
                                .into_iter()
                                .map(|a| Addr {
                                    code_service: a.code_service,
                                    type_adresse: a.type_adresse,
                                    valeur: a.valeur,
                                    version: a.version_norme_service,
                                })
                                .collect(),
                        )),
                        Err(m) => Err(("malformed", format!("malformed answer: {m}"))),
                    }
                }
            }
        };
        let result = match parsed {
            Ok((code, addrs)) => {
                call.insert("outcome".into(), json!("ok"));
                call.insert(
                    "detail".into(),
                    json!(format!("code_retour {code}, {} address(es)", addrs.len())),
                );
                call.insert("code_retour".into(), json!(code));
                if code == "00" {
                    Ok(addrs)
                } else {
                    Err("no address".to_string())
                }
            }
            Err((label, detail)) => {
                call.insert("outcome".into(), json!(label));
                call.insert("detail".into(), json!(detail));
                Err(format!("search failed: {detail}"))
            }
        };
        call.insert("retried".into(), json!(false));
        run.calls.push(Value::Object(call));
        result
    }

    /// The norme of a request to an address listing `versions`: `1.04` for a V1 GAP; for a
    /// V2 GAP `2.00` when the address lists it, else `1.04` (a stay that needs `2.00` falls
    /// back to paper: `Err`).
    fn norme_for(&self, run: &Run<'_>, versions: &str) -> Result<String, Stop> {
        if !self.version.is_v2() {
            return Ok(NORME.to_string());
        }
        let accepts_v2 = versions.split_whitespace().any(|v| v == NORME_V2);
        if accepts_v2 || self.flags.v2_to_v1_only_amc {
            Ok(NORME_V2.to_string())
        } else if run.needs_v2 && !self.flags.no_paper_fallback {
            Err("paper fallback".to_string())
        } else {
            Ok(NORME.to_string())
        }
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: self.cfg.call_timeout,
            request: self.cfg.call_timeout,
        }
    }

    /// One SEL operation with its retries. `del` gives the engagement cancelled and the
    /// `motifAnnulation` of a DEL. An OK answer is returned; anything else ends the action
    /// with the returned result.
    /// DEL of an engagement (before a recomputation, or for a cancel).
    async fn del(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
        e: &Engaged,
        motif: &str,
    ) -> Result<OkAnswer, Failed> {
        let extra = Extra {
            del: Some((e, motif)),
            ..Extra::default()
        };
        self.sel(tls, run, Op::Del, extra).await
    }

    async fn sel(
        &self,
        tls: &Arc<rustls::ClientConfig>,
        run: &mut Run<'_>,
        op: Op,
        extra: Extra<'_>,
    ) -> Result<OkAnswer, Failed> {
        let del = extra.del;
        let engaged = del.map(|(e, _)| e).or(extra.dre.map(|(e, _)| e));
        let numero_amc = match engaged {
            Some(e) => e.numero_amc.clone(),
            None => run.patient.numero_amc.clone(),
        };
        let (url, versions) = match self.address(tls, run, op, &numero_amc).await {
            Ok(a) => a,
            Err(stop) if stop == "no address" && self.version.is_v2() && run.needs_v2 => {
                // The annuaire has no address of this AMC for a V2 domain: it accepts 1.04
                // only.
                return Err(Failed::Stop(if self.flags.no_paper_fallback {
                    stop
                } else {
                    "paper fallback".to_string()
                }));
            }
            Err(stop) => return Err(Failed::Stop(stop)),
        };
        let norme = match engaged {
            Some(e) => e.norme.clone(),
            None => self.norme_for(run, &versions).map_err(Failed::Stop)?,
        };
        run.norme = Some(norme.clone());
        let categorie = if norme == NORME_V2 {
            Some(self.version.categorie.as_str())
        } else {
            self.flags.v2_field_in_v1.then_some("EXDG")
        };
        let stay = extra.periode.map(|(_, s)| s).unwrap_or(run.stay);
        let cle = cle_nir(&run.patient.nir, self.flags.wrong_nir_key).unwrap_or_default();
        let max_retries = self.flags.max_retries();
        let first_id = uuid::Uuid::new_v4().to_string();
        let mut retries = 0;
        let mut ko_retried = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id_flux = if attempt == 1 || self.flags.reuses_idflux {
                first_id.clone()
            } else {
                uuid::Uuid::new_v4().to_string()
            };
            let emission = now_stamp();
            let body = sel_envelope(&SelRequest {
                op,
                id_flux: &id_flux,
                emission: &emission,
                finess_juridique: &self.cfg.finess_juridique,
                finess_geographique: &self.cfg.finess_geographique,
                logiciel: &self.cfg.logiciel,
                version_logiciel: &self.cfg.version_logiciel,
                categorie,
                numero_amc: &numero_amc,
                cle_nir: &cle,
                patient: run.patient,
                stay,
                numero_engagement: engaged.map(|e| e.numero.as_str()).unwrap_or(""),
                motif: del.map(|(_, m)| m).unwrap_or(""),
                norme: &norme,
                periode: extra.periode.map(|(p, _)| p),
                dre: extra.dre.map(|(_, d)| d),
            });
            // The defect keeps the SOAP 1.2 headers but writes a SOAP 1.1 envelope.
            let body = if self.flags.soap11_requests {
                body.replace(soap::SOAP12_ENV, soap::SOAP11_ENV)
            } else {
                body
            };
            let req = Request {
                url: url.clone(),
                headers: sel_headers(op),
                body: body.into_bytes(),
            };
            let ex = client::post_with(
                &req,
                tls.clone(),
                self.timeouts(),
                ("establishment", "amc", op.name()),
                None,
            )
            .await;
            let answer = classify(op, &ex);
            let retry = if answer.retryable() {
                retries < max_retries
            } else {
                matches!(answer, Answer::Ko { .. }) && self.flags.retries_ko && !ko_retried
            };
            let mut call = Map::new();
            call.insert("actor".into(), json!("amc"));
            call.insert("url".into(), json!(url));
            call.insert("operation".into(), json!(op.name()));
            call.insert("attempt".into(), json!(attempt));
            call.insert("id_flux".into(), json!(id_flux));
            call.insert(
                "http_status".into(),
                json!(ex.response.as_ref().and_then(|r| r.status)),
            );
            call.insert("duration_ms".into(), json!(ex.duration_ms));
            call.insert("outcome".into(), json!(answer.label()));
            call.insert("detail".into(), json!(answer.detail()));
            if let Answer::Ko { code, .. } = &answer {
                call.insert("code".into(), json!(code));
            }
            call.insert("retried".into(), json!(retry));
            run.calls.push(Value::Object(call));
            if retry {
                if answer.retryable() {
                    retries += 1;
                } else {
                    ko_retried = true;
                }
                continue;
            }
            return match answer {
                Answer::Ok(ok) => Ok(ok),
                Answer::Ko { code, .. } => Err(Failed::Ko(code)),
                other => {
                    let mut stop = other.failure(op);
                    if attempt > 1 {
                        stop.push_str(&format!(" ({attempt} attempts)"));
                    }
                    Err(Failed::Stop(stop))
                }
            };
        }
    }
}

#[cfg(test)]
mod tests;
