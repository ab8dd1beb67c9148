//! The annuaire roclab plays when it tests a GAP (spec section 6): a SOAP 1.1 `search`
//! service answering with the URLs of the mirror AMCs of the run. The lookup itself is
//! [`crate::roc::annuaire`]; this module is the wire: element names (all in the
//! "Wire mapping" section below), envelope, HTTP.
//!
//! # Processing order
//!
//! 1. Any path is served (the annuaire has one operation; the pack chooses its path).
//!    Another method than POST → 405 (`Allow: POST`). Headers (`Content-Type`,
//!    `SOAPAction`) are not checked: what the GAP sends is judged by the pack's steps.
//! 2. The body must be UTF-8, well-formed XML, a SOAP 1.1 `Envelope` whose `Body` holds one
//!    element, `search` in the configured namespace, with an unqualified `paramsObj`. An
//!    envelope of another namespace (SOAP 1.2) → fault `VersionMismatch`; anything else
//!    wrong → fault `Client`.
//! 3. Under `paramsObj`, the blocks (`requete`, `adressage`, `typage`), their fields and
//!    `type_adresse/item` are read by local name and must be unqualified (a qualified one →
//!    fault `Client` naming it). An absent element reads as empty; element order is not
//!    enforced; unknown elements are ignored; of repeated elements the first counts.
//! 4. Values: [`crate::roc::annuaire::validate`] (which fields are mandatory is documented
//!    there) → else fault `Client` naming the element by its path from `paramsObj`.
//! 5. Lookup: [`crate::roc::annuaire::search`] → HTTP 200, `code_retour` `00`, `01` or `02`.
//!
//! Faults are SOAP 1.1 (`faultcode` `env:Client`, `env:VersionMismatch`, or `env:Server`
//! after a panic while processing, `faultstring` in French) with HTTP 500, as SOAP 1.1 over
//! HTTP requires.
//!
//! # Answers
//!
//! `Content-Type: text/xml; charset=utf-8`, envelope prefix `env`, two-space indentation.
//! `adresses` is always present: empty (`<adresses/>`) for `01` and `02`, so a client reads
//! one structure whatever the code.
//!
//! ```text
//! <ns1:searchResponse xmlns:ns1="https://ws.annuaireamc.fr/">
//!   <return>
//!     <code_retour>00</code_retour>
//!     <adresses>
//!       <item>
//!         <numero_amc>12345678</numero_amc>
//!         <code_service>IDB</code_service>
//!         <type_adresse>URL</type_adresse>
//!         <valeur>https://127.0.0.1:40124/IDB</valeur>
//!         <version_norme_service>2.00</version_norme_service>
//!       </item>
//!       …one item per service
//!     </adresses>
//!   </return>
//! </ns1:searchResponse>
//! ```

use crate::net::server::{Handler, Request, Response, Server};
use crate::net::tls::ClientAuth;
use crate::pki::Pki;
use crate::soap;
use crate::xml::{self, Element};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::roc::Population;
pub use crate::roc::annuaire::{Address, Answer, CodeRetour, Invalid, Query};

/// Namespace of the annuaire's `search` and `searchResponse`.
pub const NS: &str = "https://ws.annuaireamc.fr/";
/// Services the mirror AMCs expose, for [`AnnuaireConfig::new`].
pub const DEFAULT_SERVICES: [&str; 4] = ["IDB", "SIM", "CLC", "DEL"];

const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// What the annuaire serves.
#[derive(Debug, Clone)]
pub struct AnnuaireConfig {
    pub population: Population,
    /// Population endpoint (`A`, `B`) → base URL of the mirror AMC serving it; an address is
    /// `<base URL>/<service>`. An AMC whose endpoint is missing here has no address (`02`).
    pub amc_urls: BTreeMap<String, String>,
    /// Service names the AMC endpoints expose (`IDB`, `SIM`, `CLC`, `DEL`), in answer order.
    pub services: Vec<String>,
    /// Namespace of `search` ([`NS`]).
    pub ns: String,
}

impl AnnuaireConfig {
    /// `population` served at `amc_urls`, [`DEFAULT_SERVICES`], namespace [`NS`].
    pub fn new(population: Population, amc_urls: BTreeMap<String, String>) -> Self {
        AnnuaireConfig {
            population,
            amc_urls,
            services: DEFAULT_SERVICES.iter().map(|s| s.to_string()).collect(),
            ns: NS.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Wire mapping: every element name of the annuaire's messages.

const SEARCH: &str = "search";
const PARAMS: &str = "paramsObj";
const REQUETE: &str = "requete";
const ADRESSAGE: &str = "adressage";
const TYPAGE: &str = "typage";
const TYPE_ADRESSE: &str = "type_adresse";
const ITEM: &str = "item";
const SEARCH_RESPONSE: &str = "searchResponse";
const RETURN: &str = "return";
const CODE_RETOUR: &str = "code_retour";
const ADRESSES: &str = "adresses";

/// A text field of [`Query`]: its block under `paramsObj`, its element, the [`Query`] field
/// name (as [`Invalid::field`] gives it) and accessors.
struct QueryField {
    block: &'static str,
    element: &'static str,
    field: &'static str,
    get: fn(&Query) -> &str,
    set: fn(&mut Query, String),
}

macro_rules! query_field {
    ($block:expr, $element:literal, $field:ident) => {
        QueryField {
            block: $block,
            element: $element,
            field: stringify!($field),
            get: |q| q.$field.as_str(),
            set: |q, v| q.$field = v,
        }
    };
}

/// The text fields of `paramsObj`, in document order (`typage` follows them).
const QUERY_FIELDS: [QueryField; 12] = [
    query_field!(REQUETE, "version", version),
    query_field!(REQUETE, "date_demande", date_demande),
    query_field!(REQUETE, "editeur", editeur),
    query_field!(REQUETE, "logiciel", logiciel),
    query_field!(REQUETE, "version_logiciel", version_logiciel),
    query_field!(ADRESSAGE, "numero_amc", numero_amc),
    query_field!(ADRESSAGE, "code_type_convention", code_type_convention),
    query_field!(ADRESSAGE, "code_csr", code_csr),
    query_field!(ADRESSAGE, "domaine_conventionnel", domaine_conventionnel),
    query_field!(ADRESSAGE, "code_service", code_service),
    query_field!(ADRESSAGE, "code_norme_service", code_norme_service),
    query_field!(ADRESSAGE, "version_norme_service", version_norme_service),
];

/// A field of an `adresses/item`.
struct AddressField {
    element: &'static str,
    get: fn(&Address) -> &str,
    set: fn(&mut Address, String),
}

macro_rules! address_field {
    ($element:literal, $field:ident) => {
        AddressField {
            element: $element,
            get: |a| a.$field.as_str(),
            set: |a, v| a.$field = v,
        }
    };
}

/// The fields of an `adresses/item`, in document order.
const ADDRESS_FIELDS: [AddressField; 5] = [
    address_field!("numero_amc", numero_amc),
    address_field!("code_service", code_service),
    address_field!("type_adresse", type_adresse),
    address_field!("valeur", valeur),
    address_field!("version_norme_service", version_norme_service),
];

/// Path from `paramsObj` of a [`Query`] field (`paramsObj/adressage/code_csr`).
pub fn wire_path(field: &str) -> String {
    if field == "type_adresse" {
        return format!("{PARAMS}/{TYPAGE}/{TYPE_ADRESSE}/{ITEM}");
    }
    match QUERY_FIELDS.iter().find(|f| f.field == field) {
        Some(f) => format!("{PARAMS}/{}/{}", f.block, f.element),
        None => format!("{PARAMS}/{field}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Unprefixed elements with two-space indentation.
struct Xml {
    out: String,
    depth: usize,
}

impl Xml {
    fn new(depth: usize) -> Xml {
        Xml {
            out: String::new(),
            depth,
        }
    }
    fn indent(&mut self) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
    }
    fn open(&mut self, name: &str) {
        self.indent();
        self.out.push_str(&format!("<{name}>\n"));
        self.depth += 1;
    }
    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out.push_str(&format!("</{name}>\n"));
    }
    fn leaf(&mut self, name: &str, text: &str) {
        self.indent();
        if text.is_empty() {
            self.out.push_str(&format!("<{name}/>\n"));
        } else {
            self.out
                .push_str(&format!("<{name}>{}</{name}>\n", soap::escape(text)));
        }
    }
}

/// The `search` element of a request for `q` (to put in a SOAP 1.1 envelope with
/// [`soap::envelope`]): `ns` declared on it with prefix `ns1`, every element of `paramsObj`
/// written (empty ones as `<x/>`), `typage/type_adresse/item` one per [`Query::type_adresse`].
pub fn request_body(q: &Query, ns: &str) -> String {
    let mut x = Xml::new(1);
    x.open(PARAMS);
    let mut block = "";
    for f in &QUERY_FIELDS {
        if f.block != block {
            if !block.is_empty() {
                x.close(block);
            }
            block = f.block;
            x.open(block);
        }
        x.leaf(f.element, (f.get)(q));
    }
    x.close(block);
    x.open(TYPAGE);
    x.open(TYPE_ADRESSE);
    for t in &q.type_adresse {
        x.leaf(ITEM, t);
    }
    x.close(TYPE_ADRESSE);
    x.close(TYPAGE);
    x.close(PARAMS);
    format!(
        "<ns1:{SEARCH} xmlns:ns1=\"{}\">\n{}</ns1:{SEARCH}>",
        soap::escape(ns),
        x.out
    )
}

/// The `searchResponse` element answering `a` (for a SOAP 1.1 envelope).
pub fn response_body(a: &Answer, ns: &str) -> String {
    let mut x = Xml::new(1);
    x.open(RETURN);
    x.leaf(CODE_RETOUR, a.code_retour.code());
    if a.adresses.is_empty() {
        x.indent();
        x.out.push_str(&format!("<{ADRESSES}/>\n"));
    } else {
        x.open(ADRESSES);
        for addr in &a.adresses {
            x.open(ITEM);
            for f in &ADDRESS_FIELDS {
                x.leaf(f.element, (f.get)(addr));
            }
            x.close(ITEM);
        }
        x.close(ADRESSES);
    }
    x.close(RETURN);
    format!(
        "<ns1:{SEARCH_RESPONSE} xmlns:ns1=\"{}\">\n{}</ns1:{SEARCH_RESPONSE}>",
        soap::escape(ns),
        x.out
    )
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A SOAP 1.1 fault to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fault {
    /// `Client`, `VersionMismatch` or `Server` (in the SOAP 1.1 envelope namespace).
    code: &'static str,
    reason: String,
}

impl Fault {
    fn client(reason: String) -> Fault {
        Fault {
            code: "Client",
            reason,
        }
    }
}

fn qname(e: &Element) -> String {
    match &e.ns {
        Some(ns) => format!("{{{ns}}}{}", e.local),
        None => e.local.clone(),
    }
}

/// The first child named `local`, which must be unqualified.
fn unqualified<'e>(
    parent: &'e Element,
    local: &str,
    path: &str,
) -> Result<Option<&'e Element>, Fault> {
    match parent.elements().find(|e| e.local == local) {
        Some(e) if e.ns.is_some() => Err(Fault::client(format!(
            "élément {path}/{local} qualifié ({}) : attendu sans espace de noms",
            qname(e)
        ))),
        found => Ok(found),
    }
}

/// The `search` element inside a SOAP 1.1 envelope.
fn search_element<'e>(root: &'e Element, ns: &str) -> Result<&'e Element, Fault> {
    let env = soap::SOAP11_ENV;
    if root.local != "Envelope" {
        return Err(Fault::client(format!(
            "enveloppe SOAP 1.1 attendue ({{{env}}}Envelope), reçu {}",
            qname(root)
        )));
    }
    if root.ns.as_deref() != Some(env) {
        return Err(Fault {
            code: "VersionMismatch",
            reason: format!(
                "enveloppe SOAP 1.1 attendue ({{{env}}}Envelope), reçu {}",
                qname(root)
            ),
        });
    }
    let body = root
        .child(env, "Body")
        .ok_or_else(|| Fault::client("élément obligatoire absent : Envelope/Body".into()))?;
    let mut elements = body.elements();
    let (Some(first), None) = (elements.next(), elements.next()) else {
        return Err(Fault::client(format!(
            "Body doit contenir un seul élément {{{ns}}}{SEARCH}"
        )));
    };
    if first.local != SEARCH || first.ns.as_deref() != Some(ns) {
        return Err(Fault::client(format!(
            "élément {{{ns}}}{SEARCH} attendu dans Body, reçu {}",
            qname(first)
        )));
    }
    Ok(first)
}

/// The query of a `search` element (no value checks).
fn read_query(search: &Element) -> Result<Query, Fault> {
    let params = unqualified(search, PARAMS, SEARCH)?
        .ok_or_else(|| Fault::client(format!("élément obligatoire absent : {SEARCH}/{PARAMS}")))?;
    let mut q = Query::default();
    for f in &QUERY_FIELDS {
        let block_path = format!("{PARAMS}/{}", f.block);
        let Some(block) = unqualified(params, f.block, PARAMS)? else {
            continue;
        };
        if let Some(e) = unqualified(block, f.element, &block_path)? {
            (f.set)(&mut q, e.text());
        }
    }
    let typage_path = format!("{PARAMS}/{TYPAGE}");
    if let Some(typage) = unqualified(params, TYPAGE, PARAMS)?
        && let Some(types) = unqualified(typage, TYPE_ADRESSE, &typage_path)?
    {
        let items_path = format!("{typage_path}/{TYPE_ADRESSE}");
        for item in types.elements().filter(|e| e.local == ITEM) {
            if item.ns.is_some() {
                return Err(Fault::client(format!(
                    "élément {items_path}/{ITEM} qualifié ({}) : attendu sans espace de noms",
                    qname(item)
                )));
            }
            q.type_adresse.push(item.text());
        }
    }
    Ok(q)
}

fn parse_request_fault(body_xml: &str, ns: &str) -> Result<Query, Fault> {
    let root = xml::parse(body_xml).map_err(|e| Fault::client(format!("XML mal formé : {e}")))?;
    read_query(search_element(&root, ns)?)
}

/// The query of a SOAP 1.1 `search` request (whole envelope), without value checks; an
/// absent element reads as empty. `Err` says what is wrong with the envelope or structure.
pub fn parse_request(body_xml: &str, ns: &str) -> Result<Query, String> {
    parse_request_fault(body_xml, ns).map_err(|f| f.reason)
}

/// The first child named `local`, whatever its namespace.
fn by_name<'e>(e: &'e Element, local: &str) -> Option<&'e Element> {
    e.elements().find(|c| c.local == local)
}

/// Read an annuaire answer: a SOAP envelope (1.1 or 1.2) whose body is `searchResponse`,
/// or the bare `searchResponse` element. Elements are found by local name, whatever their
/// namespace. Returns `code_retour` as written and the `adresses/item`s (a missing field
/// reads as empty). `Err` for a fault (`fault <code>: <reason>`), malformed XML, or a
/// missing `searchResponse`, `return` or `code_retour`.
pub fn parse_response(body_xml: &str) -> Result<(String, Vec<Address>), String> {
    let root = xml::parse(body_xml).map_err(|e| format!("malformed XML: {e}"))?;
    let response = if root.local == "Envelope" {
        if let Some(f) = soap::find_fault(&root) {
            let code = f.code.map(|(_, l)| l).unwrap_or_default();
            return Err(format!("fault {code}: {}", f.reason));
        }
        root.elements()
            .find(|e| e.local == "Body")
            .ok_or("no Body in the envelope")?
            .elements()
            .next()
            .ok_or("empty Body")?
    } else {
        &root
    };
    if response.local != SEARCH_RESPONSE {
        return Err(format!(
            "{SEARCH_RESPONSE} expected, found {}",
            qname(response)
        ));
    }
    let ret = by_name(response, RETURN).ok_or(format!("no {SEARCH_RESPONSE}/{RETURN}"))?;
    let code = by_name(ret, CODE_RETOUR)
        .ok_or(format!("no {RETURN}/{CODE_RETOUR}"))?
        .text();
    let mut adresses = Vec::new();
    if let Some(list) = by_name(ret, ADRESSES) {
        for item in list.elements().filter(|e| e.local == ITEM) {
            let mut a = Address {
                numero_amc: String::new(),
                code_service: String::new(),
                type_adresse: String::new(),
                valeur: String::new(),
                version_norme_service: String::new(),
            };
            for f in &ADDRESS_FIELDS {
                if let Some(e) = by_name(item, f.element) {
                    (f.set)(&mut a, e.text());
                }
            }
            adresses.push(a);
        }
    }
    Ok((code, adresses))
}

// ---------------------------------------------------------------------------------------------
// Serving

struct Annuaire {
    cfg: AnnuaireConfig,
}

/// The handler of an annuaire serving `cfg`.
pub fn handler(cfg: AnnuaireConfig) -> Handler {
    let annuaire = Arc::new(Annuaire { cfg });
    Arc::new(move |req: Request| {
        let annuaire = Arc::clone(&annuaire);
        Box::pin(async move { annuaire.handle(&req) })
    })
}

/// Serve `cfg` on `listen` (e.g. `127.0.0.1:0`): server identity `pki.annuaire_server`,
/// client certificates required from `pki.ca_cert_pem`.
pub async fn start(listen: &str, pki: &Pki, cfg: AnnuaireConfig) -> std::io::Result<Server> {
    let tls = crate::net::tls::server_config(
        &pki.ca_cert_pem,
        &pki.annuaire_server,
        ClientAuth::Required,
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    Server::start(listen, tls, handler(cfg)).await
}

impl Annuaire {
    fn handle(&self, req: &Request) -> Response {
        if !req.method.eq_ignore_ascii_case("POST") {
            return Response {
                status: 405,
                headers: vec![
                    ("Content-Type".into(), "text/plain; charset=utf-8".into()),
                    ("Allow".into(), "POST".into()),
                ],
                body: b"method not allowed\n".to_vec(),
            };
        }
        let processed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(req)));
        match processed {
            Ok(Ok(body)) => Response {
                status: 200,
                headers: vec![("Content-Type".into(), CONTENT_TYPE.into())],
                body: soap::envelope(soap::SOAP11_ENV, &[], &body).into_bytes(),
            },
            Ok(Err(f)) => fault(&f),
            Err(_) => fault(&Fault {
                code: "Server",
                reason: "erreur interne de l'annuaire".into(),
            }),
        }
    }

    /// The `searchResponse` element, or the fault to answer.
    fn process(&self, req: &Request) -> Result<String, Fault> {
        let text = std::str::from_utf8(&req.body)
            .map_err(|_| Fault::client("corps de requête non UTF-8".into()))?;
        let q = parse_request_fault(text, &self.cfg.ns)?;
        crate::roc::annuaire::validate(&q)
            .map_err(|e| Fault::client(format!("{} : {}", wire_path(e.field), e.reason)))?;
        let services: Vec<&str> = self.cfg.services.iter().map(String::as_str).collect();
        let answer =
            crate::roc::annuaire::search(&self.cfg.population, &q, &self.cfg.amc_urls, &services);
        Ok(response_body(&answer, &self.cfg.ns))
    }
}

/// A SOAP 1.1 fault, HTTP 500.
fn fault(f: &Fault) -> Response {
    let body = soap::envelope(
        soap::SOAP11_ENV,
        &[],
        &format!(
            "<env:Fault><faultcode>env:{}</faultcode><faultstring>{}</faultstring></env:Fault>",
            f.code,
            soap::escape(&f.reason)
        ),
    );
    Response {
        status: 500,
        headers: vec![("Content-Type".into(), CONTENT_TYPE.into())],
        body: body.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::server::Peer;

    fn population() -> Population {
        Population::from_yaml(include_str!(
            "../../scenarios/roc-v1-amc/data/population.yaml"
        ))
        .unwrap()
    }

    fn cfg() -> AnnuaireConfig {
        let urls = [
            ("A".to_string(), "https://127.0.0.1:40124".to_string()),
            ("B".to_string(), "https://127.0.0.1:40125/".to_string()),
        ]
        .into_iter()
        .collect();
        AnnuaireConfig::new(population(), urls)
    }

    fn query() -> Query {
        Query {
            version: "R01".into(),
            date_demande: "2026-03-02".into(),
            editeur: "roclab".into(),
            logiciel: "GAP-X".into(),
            version_logiciel: "4.2".into(),
            numero_amc: "12345678".into(),
            code_type_convention: "RO".into(),
            code_csr: "9412".into(),
            domaine_conventionnel: "MCO".into(),
            code_service: String::new(),
            code_norme_service: "ROC".into(),
            version_norme_service: String::new(),
            type_adresse: vec!["URL".into()],
        }
    }

    fn envelope_of(q: &Query) -> String {
        soap::envelope(soap::SOAP11_ENV, &[], &request_body(q, NS))
    }

    fn request(method: &str, body: &str) -> Request {
        Request {
            method: method.into(),
            path: "/annuaire".into(),
            headers: vec![
                ("content-type".into(), CONTENT_TYPE.into()),
                ("soapaction".into(), "\"\"".into()),
            ],
            body: body.as_bytes().to_vec(),
            peer: Peer {
                addr: None,
                common_name: Some("750712184".into()),
                subject: Some("CN=750712184".into()),
                tls_version: Some("TLSv1.3".into()),
            },
        }
    }

    async fn call(cfg: AnnuaireConfig, method: &str, body: &str) -> Response {
        handler(cfg)(request(method, body)).await
    }

    fn content_type(r: &Response) -> &str {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    async fn search_ok(q: &Query) -> (String, Vec<Address>) {
        let r = call(cfg(), "POST", &envelope_of(q)).await;
        assert_eq!(r.status, 200);
        assert_eq!(content_type(&r), "text/xml; charset=utf-8");
        parse_response(std::str::from_utf8(&r.body).unwrap()).unwrap()
    }

    /// The fault code (local name) and reason of a fault answer.
    async fn search_fault(cfg: AnnuaireConfig, body: &str) -> (String, String) {
        let r = call(cfg, "POST", body).await;
        assert_eq!(r.status, 500);
        assert_eq!(content_type(&r), "text/xml; charset=utf-8");
        let root = xml::parse(std::str::from_utf8(&r.body).unwrap()).unwrap();
        assert_eq!(root.ns.as_deref(), Some(soap::SOAP11_ENV));
        let f = soap::find_fault(&root).expect("a fault");
        let (ns, code) = f.code.unwrap();
        assert_eq!(ns, soap::SOAP11_ENV);
        (code, f.reason)
    }

    #[test]
    fn request_round_trips_and_is_unqualified_under_search() {
        let mut q = query();
        q.type_adresse = vec!["URL".into(), "MEL".into()];
        q.editeur = "A & B <éditeur>".into();
        let doc = envelope_of(&q);
        assert_eq!(parse_request(&doc, NS).unwrap(), q);
        let root = xml::parse(&doc).unwrap();
        let search = root.elements().next().unwrap().elements().next().unwrap();
        assert_eq!(search.ns.as_deref(), Some(NS));
        assert_eq!(search.local, "search");
        let params = search.elements().next().unwrap();
        assert_eq!(
            (params.ns.as_deref(), params.local.as_str()),
            (None, "paramsObj")
        );
        fn all_unqualified(e: &Element) -> bool {
            e.ns.is_none() && e.elements().all(all_unqualified)
        }
        assert!(all_unqualified(params));
        let blocks: Vec<&str> = params.elements().map(|e| e.local.as_str()).collect();
        assert_eq!(blocks, ["requete", "adressage", "typage"]);
        assert!(doc.contains("<code_service/>"));
        assert_eq!(wire_path("code_csr"), "paramsObj/adressage/code_csr");
        assert_eq!(wire_path("version"), "paramsObj/requete/version");
        assert_eq!(
            wire_path("type_adresse"),
            "paramsObj/typage/type_adresse/item"
        );
    }

    #[test]
    fn response_round_trips() {
        let a = Answer {
            code_retour: CodeRetour::Found,
            adresses: vec![Address {
                numero_amc: "12345678".into(),
                code_service: "IDB".into(),
                type_adresse: "URL".into(),
                valeur: "https://h/IDB?a=1&b=2".into(),
                version_norme_service: "2.00".into(),
            }],
        };
        let doc = soap::envelope(soap::SOAP11_ENV, &[], &response_body(&a, NS));
        assert_eq!(
            parse_response(&doc).unwrap(),
            ("00".into(), a.adresses.clone())
        );
        // The bare element too.
        assert_eq!(
            parse_response(&response_body(&a, NS)).unwrap().1,
            a.adresses
        );
        let none = response_body(
            &Answer {
                code_retour: CodeRetour::UnknownAmc,
                adresses: vec![],
            },
            NS,
        );
        assert!(none.contains("<adresses/>"));
        assert_eq!(parse_response(&none).unwrap(), ("01".into(), vec![]));
        assert!(parse_response("<a>").is_err());
        assert!(parse_response("<searchResponse/>").is_err());
        assert!(parse_response("<other/>").is_err());
        let f = fault(&Fault::client("non".into()));
        let e = parse_response(std::str::from_utf8(&f.body).unwrap()).unwrap_err();
        assert_eq!(e, "fault Client: non");
    }

    #[tokio::test]
    async fn code_00_every_service_then_one() {
        let (code, addrs) = search_ok(&query()).await;
        assert_eq!(code, "00");
        let services: Vec<&str> = addrs.iter().map(|a| a.code_service.as_str()).collect();
        assert_eq!(services, ["IDB", "SIM", "CLC", "DEL"]);
        assert_eq!(addrs[0].valeur, "https://127.0.0.1:40124/IDB");
        assert!(addrs.iter().all(|a| a.numero_amc == "12345678"
            && a.type_adresse == "URL"
            && a.version_norme_service == "2.00"));
        let mut q = query();
        q.code_service = "SIM".into();
        let (code, addrs) = search_ok(&q).await;
        assert_eq!(code, "00");
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[0].valeur, "https://127.0.0.1:40124/SIM");
        // Endpoint B, 1.04 only.
        let mut q = query();
        q.numero_amc = "87654321".into();
        q.code_type_convention = "SP".into();
        q.code_csr = String::new();
        let (code, addrs) = search_ok(&q).await;
        assert_eq!(code, "00");
        assert_eq!(addrs[2].valeur, "https://127.0.0.1:40125/CLC");
        assert_eq!(addrs[2].version_norme_service, "1.04");
    }

    #[tokio::test]
    async fn codes_01_and_02() {
        let mut q = query();
        q.numero_amc = "11111111".into();
        assert_eq!(search_ok(&q).await, ("01".into(), vec![]));
        let r = call(cfg(), "POST", &envelope_of(&q)).await;
        assert!(
            std::str::from_utf8(&r.body)
                .unwrap()
                .contains("<adresses/>")
        );
        let cases: [fn(&mut Query); 6] = [
            |q| q.code_csr = "95".into(),
            |q| q.code_type_convention = "SP".into(),
            |q| q.type_adresse = vec!["MEL".into()],
            |q| q.code_service = "DRE".into(),
            |q| {
                q.numero_amc = "87654321".into();
                q.code_type_convention = "SP".into();
                q.code_csr = "59".into();
                q.domaine_conventionnel = "SSR".into();
            },
            |q| {
                q.numero_amc = "87654321".into();
                q.code_type_convention = "SP".into();
                q.code_csr = "59".into();
                q.version_norme_service = "2.00".into();
            },
        ];
        for (i, case) in cases.iter().enumerate() {
            let mut q = query();
            case(&mut q);
            assert_eq!(search_ok(&q).await, ("02".into(), vec![]), "case {i}");
        }
    }

    #[tokio::test]
    async fn invalid_requests_are_client_faults() {
        let with = |f: fn(&mut Query)| {
            let mut q = query();
            f(&mut q);
            envelope_of(&q)
        };
        let cases: [(String, &str); 6] = [
            (
                with(|q| q.date_demande = "02/03/2026".into()),
                "paramsObj/requete/date_demande",
            ),
            (
                with(|q| q.code_norme_service = "SEL".into()),
                "paramsObj/adressage/code_norme_service",
            ),
            (
                with(|q| q.domaine_conventionnel = "ABC".into()),
                "paramsObj/adressage/domaine_conventionnel",
            ),
            (
                with(|q| q.numero_amc.clear()),
                "paramsObj/adressage/numero_amc",
            ),
            (
                with(|q| q.type_adresse.clear()),
                "paramsObj/typage/type_adresse/item",
            ),
            (
                envelope_of(&query()).replace("<editeur>roclab</editeur>", ""),
                "paramsObj/requete/editeur",
            ),
        ];
        for (body, path) in cases {
            let (code, reason) = search_fault(cfg(), &body).await;
            assert_eq!(code, "Client");
            assert!(reason.starts_with(path), "{reason}");
        }
        // Optional elements may be left out.
        let lean = envelope_of(&query())
            .replace("<code_csr>9412</code_csr>", "")
            .replace("<code_service/>", "")
            .replace("<domaine_conventionnel>MCO</domaine_conventionnel>", "")
            .replace("<version_norme_service/>", "");
        let r = call(cfg(), "POST", &lean).await;
        assert_eq!(r.status, 200);
        let (code, addrs) = parse_response(std::str::from_utf8(&r.body).unwrap()).unwrap();
        assert_eq!((code.as_str(), addrs.len()), ("00", 4));
    }

    #[tokio::test]
    async fn structure_faults() {
        let good = envelope_of(&query());
        // Qualified paramsObj children.
        let qualified = good.replace(
            "<ns1:search xmlns:ns1=\"https://ws.annuaireamc.fr/\">",
            "<search xmlns=\"https://ws.annuaireamc.fr/\">",
        );
        let qualified = qualified.replace("</ns1:search>", "</search>");
        let (code, reason) = search_fault(cfg(), &qualified).await;
        assert_eq!(code, "Client");
        assert!(
            reason.contains("paramsObj") && reason.contains("qualifié"),
            "{reason}"
        );
        // SOAP 1.2 envelope.
        let v12 = soap::envelope(soap::SOAP12_ENV, &[], &request_body(&query(), NS));
        assert_eq!(search_fault(cfg(), &v12).await.0, "VersionMismatch");
        // Another namespace, another operation, no paramsObj, not XML.
        let other_ns = soap::envelope(soap::SOAP11_ENV, &[], &request_body(&query(), "urn:x"));
        assert_eq!(search_fault(cfg(), &other_ns).await.0, "Client");
        let no_params = soap::envelope(
            soap::SOAP11_ENV,
            &[],
            &format!("<ns1:search xmlns:ns1=\"{NS}\"/>"),
        );
        let (_, reason) = search_fault(cfg(), &no_params).await;
        assert!(reason.contains("search/paramsObj"), "{reason}");
        assert_eq!(search_fault(cfg(), "<not xml").await.0, "Client");
        let two = soap::envelope(
            soap::SOAP11_ENV,
            &[],
            &format!("{}<x/>", request_body(&query(), NS)),
        );
        assert_eq!(search_fault(cfg(), &two).await.0, "Client");
        // A qualified item.
        let item = good.replace("<item>URL</item>", "<ns1:item>URL</ns1:item>");
        let (_, reason) = search_fault(cfg(), &item).await;
        assert!(reason.contains("type_adresse/item"), "{reason}");
    }

    #[tokio::test]
    async fn post_only() {
        let r = call(cfg(), "GET", "").await;
        assert_eq!(r.status, 405);
        assert!(r.headers.contains(&("Allow".into(), "POST".into())));
    }

    #[tokio::test]
    async fn configured_services_and_namespace() {
        let mut c = cfg();
        c.services = vec!["IDB".into(), "CLC".into()];
        c.ns = "urn:autre".into();
        let body = soap::envelope(soap::SOAP11_ENV, &[], &request_body(&query(), "urn:autre"));
        let r = call(c.clone(), "POST", &body).await;
        assert_eq!(r.status, 200);
        let text = std::str::from_utf8(&r.body).unwrap();
        let root = xml::parse(text).unwrap();
        let resp = root.elements().next().unwrap().elements().next().unwrap();
        assert_eq!(resp.ns.as_deref(), Some("urn:autre"));
        let (_, addrs) = parse_response(text).unwrap();
        assert_eq!(addrs.len(), 2);
        // The default namespace is refused under this configuration.
        assert_eq!(search_fault(c, &envelope_of(&query())).await.0, "Client");
    }
}
