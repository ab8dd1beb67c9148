//! Request building and answer classification without network; then whole flows over TLS on
//! 127.0.0.1 against the reference AMC and the annuaire mirror, with every request recorded.

use super::*;
use crate::mirror::amc::{Amc, AmcConfig};
use crate::net::server::{Handler, Request as SrvRequest, Response, Server};
use crate::net::tls::ClientAuth;
use crate::pki::Pki;
use crate::roc::{EngagementState, Population};
use std::sync::OnceLock;

const FINESS: &str = "750712184";
/// Known to nobody (population.yaml): R01.
const UNKNOWN_NIR: &str = "1460831222333";

fn population() -> Population {
    Population::from_yaml(include_str!(
        "../../../scenarios/roc-v1-amc/data/population.yaml"
    ))
    .unwrap()
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| crate::pki::generate(FINESS).unwrap())
}

fn set(defects: &[&str]) -> BTreeSet<String> {
    defects.iter().map(|s| s.to_string()).collect()
}

fn config(defects: &[&str]) -> GapConfig {
    GapConfig {
        finess_juridique: FINESS.into(),
        finess_geographique: "750100042".into(),
        logiciel: "GAP-REF".into(),
        version_logiciel: "1.0".into(),
        ca_pem: pki().ca_cert_pem.clone(),
        identity: pki().client.clone(),
        defects: set(defects),
        call_timeout: DEFAULT_CALL_TIMEOUT,
        version: GapVersion::default(),
    }
}

fn p01() -> Patient {
    Patient {
        nir: "1850775123456".into(),
        date_naissance: "19850712".into(),
        rang_gemellaire: "1".into(),
        numero_adherent: Some("A00012345".into()),
        numero_amc: "12345678".into(),
        type_convention: "RO".into(),
        csr: "9412".into(),
        endpoint: Some("A".into()),
    }
}

fn s1() -> Stay {
    Stay {
        id: "S1".into(),
        type_prise_en_charge: "SEJOUR".into(),
        domaine: "MCO".into(),
        date_entree: "2026-03-02".into(),
        date_sortie: Some("2026-03-05".into()),
        prestations: vec![Prestation {
            code: "TM".into(),
            date_debut: "2026-03-02".into(),
            date_fin: "2026-03-05".into(),
            quantite: "1".into(),
            montant_total: "120.00".into(),
            montant_amo: "96.00".into(),
            praticien_optam: None,
        }],
        periodes: Vec::new(),
    }
}

fn request<'a>(op: Op, patient: &'a Patient, stay: &'a Stay, cle: &'a str) -> SelRequest<'a> {
    SelRequest {
        op,
        id_flux: "3f0c1d2e-0000-4000-8000-000000000001",
        emission: "2026-03-02T10:15:00+01:00",
        finess_juridique: FINESS,
        finess_geographique: "750100042",
        logiciel: "GAP-REF",
        version_logiciel: "1.0",
        categorie: None,
        numero_amc: &patient.numero_amc,
        cle_nir: cle,
        patient,
        stay,
        numero_engagement: "ENG-1",
        motif: "Recalcul",
        norme: NORME,
        periode: None,
        dre: None,
    }
}

/// Local names of the children of `e`, all checked to be in the SEL namespace.
fn names(e: &Element) -> Vec<String> {
    e.elements()
        .map(|c| {
            assert_eq!(c.ns.as_deref(), Some(SEL_NS), "{}", c.local);
            c.local.clone()
        })
        .collect()
}

fn request_root(doc: &str) -> Element {
    let root = xml::parse(doc).unwrap();
    assert_eq!(root.ns.as_deref(), Some(soap::SOAP12_ENV));
    assert_eq!(root.local, "Envelope");
    let body = root.child(soap::SOAP12_ENV, "Body").unwrap();
    let mut it = body.elements();
    let first = it.next().unwrap().clone();
    assert!(it.next().is_none());
    first
}

fn text_at(e: &Element, path: &[&str]) -> Option<String> {
    let mut cur = e;
    for p in path {
        cur = cur.child(SEL_NS, p)?;
    }
    Some(cur.text())
}

// ------------------------------------------------------------------------- request building

#[test]
fn nir_keys() {
    assert_eq!(cle_nir("1850775123456", false).as_deref(), Some("08"));
    assert_eq!(cle_nir("285112A123456", false).as_deref(), Some("79"));
    let cle_2b = cle_nir("185112B123456", false).unwrap();
    assert_eq!(
        cle_2b,
        format!("{:02}", 97 - 1_851_118_123_456u64 % 97),
        "2B is read as 18"
    );
    // The defect changes Corsican keys only.
    assert_eq!(cle_nir("1850775123456", true).as_deref(), Some("08"));
    assert_eq!(cle_nir("2900133012345", true).as_deref(), Some("21"));
    assert_ne!(cle_nir("285112A123456", true).as_deref(), Some("79"));
    assert_ne!(cle_nir("185112B123456", true).unwrap(), cle_2b);
    // A one-digit key keeps its leading zero.
    let small = (0..1000u64)
        .map(|i| format!("1850775{:06}", 123_000 + i))
        .find(|n| ids::nir_key(n).is_some_and(|k| k < 10))
        .unwrap();
    assert_eq!(cle_nir(&small, false).unwrap().len(), 2);
    assert_eq!(cle_nir("not a nir", false), None);
    assert_eq!(cle_nir("1850775123456X", true), None);
}

#[test]
fn clc_request_element_order() {
    let (p, s) = (p01(), s1());
    let doc = sel_envelope(&request(Op::Clc, &p, &s, "08"));
    let root = request_root(&doc);
    assert_eq!(root.local, "clcRequete");
    assert_eq!(
        names(&root),
        [
            "entete",
            "beneficiaire",
            "contrat",
            "contexte",
            "idDossier",
            "prestations"
        ]
    );
    let entete = root.child(SEL_NS, "entete").unwrap();
    assert_eq!(
        names(entete),
        [
            "idFlux",
            "dateHeureEmission",
            "versionNorme",
            "emetteur",
            "numeroAmc"
        ]
    );
    assert_eq!(
        names(entete.child(SEL_NS, "emetteur").unwrap()),
        [
            "finessJuridique",
            "finessGeographique",
            "logiciel",
            "versionLogiciel"
        ]
    );
    assert_eq!(
        names(root.child(SEL_NS, "beneficiaire").unwrap()),
        [
            "nir",
            "cleNir",
            "dateNaissance",
            "rangGemellaire",
            "numeroAdherent"
        ]
    );
    assert_eq!(
        names(root.child(SEL_NS, "contrat").unwrap()),
        ["typeConvention", "critereSecondaire"]
    );
    assert_eq!(
        names(root.child(SEL_NS, "contexte").unwrap()),
        ["typePriseEnCharge", "domaine", "dateEntree", "dateSortie"]
    );
    let prestations = root.child(SEL_NS, "prestations").unwrap();
    assert_eq!(names(prestations), ["prestation"]);
    assert_eq!(
        names(prestations.elements().next().unwrap()),
        [
            "code",
            "dateDebut",
            "dateFin",
            "quantite",
            "montantTotal",
            "montantAmo"
        ]
    );
    assert_eq!(text_at(&root, &["entete", "versionNorme"]).unwrap(), "1.04");
    assert_eq!(
        text_at(&root, &["entete", "numeroAmc"]).unwrap(),
        "12345678"
    );
    assert_eq!(text_at(&root, &["beneficiaire", "cleNir"]).unwrap(), "08");
    assert_eq!(
        text_at(&root, &["contrat", "critereSecondaire"]).unwrap(),
        "9412"
    );
    assert_eq!(text_at(&root, &["idDossier"]).unwrap(), "S1");
    assert_eq!(
        text_at(&root, &["prestations", "prestation", "montantAmo"]).unwrap(),
        "96.00"
    );
}

#[test]
fn idb_sim_del_requests() {
    let p = Patient {
        numero_adherent: None,
        ..p01()
    };
    let s = Stay {
        date_sortie: None,
        ..s1()
    };
    let idb = request_root(&sel_envelope(&request(Op::Idb, &p, &s, "08")));
    assert_eq!(idb.local, "idbRequete");
    assert_eq!(
        names(&idb),
        ["entete", "beneficiaire", "contrat", "contexte"]
    );
    assert_eq!(
        names(idb.child(SEL_NS, "beneficiaire").unwrap()),
        ["nir", "cleNir", "dateNaissance", "rangGemellaire"]
    );
    assert_eq!(
        names(idb.child(SEL_NS, "contexte").unwrap()),
        ["typePriseEnCharge", "domaine", "dateEntree"]
    );
    let (p, s) = (p01(), s1());
    let sim = request_root(&sel_envelope(&request(Op::Sim, &p, &s, "08")));
    assert_eq!(sim.local, "simRequete");
    assert_eq!(
        names(&sim),
        [
            "entete",
            "beneficiaire",
            "contrat",
            "contexte",
            "prestations"
        ]
    );
    let del = request_root(&sel_envelope(&request(Op::Del, &p, &s, "08")));
    assert_eq!(del.local, "delRequete");
    assert_eq!(
        names(&del),
        ["entete", "numeroEngagement", "motifAnnulation"]
    );
    assert_eq!(text_at(&del, &["numeroEngagement"]).unwrap(), "ENG-1");
    // The V2 field of the v2-field-in-v1 defect, at its place in emetteur.
    let with = SelRequest {
        categorie: Some("EXDG"),
        ..request(Op::Idb, &p, &s, "08")
    };
    let root = request_root(&sel_envelope(&with));
    assert_eq!(
        names(text_root(&root, &["entete", "emetteur"])),
        [
            "finessJuridique",
            "finessGeographique",
            "categorieEtablissement",
            "logiciel",
            "versionLogiciel"
        ]
    );
    // Text is escaped.
    let odd = Stay {
        id: "S<1>&".into(),
        ..s1()
    };
    let root = request_root(&sel_envelope(&request(Op::Clc, &p, &odd, "08")));
    assert_eq!(text_at(&root, &["idDossier"]).unwrap(), "S<1>&");
}

fn text_root<'e>(e: &'e Element, path: &[&str]) -> &'e Element {
    let mut cur = e;
    for p in path {
        cur = cur.child(SEL_NS, p).unwrap();
    }
    cur
}

#[test]
fn headers_are_soap12_with_the_action() {
    let h = sel_headers(Op::Clc);
    assert_eq!(
        h,
        [(
            "Content-Type".to_string(),
            "application/soap+xml; charset=utf-8; action=\"urn:roc:model:sel:CLC\"".to_string()
        )]
    );
}

#[test]
fn annuaire_query_fields() {
    let q = annuaire_query("2026-03-02", "GAP-REF", "1.0", &p01(), "MCO");
    assert_eq!(q.version, "R01");
    assert_eq!(q.date_demande, "2026-03-02");
    assert_eq!(q.editeur, EDITEUR);
    assert_eq!(q.numero_amc, "12345678");
    assert_eq!(q.code_type_convention, "RO");
    assert_eq!(q.code_csr, "9412");
    assert_eq!(q.domaine_conventionnel, "MCO");
    assert_eq!(q.code_service, "");
    assert_eq!(q.code_norme_service, "ROC");
    assert_eq!(q.version_norme_service, "");
    assert_eq!(q.type_adresse, ["URL"]);
}

/// The reference AMC accepts what the GAP builds (handler called directly).
#[tokio::test]
async fn the_reference_amc_accepts_the_requests() {
    let amc = Amc::new(AmcConfig::new(population(), "A", BTreeSet::new()));
    let (p, s) = (p01(), s1());
    let send = |op: Op, body: String| {
        let amc = amc.clone();
        async move {
            let resp = amc
                .handle(SrvRequest {
                    method: "POST".into(),
                    path: format!("/{}", op.name()),
                    headers: sel_headers(op),
                    body: body.into_bytes(),
                    peer: crate::net::server::Peer {
                        common_name: Some(FINESS.into()),
                        ..Default::default()
                    },
                })
                .await;
            classify_body(op, resp.status, std::str::from_utf8(&resp.body).unwrap())
        }
    };
    let Answer::Ok(idb) = send(Op::Idb, sel_envelope(&request(Op::Idb, &p, &s, "08"))).await else {
        panic!("IDB not OK");
    };
    assert_eq!(idb.services, ["SIM", "CLC", "DEL"]);
    let Answer::Ok(sim) = send(Op::Sim, sel_envelope(&request(Op::Sim, &p, &s, "08"))).await else {
        panic!("SIM not OK");
    };
    assert_eq!(sim.total_amc.as_deref(), Some("24.00"));
    let Answer::Ok(clc) = send(Op::Clc, sel_envelope(&request(Op::Clc, &p, &s, "08"))).await else {
        panic!("CLC not OK");
    };
    let numero = clc.numero_engagement.unwrap();
    let del = SelRequest {
        numero_engagement: &numero,
        ..request(Op::Del, &p, &s, "08")
    };
    let Answer::Ok(d) = send(Op::Del, sel_envelope(&del)).await else {
        panic!("DEL not OK");
    };
    assert!(d.date_annulation.is_some());
    // Wrong key: R05.
    let a = send(Op::Idb, sel_envelope(&request(Op::Idb, &p, &s, "09"))).await;
    assert!(
        matches!(&a, Answer::Ko { code, .. } if code == "R05"),
        "{a:?}"
    );
    // categorieEtablissement in 1.04: R03.
    let with = SelRequest {
        categorie: Some("EXDG"),
        ..request(Op::Idb, &p, &s, "08")
    };
    let a = send(Op::Idb, sel_envelope(&with)).await;
    assert!(
        matches!(&a, Answer::Ko { code, .. } if code == "R03"),
        "{a:?}"
    );
}

// ------------------------------------------------------------------------- classification

fn answer_doc(op: Op, inner: &str) -> String {
    soap::envelope(
        soap::SOAP12_ENV,
        &[],
        &format!(
            "<r:{root} xmlns:r=\"{SEL_NS}\"><r:enteteReponse/>{inner}</r:{root}>",
            root = op.response_root()
        ),
    )
}

#[test]
fn classification() {
    let ok = answer_doc(
        Op::Idb,
        "<r:statut>OK</r:statut><r:servicesDisponibles><r:service>CLC</r:service><r:service>DEL</r:service></r:servicesDisponibles>",
    );
    assert_eq!(
        classify_body(Op::Idb, 200, &ok),
        Answer::Ok(OkAnswer {
            services: vec!["CLC".into(), "DEL".into()],
            ..OkAnswer::default()
        })
    );
    let ko = answer_doc(
        Op::Idb,
        "<r:statut>KO</r:statut><r:motif><r:code>R01</r:code><r:libelle>inconnu</r:libelle></r:motif>",
    );
    let a = classify_body(Op::Idb, 200, &ko);
    assert_eq!(
        a,
        Answer::Ko {
            code: "R01".into(),
            libelle: "inconnu".into()
        }
    );
    assert!(!a.retryable());
    assert_eq!(a.failure(Op::Idb), "refused: KO R01");
    let receiver = soap::fault12(
        soap::SOAP12_ENV,
        "Receiver",
        Some((SEL_NS, "ErreurInterne")),
        "panne",
    );
    let a = classify_body(Op::Idb, 500, &receiver);
    assert!(a.retryable(), "{a:?}");
    assert_eq!(a.label(), "fault");
    assert_eq!(a.detail(), "fault env:Receiver roc:ErreurInterne: panne");
    let sender = soap::fault12(
        soap::SOAP12_ENV,
        "Sender",
        Some((SEL_NS, "SchemaInvalide")),
        "x",
    );
    let a = classify_body(Op::Idb, 400, &sender);
    assert!(matches!(
        a,
        Answer::Fault {
            receiver: false,
            ..
        }
    ));
    assert!(!a.retryable());
    // Malformed in every way.
    for (status, body) in [
        (200, "not xml <".to_string()),
        (200, "<a/>".to_string()),
        (200, answer_doc(Op::Sim, "<r:statut>OK</r:statut>")),
        (200, answer_doc(Op::Idb, "<r:statut>PEUT-ETRE</r:statut>")),
        (200, answer_doc(Op::Idb, "")),
        (200, answer_doc(Op::Idb, "<r:statut>KO</r:statut>")),
        (500, ok.clone()),
    ] {
        let a = classify_body(Op::Idb, status, &body);
        assert_eq!(a.label(), "malformed", "{body}: {a:?}");
        assert!(!a.retryable());
    }
    // A CLC OK needs its engagement number.
    let a = classify_body(
        Op::Clc,
        200,
        &answer_doc(Op::Clc, "<r:statut>OK</r:statut>"),
    );
    assert_eq!(a.label(), "malformed");
    // Content type.
    let ex = Exchange {
        response: Some(crate::outcome::HttpMessage {
            status: Some(200),
            headers: vec![("content-type".into(), "text/xml; charset=utf-8".into())],
            body: Some(ok.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(classify(Op::Idb, &ex).label(), "content_type");
    let mut good = ex.clone();
    good.response.as_mut().unwrap().headers = vec![(
        "Content-Type".into(),
        "Application/SOAP+XML;charset=utf-8".into(),
    )];
    assert_eq!(classify(Op::Idb, &good).label(), "ok");
    let timeout = Exchange {
        error: Some(crate::outcome::TransportError {
            kind: TransportErrorKind::Timeout,
            message: "late".into(),
        }),
        ..Default::default()
    };
    assert!(classify(Op::Idb, &timeout).retryable());
    let tls = Exchange {
        error: Some(crate::outcome::TransportError {
            kind: TransportErrorKind::Tls,
            message: "bad cert".into(),
        }),
        ..Default::default()
    };
    let a = classify(Op::Idb, &tls);
    assert_eq!(a.label(), "tls");
    assert!(!a.retryable());
}

#[test]
fn trigger_data_parsing() {
    let v = json!({"nir": "1850775123456", "date_naissance": "19850712", "rang_gemellaire": 1,
                   "numero_amc": 12345678, "type_convention": "RO", "csr": "9412",
                   "numero_adherent": ""});
    let p = Patient::from_json(&v).unwrap();
    assert_eq!(p.rang_gemellaire, "1");
    assert_eq!(p.numero_amc, "12345678");
    assert_eq!(p.numero_adherent, None);
    assert_eq!(p.endpoint, None);
    let err = Patient::from_json(&json!({"nir": "1850775123456"})).unwrap_err();
    assert!(err.contains("data.patient.date_naissance"), "{err}");
    assert!(Patient::from_json(&Value::Null).is_err());
    let err = Stay::from_json(&json!({"id": "S1", "type_prise_en_charge": "SEJOUR",
        "domaine": "MCO", "date_entree": "2026-03-02", "prestations": [{"code": "TM"}]}))
    .unwrap_err();
    assert!(err.contains("prestations[0].date_debut"), "{err}");
}

#[tokio::test]
async fn triggers_the_gap_cannot_act_on() {
    let gap = ReferenceGap::new(config(&[]));
    let err = gap
        .perform(&json!({"action": "discharge"}))
        .await
        .unwrap_err();
    assert!(err.contains("unknown action 'discharge'"), "{err}");
    assert!(gap.perform(&json!({})).await.is_err());
    let mut t = trigger("compute", &p01(), &s1(), &Urls::none());
    t["data"]["patient"]["nir"] = json!("12345");
    let err = gap.perform(&t).await.unwrap_err();
    assert!(err.contains("not a NIR"), "{err}");
    let mut t = trigger("compute", &p01(), &s1(), &Urls::none());
    t["data"]["stay"]["prestations"] = json!([]);
    assert!(gap.perform(&t).await.is_err());
    let bad = GapConfig {
        ca_pem: "nope".into(),
        ..config(&[])
    };
    let err = ReferenceGap::new(bad)
        .perform(&trigger("admission", &p01(), &s1(), &Urls::none()))
        .await
        .unwrap_err();
    assert!(err.contains("GAP TLS configuration"), "{err}");
}

#[test]
fn every_defect_is_wired() {
    for d in crate::defects::GAP {
        let f = Flags::of(&set(&[d.name]));
        let wired = f.skips_annuaire
            || f.clc_without_idb
            || f.clc_after_ko_idb
            || f.retries_ko
            || f.reuses_idflux
            || f.wrong_nir_key
            || f.accepts_any_server_cert
            || f.no_client_cert
            || f.v2_field_in_v1
            || f.soap11_requests
            || f.recompute_without_del
            || f.wrong_endpoint
            || f.no_retry
            || f.too_many_retries
            || f.v2_to_v1_only_amc
            || f.no_paper_fallback
            || f.periods_out_of_order
            || f.last_period_unmarked
            || f.invoice_without_engagement
            || f.invoice_amounts_recomputed
            || f.invoice_before_end
            || f.reinvoice_paid
            || f.message_patient_dropped
            || f.rsp_ignored;
        assert!(wired, "{} does nothing", d.name);
    }
    let cfg = GapConfig {
        defects: set(&["no-retry", "hang-del"]),
        ..config(&[])
    };
    assert_eq!(cfg.unknown_defects(), ["hang-del"]);
    assert_eq!(Flags::of(&set(&[])).max_retries(), 2);
    assert_eq!(Flags::of(&set(&["no-retry"])).max_retries(), 0);
    assert_eq!(Flags::of(&set(&["too-many-retries"])).max_retries(), 3);
}

// ------------------------------------------------------------------------- flows over TLS

/// What a server does instead of (or before) the real answer, once.
#[derive(Debug, Clone)]
enum Override {
    Fault { receiver: bool },
    Sleep(Duration),
    Malformed,
    TextPlain,
}

/// One request a server of the lab received.
#[derive(Debug, Clone)]
struct Seen {
    /// `annuaire`, `A` or `B`.
    actor: String,
    op: String,
    body: String,
    cn: Option<String>,
}

impl Seen {
    fn id_flux(&self) -> String {
        let root = xml::parse(&self.body).unwrap();
        let body = root.child(soap::SOAP12_ENV, "Body").unwrap();
        let req = body.elements().next().unwrap();
        text_at(req, &["entete", "idFlux"]).unwrap()
    }
}

#[derive(Default)]
struct Record {
    seen: Vec<Seen>,
    overrides: Vec<(String, String, Override)>,
}

type Rec = Arc<Mutex<Record>>;

fn recording(actor: &str, inner: Handler, rec: Rec) -> Handler {
    let actor = actor.to_string();
    Arc::new(move |req: SrvRequest| {
        let inner = inner.clone();
        let rec = rec.clone();
        let actor = actor.clone();
        Box::pin(async move {
            let op = req
                .path
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            let op = if actor == "annuaire" {
                "search".to_string()
            } else {
                op
            };
            let over = {
                let mut r = rec.lock().unwrap();
                r.seen.push(Seen {
                    actor: actor.clone(),
                    op: op.clone(),
                    body: String::from_utf8_lossy(&req.body).into_owned(),
                    cn: req.peer.common_name.clone(),
                });
                let at = r
                    .overrides
                    .iter()
                    .position(|(a, o, _)| *a == actor && *o == op);
                at.map(|i| r.overrides.remove(i).2)
            };
            let soap12 = "application/soap+xml; charset=utf-8".to_string();
            match over {
                Some(Override::Fault { receiver }) => Response {
                    status: if receiver { 500 } else { 400 },
                    headers: vec![("Content-Type".into(), soap12)],
                    body: soap::fault12(
                        soap::SOAP12_ENV,
                        if receiver { "Receiver" } else { "Sender" },
                        Some((
                            SEL_NS,
                            if receiver {
                                "ErreurInterne"
                            } else {
                                "SchemaInvalide"
                            },
                        )),
                        "injected",
                    )
                    .into_bytes(),
                },
                Some(Override::Sleep(d)) => {
                    tokio::time::sleep(d).await;
                    inner(req).await
                }
                Some(Override::Malformed) => Response {
                    status: 200,
                    headers: vec![("Content-Type".into(), soap12)],
                    body: b"<<< not xml".to_vec(),
                },
                Some(Override::TextPlain) => {
                    let mut r = inner(req).await;
                    r.headers = vec![("Content-Type".into(), "text/plain".into())];
                    r
                }
                None => inner(req).await,
            }
        })
    })
}

/// Where the lab's servers listen.
struct Urls {
    annuaire: String,
    a: String,
    b: String,
}

impl Urls {
    fn none() -> Urls {
        Urls {
            annuaire: "https://127.0.0.1:9/annuaire".into(),
            a: "https://127.0.0.1:9".into(),
            b: "https://127.0.0.1:9".into(),
        }
    }
}

/// An annuaire and two mirror AMCs (endpoints A and B) on 127.0.0.1.
struct TestLab {
    urls: Urls,
    rec: Rec,
    amc_a: Arc<Amc>,
    amc_b: Arc<Amc>,
    _servers: Vec<Server>,
}

/// How the lab's servers present themselves.
#[derive(Clone, Copy)]
struct LabOptions {
    amc_a_identity: fn(&Pki) -> Identity,
    client_auth: ClientAuth,
}

impl Default for LabOptions {
    fn default() -> Self {
        LabOptions {
            amc_a_identity: |p| p.amc_server.clone(),
            client_auth: ClientAuth::Required,
        }
    }
}

impl TestLab {
    async fn start() -> TestLab {
        Self::start_with(LabOptions::default()).await
    }

    async fn start_with(opts: LabOptions) -> TestLab {
        let pki = pki();
        let rec: Rec = Arc::default();
        let amc_a = Amc::new(AmcConfig::new(population(), "A", BTreeSet::new()));
        let amc_b = Amc::new(AmcConfig::new(population(), "B", BTreeSet::new()));
        let tls_with =
            |id: &Identity| tls::server_config(&pki.ca_cert_pem, id, opts.client_auth).unwrap();
        let a = Server::start(
            "127.0.0.1:0",
            tls_with(&(opts.amc_a_identity)(pki)),
            recording("A", amc_a.handler(), rec.clone()),
        )
        .await
        .unwrap();
        let b = Server::start(
            "127.0.0.1:0",
            tls_with(&pki.amc_server),
            recording("B", amc_b.handler(), rec.clone()),
        )
        .await
        .unwrap();
        let amc_urls: BTreeMap<String, String> = [("A", a.url("")), ("B", b.url(""))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let ann = annuaire::handler(annuaire::AnnuaireConfig {
            population: population(),
            amc_urls,
            services: ["IDB", "SIM", "CLC", "DEL", "DRE", "ANF"]
                .map(String::from)
                .to_vec(),
            ns: annuaire::NS.to_string(),
        });
        let n = Server::start(
            "127.0.0.1:0",
            tls_with(&pki.annuaire_server),
            recording("annuaire", ann, rec.clone()),
        )
        .await
        .unwrap();
        TestLab {
            urls: Urls {
                annuaire: n.url("/annuaire"),
                a: a.url(""),
                b: b.url(""),
            },
            rec,
            amc_a,
            amc_b,
            _servers: vec![a, b, n],
        }
    }

    /// `actor:op` of every request received, in order.
    fn ops(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{}:{}", s.actor, s.op))
            .collect()
    }

    fn seen(&self) -> Vec<Seen> {
        self.rec.lock().unwrap().seen.clone()
    }

    fn clear(&self) {
        self.rec.lock().unwrap().seen.clear();
    }

    fn inject(&self, actor: &str, op: &str, times: usize, o: Override) {
        let mut r = self.rec.lock().unwrap();
        for _ in 0..times {
            r.overrides.push((actor.into(), op.into(), o.clone()));
        }
    }

    fn trigger(&self, action: &str, p: &Patient, s: &Stay) -> Value {
        trigger(action, p, s, &self.urls)
    }
}

fn trigger(action: &str, p: &Patient, s: &Stay, urls: &Urls) -> Value {
    json!({
        "scenario": "GAP-TEST",
        "action": action,
        "inputs": {"patient": "P", "stay": s.id},
        "data": {
            "patient": {
                "nir": p.nir, "cle_nir": "00", "date_naissance": p.date_naissance,
                "rang_gemellaire": p.rang_gemellaire, "numero_adherent": p.numero_adherent,
                "numero_amc": p.numero_amc, "type_convention": p.type_convention,
                "csr": p.csr, "endpoint": p.endpoint,
            },
            "stay": {
                "id": s.id, "type_prise_en_charge": s.type_prise_en_charge,
                "domaine": s.domaine, "date_entree": s.date_entree,
                "date_sortie": s.date_sortie,
                "prestations": s.prestations.iter().map(|l| json!({
                    "code": l.code, "date_debut": l.date_debut, "date_fin": l.date_fin,
                    "quantite": l.quantite, "montant_total": l.montant_total,
                    "montant_amo": l.montant_amo,
                })).collect::<Vec<_>>(),
            },
        },
        "lab": {
            "annuaire_url": urls.annuaire,
            "amc_urls": {"A": urls.a, "B": urls.b},
            "ca": "/tmp/ca.pem",
            "finess_juridique": FINESS,
            "finess_geographique": "750100042",
        },
    })
}

fn unknown() -> Patient {
    Patient {
        nir: UNKNOWN_NIR.into(),
        date_naissance: "19460812".into(),
        numero_adherent: None,
        ..p01()
    }
}

fn p07() -> Patient {
    Patient {
        nir: "285112A123456".into(),
        date_naissance: "19851130".into(),
        numero_adherent: Some("F00000007".into()),
        ..p01()
    }
}

fn p08() -> Patient {
    Patient {
        nir: "1990259000123".into(),
        date_naissance: "19990210".into(),
        numero_adherent: Some("G00000008".into()),
        numero_amc: "87654321".into(),
        type_convention: "SP".into(),
        csr: "5900".into(),
        endpoint: Some("B".into()),
        ..p01()
    }
}

fn s2() -> Stay {
    Stay {
        id: "S2".into(),
        ..s1()
    }
}

async fn run(gap: &ReferenceGap, t: &Value) -> Value {
    gap.perform(t).await.unwrap()
}

fn result(r: &Value) -> &str {
    r["result"].as_str().unwrap()
}

#[tokio::test]
async fn compute_engages_and_cancel_dels() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&[]));
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB", "A:CLC"]);
    let numero = result(&r).to_string();
    assert_eq!(r["engagement"], json!(numero));
    assert_eq!(r["total_amc"], json!("24.00"));
    assert_eq!(r["services"], json!(["SIM", "CLC", "DEL"]));
    assert_eq!(r["action"], "compute");
    assert_eq!(r["scenario"], "GAP-TEST");
    assert_eq!(r["stay"], "S1");
    assert_eq!(r["numero_amc"], "12345678");
    assert_eq!(r["norme"], "1.04");
    let notes = r["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "the trigger's card key is 00");
    assert!(notes[0].as_str().unwrap().contains("08 sent"), "{notes:?}");
    let calls = r["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0]["operation"], "search");
    assert_eq!(calls[0]["actor"], "annuaire");
    assert_eq!(calls[0]["url"], json!(lab.urls.annuaire));
    assert_eq!(calls[0]["code_retour"], "00");
    assert_eq!(calls[1]["operation"], "IDB");
    assert_eq!(calls[1]["url"], json!(format!("{}/IDB", lab.urls.a)));
    assert_eq!(calls[1]["outcome"], "ok");
    assert_eq!(calls[1]["http_status"], 200);
    assert_eq!(calls[1]["attempt"], 1);
    assert_eq!(calls[1]["retried"], false);
    assert_eq!(calls[2]["outcome"], "ok");
    assert_eq!(calls[2]["url"], json!(format!("{}/CLC", lab.urls.a)));
    // The requests as the AMC received them.
    let seen = lab.seen();
    assert!(seen.iter().all(|s| s.cn.as_deref() == Some(FINESS)));
    assert_eq!(calls[1]["id_flux"], json!(seen[1].id_flux()));
    assert_ne!(seen[1].id_flux(), seen[2].id_flux());
    assert_eq!(gap.engagement("S1").as_deref(), Some(numero.as_str()));
    assert_eq!(
        lab.amc_a.registry().get(&numero).unwrap().state,
        EngagementState::Active
    );
    // The annuaire request: SOAP 1.1 search for the patient's AMC.
    assert!(seen[0].body.contains("12345678"));
    assert!(seen[0].body.contains(soap::SOAP11_ENV));

    lab.clear();
    let r = run(&gap, &lab.trigger("cancel", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["A:DEL"]);
    assert_eq!(result(&r), format!("cancelled {numero}"));
    assert_eq!(r["engagement"], Value::Null);
    let del = xml::parse(&lab.seen()[0].body).unwrap();
    let del = del
        .child(soap::SOAP12_ENV, "Body")
        .unwrap()
        .elements()
        .next()
        .unwrap()
        .clone();
    assert_eq!(text_at(&del, &["numeroEngagement"]).unwrap(), numero);
    assert_eq!(
        lab.amc_a.registry().get(&numero).unwrap().state,
        EngagementState::Cancelled
    );
    // Nothing left to cancel: no call.
    lab.clear();
    let r = run(&gap, &lab.trigger("cancel", &p01(), &s1())).await;
    assert!(lab.ops().is_empty());
    assert_eq!(result(&r), "nothing to cancel");
    assert_eq!(r["calls"], json!([]));
}

#[tokio::test]
async fn ko_idb_stops_the_flow() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&[]));
    let r = run(&gap, &lab.trigger("compute", &unknown(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB"]);
    assert_eq!(result(&r), "refused: KO R01");
    assert_eq!(r["calls"][1]["outcome"], "ko");
    assert_eq!(r["calls"][1]["code"], "R01");
    // The KO is kept for the stay: no new IDB, no CLC.
    lab.clear();
    let r = run(&gap, &lab.trigger("compute", &unknown(), &s1())).await;
    assert!(lab.ops().is_empty());
    assert_eq!(result(&r), "refused: KO R01");
    // An admission asks again.
    let r = run(&gap, &lab.trigger("admission", &unknown(), &s1())).await;
    assert_eq!(lab.ops(), ["A:IDB"]);
    assert_eq!(result(&r), "refused: KO R01");
}

#[tokio::test]
async fn admission_then_simulate_then_compute_twice() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&[]));
    let r = run(&gap, &lab.trigger("admission", &p01(), &s1())).await;
    assert_eq!(result(&r), "admitted");
    let r = run(&gap, &lab.trigger("simulate", &p01(), &s1())).await;
    assert_eq!(result(&r), "simulated");
    assert_eq!(r["total_amc"], "24.00");
    let first = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    let second = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(
        lab.ops(),
        [
            "annuaire:search",
            "A:IDB",
            "A:SIM",
            "A:CLC",
            "A:DEL",
            "A:CLC"
        ]
    );
    let (n1, n2) = (result(&first), result(&second));
    assert_ne!(n1, n2);
    {
        let reg = lab.amc_a.registry();
        assert_eq!(reg.get(n1).unwrap().state, EngagementState::Cancelled);
        assert_eq!(reg.get(n2).unwrap().state, EngagementState::Active);
    }
    assert_eq!(gap.engagement("S1").as_deref(), Some(n2));
    // After a cancel, a compute needs no DEL.
    lab.clear();
    let d = run(&gap, &lab.trigger("cancel", &p01(), &s1())).await;
    assert_eq!(result(&d), format!("cancelled {n2}"));
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["A:DEL", "A:CLC"]);
    assert_eq!(result(&r).len(), n2.len());
}

#[tokio::test]
async fn actions_run_one_at_a_time_in_order() {
    let lab = TestLab::start().await;
    let gap = Arc::new(ReferenceGap::new(config(&[])));
    // The admission's IDB answers late; the compute fired meanwhile waits for it and uses
    // its answer instead of asking IDB itself.
    lab.inject("A", "IDB", 1, Override::Sleep(Duration::from_millis(300)));
    let first = {
        let (gap, t) = (gap.clone(), lab.trigger("admission", &p01(), &s1()));
        tokio::spawn(async move { gap.perform(&t).await })
    };
    let second = {
        let (gap, t) = (gap.clone(), lab.trigger("compute", &p01(), &s1()));
        tokio::spawn(async move { gap.perform(&t).await })
    };
    assert_eq!(result(&first.await.unwrap().unwrap()), "admitted");
    let r = second.await.unwrap().unwrap();
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB", "A:CLC"]);
    assert_eq!(r["engagement"], json!(result(&r)));
}

#[tokio::test]
async fn ace_has_no_simulation_and_v2_domains_go_to_paper() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&[]));
    let ace = Stay {
        type_prise_en_charge: "ACE".into(),
        ..s1()
    };
    let r = run(&gap, &lab.trigger("simulate", &p01(), &ace)).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB"]);
    assert_eq!(result(&r), "SIM not available");
    assert_eq!(r["services"], json!(["CLC", "DEL"]));
    lab.clear();
    let ssr = Stay {
        id: "S9".into(),
        domaine: "SSR".into(),
        ..s1()
    };
    for action in ["admission", "simulate", "compute"] {
        let r = run(&gap, &lab.trigger(action, &p01(), &ssr)).await;
        assert_eq!(result(&r), "paper fallback");
    }
    assert!(lab.ops().is_empty());
}

#[tokio::test]
async fn each_amc_number_is_looked_up_and_routed() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&[]));
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert!(result(&r).len() > 5);
    let r = run(&gap, &lab.trigger("compute", &p08(), &s2())).await;
    assert_eq!(
        lab.ops(),
        [
            "annuaire:search",
            "A:IDB",
            "A:CLC",
            "annuaire:search",
            "B:IDB",
            "B:CLC"
        ]
    );
    assert_eq!(lab.amc_b.registry().len(), 1);
    assert_eq!(r["engagement"], json!(result(&r)));
    // Cached per AMC number: a new stay of P01 asks the annuaire nothing.
    lab.clear();
    let s3 = Stay {
        id: "S3".into(),
        ..s1()
    };
    run(&gap, &lab.trigger("admission", &p01(), &s3)).await;
    assert_eq!(lab.ops(), ["A:IDB"]);
}

#[tokio::test]
async fn no_address_means_no_sel_call() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&[]));
    // CSR 95… does not match the AMC's 94????????: code_retour 02.
    let p = Patient {
        csr: "9500".into(),
        ..p01()
    };
    let r = run(&gap, &lab.trigger("compute", &p, &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search"]);
    assert_eq!(result(&r), "no address");
    assert_eq!(r["calls"][0]["code_retour"], "02");
    // Not cached: asked again.
    run(&gap, &lab.trigger("compute", &p, &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "annuaire:search"]);
}

#[tokio::test]
async fn a_server_with_the_wrong_name_is_refused() {
    let lab = TestLab::start_with(LabOptions {
        amc_a_identity: |p| p.wrong_name_server.clone(),
        ..LabOptions::default()
    })
    .await;
    let gap = ReferenceGap::new(config(&[]));
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search"]);
    let calls = r["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "never retried: {r:#}");
    assert_eq!(calls[1]["outcome"], "server_certificate");
    assert!(result(&r).starts_with("IDB failed: "), "{r:#}");
    // The defect goes through.
    let any = ReferenceGap::new(config(&["accepts-any-server-cert"]));
    let r = run(&any, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(
        lab.ops(),
        ["annuaire:search", "annuaire:search", "A:IDB", "A:CLC"]
    );
    assert_eq!(r["engagement"], json!(result(&r)));
}

#[tokio::test]
async fn receiver_faults_and_timeouts_are_retried_twice_with_new_idflux() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&[]));
    lab.inject("A", "IDB", 2, Override::Fault { receiver: true });
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(
        lab.ops(),
        ["annuaire:search", "A:IDB", "A:IDB", "A:IDB", "A:CLC"]
    );
    let seen = lab.seen();
    let ids: BTreeSet<String> = seen[1..4].iter().map(Seen::id_flux).collect();
    assert_eq!(ids.len(), 3, "a new idFlux per retry");
    let calls = r["calls"].as_array().unwrap();
    assert_eq!(calls[1]["retried"], true);
    assert_eq!(calls[2]["retried"], true);
    assert_eq!(calls[3]["retried"], false);
    assert_eq!(calls[3]["attempt"], 3);
    assert_eq!(calls[1]["outcome"], "fault");
    assert_eq!(calls[1]["http_status"], 500);

    // Three in a row: the action fails after the third attempt.
    lab.clear();
    lab.inject("A", "CLC", 3, Override::Fault { receiver: true });
    let s = s2();
    let r = run(&gap, &lab.trigger("compute", &p01(), &s)).await;
    assert_eq!(lab.ops(), ["A:IDB", "A:CLC", "A:CLC", "A:CLC"]);
    assert!(
        result(&r).starts_with("CLC failed: fault env:Receiver"),
        "{r:#}"
    );
    assert!(result(&r).ends_with("(3 attempts)"), "{r:#}");
    assert_eq!(r["engagement"], Value::Null);

    // Timeouts too.
    let fast = ReferenceGap::new(GapConfig {
        call_timeout: Duration::from_millis(400),
        ..config(&[])
    });
    lab.clear();
    lab.inject("A", "IDB", 1, Override::Sleep(Duration::from_millis(1200)));
    let r = run(&fast, &lab.trigger("admission", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB", "A:IDB"]);
    assert_eq!(r["calls"][1]["outcome"], "timeout");
    assert_eq!(result(&r), "admitted");
}

#[tokio::test]
async fn sender_faults_malformed_answers_and_kos_are_not_retried() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&[]));
    lab.inject("A", "IDB", 1, Override::Fault { receiver: false });
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB"]);
    assert!(
        result(&r).starts_with("IDB failed: fault env:Sender"),
        "{r:#}"
    );
    // A failed IDB is not kept: the next action asks again.
    lab.clear();
    lab.inject("A", "IDB", 1, Override::Malformed);
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["A:IDB"]);
    assert_eq!(r["calls"][0]["outcome"], "malformed");
    lab.clear();
    lab.inject("A", "IDB", 1, Override::TextPlain);
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["A:IDB"]);
    assert_eq!(r["calls"][0]["outcome"], "content_type");
    lab.clear();
    let r = run(&gap, &lab.trigger("compute", &unknown(), &s2())).await;
    assert_eq!(lab.ops(), ["A:IDB"]);
    assert_eq!(result(&r), "refused: KO R01");
}

// ------------------------------------------------------------------------- defects

#[tokio::test]
async fn defect_skips_annuaire() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["skips-annuaire"]));
    let r = run(&gap, &lab.trigger("compute", &p08(), &s1())).await;
    assert_eq!(lab.ops(), ["B:IDB", "B:CLC"]);
    assert_eq!(r["calls"][0]["url"], json!(format!("{}/IDB", lab.urls.b)));
}

#[tokio::test]
async fn defect_clc_without_idb() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["clc-without-idb"]));
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:CLC"]);
    assert_eq!(r["engagement"], json!(result(&r)));
}

#[tokio::test]
async fn defect_clc_after_ko_idb() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["clc-after-ko-idb"]));
    let r = run(&gap, &lab.trigger("compute", &unknown(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB", "A:CLC"]);
    assert_eq!(result(&r), "refused: KO R01");
}

#[tokio::test]
async fn defect_retries_ko() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["retries-ko"]));
    let r = run(&gap, &lab.trigger("admission", &unknown(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB", "A:IDB"]);
    assert_eq!(result(&r), "refused: KO R01");
}

#[tokio::test]
async fn defect_reuses_idflux() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["reuses-idflux"]));
    lab.inject("A", "IDB", 1, Override::Fault { receiver: true });
    run(&gap, &lab.trigger("admission", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB", "A:IDB"]);
    let seen = lab.seen();
    assert_eq!(seen[1].id_flux(), seen[2].id_flux());
}

#[tokio::test]
async fn defect_wrong_nir_key() {
    let lab = TestLab::start().await;
    let good = ReferenceGap::new(config(&[]));
    let r = run(&good, &lab.trigger("admission", &p07(), &s1())).await;
    assert_eq!(result(&r), "admitted");
    let bad = ReferenceGap::new(config(&["wrong-nir-key"]));
    let r = run(&bad, &lab.trigger("admission", &p07(), &s1())).await;
    assert_eq!(result(&r), "refused: KO R05");
    // Other NIRs are unaffected.
    let r = run(&bad, &lab.trigger("admission", &p01(), &s2())).await;
    assert_eq!(result(&r), "admitted");
}

#[tokio::test]
async fn defect_no_client_cert() {
    let lab = TestLab::start_with(LabOptions {
        client_auth: ClientAuth::Optional,
        ..LabOptions::default()
    })
    .await;
    let gap = ReferenceGap::new(config(&["no-client-cert"]));
    let r = run(&gap, &lab.trigger("admission", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB"]);
    assert!(lab.seen().iter().all(|s| s.cn.is_none()));
    // The AMC binds the identity: no certificate, NonAutorise.
    assert!(result(&r).contains("NonAutorise"), "{r:#}");
    // With the lab's usual Required client authentication, the handshake fails.
    let strict = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["no-client-cert"]));
    let r = run(&gap, &strict.trigger("admission", &p01(), &s1())).await;
    assert!(strict.ops().is_empty());
    assert!(result(&r).starts_with("search failed"), "{r:#}");
}

#[tokio::test]
async fn defect_v2_field_in_v1() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["v2-field-in-v1"]));
    let r = run(&gap, &lab.trigger("admission", &p01(), &s1())).await;
    assert!(lab.seen()[1].body.contains("categorieEtablissement>EXDG<"));
    assert_eq!(result(&r), "refused: KO R03");
}

#[tokio::test]
async fn defect_recompute_without_del() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["recompute-without-del"]));
    run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB", "A:CLC", "A:CLC"]);
    assert_eq!(lab.amc_a.registry().len(), 2);
}

#[tokio::test]
async fn defect_wrong_endpoint() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["wrong-endpoint"]));
    run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    let r = run(&gap, &lab.trigger("compute", &p08(), &s2())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB", "A:CLC", "A:IDB"]);
    assert_eq!(result(&r), "refused: KO R06");
}

#[tokio::test]
async fn defect_no_retry() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["no-retry"]));
    lab.inject("A", "IDB", 1, Override::Fault { receiver: true });
    let r = run(&gap, &lab.trigger("compute", &p01(), &s1())).await;
    assert_eq!(lab.ops(), ["annuaire:search", "A:IDB"]);
    assert!(result(&r).starts_with("IDB failed"), "{r:#}");
}

#[tokio::test]
async fn defect_too_many_retries() {
    let lab = TestLab::start().await;
    let gap = ReferenceGap::new(config(&["too-many-retries"]));
    lab.inject("A", "IDB", 4, Override::Fault { receiver: true });
    let r = run(&gap, &lab.trigger("admission", &p01(), &s1())).await;
    assert_eq!(
        lab.ops(),
        ["annuaire:search", "A:IDB", "A:IDB", "A:IDB", "A:IDB"]
    );
    assert!(result(&r).ends_with("(4 attempts)"), "{r:#}");
}

// ------------------------------------------------------------------------- V2 GAP

fn v2_gap(categorie: &str, defects: &[&str]) -> ReferenceGap {
    ReferenceGap::new(GapConfig {
        version: GapVersion::v2(categorie),
        ..config(defects)
    })
}

fn p06() -> Patient {
    Patient {
        nir: "1680344555666".into(),
        date_naissance: "19680305".into(),
        numero_adherent: Some("E00000006".into()),
        numero_amc: "23456789".into(),
        csr: "7500".into(),
        ..p01()
    }
}

fn line(code: &str, debut: &str, fin: &str, total: &str, amo: &str) -> Prestation {
    Prestation {
        code: code.into(),
        date_debut: debut.into(),
        date_fin: fin.into(),
        quantite: "1".into(),
        montant_total: total.into(),
        montant_amo: amo.into(),
        praticien_optam: None,
    }
}

fn ssr() -> Stay {
    Stay {
        id: "S9".into(),
        domaine: "SSR".into(),
        ..s1()
    }
}

/// A long stay in two periods (2026-03-02..15, 2026-03-16..31).
fn long_stay() -> Stay {
    let per = |rang: u32, d: &str, f: &str| Periode {
        rang,
        date_debut: d.into(),
        date_fin: f.into(),
        derniere: None,
        prestations: vec![line("TM", d, f, "120.00", "96.00")],
    };
    Stay {
        id: "L1".into(),
        date_sortie: Some("2026-03-31".into()),
        prestations: vec![line("TM", "2026-03-02", "2026-03-31", "240.00", "192.00")],
        periodes: vec![
            per(1, "2026-03-02", "2026-03-15"),
            per(2, "2026-03-16", "2026-03-31"),
        ],
        ..s1()
    }
}

impl TestLab {
    /// A trigger with V2 data (periods, praticien_optam), `inputs` merged and the return drop.
    fn trigger_v2(&self, action: &str, p: &Patient, s: &Stay, inputs: Value, drop: &str) -> Value {
        let mut t = trigger(action, p, s, &self.urls);
        let lines = |ls: &[Prestation]| {
            ls.iter()
                .map(|l| {
                    json!({"code": l.code, "date_debut": l.date_debut, "date_fin": l.date_fin,
                        "quantite": l.quantite, "montant_total": l.montant_total,
                        "montant_amo": l.montant_amo, "praticien_optam": l.praticien_optam})
                })
                .collect::<Vec<_>>()
        };
        t["data"]["stay"]["prestations"] = json!(lines(&s.prestations));
        if !s.periodes.is_empty() {
            t["data"]["stay"]["periodes"] = json!(
                s.periodes
                    .iter()
                    .map(|p| json!({"rang": p.rang, "date_debut": p.date_debut,
                        "date_fin": p.date_fin, "prestations": lines(&p.prestations)}))
                    .collect::<Vec<_>>()
            );
        }
        for (k, v) in inputs.as_object().unwrap() {
            t["inputs"][k] = v.clone();
        }
        t["lab"]["return_drop"] = json!(drop);
        t
    }

    fn request_of(&self, actor: &str, op: &str) -> Vec<Element> {
        self.seen()
            .iter()
            .filter(|s| s.actor == actor && s.op == op)
            .map(|s| request_root(&s.body))
            .collect()
    }
}

fn drop_dir() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_str().unwrap().to_string();
    (d, p)
}

fn norme_of(e: &Element) -> String {
    text_at(e, &["entete", "versionNorme"]).unwrap()
}

#[tokio::test]
async fn v2_gap_chooses_the_version_from_the_annuaire() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &[]);
    // AMC A lists 2.00: 2.00 with categorieEtablissement after finessGeographique.
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    assert_eq!(r["norme"], "2.00");
    let clc = &lab.request_of("A", "CLC")[0];
    assert_eq!(norme_of(clc), "2.00");
    let emetteur = text_root(clc, &["entete", "emetteur"]);
    assert_eq!(
        names(emetteur),
        [
            "finessJuridique",
            "finessGeographique",
            "categorieEtablissement",
            "logiciel",
            "versionLogiciel"
        ]
    );
    assert_eq!(
        text_at(emetteur, &["categorieEtablissement"]).unwrap(),
        "EXDG"
    );
    // AMC B lists 1.04 only: an MCO stay goes in 1.04, without categorieEtablissement.
    lab.clear();
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p08(), &s2(), json!({}), &drop),
    )
    .await;
    assert_eq!(r["norme"], "1.04");
    let clc = &lab.request_of("B", "CLC")[0];
    assert_eq!(norme_of(clc), "1.04");
    assert!(text_at(clc, &["entete", "emetteur", "categorieEtablissement"]).is_none());
    // SSR with AMC A: 2.00, accepted.
    lab.clear();
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &ssr(), json!({}), &drop),
    )
    .await;
    assert_eq!(lab.ops(), ["A:IDB", "A:CLC"], "{r}");
    assert_eq!(norme_of(&lab.request_of("A", "CLC")[0]), "2.00");
    // SSR with AMC B (1.04 only): no SEL call, paper fallback.
    lab.clear();
    let gap = v2_gap("EXDG", &[]);
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p08(), &ssr(), json!({}), &drop),
    )
    .await;
    assert_eq!(result(&r), "paper fallback");
    assert!(
        lab.ops().iter().all(|o| o.starts_with("annuaire")),
        "{:?}",
        lab.ops()
    );
    // The default GAP is still V1: 1.04 to AMC A.
    lab.clear();
    let r = run(
        &ReferenceGap::new(config(&[])),
        &lab.trigger_v2("compute", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    assert_eq!(r["norme"], "1.04");
    assert_eq!(norme_of(&lab.request_of("A", "CLC")[0]), "1.04");
}

#[tokio::test]
async fn exoqn_sends_dh_with_praticien_optam_and_reports_message_patient() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXOQN", &[]);
    let mut s = s1();
    let mut dh = line("DH", "2026-03-02", "2026-03-05", "100.00", "40.00");
    dh.praticien_optam = Some("false".into());
    s.prestations.push(dh);
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p06(), &s, json!({}), &drop),
    )
    .await;
    let clc = &lab.request_of("A", "CLC")[0];
    assert_eq!(
        text_at(clc, &["entete", "emetteur", "categorieEtablissement"]).unwrap(),
        "EXOQN"
    );
    let lines: Vec<&Element> = text_root(clc, &["prestations"]).elements().collect();
    assert_eq!(text_at(lines[1], &["praticienOptam"]).unwrap(), "false");
    assert!(text_at(lines[0], &["praticienOptam"]).is_none());
    // P06: TM 24.00 + DH min(60, 60 × (min(150,100) − 20) %) = 48.00.
    assert_eq!(r["total_amc"], "72.00", "{r}");
    assert_eq!(
        r["message_patient"],
        "Votre contrat couvre la chambre particulière dans la limite de 80 € par jour."
    );
    // An EXOQN establishment with a 1.04-only AMC: paper.
    lab.clear();
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p08(), &s2(), json!({}), &drop),
    )
    .await;
    assert_eq!(result(&r), "paper fallback");
    assert!(lab.request_of("B", "IDB").is_empty());
    // A V1 GAP never reports one.
    let r = run(
        &ReferenceGap::new(config(&[])),
        &lab.trigger_v2("compute", &p06(), &s1(), json!({}), &drop),
    )
    .await;
    assert!(r.get("message_patient").is_none(), "{r}");
}

fn periode_of(clc: &Element) -> (String, String) {
    (
        text_at(clc, &["periodeFacturation", "rang"]).unwrap(),
        text_at(clc, &["periodeFacturation", "derniere"]).unwrap(),
    )
}

#[tokio::test]
async fn periods_are_engaged_once_in_order_the_last_marked() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &[]);
    let l = long_stay();
    // Period 2 before period 1: refused, no call.
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &l, json!({"periode": 2}), &drop),
    )
    .await;
    assert_eq!(result(&r), "refused: period 1 not engaged");
    assert!(lab.request_of("A", "CLC").is_empty());
    let r1 = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &l, json!({"periode": 1}), &drop),
    )
    .await;
    let r2 = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &l, json!({"periode": 2}), &drop),
    )
    .await;
    let clcs = lab.request_of("A", "CLC");
    assert_eq!(clcs.len(), 2);
    assert_eq!(periode_of(&clcs[0]), ("1".into(), "false".into()));
    assert_eq!(periode_of(&clcs[1]), ("2".into(), "true".into()));
    assert_eq!(
        text_at(&clcs[1], &["periodeFacturation", "dateDebut"]).unwrap(),
        "2026-03-16"
    );
    assert_eq!(text_root(&clcs[1], &["prestations"]).elements().count(), 1);
    assert_eq!(r2["periodes"]["1"], json!(result(&r1)));
    assert_eq!(r2["periodes"]["2"], json!(result(&r2)));
    // Everything engaged: no further CLC for the stay.
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &l, json!({}), &drop),
    )
    .await;
    assert_eq!(result(&r), "nothing to engage");
    assert_eq!(lab.request_of("A", "CLC").len(), 2);
    // Without a periode input: every period, in order.
    lab.clear();
    let gap = v2_gap("EXDG", &[]);
    let l2 = Stay {
        id: "L2".into(),
        ..long_stay()
    };
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &l2, json!({}), &drop),
    )
    .await;
    assert_eq!(result(&r).split(' ').count(), 2, "{r}");
    let clcs = lab.request_of("A", "CLC");
    assert_eq!(periode_of(&clcs[0]).0, "1");
    assert_eq!(periode_of(&clcs[1]).0, "2");
}

/// Compute the stay `s` of P01 with `gap`, then invoice it.
async fn compute_and_invoice(
    lab: &TestLab,
    gap: &ReferenceGap,
    s: &Stay,
    inputs: Value,
    drop: &str,
) -> (Value, Value) {
    let c = run(gap, &lab.trigger_v2("compute", &p01(), s, json!({}), drop)).await;
    let i = run(gap, &lab.trigger_v2("invoice", &p01(), s, inputs, drop)).await;
    (c, i)
}

#[tokio::test]
async fn invoice_pays_and_is_never_invoiced_again() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &[]);
    let f = json!({"numero_facture": "F1", "date_facture": "2026-03-06"});
    let (c, i) = compute_and_invoice(&lab, &gap, &s1(), f.clone(), &drop).await;
    assert_eq!(result(&i), "invoiced F1", "{i}");
    let dre = &lab.request_of("A", "DRE")[0];
    assert_eq!(
        names(dre),
        [
            "entete",
            "numeroEngagement",
            "numeroFacture",
            "dateFacture",
            "prestations",
            "totalAmc"
        ]
    );
    assert_eq!(text_at(dre, &["numeroEngagement"]).unwrap(), result(&c));
    assert_eq!(text_at(dre, &["totalAmc"]).unwrap(), "24.00");
    let l = text_root(dre, &["prestations"]).elements().next().unwrap();
    assert_eq!(text_at(l, &["montantAmc"]).unwrap(), "24.00");
    assert_eq!(norme_of(dre), "2.00");
    // Invoiced, not yet paid: no second DRE.
    let f2 = json!({"numero_facture": "F2", "date_facture": "2026-03-06"});
    let i = run(
        &gap,
        &lab.trigger_v2("invoice", &p01(), &s1(), f2.clone(), &drop),
    )
    .await;
    assert_eq!(result(&i), "already invoiced F1");
    // The payment run pays it; read_returns records it.
    lab.amc_a.payment_run(std::path::Path::new(&drop)).unwrap();
    let r = run(
        &gap,
        &lab.trigger_v2("read_returns", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    assert_eq!(
        r["returns"],
        json!([{"numero_facture": "F1", "outcome": "paid", "code": null}])
    );
    lab.clear();
    let i = run(&gap, &lab.trigger_v2("invoice", &p01(), &s1(), f2, &drop)).await;
    assert_eq!(result(&i), "already paid");
    assert!(lab.ops().is_empty());
}

#[tokio::test]
async fn invoice_needs_an_engagement_and_a_date_after_the_end() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &[]);
    let f = |n: &str, d: &str| json!({"numero_facture": n, "date_facture": d});
    // Nothing engaged: no call.
    let i = run(
        &gap,
        &lab.trigger_v2("invoice", &p01(), &s1(), f("F1", "2026-03-06"), &drop),
    )
    .await;
    assert_eq!(result(&i), "no engagement");
    assert!(lab.ops().is_empty());
    // Dated before the stay's end: no call.
    let (_, i) = compute_and_invoice(&lab, &gap, &s1(), f("F1", "2026-03-04"), &drop).await;
    assert_eq!(result(&i), "refused: date before end of care");
    assert!(lab.request_of("A", "DRE").is_empty());
    // Cancelled: no engagement any more.
    run(
        &gap,
        &lab.trigger_v2("cancel", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    let i = run(
        &gap,
        &lab.trigger_v2("invoice", &p01(), &s1(), f("F1", "2026-03-06"), &drop),
    )
    .await;
    assert_eq!(result(&i), "no engagement");
    assert!(lab.request_of("A", "DRE").is_empty());
}

#[tokio::test]
async fn periods_are_invoiced_each_against_its_engagement() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &[]);
    let l = long_stay();
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &l, json!({}), &drop),
    )
    .await;
    let numeros: Vec<&str> = result(&r).split(' ').collect();
    let inv = |rang: u32, n: &str, d: &str| {
        lab.trigger_v2(
            "invoice",
            &p01(),
            &l,
            json!({"periode": rang, "numero_facture": n, "date_facture": d}),
            &drop,
        )
    };
    // Period 1 ends on 2026-03-15.
    let i = run(&gap, &inv(1, "F1", "2026-03-10")).await;
    assert_eq!(result(&i), "refused: date before end of care");
    let i = run(&gap, &inv(1, "F1", "2026-03-16")).await;
    assert_eq!(result(&i), "invoiced F1", "{i}");
    let i = run(&gap, &inv(2, "F2", "2026-04-01")).await;
    assert_eq!(result(&i), "invoiced F2", "{i}");
    let dres = lab.request_of("A", "DRE");
    assert_eq!(
        text_at(&dres[0], &["numeroEngagement"]).unwrap(),
        numeros[0]
    );
    assert_eq!(
        text_at(&dres[1], &["numeroEngagement"]).unwrap(),
        numeros[1]
    );
}

/// The state of `from` (a workstation with a defect) moved into `to` (the same one fixed).
fn take_state(from: &ReferenceGap, to: &ReferenceGap) {
    let st = std::mem::take(&mut *from.state());
    *to.state() = st;
}

#[tokio::test]
async fn after_an_r25_rejection_a_new_invoice_is_made() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    // An invoice dated the day of entry (the defect) is rejected R25 at the payment run.
    let bad = v2_gap("EXDG", &["invoice-before-end"]);
    let f = |n: &str, d: &str| json!({"numero_facture": n, "date_facture": d});
    let (_, i) = compute_and_invoice(&lab, &bad, &s1(), f("F1", "2026-03-06"), &drop).await;
    assert_eq!(result(&i), "invoiced F1");
    lab.amc_a.payment_run(std::path::Path::new(&drop)).unwrap();
    let gap = v2_gap("EXDG", &[]);
    take_state(&bad, &gap);
    let r = run(
        &gap,
        &lab.trigger_v2("read_returns", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    assert_eq!(
        r["returns"],
        json!([{"numero_facture": "F1", "outcome": "rejected", "code": "R25"}])
    );
    // The same number again: refused; a new one: sent, accepted, then paid.
    lab.clear();
    let i = run(
        &gap,
        &lab.trigger_v2("invoice", &p01(), &s1(), f("F1", "2026-03-06"), &drop),
    )
    .await;
    assert!(result(&i).contains("already used"), "{i}");
    assert!(lab.ops().is_empty());
    let i = run(
        &gap,
        &lab.trigger_v2("invoice", &p01(), &s1(), f("F2", "2026-03-06"), &drop),
    )
    .await;
    assert_eq!(result(&i), "invoiced F2", "{i}");
    assert_eq!(
        text_at(&lab.request_of("A", "DRE")[0], &["dateFacture"]).unwrap(),
        "2026-03-06"
    );
    lab.amc_a.payment_run(std::path::Path::new(&drop)).unwrap();
    let r = run(
        &gap,
        &lab.trigger_v2("read_returns", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    let returns = r["returns"].as_array().unwrap();
    assert_eq!(returns.len(), 2);
    assert_eq!(
        returns[1],
        json!({"numero_facture": "F2", "outcome": "paid", "code": null})
    );
}

// ------------------------------------------------------------------------- V2 defects

#[tokio::test]
async fn defect_v2_to_v1_only_amc() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["v2-to-v1-only-amc"]);
    run(
        &gap,
        &lab.trigger_v2("admission", &p08(), &s2(), json!({}), &drop),
    )
    .await;
    assert_eq!(norme_of(&lab.request_of("B", "IDB")[0]), "2.00");
}

#[tokio::test]
async fn defect_no_paper_fallback() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = ReferenceGap::new(config(&["no-paper-fallback"]));
    let r = run(
        &gap,
        &lab.trigger_v2("admission", &p01(), &ssr(), json!({}), &drop),
    )
    .await;
    let idb = &lab.request_of("A", "IDB")[0];
    assert_eq!(norme_of(idb), "1.04");
    assert_eq!(text_at(idb, &["contexte", "domaine"]).unwrap(), "SSR");
    assert_eq!(result(&r), "refused: KO R03");
}

#[tokio::test]
async fn defect_periods_out_of_order() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["periods-out-of-order"]);
    run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &long_stay(), json!({}), &drop),
    )
    .await;
    let clcs = lab.request_of("A", "CLC");
    assert_eq!(periode_of(&clcs[0]).0, "2");
}

#[tokio::test]
async fn defect_last_period_unmarked() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["last-period-unmarked"]);
    run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &long_stay(), json!({}), &drop),
    )
    .await;
    let clcs = lab.request_of("A", "CLC");
    assert_eq!(periode_of(&clcs[1]), ("2".into(), "false".into()));
}

#[tokio::test]
async fn defect_invoice_without_engagement() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["invoice-without-engagement"]);
    let c = run(
        &gap,
        &lab.trigger_v2("compute", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    run(
        &gap,
        &lab.trigger_v2("cancel", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    let f = json!({"numero_facture": "F1", "date_facture": "2026-03-06"});
    let i = run(&gap, &lab.trigger_v2("invoice", &p01(), &s1(), f, &drop)).await;
    let dre = &lab.request_of("A", "DRE")[0];
    assert_eq!(text_at(dre, &["numeroEngagement"]).unwrap(), result(&c));
    assert_eq!(result(&i), "refused: KO R20");
}

#[tokio::test]
async fn defect_invoice_amounts_recomputed() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["invoice-amounts-recomputed"]);
    let f = json!({"numero_facture": "F1", "date_facture": "2026-03-06"});
    let (_, i) = compute_and_invoice(&lab, &gap, &s1(), f, &drop).await;
    let dre = &lab.request_of("A", "DRE")[0];
    let l = text_root(dre, &["prestations"]).elements().next().unwrap();
    assert_eq!(text_at(l, &["montantAmc"]).unwrap(), "23.99");
    assert_eq!(result(&i), "refused: KO R21");
}

#[tokio::test]
async fn defect_invoice_before_end() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["invoice-before-end"]);
    let f = json!({"numero_facture": "F1", "date_facture": "2026-03-06"});
    compute_and_invoice(&lab, &gap, &s1(), f, &drop).await;
    let dre = &lab.request_of("A", "DRE")[0];
    assert_eq!(text_at(dre, &["dateFacture"]).unwrap(), "2026-03-02");
}

#[tokio::test]
async fn defect_reinvoice_paid() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["reinvoice-paid"]);
    let f = |n: &str| json!({"numero_facture": n, "date_facture": "2026-03-06"});
    compute_and_invoice(&lab, &gap, &s1(), f("F1"), &drop).await;
    lab.amc_a.payment_run(std::path::Path::new(&drop)).unwrap();
    run(
        &gap,
        &lab.trigger_v2("read_returns", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    let i = run(
        &gap,
        &lab.trigger_v2("invoice", &p01(), &s1(), f("F2"), &drop),
    )
    .await;
    assert_eq!(lab.request_of("A", "DRE").len(), 2);
    assert_eq!(result(&i), "refused: KO R26");
}

#[tokio::test]
async fn defect_message_patient_dropped() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["message-patient-dropped"]);
    let r = run(
        &gap,
        &lab.trigger_v2("compute", &p06(), &s1(), json!({}), &drop),
    )
    .await;
    assert_eq!(r["norme"], "2.00");
    assert!(r.get("message_patient").is_none(), "{r}");
}

#[tokio::test]
async fn defect_rsp_ignored() {
    let lab = TestLab::start().await;
    let (_d, drop) = drop_dir();
    let gap = v2_gap("EXDG", &["rsp-ignored"]);
    let f = |n: &str| json!({"numero_facture": n, "date_facture": "2026-03-06"});
    compute_and_invoice(&lab, &gap, &s1(), f("F1"), &drop).await;
    lab.amc_a.payment_run(std::path::Path::new(&drop)).unwrap();
    let r = run(
        &gap,
        &lab.trigger_v2("read_returns", &p01(), &s1(), json!({}), &drop),
    )
    .await;
    assert_eq!(r["returns"], json!([]));
    // The paid invoice is unknown to the GAP: it still waits for its return.
    let i = run(
        &gap,
        &lab.trigger_v2("invoice", &p01(), &s1(), f("F2"), &drop),
    )
    .await;
    assert_eq!(result(&i), "already invoiced F1");
}
