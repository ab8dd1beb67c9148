//! The embedded reference AMC: ROC model V1 and V2 for IDB, SIM, CLC, DEL, DRE and ANF,
//! served over HTTPS with mutual TLS, and its payment run writing the returns (RSP). It is
//! also the mirror AMC the establishment under test talks to. Defect switches
//! ([`crate::defects::AMC`]) each break one rule.
//!
//! # Processing order
//!
//! 1. Routing: the last segment of the path (query and a trailing `/` ignored) names the
//!    operation (`IDB`, `SIM`, `CLC`, `DEL`, `DRE`, `ANF`): any prefix works
//!    (`<base_url>/IDB`). Another path → 404; another method than POST on an operation path
//!    → 405 (`Allow: POST`).
//! 2. The body must be UTF-8 and well-formed XML, the root a SOAP 1.2 `Envelope` (the
//!    configured `env_ns`) with a `Body` whose single element is the operation's request root
//!    in the SEL namespace; otherwise fault `env:Sender` / `roc:SchemaInvalide` (HTTP 400).
//! 3. Mandatory elements present and lexically valid (sections 3 and 4), else
//!    `roc:SchemaInvalide` with a reason naming the element by its path from the request
//!    root (`idbRequete/beneficiaire/nir`). Presence is checked by namespace URI and local
//!    name; element order is not enforced and unknown elements are ignored. In a DRE, whose
//!    rules list no `R05`, `dateFacture` must also be a real calendar date and `montantAmc`
//!    and `totalAmc` amounts with exactly two decimals (section 3), else `SchemaInvalide`.
//! 4. `versionNorme` must be a version the AMC entry accepts (for an AMC number this endpoint
//!    does not serve: one of the endpoint's versions), else `roc:VersionNonSupportee` (400);
//!    an ANF in a `1.04` request gets the same fault (ANF exists from `2.00`).
//! 5. Identity binding: `entete/emetteur/finessJuridique` must equal the client certificate
//!    CN, else `roc:NonAutorise` (403). A request without client certificate fails it too.
//! 6. Business rules ([`crate::roc::rules`], [`crate::roc::registry`]): HTTP 200, `statut`
//!    OK or KO. DEL, DRE and ANF first give `R06` for an AMC number this endpoint does not
//!    serve. CLC: the computation checks (R06, R05, R01, R04, R02, R03, R07, R05 on amounts),
//!    then `R08`: a period is refused only for a CLC that would otherwise engage it (the
//!    spec states R08 apart, as the refusal to engage), checked and recorded atomically.
//!
//! An unexpected internal error (a panic while processing) gives `env:Receiver` /
//! `roc:ErreurInterne` (HTTP 500).
//!
//! # Answers
//!
//! SOAP 1.2 (`Content-Type: application/soap+xml; charset=utf-8`), envelope prefix `env`,
//! SEL elements with prefix `roc` (declared on the response root), two-space indentation.
//! Element order of every answer:
//!
//! ```text
//! <roc:{idb,sim,clc,del,dre,anf}Reponse>
//!   enteteReponse: idFlux (new UUID), idFluxRequete, dateHeureReponse (RFC 3339, numeric
//!                  offset, whole seconds), versionNorme (as in the request)
//!   statut (OK | KO)
//!   KO:  motif: code, libelle
//!   IDB OK: droits (dateDebut, dateFin), servicesDisponibles (service: SIM if SEJOUR, CLC, DEL)
//!   SIM OK: lignes (ligne: code, montantAmc, resteACharge; request order), totalAmc,
//!           totalResteACharge
//!   CLC OK: numeroEngagement, lignes, totalAmc, totalResteACharge, messagePatient (2.00 only,
//!           when the beneficiary has one)
//!   DEL OK: dateAnnulation (today, YYYY-MM-DD)
//!   DRE OK: accuseReception (numeroFacture, dateReception: today)
//!   ANF OK: dateAnnulation (the day the invoice was cancelled: today, or an earlier day
//!           for an invoice already cancelled)
//! ```
//!
//! # Returns (RSP)
//!
//! [`Amc::payment_run`] settles the `received` invoices ([`Registry::settle`]) and writes one
//! plain XML document per invoice, `RSP-<numeroFacture>.xml` (characters of the number other
//! than ASCII letters, digits, `.`, `_` and `-` written `%XX` per UTF-8 byte, so that the name
//! stays one file of the folder), root `roc:rsp` in the configured SEL namespace:
//!
//! ```text
//! <roc:rsp> numeroFacture, numeroEngagement, then
//!   paiement (montantPaye, datePaiement: today, referenceVirement: VIR- + 12 hex digits)
//!   | rejet (code R25, libelle)
//! ```
//!
//! Each file is written whole: a temporary name in the same folder (`.RSP-….xml.<hex>.tmp`,
//! which no `RSP-*.xml` pattern matches), fsync, rename; the folder is synced at the end.

use crate::net::server::{Handler, Request, Response, Server};
use crate::net::tls::ClientAuth;
use crate::pki::Pki;
use crate::roc::rules::{self, Demande, PeriodeDemande, Prestation};
use crate::roc::{
    Categorie, CodePrestation, Deviations, Domaine, DreDemande, Engagement, EngagementState,
    Facture, Ko, Operation, Population, Registry, Reglement, Settlement, TypePec, Version, dates,
    ids, money,
};
use crate::soap;
use crate::xml::{self, Element};
use rust_decimal::Decimal;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The SEL namespace of ROC model.
pub const SEL_NS: &str = "urn:roc:model:sel";
/// The namespace the `wrong-namespace` defect answers in.
pub const WRONG_SEL_NS: &str = "urn:roc:sel";
/// Delay of the `slow-clc` defect.
pub const SLOW_CLC_DELAY: Duration = Duration::from_millis(4300);
/// Delay of the `hang-del` defect.
pub const HANG_DEL_DELAY: Duration = Duration::from_secs(3600);
/// Pause of the `rsp-not-atomic` defect between the two halves of a return file.
pub const RSP_NOT_ATOMIC_PAUSE: Duration = Duration::from_millis(200);
/// Libellé of a rejection at the payment run (`R25`).
pub const R25_LIBELLE: &str = "facture antérieure à la fin des soins";

const SOAP12_CONTENT_TYPE: &str = "application/soap+xml; charset=utf-8";
const SOAP11_CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// What the AMC serves and how.
#[derive(Debug, Clone)]
pub struct AmcConfig {
    pub population: Population,
    /// `A` or `B`: serves the population's AMC numbers of that endpoint.
    pub endpoint: String,
    /// Names of [`crate::defects::AMC`] switches that are on (unknown names are ignored by
    /// [`handler`]; [`start`] refuses them).
    pub defects: BTreeSet<String>,
    /// SEL namespace (`urn:roc:model:sel`).
    pub sel_ns: String,
    /// SOAP 1.2 envelope namespace.
    pub env_ns: String,
}

impl AmcConfig {
    /// Endpoint `endpoint` of `population` with `defects` on, ROC model namespaces
    /// (`urn:roc:model:sel`, SOAP 1.2).
    pub fn new(population: Population, endpoint: &str, defects: BTreeSet<String>) -> Self {
        AmcConfig {
            population,
            endpoint: endpoint.to_string(),
            defects,
            sel_ns: SEL_NS.to_string(),
            env_ns: soap::SOAP12_ENV.to_string(),
        }
    }

    /// Names in `defects` that are not AMC defects.
    pub fn unknown_defects(&self) -> Vec<String> {
        self.defects
            .iter()
            .filter(|d| crate::defects::find("amc", d).is_none())
            .cloned()
            .collect()
    }
}

/// The operations served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Idb,
    Sim,
    Clc,
    Del,
    /// Invoice (V1 and V2).
    Dre,
    /// Invoice cancellation (`2.00` only).
    Anf,
}

impl Op {
    /// Every operation, in the spec's order.
    pub const ALL: [Op; 6] = [Op::Idb, Op::Sim, Op::Clc, Op::Del, Op::Dre, Op::Anf];

    pub fn from_name(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == s)
    }
    pub fn name(self) -> &'static str {
        match self {
            Op::Idb => "IDB",
            Op::Sim => "SIM",
            Op::Clc => "CLC",
            Op::Del => "DEL",
            Op::Dre => "DRE",
            Op::Anf => "ANF",
        }
    }
    /// Request root element.
    pub fn request_root(self) -> &'static str {
        match self {
            Op::Idb => "idbRequete",
            Op::Sim => "simRequete",
            Op::Clc => "clcRequete",
            Op::Del => "delRequete",
            Op::Dre => "dreRequete",
            Op::Anf => "anfRequete",
        }
    }
    /// Response root element.
    pub fn response_root(self) -> &'static str {
        match self {
            Op::Idb => "idbReponse",
            Op::Sim => "simReponse",
            Op::Clc => "clcReponse",
            Op::Del => "delReponse",
            Op::Dre => "dreReponse",
            Op::Anf => "anfReponse",
        }
    }
}

/// Client authentication the TLS layer applies for these defects: `Required` normally,
/// `AcceptAny` with `untrusted-client-accepted`, `Optional` with `no-client-cert-accepted`.
pub fn client_auth(defects: &BTreeSet<String>) -> ClientAuth {
    if defects.contains("untrusted-client-accepted") {
        ClientAuth::AcceptAny
    } else if defects.contains("no-client-cert-accepted") {
        ClientAuth::Optional
    } else {
        ClientAuth::Required
    }
}

/// The rule deviations for these defects.
pub fn deviations(defects: &BTreeSet<String>) -> Deviations {
    let on = |n: &str| defects.contains(n);
    Deviations {
        float_rounding: on("float-rounding"),
        r01_r02_swapped: on("r01-r02-swapped"),
        unknown_beneficiary_ok: on("unknown-beneficiary-ok"),
        twins_confused: on("twins-confused"),
        totals_not_sum: on("totals-not-sum"),
        nir_key_unchecked: on("nir-key-unchecked"),
        adherent_unchecked: on("adherent-unchecked"),
        any_amc_served: on("any-amc-served"),
        cp_uncapped: on("cp-uncapped"),
        rights_end_exclusive: on("rights-end-exclusive"),
        sim_on_ace: on("sim-on-ace"),
        v2_domain_in_v1: on("v2-domain-in-v1"),
        double_del_accepted: on("double-del-accepted"),
        r08_unchecked: on("r08-unchecked"),
        last_period_ignored: on("last-period-ignored"),
        dre_cancelled_engagement: on("dre-cancelled-engagement"),
        dre_duplicate_number: on("dre-duplicate-number"),
        dre_twice_invoiced: on("dre-twice-invoiced"),
        dre_amounts_unchecked: on("dre-amounts-unchecked"),
        del_invoiced: on("del-invoiced"),
        anf_paid: on("anf-paid"),
        anf_engagement_stays_invoiced: on("anf-engagement-stays-invoiced"),
        rsp_early_invoice_paid: on("rsp-early-invoice-paid"),
        rsp_amount_wrong: on("rsp-amount-wrong"),
        optam_ignored: on("optam-ignored"),
    }
}

/// Defects that live in the protocol layer rather than in the rules.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    no_idflux_echo: bool,
    idflux_copied: bool,
    fault_reason_en: bool,
    no_client_cert_accepted: bool,
    finess_unbound: bool,
    slow_clc: bool,
    hang_del: bool,
    del_answer_truncated: bool,
    soap11: bool,
    wrong_namespace: bool,
    schema_lax: bool,
    any_version: bool,
    faults_http_200: bool,
    anf_in_v1: bool,
    message_patient_in_v1: bool,
    rsp_not_atomic: bool,
}

impl Flags {
    fn of(defects: &BTreeSet<String>) -> Self {
        let on = |n: &str| defects.contains(n);
        Flags {
            no_idflux_echo: on("no-idflux-echo"),
            idflux_copied: on("idflux-copied"),
            fault_reason_en: on("fault-reason-en"),
            no_client_cert_accepted: on("no-client-cert-accepted"),
            finess_unbound: on("finess-unbound"),
            slow_clc: on("slow-clc"),
            hang_del: on("hang-del"),
            del_answer_truncated: on("del-answer-truncated"),
            soap11: on("soap11-envelope"),
            wrong_namespace: on("wrong-namespace"),
            schema_lax: on("schema-lax"),
            any_version: on("any-version"),
            faults_http_200: on("faults-http-200"),
            anf_in_v1: on("anf-in-v1"),
            message_patient_in_v1: on("message-patient-in-v1"),
            rsp_not_atomic: on("rsp-not-atomic"),
        }
    }
}

/// A running AMC: configuration and the engagement and invoice registry shared by all its
/// requests and its payment runs. [`Amc::new`] gives an `Arc<Amc>`: the same handle serves
/// ([`Amc::handler`]) and runs payments ([`Amc::payment_run`]).
pub struct Amc {
    cfg: AmcConfig,
    dev: Deviations,
    flags: Flags,
    registry: Mutex<Registry>,
}

impl std::fmt::Debug for Amc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Amc")
            .field("endpoint", &self.cfg.endpoint)
            .field("defects", &self.cfg.defects)
            .finish()
    }
}

/// The handler of an AMC built from `cfg` (a fresh registry).
pub fn handler(cfg: AmcConfig) -> Handler {
    Amc::new(cfg).handler()
}

/// Serve `cfg` on `listen` (e.g. `127.0.0.1:0`): server identity `pki.amc_server`, client
/// certificates checked against `pki.ca_cert_pem` as [`client_auth`] says.
pub async fn start(listen: &str, pki: &Pki, cfg: AmcConfig) -> std::io::Result<Server> {
    start_with_handle(listen, pki, cfg)
        .await
        .map(|(server, _)| server)
}

/// [`start`], also giving the AMC behind the server (its registry, its payment runs).
pub async fn start_with_handle(
    listen: &str,
    pki: &Pki,
    cfg: AmcConfig,
) -> std::io::Result<(Server, Arc<Amc>)> {
    let unknown = cfg.unknown_defects();
    if !unknown.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("unknown AMC defect(s): {}", unknown.join(", ")),
        ));
    }
    let tls = crate::net::tls::server_config(
        &pki.ca_cert_pem,
        &pki.amc_server,
        client_auth(&cfg.defects),
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let amc = Amc::new(cfg);
    let server = Server::start(listen, tls, amc.handler()).await?;
    Ok((server, amc))
}

/// Date and time of one request's processing.
#[derive(Debug, Clone)]
struct Now {
    stamp: String,
    today: time::Date,
}

impl Now {
    fn get() -> Now {
        let now =
            time::OffsetDateTime::now_local().unwrap_or_else(|_| time::OffsetDateTime::now_utc());
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
        );
        Now {
            stamp: now.format(&format).unwrap_or_default(),
            today: now.date(),
        }
    }
}

/// A technical error answered as a SOAP fault.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fault {
    /// `Sender` or `Receiver`.
    code: &'static str,
    /// `SchemaInvalide`, `VersionNonSupportee`, `NonAutorise`, `ErreurInterne`.
    subcode: &'static str,
    reason: String,
    status: u16,
}

impl Fault {
    fn schema(reason: String) -> Fault {
        Fault {
            code: "Sender",
            subcode: "SchemaInvalide",
            reason,
            status: 400,
        }
    }
    fn internal(reason: &str) -> Fault {
        Fault {
            code: "Receiver",
            subcode: "ErreurInterne",
            reason: reason.to_string(),
            status: 500,
        }
    }
}

fn missing(path: &str) -> Fault {
    Fault::schema(format!("élément obligatoire absent : {path}"))
}

fn invalid(path: &str, value: &str) -> Fault {
    Fault::schema(format!("valeur invalide pour {path} : « {value} »"))
}

/// The `entete` of a request.
#[derive(Debug, Clone)]
struct Entete {
    id_flux: String,
    version: String,
    finess_juridique: String,
    categorie: Option<Categorie>,
    numero_amc: String,
}

#[derive(Debug, Clone)]
enum Body {
    Idb(Demande),
    Sim(Demande, Vec<Prestation>),
    Clc {
        demande: Demande,
        id_dossier: String,
        periode: Option<PeriodeDemande>,
        prestations: Vec<Prestation>,
    },
    Del {
        numero_engagement: String,
    },
    Dre {
        numero_engagement: String,
        numero_facture: String,
        date_facture: time::Date,
        /// `montantAmc` of each line, in request order.
        montants: Vec<Decimal>,
        total_amc: Decimal,
    },
    Anf {
        numero_facture: String,
    },
}

#[derive(Debug, Clone)]
struct Parsed {
    entete: Entete,
    body: Body,
    /// With `schema-lax`: the first missing mandatory element of `beneficiaire` or
    /// `contexte` (answered KO R05 instead of a fault).
    lax_missing: Option<String>,
}

/// Reads the elements of a request in the SEL namespace.
struct Reader<'a> {
    ns: &'a str,
    lax: bool,
    lax_missing: Option<String>,
}

impl Reader<'_> {
    fn block<'e>(
        &self,
        parent: &'e Element,
        path: &str,
        local: &str,
    ) -> Result<&'e Element, Fault> {
        parent
            .child(self.ns, local)
            .ok_or_else(|| missing(&format!("{path}/{local}")))
    }

    fn optional(
        &self,
        parent: &Element,
        path: &str,
        local: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<Option<String>, Fault> {
        match parent.child(self.ns, local) {
            None => Ok(None),
            Some(e) => {
                let v = e.text();
                if valid(&v) {
                    Ok(Some(v))
                } else {
                    Err(invalid(&format!("{path}/{local}"), &v))
                }
            }
        }
    }

    fn value(
        &self,
        parent: &Element,
        path: &str,
        local: &str,
        valid: impl Fn(&str) -> bool,
    ) -> Result<String, Fault> {
        self.optional(parent, path, local, valid)?
            .ok_or_else(|| missing(&format!("{path}/{local}")))
    }

    /// A mandatory child of `beneficiaire` or `contexte`: under `schema-lax`, a missing one
    /// is recorded and `placeholder` stands in.
    fn lax_value(
        &mut self,
        parent: &Element,
        path: &str,
        local: &str,
        valid: impl Fn(&str) -> bool,
        placeholder: &str,
    ) -> Result<String, Fault> {
        match self.optional(parent, path, local, valid)? {
            Some(v) => Ok(v),
            None if self.lax => {
                if self.lax_missing.is_none() {
                    self.lax_missing = Some(format!("{path}/{local}"));
                }
                Ok(placeholder.to_string())
            }
            None => Err(missing(&format!("{path}/{local}"))),
        }
    }
}

fn non_empty(s: &str) -> bool {
    !s.is_empty()
}

fn any(_: &str) -> bool {
    true
}

/// Build an XML answer body with the `roc` prefix and two-space indentation.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn new() -> Xml {
        Xml {
            out: String::new(),
            depth: 0,
        }
    }
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }
    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push_str(&format!("<roc:{name}>\n"));
        self.depth += 1;
    }
    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str(&format!("</roc:{name}>\n"));
    }
    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        self.out.push_str(&format!(
            "<roc:{name}>{}</roc:{name}>\n",
            soap::escape(text)
        ));
    }
}

impl Amc {
    pub fn new(cfg: AmcConfig) -> Arc<Amc> {
        Arc::new(Amc {
            dev: deviations(&cfg.defects),
            flags: Flags::of(&cfg.defects),
            cfg,
            registry: Mutex::new(Registry::new()),
        })
    }

    /// A server handler sharing this AMC (and its registry).
    pub fn handler(self: &Arc<Self>) -> Handler {
        let amc = Arc::clone(self);
        Arc::new(move |req: Request| {
            let amc = Arc::clone(&amc);
            Box::pin(async move { amc.handle(req).await })
        })
    }

    pub fn config(&self) -> &AmcConfig {
        &self.cfg
    }

    /// The engagement registry (for inspection, and for DRE/ANF/RSP later).
    pub fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answer one request.
    pub async fn handle(&self, req: Request) -> Response {
        let op = match route(&req.method, &req.path) {
            Ok(op) => op,
            Err(resp) => return resp,
        };
        if op == Op::Del && self.flags.hang_del {
            tokio::time::sleep(HANG_DEL_DELAY).await;
        }
        let mut resp = self.process_guarded(op, &req);
        if op == Op::Del && self.flags.del_answer_truncated {
            // Cut the answer in the middle of its XML (at a character boundary).
            let text = String::from_utf8_lossy(&resp.body).to_string();
            let mut cut = text.len() / 2;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            resp.body = text.as_bytes()[..cut].to_vec();
        }
        if op == Op::Clc && self.flags.slow_clc {
            tokio::time::sleep(SLOW_CLC_DELAY).await;
        }
        resp
    }

    fn process_guarded(&self, op: Op, req: &Request) -> Response {
        let now = Now::get();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(op, req, &now)))
        {
            Ok(Ok(r)) => r,
            Ok(Err(f)) => self.fault(&f),
            Err(_) => self.fault(&Fault::internal("erreur interne de l'AMC")),
        }
    }

    fn process(&self, op: Op, req: &Request, now: &Now) -> Result<Response, Fault> {
        let text = std::str::from_utf8(&req.body)
            .map_err(|_| Fault::schema("corps de requête non UTF-8".into()))?;
        let root = xml::parse(text).map_err(|e| Fault::schema(format!("XML mal formé : {e}")))?;
        let request = self.request_element(op, &root)?;
        let parsed = self.read(op, request)?;
        let version = self.check_version(op, &parsed.entete)?;
        self.check_identity(&parsed.entete, req)?;
        let body = self.business(&parsed, version, now);
        Ok(self.answer(op, &parsed.entete, &body, now))
    }

    /// The request root inside `Envelope/Body`.
    fn request_element<'e>(&self, op: Op, root: &'e Element) -> Result<&'e Element, Fault> {
        let env = self.cfg.env_ns.as_str();
        if root.local != "Envelope" || root.ns.as_deref() != Some(env) {
            return Err(Fault::schema(format!(
                "enveloppe SOAP 1.2 attendue ({{{env}}}Envelope), reçu {}",
                qname(root)
            )));
        }
        let body = root
            .child(env, "Body")
            .ok_or_else(|| Fault::schema("élément obligatoire absent : Envelope/Body".into()))?;
        let mut elements = body.elements();
        let (Some(first), None) = (elements.next(), elements.next()) else {
            return Err(Fault::schema(format!(
                "Body doit contenir un seul élément {}",
                op.request_root()
            )));
        };
        if first.local != op.request_root() || first.ns.as_deref() != Some(&self.cfg.sel_ns) {
            return Err(Fault::schema(format!(
                "élément {{{}}}{} attendu dans Body, reçu {}",
                self.cfg.sel_ns,
                op.request_root(),
                qname(first)
            )));
        }
        Ok(first)
    }

    /// Mandatory elements and lexical forms (sections 3 and 4).
    fn read(&self, op: Op, root: &Element) -> Result<Parsed, Fault> {
        let mut r = Reader {
            ns: &self.cfg.sel_ns,
            lax: self.flags.schema_lax,
            lax_missing: None,
        };
        let rp = op.request_root();
        let entete = read_entete(&r, root, rp)?;
        let body = match op {
            Op::Del => {
                let numero_engagement =
                    r.value(root, rp, "numeroEngagement", ids::is_numero_engagement)?;
                r.value(root, rp, "motifAnnulation", any)?;
                Body::Del { numero_engagement }
            }
            Op::Dre => {
                let numero_engagement =
                    r.value(root, rp, "numeroEngagement", ids::is_numero_engagement)?;
                let numero_facture = r.value(root, rp, "numeroFacture", ids::is_numero_facture)?;
                let date_facture =
                    r.value(root, rp, "dateFacture", |s| dates::parse_iso(s).is_some())?;
                let lines = read_lines(&r, root, rp, true)?;
                let total_amc =
                    r.value(root, rp, "totalAmc", |s| money::parse_amount(s).is_some())?;
                Body::Dre {
                    numero_engagement,
                    numero_facture,
                    // Validated by the readers above.
                    date_facture: dates::parse_iso(&date_facture).unwrap_or(time::Date::MIN),
                    montants: lines
                        .into_iter()
                        .map(|(_, m)| m.unwrap_or(Decimal::ZERO))
                        .collect(),
                    total_amc: money::parse_amount(&total_amc).unwrap_or(Decimal::ZERO),
                }
            }
            Op::Anf => {
                let numero_facture = r.value(root, rp, "numeroFacture", ids::is_numero_facture)?;
                r.value(root, rp, "motif", any)?;
                Body::Anf { numero_facture }
            }
            Op::Idb | Op::Sim | Op::Clc => {
                // dateSortie: optional for IDB, and for a CLC engaging a billing period.
                let has_periode = op == Op::Clc && root.child(r.ns, "periodeFacturation").is_some();
                let sortie_needed = op != Op::Idb && !has_periode;
                let demande = read_demande(&mut r, root, rp, &entete, sortie_needed)?;
                match op {
                    Op::Idb => Body::Idb(demande),
                    Op::Sim => Body::Sim(demande, read_prestations(&r, root, rp)?),
                    _ => {
                        let id_dossier = r.value(root, rp, "idDossier", ids::is_id_dossier)?;
                        let periode = read_periode(&r, root, rp, &entete.version)?;
                        Body::Clc {
                            demande,
                            id_dossier,
                            periode,
                            prestations: read_prestations(&r, root, rp)?,
                        }
                    }
                }
            }
        };
        Ok(Parsed {
            entete,
            body,
            lax_missing: r.lax_missing,
        })
    }

    /// The version the request is processed under; ANF only from `2.00` (in a `1.04` request
    /// → `VersionNonSupportee`, not under `anf-in-v1`).
    fn check_version(&self, op: Op, e: &Entete) -> Result<Version, Fault> {
        let pop = &self.cfg.population;
        let accepted = match pop.amc(&e.numero_amc) {
            Some(a) if rules::serves(pop, &self.cfg.endpoint, &e.numero_amc, &self.dev) => {
                a.versions.clone()
            }
            _ => pop.endpoint_versions(&self.cfg.endpoint),
        };
        let anf_v1 = op == Op::Anf
            && Version::parse(&e.version) == Some(Version::V1_04)
            && !self.flags.anf_in_v1;
        match Version::parse(&e.version) {
            Some(_) if anf_v1 && accepted.iter().any(|a| a == &e.version) => Err(Fault {
                code: "Sender",
                subcode: "VersionNonSupportee",
                reason: format!(
                    "ANF n'existe pas en version de norme {} (2.00 seulement)",
                    e.version
                ),
                status: 400,
            }),
            Some(v) if accepted.iter().any(|a| a == &e.version) => Ok(v),
            _ if self.flags.any_version => Ok(Version::V1_04),
            _ => Err(Fault {
                code: "Sender",
                subcode: "VersionNonSupportee",
                reason: format!(
                    "version de norme « {} » non supportée pour l'AMC {} (acceptées : {})",
                    e.version,
                    e.numero_amc,
                    accepted.join(", ")
                ),
                status: 400,
            }),
        }
    }

    /// `entete/emetteur/finessJuridique` must be the client certificate CN.
    fn check_identity(&self, e: &Entete, req: &Request) -> Result<(), Fault> {
        if self.flags.finess_unbound {
            return Ok(());
        }
        match req.peer.common_name.as_deref() {
            Some(cn) if cn == e.finess_juridique => Ok(()),
            None if self.flags.no_client_cert_accepted => Ok(()),
            cn => Err(Fault {
                code: "Sender",
                subcode: "NonAutorise",
                reason: match cn {
                    Some(cn) => format!(
                        "finessJuridique {} différent du CN du certificat client ({cn})",
                        e.finess_juridique
                    ),
                    None => format!(
                        "finessJuridique {} : aucun certificat client présenté",
                        e.finess_juridique
                    ),
                },
                status: 403,
            }),
        }
    }

    /// The business answer content after `enteteReponse` (statut and what follows).
    fn business(&self, p: &Parsed, version: Version, now: &Now) -> Xml {
        let mut x = Xml::new();
        x.depth = 1;
        let pop = &self.cfg.population;
        let ep = self.cfg.endpoint.as_str();
        if p.lax_missing.is_some() {
            let ko = if rules::serves(pop, ep, &p.entete.numero_amc, &self.dev) {
                Ko::R05
            } else {
                Ko::R06
            };
            ko_body(&mut x, ko);
            return x;
        }
        let with_version = |d: &Demande| Demande {
            version,
            ..d.clone()
        };
        match &p.body {
            Body::Idb(d) => match rules::idb(pop, ep, &with_version(d), &self.dev) {
                Ok(ok) => {
                    x.leaf("statut", "OK");
                    x.open("droits");
                    x.leaf("dateDebut", &dates::format_iso(ok.droits.debut));
                    x.leaf("dateFin", &dates::format_iso(ok.droits.fin));
                    x.close("droits");
                    x.open("servicesDisponibles");
                    for s in ok.services {
                        x.leaf("service", s);
                    }
                    x.close("servicesDisponibles");
                }
                Err(ko) => ko_body(&mut x, ko),
            },
            Body::Sim(d, lines) => {
                match rules::compute(
                    pop,
                    ep,
                    &with_version(d),
                    lines,
                    None,
                    Operation::Sim,
                    &self.dev,
                ) {
                    Ok(c) => {
                        x.leaf("statut", "OK");
                        lines_body(&mut x, &c);
                    }
                    Err(ko) => ko_body(&mut x, ko),
                }
            }
            Body::Clc {
                demande,
                id_dossier,
                periode,
                prestations,
            } => {
                let d = with_version(demande);
                match rules::compute(
                    pop,
                    ep,
                    &d,
                    prestations,
                    periode.as_ref(),
                    Operation::Clc,
                    &self.dev,
                ) {
                    Ok(c) => match self.engage(&p.entete, &d, id_dossier, &c, now) {
                        Ok(numero) => {
                            x.leaf("statut", "OK");
                            x.leaf("numeroEngagement", &numero);
                            lines_body(&mut x, &c);
                            if (version == Version::V2_00 || self.flags.message_patient_in_v1)
                                && let Some(m) = &c.eligible.beneficiaire.message_patient
                            {
                                x.leaf("messagePatient", m);
                            }
                        }
                        Err(ko) => ko_body(&mut x, ko),
                    },
                    Err(ko) => ko_body(&mut x, ko),
                }
            }
            Body::Del { numero_engagement } => {
                let result = if rules::serves(pop, ep, &p.entete.numero_amc, &self.dev) {
                    self.registry()
                        .cancel(
                            numero_engagement,
                            &p.entete.numero_amc,
                            &p.entete.finess_juridique,
                            now.today,
                            &self.dev,
                        )
                        .map(|_| ())
                } else {
                    Err(Ko::R06)
                };
                match result {
                    Ok(()) => {
                        x.leaf("statut", "OK");
                        x.leaf("dateAnnulation", &dates::format_iso(now.today));
                    }
                    Err(ko) => ko_body(&mut x, ko),
                }
            }
            Body::Dre {
                numero_engagement,
                numero_facture,
                date_facture,
                montants,
                total_amc,
            } => {
                let result = if rules::serves(pop, ep, &p.entete.numero_amc, &self.dev) {
                    let d = DreDemande {
                        numero_engagement: numero_engagement.clone(),
                        numero_facture: numero_facture.clone(),
                        numero_amc: p.entete.numero_amc.clone(),
                        finess_juridique: p.entete.finess_juridique.clone(),
                        date_facture: *date_facture,
                        montants: montants.clone(),
                        total_amc: *total_amc,
                    };
                    self.registry()
                        .invoice(&d, now.today, &self.dev)
                        .map(|f| (f.numero.clone(), f.received_on))
                } else {
                    Err(Ko::R06)
                };
                match result {
                    Ok((numero, received_on)) => {
                        x.leaf("statut", "OK");
                        x.open("accuseReception");
                        x.leaf("numeroFacture", &numero);
                        x.leaf("dateReception", &dates::format_iso(received_on));
                        x.close("accuseReception");
                    }
                    Err(ko) => ko_body(&mut x, ko),
                }
            }
            Body::Anf { numero_facture } => {
                let result = if rules::serves(pop, ep, &p.entete.numero_amc, &self.dev) {
                    self.registry()
                        .cancel_invoice(
                            numero_facture,
                            &p.entete.numero_amc,
                            &p.entete.finess_juridique,
                            now.today,
                            &self.dev,
                        )
                        .map(|f| f.cancelled_on.unwrap_or(now.today))
                } else {
                    Err(Ko::R06)
                };
                match result {
                    Ok(on) => {
                        x.leaf("statut", "OK");
                        x.leaf("dateAnnulation", &dates::format_iso(on));
                    }
                    Err(ko) => ko_body(&mut x, ko),
                }
            }
        }
        x
    }

    /// Record the engagement of a CLC and return its number; R08 for a billing period
    /// already engaged (checked under the same lock as the recording).
    fn engage(
        &self,
        e: &Entete,
        d: &Demande,
        id_dossier: &str,
        c: &rules::Computation,
        now: &Now,
    ) -> Result<String, Ko> {
        let mut reg = self.registry();
        if let Some(p) = &c.periode {
            reg.check_periode(&e.numero_amc, &e.finess_juridique, id_dossier, p, &self.dev)?;
        }
        let numero = reg.fresh_number(|| uuid::Uuid::new_v4().as_u128());
        let engagement = Engagement {
            numero: numero.clone(),
            numero_amc: e.numero_amc.clone(),
            finess_juridique: e.finess_juridique.clone(),
            id_dossier: id_dossier.to_string(),
            beneficiaire_id: c.eligible.beneficiaire.id.clone(),
            version: d.version,
            date_entree: c.eligible.date_entree,
            date_sortie: c.eligible.date_sortie,
            periode: c.periode,
            lignes: c.lignes.clone(),
            total_amc: c.total_amc,
            total_reste_a_charge: c.total_reste_a_charge,
            state: EngagementState::Active,
            created_on: now.today,
            cancelled_on: None,
            facture: None,
        };
        // The number is fresh and the registry locked: recording cannot fail.
        let _ = reg.record(engagement);
        Ok(numero)
    }

    /// The payment run (spec section 5, "Returns"): every `received` invoice is paid or
    /// rejected ([`Registry::settle`]) and gets its return `RSP-<numeroFacture>.xml` in
    /// `drop` (created if missing), written whole (see the module documentation). Returns the
    /// files written, in invoice number order. Blocking (file I/O, and the pauses of the
    /// `rsp-not-atomic` defect): from async code, use [`Amc::payment_run_async`].
    ///
    /// The registry lock is held only while deciding, not while writing. On an I/O error the
    /// invoices whose return was not written are put back `received` ([`Registry::unsettle`])
    /// and the error is returned.
    pub fn payment_run(&self, drop: &Path) -> std::io::Result<Vec<PathBuf>> {
        self.payment_run_selected(drop, |_| true, |_| false)
    }

    /// [`Amc::payment_run`] over the `received` invoices `select` keeps (e.g. one
    /// establishment's, or one scenario's numbers); the others stay `received`. Those
    /// `reject` keeps are rejected R25 whatever their date ([`Registry::settle_rejecting`]).
    pub fn payment_run_selected(
        &self,
        drop: &Path,
        select: impl Fn(&Facture) -> bool,
        reject: impl Fn(&Facture) -> bool,
    ) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(drop)?;
        let today = Now::get().today;
        let settled = self.registry().settle_rejecting(
            select,
            reject,
            today,
            || uuid::Uuid::new_v4().as_u128(),
            &self.dev,
        );
        let mut written = Vec::with_capacity(settled.len());
        for (i, s) in settled.iter().enumerate() {
            let name = rsp_file_name(&s.numero_facture);
            let doc = self.rsp_document(s);
            let result = if self.flags.rsp_not_atomic {
                write_in_two_halves(drop, &name, doc.as_bytes())
            } else {
                write_whole(drop, &name, doc.as_bytes())
            };
            match result {
                Ok(path) => written.push(path),
                Err(e) => {
                    let mut reg = self.registry();
                    for s in &settled[i..] {
                        reg.unsettle(&s.numero_facture);
                    }
                    return Err(e);
                }
            }
        }
        sync_dir(drop);
        Ok(written)
    }

    /// [`Amc::payment_run`] on a blocking thread; the invoices numbered in `reject` are
    /// rejected R25 ([`Amc::payment_run_selected`]).
    pub async fn payment_run_async(
        self: &Arc<Self>,
        drop: PathBuf,
        reject: BTreeSet<String>,
    ) -> std::io::Result<Vec<PathBuf>> {
        let amc = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            amc.payment_run_selected(&drop, |_| true, |f| reject.contains(&f.numero))
        })
        .await
        .map_err(|e| std::io::Error::other(format!("payment run: {e}")))?
    }

    /// The return document of one settled invoice.
    fn rsp_document(&self, s: &Settlement) -> String {
        let mut x = Xml::new();
        x.out
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        x.out.push_str(&format!(
            "<roc:rsp xmlns:roc=\"{}\">\n",
            soap::escape(&self.cfg.sel_ns)
        ));
        x.depth = 1;
        x.leaf("numeroFacture", &s.numero_facture);
        x.leaf("numeroEngagement", &s.numero_engagement);
        match &s.reglement {
            Reglement::Paiement {
                montant,
                date,
                reference,
            } => {
                x.open("paiement");
                x.leaf("montantPaye", &money::format(*montant));
                x.leaf("datePaiement", &dates::format_iso(*date));
                x.leaf("referenceVirement", reference);
                x.close("paiement");
            }
            Reglement::Rejet(ko) => {
                x.open("rejet");
                x.leaf("code", ko.code());
                x.leaf("libelle", ko.libelle());
                x.close("rejet");
            }
        }
        x.out.push_str("</roc:rsp>\n");
        x.out
    }

    fn answer_ns(&self) -> &str {
        if self.flags.wrong_namespace {
            WRONG_SEL_NS
        } else {
            &self.cfg.sel_ns
        }
    }

    fn envelope_ns(&self) -> &str {
        if self.flags.soap11 {
            soap::SOAP11_ENV
        } else {
            &self.cfg.env_ns
        }
    }

    fn content_type(&self) -> &'static str {
        if self.flags.soap11 {
            SOAP11_CONTENT_TYPE
        } else {
            SOAP12_CONTENT_TYPE
        }
    }

    /// A business answer (HTTP 200).
    fn answer(&self, op: Op, e: &Entete, content: &Xml, now: &Now) -> Response {
        let root = op.response_root();
        let mut x = Xml::new();
        x.out.push_str(&format!(
            "<roc:{root} xmlns:roc=\"{}\">\n",
            soap::escape(self.answer_ns())
        ));
        x.depth = 1;
        x.open("enteteReponse");
        let own = if self.flags.idflux_copied {
            e.id_flux.clone()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        x.leaf("idFlux", &own);
        if !self.flags.no_idflux_echo {
            x.leaf("idFluxRequete", &e.id_flux);
        }
        x.leaf("dateHeureReponse", &now.stamp);
        x.leaf("versionNorme", &e.version);
        x.close("enteteReponse");
        x.out.push_str(&content.out);
        x.out.push_str(&format!("</roc:{root}>"));
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), self.content_type().into())],
            body: soap::envelope(self.envelope_ns(), &[], &x.out).into_bytes(),
        }
    }

    /// A fault answer: SOAP 1.2 (or 1.1 under `soap11-envelope`), HTTP 400/403/500 (or 200
    /// under `faults-http-200`).
    fn fault(&self, f: &Fault) -> Response {
        let body = if self.flags.soap11 {
            let code = if f.code == "Sender" {
                "Client"
            } else {
                "Server"
            };
            soap::envelope(
                soap::SOAP11_ENV,
                &[],
                &format!(
                    "<env:Fault><faultcode>env:{code}</faultcode><faultstring xml:lang=\"fr\">{}</faultstring></env:Fault>",
                    soap::escape(&f.reason)
                ),
            )
        } else {
            let body = soap::fault12(
                &self.cfg.env_ns,
                f.code,
                Some((&self.cfg.sel_ns, f.subcode)),
                &f.reason,
            );
            if self.flags.fault_reason_en {
                body.replace("xml:lang=\"fr\"", "xml:lang=\"en\"")
            } else {
                body
            }
        };
        Response {
            status: if self.flags.faults_http_200 {
                200
            } else {
                f.status
            },
            headers: vec![("Content-Type".into(), self.content_type().into())],
            body: body.into_bytes(),
        }
    }
}

fn qname(e: &Element) -> String {
    match &e.ns {
        Some(ns) => format!("{{{ns}}}{}", e.local),
        None => e.local.clone(),
    }
}

fn ko_body(x: &mut Xml, ko: Ko) {
    x.leaf("statut", "KO");
    x.open("motif");
    x.leaf("code", ko.code());
    x.leaf("libelle", ko.libelle());
    x.close("motif");
}

fn lines_body(x: &mut Xml, c: &rules::Computation) {
    x.open("lignes");
    for l in &c.lignes {
        x.open("ligne");
        x.leaf("code", l.code.label());
        x.leaf("montantAmc", &money::format(l.montant_amc));
        x.leaf("resteACharge", &money::format(l.reste_a_charge));
        x.close("ligne");
    }
    x.close("lignes");
    x.leaf("totalAmc", &money::format(c.total_amc));
    x.leaf("totalResteACharge", &money::format(c.total_reste_a_charge));
}

/// Routing: the operation named by the last path segment.
fn route(method: &str, path: &str) -> Result<Op, Response> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    let plain = |status: u16, text: &str, extra: Option<(&str, &str)>| {
        let mut headers = vec![(
            "Content-Type".to_string(),
            "text/plain; charset=utf-8".to_string(),
        )];
        if let Some((k, v)) = extra {
            headers.push((k.to_string(), v.to_string()));
        }
        Response {
            status,
            headers,
            body: text.as_bytes().to_vec(),
        }
    };
    match Op::from_name(last) {
        None => Err(plain(404, "not found\n", None)),
        Some(_) if !method.eq_ignore_ascii_case("POST") => {
            Err(plain(405, "method not allowed\n", Some(("Allow", "POST"))))
        }
        Some(op) => Ok(op),
    }
}

fn read_entete(r: &Reader, root: &Element, rp: &str) -> Result<Entete, Fault> {
    let p = format!("{rp}/entete");
    let e = r.block(root, rp, "entete")?;
    let id_flux = r.value(e, &p, "idFlux", non_empty)?;
    r.value(e, &p, "dateHeureEmission", dates::is_datetime_with_offset)?;
    let version = r.value(e, &p, "versionNorme", non_empty)?;
    let pe = format!("{p}/emetteur");
    let em = r.block(e, &p, "emetteur")?;
    let finess_juridique = r.value(em, &pe, "finessJuridique", ids::is_finess)?;
    r.value(em, &pe, "finessGeographique", ids::is_finess)?;
    let categorie = r
        .optional(em, &pe, "categorieEtablissement", |s| {
            Categorie::parse(s).is_some()
        })?
        .and_then(|s| Categorie::parse(&s));
    r.optional(em, &pe, "logiciel", any)?;
    r.optional(em, &pe, "versionLogiciel", any)?;
    let numero_amc = r.value(e, &p, "numeroAmc", ids::is_numero_amc)?;
    Ok(Entete {
        id_flux,
        version,
        finess_juridique,
        categorie,
        numero_amc,
    })
}

fn read_demande(
    r: &mut Reader,
    root: &Element,
    rp: &str,
    entete: &Entete,
    sortie_needed: bool,
) -> Result<Demande, Fault> {
    let pb = format!("{rp}/beneficiaire");
    let b = r.block(root, rp, "beneficiaire")?;
    let nir = r.lax_value(b, &pb, "nir", ids::is_nir, "1850775123456")?;
    let cle_nir = r.lax_value(b, &pb, "cleNir", ids::is_cle_nir, "00")?;
    let date_naissance =
        r.lax_value(b, &pb, "dateNaissance", ids::is_date_naissance, "19000101")?;
    let rang = r.lax_value(
        b,
        &pb,
        "rangGemellaire",
        |s| ids::parse_rang(s).is_some(),
        "1",
    )?;
    let numero_adherent = r.optional(b, &pb, "numeroAdherent", ids::is_numero_adherent)?;

    let pc = format!("{rp}/contrat");
    let c = r.block(root, rp, "contrat")?;
    r.value(c, &pc, "typeConvention", ids::is_type_convention)?;
    r.value(c, &pc, "critereSecondaire", ids::is_csr)?;

    let px = format!("{rp}/contexte");
    let x = r.block(root, rp, "contexte")?;
    let type_pec = r.lax_value(
        x,
        &px,
        "typePriseEnCharge",
        |s| TypePec::parse(s).is_some(),
        "SEJOUR",
    )?;
    let domaine = r.lax_value(x, &px, "domaine", |s| Domaine::parse(s).is_some(), "MCO")?;
    let date_entree = r.lax_value(x, &px, "dateEntree", dates::is_iso_lexical, "2026-01-01")?;
    let date_sortie = if sortie_needed {
        Some(r.lax_value(x, &px, "dateSortie", dates::is_iso_lexical, "2026-01-01")?)
    } else {
        r.optional(x, &px, "dateSortie", dates::is_iso_lexical)?
    };
    Ok(Demande {
        numero_amc: entete.numero_amc.clone(),
        // Set once versionNorme is checked.
        version: Version::V1_04,
        categorie: entete.categorie,
        nir,
        cle_nir,
        date_naissance,
        rang: ids::parse_rang(&rang).unwrap_or(1),
        numero_adherent,
        type_pec: TypePec::parse(&type_pec).unwrap_or(TypePec::Sejour),
        domaine: Domaine::parse(&domaine).unwrap_or(Domaine::Mco),
        date_entree,
        date_sortie,
    })
}

/// `periodeFacturation` of a CLC: only in a `2.00` request (schema-invalid otherwise).
fn read_periode(
    r: &Reader,
    root: &Element,
    rp: &str,
    version: &str,
) -> Result<Option<PeriodeDemande>, Fault> {
    let pp = format!("{rp}/periodeFacturation");
    let Some(p) = root.child(r.ns, "periodeFacturation") else {
        return Ok(None);
    };
    if version != Version::V2_00.label() {
        return Err(Fault::schema(format!(
            "élément non autorisé en version {version} : {pp}"
        )));
    }
    let rang = r.value(p, &pp, "rang", |s| ids::parse_quantite(s).is_some())?;
    let date_debut = r.value(p, &pp, "dateDebut", dates::is_iso_lexical)?;
    let date_fin = r.value(p, &pp, "dateFin", dates::is_iso_lexical)?;
    let derniere = r.value(p, &pp, "derniere", |s| ids::parse_boolean(s).is_some())?;
    Ok(Some(PeriodeDemande {
        rang: ids::parse_quantite(&rang).unwrap_or(1),
        date_debut,
        date_fin,
        derniere: ids::parse_boolean(&derniere).unwrap_or(false),
    }))
}

fn read_prestations(r: &Reader, root: &Element, rp: &str) -> Result<Vec<Prestation>, Fault> {
    Ok(read_lines(r, root, rp, false)?
        .into_iter()
        .map(|(p, _)| p)
        .collect())
}

/// The `prestation` lines; with `dre`, each also carries `montantAmc` (exactly two
/// decimals).
fn read_lines(
    r: &Reader,
    root: &Element,
    rp: &str,
    dre: bool,
) -> Result<Vec<(Prestation, Option<Decimal>)>, Fault> {
    let pp = format!("{rp}/prestations");
    let ps = r.block(root, rp, "prestations")?;
    let mut out = Vec::new();
    for (i, p) in ps
        .elements()
        .filter(|e| e.local == "prestation" && e.ns.as_deref() == Some(r.ns))
        .enumerate()
    {
        let path = format!("{pp}/prestation[{}]", i + 1);
        let code = r.value(p, &path, "code", |s| CodePrestation::parse(s).is_some())?;
        let date_debut = r.value(p, &path, "dateDebut", dates::is_iso_lexical)?;
        let date_fin = r.value(p, &path, "dateFin", dates::is_iso_lexical)?;
        let quantite = r.value(p, &path, "quantite", |s| ids::parse_quantite(s).is_some())?;
        let montant_total = r.value(p, &path, "montantTotal", money::is_decimal_lexical)?;
        let montant_amo = r.value(p, &path, "montantAmo", money::is_decimal_lexical)?;
        let optam = r.optional(p, &path, "praticienOptam", |s| {
            ids::parse_boolean(s).is_some()
        })?;
        let montant_amc = if dre {
            let m = r.value(p, &path, "montantAmc", |s| money::parse_amount(s).is_some())?;
            money::parse_amount(&m)
        } else {
            None
        };
        let code = CodePrestation::parse(&code).unwrap_or(CodePrestation::Tm);
        let prestation = Prestation {
            code,
            date_debut,
            date_fin,
            quantite: ids::parse_quantite(&quantite).unwrap_or(1),
            montant_total,
            montant_amo,
            // Only meaningful on DH lines; ignored elsewhere.
            praticien_optam: if code == CodePrestation::Dh {
                optam.and_then(|s| ids::parse_boolean(&s))
            } else {
                None
            },
        };
        out.push((prestation, montant_amc));
    }
    if out.is_empty() {
        return Err(missing(&format!("{pp}/prestation")));
    }
    Ok(out)
}

/// `RSP-<numeroFacture>.xml`, the number's characters other than ASCII letters, digits, `.`,
/// `_` and `-` written `%XX` (per UTF-8 byte, uppercase hexadecimal).
pub fn rsp_file_name(numero_facture: &str) -> String {
    let mut name = String::from("RSP-");
    for b in numero_facture.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    name.push_str(".xml");
    name
}

/// Write `content` to `dir/name` whole: a temporary file of the same folder
/// (`.<name>.<hex>.tmp`), fsync, rename.
fn write_whole(dir: &Path, name: &str, content: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.{:08x}.tmp",
        uuid::Uuid::new_v4().as_u128() as u32
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(content)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| path)
}

/// The `rsp-not-atomic` defect: written in place under its final name, in two halves with
/// [`RSP_NOT_ATOMIC_PAUSE`] between them.
fn write_in_two_halves(dir: &Path, name: &str, content: &[u8]) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path)?;
    let half = content.len() / 2;
    f.write_all(&content[..half])?;
    f.flush()?;
    std::thread::sleep(RSP_NOT_ATOMIC_PAUSE);
    f.write_all(&content[half..])?;
    f.sync_all()?;
    Ok(path)
}

/// Make the renames of a folder durable (where the platform allows opening a folder).
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests;
