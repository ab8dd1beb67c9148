//! Handler tests: requests are built as `net::server::Request` values and answered without
//! network; one test goes through TLS with [`start`].

use super::*;
use crate::net::server::Peer;

const ENV: &str = soap::SOAP12_ENV;
const FINESS: &str = "750712184";

fn population() -> Population {
    Population::from_yaml(include_str!(
        "../../../scenarios/roc-v1-amc/data/population.yaml"
    ))
    .unwrap()
}

fn set(defects: &[&str]) -> BTreeSet<String> {
    defects.iter().map(|s| s.to_string()).collect()
}

fn amc_on(endpoint: &str, defects: &[&str]) -> Arc<Amc> {
    Amc::new(AmcConfig::new(population(), endpoint, set(defects)))
}

fn amc(defects: &[&str]) -> Arc<Amc> {
    amc_on("A", defects)
}

/// One prestation line of a test request.
#[derive(Clone)]
struct Line {
    code: &'static str,
    quantite: &'static str,
    total: &'static str,
    amo: &'static str,
    optam: Option<&'static str>,
}

fn line(
    code: &'static str,
    quantite: &'static str,
    total: &'static str,
    amo: &'static str,
) -> Line {
    Line {
        code,
        quantite,
        total,
        amo,
        optam: None,
    }
}

/// A test request: every field as written on the wire; `omit` lists local names left out.
#[derive(Clone)]
struct Req {
    id_flux: String,
    emission: String,
    version: String,
    finess: String,
    categorie: Option<String>,
    numero_amc: String,
    nir: String,
    cle: String,
    naissance: String,
    rang: String,
    adherent: Option<String>,
    type_convention: String,
    csr: String,
    type_pec: String,
    domaine: String,
    entree: String,
    sortie: Option<String>,
    id_dossier: String,
    periode: Option<String>,
    lines: Vec<Line>,
    numero_engagement: String,
    /// DRE, ANF.
    numero_facture: String,
    /// DRE.
    date_facture: String,
    /// DRE: `montantAmc` of each line (a line without one has none).
    montants_amc: Vec<String>,
    /// DRE.
    total_amc: String,
    omit: Vec<&'static str>,
}

/// P01, MCO stay from 2026-03-02 to 2026-03-05, 1.04, one TM line.
fn p01() -> Req {
    Req {
        id_flux: "3f0c1d2e-0000-4000-8000-000000000001".into(),
        emission: "2026-03-02T10:15:00+01:00".into(),
        version: "1.04".into(),
        finess: FINESS.into(),
        categorie: None,
        numero_amc: "12345678".into(),
        nir: "1850775123456".into(),
        cle: "08".into(),
        naissance: "19850712".into(),
        rang: "1".into(),
        adherent: Some("A00012345".into()),
        type_convention: "RO".into(),
        csr: "94".into(),
        type_pec: "SEJOUR".into(),
        domaine: "MCO".into(),
        entree: "2026-03-02".into(),
        sortie: Some("2026-03-05".into()),
        id_dossier: "D2026-0001".into(),
        periode: None,
        lines: vec![line("TM", "1", "120.00", "96.00")],
        numero_engagement: "ENG-000000000000".into(),
        numero_facture: "F2026-0001".into(),
        date_facture: "2026-03-06".into(),
        montants_amc: vec!["24.00".into()],
        total_amc: "24.00".into(),
        omit: vec![],
    }
}

fn person(amc: &str, nir: &str, cle: &str, naissance: &str, rang: &str) -> Req {
    Req {
        numero_amc: amc.into(),
        nir: nir.into(),
        cle: cle.into(),
        naissance: naissance.into(),
        rang: rang.into(),
        adherent: None,
        ..p01()
    }
}

fn unknown() -> Req {
    person("12345678", "1460831222333", "82", "19460812", "1")
}
fn p02() -> Req {
    person("12345678", "2900133012345", "21", "19900115", "1")
}
fn twin2() -> Req {
    person("12345678", "2920892123004", "12", "19920805", "2")
}
fn p04() -> Req {
    person("12345678", "1551013456789", "55", "19551020", "1")
}
fn p05() -> Req {
    person("12345678", "2011275000111", "41", "20011203", "1")
}
fn p06() -> Req {
    person("23456789", "1680344555666", "84", "19680305", "1")
}
fn p08() -> Req {
    person("87654321", "1990259000123", "11", "19990210", "1")
}

impl Req {
    fn el(&self, name: &str, value: &str) -> String {
        if self.omit.contains(&name) {
            String::new()
        } else {
            format!("<roc:{name}>{value}</roc:{name}>")
        }
    }
    fn opt(&self, name: &str, value: &Option<String>) -> String {
        value
            .as_deref()
            .map(|v| self.el(name, v))
            .unwrap_or_default()
    }
    fn entete(&self) -> String {
        let emetteur = format!(
            "{}{}{}{}{}",
            self.el("finessJuridique", &self.finess),
            self.el("finessGeographique", "750100042"),
            self.opt("categorieEtablissement", &self.categorie),
            self.el("logiciel", "GAP-X"),
            self.el("versionLogiciel", "4.2"),
        );
        let inner = format!(
            "{}{}{}{}{}",
            self.el("idFlux", &self.id_flux),
            self.el("dateHeureEmission", &self.emission),
            self.el("versionNorme", &self.version),
            self.el("emetteur", &emetteur),
            self.el("numeroAmc", &self.numero_amc),
        );
        self.el("entete", &inner)
    }
    fn stay(&self) -> String {
        let b = format!(
            "{}{}{}{}{}",
            self.el("nir", &self.nir),
            self.el("cleNir", &self.cle),
            self.el("dateNaissance", &self.naissance),
            self.el("rangGemellaire", &self.rang),
            self.opt("numeroAdherent", &self.adherent),
        );
        let c = format!(
            "{}{}",
            self.el("typeConvention", &self.type_convention),
            self.el("critereSecondaire", &self.csr)
        );
        let x = format!(
            "{}{}{}{}",
            self.el("typePriseEnCharge", &self.type_pec),
            self.el("domaine", &self.domaine),
            self.el("dateEntree", &self.entree),
            self.opt("dateSortie", &self.sortie),
        );
        format!(
            "{}{}{}",
            self.el("beneficiaire", &b),
            self.el("contrat", &c),
            self.el("contexte", &x)
        )
    }
    fn prestations(&self, with_amc: bool) -> String {
        let mut s = String::new();
        for (i, l) in self.lines.iter().enumerate() {
            let amc = match self.montants_amc.get(i) {
                Some(m) if with_amc => self.el("montantAmc", m),
                _ => String::new(),
            };
            let inner = format!(
                "{}{}{}{}{}{}{}{amc}",
                self.el("code", l.code),
                self.el("dateDebut", "2026-03-02"),
                self.el("dateFin", "2026-03-05"),
                self.el("quantite", l.quantite),
                self.el("montantTotal", l.total),
                self.el("montantAmo", l.amo),
                l.optam
                    .map(|o| self.el("praticienOptam", o))
                    .unwrap_or_default(),
            );
            s.push_str(&self.el("prestation", &inner));
        }
        self.el("prestations", &s)
    }
    fn inner(&self, op: Op) -> String {
        match op {
            Op::Idb => format!("{}{}", self.entete(), self.stay()),
            Op::Sim => format!(
                "{}{}{}",
                self.entete(),
                self.stay(),
                self.prestations(false)
            ),
            Op::Clc => format!(
                "{}{}{}{}{}",
                self.entete(),
                self.stay(),
                self.el("idDossier", &self.id_dossier),
                self.periode.clone().unwrap_or_default(),
                self.prestations(false)
            ),
            Op::Del => format!(
                "{}{}{}",
                self.entete(),
                self.el("numeroEngagement", &self.numero_engagement),
                self.el("motifAnnulation", "séjour annulé")
            ),
            Op::Dre => format!(
                "{}{}{}{}{}{}",
                self.entete(),
                self.el("numeroEngagement", &self.numero_engagement),
                self.el("numeroFacture", &self.numero_facture),
                self.el("dateFacture", &self.date_facture),
                self.prestations(true),
                self.el("totalAmc", &self.total_amc),
            ),
            Op::Anf => format!(
                "{}{}{}",
                self.entete(),
                self.el("numeroFacture", &self.numero_facture),
                self.el("motif", "facture erronée")
            ),
        }
    }
    fn xml(&self, op: Op) -> String {
        let root = op.request_root();
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{ENV}\" xmlns:roc=\"{SEL_NS}\"><soap:Header/><soap:Body><roc:{root}>{}</roc:{root}></soap:Body></soap:Envelope>",
            self.inner(op)
        )
    }
}

fn request(path: &str, body: &[u8], cn: Option<&str>) -> Request {
    Request {
        method: "POST".into(),
        path: path.into(),
        headers: vec![(
            "content-type".into(),
            "application/soap+xml; charset=utf-8".into(),
        )],
        body: body.to_vec(),
        peer: Peer {
            addr: None,
            common_name: cn.map(Into::into),
            subject: cn.map(|c| format!("CN={c}")),
            tls_version: Some("TLSv1.3".into()),
        },
    }
}

/// A parsed answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    root: Element,
    text: String,
}

impl Answer {
    fn of(r: Response) -> Answer {
        let text = String::from_utf8(r.body).unwrap();
        let root = xml::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let content_type = r
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Answer {
            status: r.status,
            content_type,
            root,
            text,
        }
    }
    /// The single element of the Body.
    fn body(&self) -> &Element {
        let body = self.root.elements().find(|e| e.local == "Body").unwrap();
        let mut it = body.elements();
        let first = it.next().expect("Body has an element");
        assert!(it.next().is_none());
        first
    }
    /// Text at a path of local names below the body element (SEL namespace checked).
    fn get(&self, path: &str) -> Option<String> {
        let mut e = self.body();
        for part in path.split('/') {
            e = e.child(SEL_NS, part)?;
        }
        Some(e.text())
    }
    fn names(e: &Element) -> Vec<String> {
        e.elements().map(|c| c.local.clone()).collect()
    }
    fn statut(&self) -> String {
        self.get("statut")
            .unwrap_or_else(|| panic!("no statut:\n{}", self.text))
    }
    fn code(&self) -> Option<String> {
        self.get("motif/code")
    }
    fn fault(&self) -> soap::Fault {
        soap::find_fault(&self.root).unwrap_or_else(|| panic!("no fault:\n{}", self.text))
    }
    fn subcode(&self) -> String {
        let f = self.fault();
        let (ns, local) = f.subcode.expect("subcode");
        assert_eq!(ns, SEL_NS);
        local
    }
    fn amounts(&self) -> Vec<String> {
        self.body()
            .child(SEL_NS, "lignes")
            .map(|ls| {
                ls.elements()
                    .map(|l| l.child(SEL_NS, "montantAmc").unwrap().text())
                    .collect()
            })
            .unwrap_or_default()
    }
}

async fn send_as(amc: &Arc<Amc>, op: Op, body: &str, cn: Option<&str>) -> Answer {
    Answer::of(
        amc.handle(request(&format!("/{}", op.name()), body.as_bytes(), cn))
            .await,
    )
}

async fn send(amc: &Arc<Amc>, op: Op, r: &Req) -> Answer {
    send_as(amc, op, &r.xml(op), Some(FINESS)).await
}

async fn ko(amc: &Arc<Amc>, op: Op, r: &Req) -> String {
    let a = send(amc, op, r).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.statut(), "KO", "{}", a.text);
    a.code().unwrap()
}

async fn ok(amc: &Arc<Amc>, op: Op, r: &Req) -> Answer {
    let a = send(amc, op, r).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.statut(), "OK", "{}", a.text);
    a
}

async fn fault_of(amc: &Arc<Amc>, op: Op, body: &str) -> Answer {
    let a = send_as(amc, op, body, Some(FINESS)).await;
    assert!(a.status >= 400, "{}", a.text);
    a
}

// ---------------------------------------------------------------- routing

#[tokio::test]
async fn routing() {
    let a = amc(&[]);
    let body = p01().xml(Op::Idb);
    let r = a
        .handle(request("/FOO", body.as_bytes(), Some(FINESS)))
        .await;
    assert_eq!(r.status, 404);
    let r = a.handle(request("/", body.as_bytes(), Some(FINESS))).await;
    assert_eq!(r.status, 404);
    let mut get = request("/IDB", b"", Some(FINESS));
    get.method = "GET".into();
    let r = a.handle(get).await;
    assert_eq!(r.status, 405);
    assert!(r.headers.iter().any(|(k, v)| k == "Allow" && v == "POST"));
    for path in ["/IDB", "/roc/amc-a/IDB", "/roc/IDB?x=1", "/IDB/"] {
        let r = Answer::of(a.handle(request(path, body.as_bytes(), Some(FINESS))).await);
        assert_eq!(r.statut(), "OK", "{path}");
    }
    // The operation is the path's: an IDB request sent to /SIM is schema-invalid.
    let r = Answer::of(
        a.handle(request("/SIM", body.as_bytes(), Some(FINESS)))
            .await,
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.subcode(), "SchemaInvalide");
}

// ---------------------------------------------------------------- answer shapes

#[tokio::test]
async fn idb_ok_shape() {
    let a = ok(&amc(&[]), Op::Idb, &p01()).await;
    assert_eq!(a.content_type, "application/soap+xml; charset=utf-8");
    assert_eq!(a.root.ns.as_deref(), Some(ENV));
    let body = a.body();
    assert_eq!(body.local, "idbReponse");
    assert_eq!(body.ns.as_deref(), Some(SEL_NS));
    assert_eq!(body.prefix.as_deref(), Some("roc"));
    assert_eq!(
        Answer::names(body),
        ["enteteReponse", "statut", "droits", "servicesDisponibles"]
    );
    let head = body.child(SEL_NS, "enteteReponse").unwrap();
    assert_eq!(
        Answer::names(head),
        [
            "idFlux",
            "idFluxRequete",
            "dateHeureReponse",
            "versionNorme"
        ]
    );
    let id = a.get("enteteReponse/idFlux").unwrap();
    assert!(uuid::Uuid::parse_str(&id).is_ok());
    assert_ne!(id, p01().id_flux);
    assert_eq!(a.get("enteteReponse/idFluxRequete").unwrap(), p01().id_flux);
    assert!(dates::is_datetime_with_offset(
        &a.get("enteteReponse/dateHeureReponse").unwrap()
    ));
    assert_eq!(a.get("enteteReponse/versionNorme").unwrap(), "1.04");
    assert_eq!(a.get("droits/dateDebut").unwrap(), "2026-01-01");
    assert_eq!(a.get("droits/dateFin").unwrap(), "2026-12-31");
    let services: Vec<String> = body
        .child(SEL_NS, "servicesDisponibles")
        .unwrap()
        .elements()
        .map(|e| e.text())
        .collect();
    assert_eq!(services, ["SIM", "CLC", "DEL"]);
    // ACE: no SIM.
    let ace = Req {
        type_pec: "ACE".into(),
        ..p01()
    };
    let a = ok(&amc(&[]), Op::Idb, &ace).await;
    let services: Vec<String> = a
        .body()
        .child(SEL_NS, "servicesDisponibles")
        .unwrap()
        .elements()
        .map(|e| e.text())
        .collect();
    assert_eq!(services, ["CLC", "DEL"]);
    // dateSortie is optional for IDB.
    let no_exit = Req {
        sortie: None,
        ..p01()
    };
    ok(&amc(&[]), Op::Idb, &no_exit).await;
}

#[tokio::test]
async fn ko_shape() {
    let a = send(&amc(&[]), Op::Idb, &unknown()).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        Answer::names(a.body()),
        ["enteteReponse", "statut", "motif"]
    );
    assert_eq!(a.statut(), "KO");
    assert_eq!(a.code().unwrap(), "R01");
    assert_eq!(a.get("motif/libelle").unwrap(), "bénéficiaire inconnu");
    assert_eq!(
        Answer::names(a.body().child(SEL_NS, "motif").unwrap()),
        ["code", "libelle"]
    );
    assert_eq!(a.get("enteteReponse/idFluxRequete").unwrap(), p01().id_flux);
}

#[tokio::test]
async fn sim_ok_shape() {
    let r = Req {
        lines: vec![
            line("TM", "1", "120.00", "96.00"),
            line("FJ", "3", "60.00", "0.00"),
            line("CP", "3", "200.00", "0.00"),
            line("PF", "1", "24.00", "0.00"),
        ],
        ..p01()
    };
    let a = ok(&amc(&[]), Op::Sim, &r).await;
    assert_eq!(a.body().local, "simReponse");
    assert_eq!(
        Answer::names(a.body()),
        [
            "enteteReponse",
            "statut",
            "lignes",
            "totalAmc",
            "totalResteACharge"
        ]
    );
    let lignes = a.body().child(SEL_NS, "lignes").unwrap();
    let first = lignes.elements().next().unwrap();
    assert_eq!(first.local, "ligne");
    assert_eq!(Answer::names(first), ["code", "montantAmc", "resteACharge"]);
    let codes: Vec<String> = lignes
        .elements()
        .map(|l| l.child(SEL_NS, "code").unwrap().text())
        .collect();
    assert_eq!(codes, ["TM", "FJ", "CP", "PF"]);
    assert_eq!(a.amounts(), ["24.00", "60.00", "180.00", "24.00"]);
    assert_eq!(a.get("totalAmc").unwrap(), "288.00");
    assert_eq!(a.get("totalResteACharge").unwrap(), "20.00");
}

#[tokio::test]
async fn clc_del_cycle() {
    let amc = amc(&[]);
    let a = ok(&amc, Op::Clc, &p01()).await;
    assert_eq!(a.body().local, "clcReponse");
    assert_eq!(
        Answer::names(a.body()),
        [
            "enteteReponse",
            "statut",
            "numeroEngagement",
            "lignes",
            "totalAmc",
            "totalResteACharge"
        ]
    );
    let n = a.get("numeroEngagement").unwrap();
    assert!(n.starts_with("ENG-") && n.len() == 16, "{n}");
    assert!(
        n[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    );
    assert_eq!(a.get("totalAmc").unwrap(), "24.00");
    let b = ok(&amc, Op::Clc, &p01()).await;
    assert_ne!(b.get("numeroEngagement").unwrap(), n);
    assert_eq!(amc.registry().len(), 2);
    {
        let reg = amc.registry();
        let e = reg.get(&n).unwrap();
        assert_eq!(e.beneficiaire_id, "P01");
        assert_eq!(e.id_dossier, "D2026-0001");
        assert_eq!(e.state, EngagementState::Active);
    }

    let del = Req {
        numero_engagement: n.clone(),
        ..p01()
    };
    let d = ok(&amc, Op::Del, &del).await;
    assert_eq!(d.body().local, "delReponse");
    assert_eq!(
        Answer::names(d.body()),
        ["enteteReponse", "statut", "dateAnnulation"]
    );
    assert!(dates::parse_iso(&d.get("dateAnnulation").unwrap()).is_some());
    assert_eq!(ko(&amc, Op::Del, &del).await, "R11");
    let unknown = Req {
        numero_engagement: "ENG-FFFFFFFFFFFF".into(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Del, &unknown).await, "R10");
    // Another AMC number of the endpoint does not see it; one not served gets R06.
    let other = Req {
        numero_amc: "23456789".into(),
        numero_engagement: b.get("numeroEngagement").unwrap(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Del, &other).await, "R10");
    let not_served = Req {
        numero_amc: "87654321".into(),
        ..other
    };
    assert_eq!(ko(&amc, Op::Del, &not_served).await, "R06");
    // An invoiced engagement cannot be cancelled.
    let third = ok(&amc, Op::Clc, &p01())
        .await
        .get("numeroEngagement")
        .unwrap();
    amc.registry().mark_invoiced(&third, "F1").unwrap();
    let del3 = Req {
        numero_engagement: third,
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Del, &del3).await, "R12");
}

#[tokio::test]
async fn clc_message_patient_only_in_2_00() {
    let amc = amc(&[]);
    let v1 = ok(&amc, Op::Clc, &p06()).await;
    assert!(v1.get("messagePatient").is_none());
    let v2 = Req {
        version: "2.00".into(),
        ..p06()
    };
    let a = ok(&amc, Op::Clc, &v2).await;
    assert_eq!(a.get("enteteReponse/versionNorme").unwrap(), "2.00");
    assert_eq!(
        Answer::names(a.body()).last().map(String::as_str),
        Some("messagePatient")
    );
    assert!(a.get("messagePatient").unwrap().contains("80 €"));
    // No message for P01.
    let p01v2 = Req {
        version: "2.00".into(),
        ..p01()
    };
    assert!(
        ok(&amc, Op::Clc, &p01v2)
            .await
            .get("messagePatient")
            .is_none()
    );
    // SIM never carries it.
    assert!(ok(&amc, Op::Sim, &v2).await.get("messagePatient").is_none());
}

#[tokio::test]
async fn v2_dh_and_period() {
    let amc = amc(&[]);
    let mut dh = line("DH", "1", "200.00", "50.00");
    dh.optam = Some("false");
    let oqn = Req {
        version: "2.00".into(),
        categorie: Some("EXOQN".into()),
        lines: vec![dh.clone(), line("DH", "1", "200.00", "50.00")],
        ..p06()
    };
    let a = ok(&amc, Op::Sim, &oqn).await;
    assert_eq!(a.amounts(), ["120.00", "150.00"]);
    let dg = Req {
        categorie: Some("EXDG".into()),
        ..oqn.clone()
    };
    assert_eq!(ko(&amc, Op::Sim, &dg).await, "R07");
    // A period in 2.00: dateSortie may be absent.
    let period = "<roc:periodeFacturation><roc:rang>1</roc:rang><roc:dateDebut>2026-03-02</roc:dateDebut><roc:dateFin>2026-03-31</roc:dateFin><roc:derniere>false</roc:derniere></roc:periodeFacturation>";
    let per = Req {
        version: "2.00".into(),
        sortie: None,
        periode: Some(period.into()),
        ..p01()
    };
    let n = ok(&amc, Op::Clc, &per)
        .await
        .get("numeroEngagement")
        .unwrap();
    assert_eq!(
        amc.registry().get(&n).unwrap().end_of_care(),
        Some(time::macros::date!(2026 - 03 - 31))
    );
    // In 1.04: schema-invalid.
    let v1 = Req {
        version: "1.04".into(),
        sortie: Some("2026-03-05".into()),
        ..per.clone()
    };
    let f = fault_of(&amc, Op::Clc, &v1.xml(Op::Clc)).await;
    assert_eq!(f.status, 400);
    assert_eq!(f.subcode(), "SchemaInvalide");
    assert!(f.fault().reason.contains("periodeFacturation"));
    // Without a period, SIM and CLC need dateSortie.
    let no_exit = Req {
        sortie: None,
        ..p01()
    };
    let f = fault_of(&amc, Op::Clc, &no_exit.xml(Op::Clc)).await;
    assert!(f.fault().reason.contains("dateSortie"));
}

// ---------------------------------------------------------------- KO codes

#[tokio::test]
async fn every_ko_code() {
    let amc = amc(&[]);
    assert_eq!(ko(&amc, Op::Idb, &p08()).await, "R06");
    let bad_key = Req {
        cle: "09".into(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Idb, &bad_key).await, "R05");
    let bad_date = Req {
        entree: "2026-02-30".into(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Idb, &bad_date).await, "R05");
    assert_eq!(ko(&amc, Op::Idb, &unknown()).await, "R01");
    let bad_adh = Req {
        adherent: Some("Z9".into()),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Idb, &bad_adh).await, "R04");
    assert_eq!(ko(&amc, Op::Idb, &p02()).await, "R02");
    let ssr_v1 = Req {
        domaine: "SSR".into(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Idb, &ssr_v1).await, "R03");
    let cat_v1 = Req {
        categorie: Some("EXDG".into()),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Idb, &cat_v1).await, "R03");
    let ace = Req {
        type_pec: "ACE".into(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Sim, &ace).await, "R09");
    ok(&amc, Op::Clc, &ace).await;
    let dh_v1 = Req {
        lines: vec![line("DH", "1", "100.00", "0.00")],
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Sim, &dh_v1).await, "R07");
    for (t, amo) in [("12.5", "0.00"), ("10.00", "10.01"), ("10", "0.00")] {
        let r = Req {
            lines: vec![line("TM", "1", t, amo)],
            ..p01()
        };
        assert_eq!(ko(&amc, Op::Sim, &r).await, "R05", "{t} {amo}");
        assert_eq!(ko(&amc, Op::Clc, &r).await, "R05", "{t} {amo}");
    }
    // KO CLCs engage nothing.
    assert!(amc.registry().iter().count() == 1);
    let a = send(&amc, Op::Idb, &p02()).await;
    assert_eq!(
        a.get("motif/libelle").unwrap(),
        "droits non ouverts à la date de référence"
    );
}

#[tokio::test]
async fn twins_and_rounding() {
    let amc = amc(&[]);
    let t2 = Req {
        lines: vec![line("TM", "1", "100.00", "50.00")],
        ..twin2()
    };
    assert_eq!(ok(&amc, Op::Sim, &t2).await.amounts(), ["40.00"]);
    let half = Req {
        lines: vec![line("TM", "1", "124.69", "100.00")],
        ..p04()
    };
    let a = ok(&amc, Op::Sim, &half).await;
    assert_eq!(a.amounts(), ["12.35"]);
    assert_eq!(a.get("totalResteACharge").unwrap(), "12.34");
    let cp = Req {
        lines: vec![line("CP", "3", "150.00", "0.00")],
        ..p05()
    };
    assert_eq!(ok(&amc, Op::Sim, &cp).await.amounts(), ["136.50"]);
}

// ---------------------------------------------------------------- faults

fn assert_fault(a: &Answer, status: u16, code: &str, subcode: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.content_type, "application/soap+xml; charset=utf-8");
    assert_eq!(a.root.ns.as_deref(), Some(ENV));
    let f = a.fault();
    assert_eq!(
        f.code,
        Some((ENV.to_string(), code.to_string())),
        "{}",
        a.text
    );
    assert_eq!(a.subcode(), subcode, "{}", a.text);
    let text = a.body().elements().find(|e| e.local == "Reason").unwrap();
    let t = text.elements().next().unwrap();
    assert!(
        t.attrs
            .iter()
            .any(|at| at.local == "lang" && at.value == "fr")
    );
}

#[tokio::test]
async fn envelope_faults() {
    let amc = amc(&[]);
    let body = p01().xml(Op::Idb);
    for bad in [
        "<not xml".to_string(),
        body.replace(ENV, soap::SOAP11_ENV),
        body.replace(
            "<roc:idbRequete>",
            "<roc:idbRequete xmlns:roc=\"urn:other\">",
        ),
        body.replace("<soap:Body>", "<soap:Body><roc:autre/>"),
        body.replace("soap:Body", "soap:Corps"),
        format!("<roc:idbRequete xmlns:roc=\"{SEL_NS}\"/>"),
    ] {
        let a = fault_of(&amc, Op::Idb, &bad).await;
        assert_fault(&a, 400, "Sender", "SchemaInvalide");
    }
    let r = Answer::of(
        amc.handle(request("/IDB", &[0xff, 0xfe, 0x00], Some(FINESS)))
            .await,
    );
    assert_fault(&r, 400, "Sender", "SchemaInvalide");
}

#[tokio::test]
async fn missing_elements_are_schema_faults() {
    let amc = amc(&[]);
    let idb_mandatory = [
        "entete",
        "idFlux",
        "dateHeureEmission",
        "versionNorme",
        "emetteur",
        "finessJuridique",
        "finessGeographique",
        "numeroAmc",
        "beneficiaire",
        "nir",
        "cleNir",
        "dateNaissance",
        "rangGemellaire",
        "contrat",
        "typeConvention",
        "critereSecondaire",
        "contexte",
        "typePriseEnCharge",
        "domaine",
        "dateEntree",
    ];
    for name in idb_mandatory {
        let r = Req {
            omit: vec![name],
            ..p01()
        };
        let a = fault_of(&amc, Op::Idb, &r.xml(Op::Idb)).await;
        assert_fault(&a, 400, "Sender", "SchemaInvalide");
        let reason = a.fault().reason;
        assert!(reason.contains(&format!("/{name}")), "{name}: {reason}");
    }
    for name in [
        "dateSortie",
        "prestations",
        "prestation",
        "code",
        "quantite",
        "montantTotal",
        "montantAmo",
        "dateDebut",
        "dateFin",
    ] {
        let r = Req {
            omit: vec![name],
            ..p01()
        };
        let a = fault_of(&amc, Op::Sim, &r.xml(Op::Sim)).await;
        assert_fault(&a, 400, "Sender", "SchemaInvalide");
        assert!(a.fault().reason.contains(name), "{name}");
    }
    for name in ["idDossier"] {
        let r = Req {
            omit: vec![name],
            ..p01()
        };
        let a = fault_of(&amc, Op::Clc, &r.xml(Op::Clc)).await;
        assert!(a.fault().reason.contains(name));
    }
    for name in ["numeroEngagement", "motifAnnulation"] {
        let r = Req {
            omit: vec![name],
            ..p01()
        };
        let a = fault_of(&amc, Op::Del, &r.xml(Op::Del)).await;
        assert_fault(&a, 400, "Sender", "SchemaInvalide");
        assert!(a.fault().reason.contains(name));
    }
    // Optional ones.
    let r = Req {
        omit: vec!["numeroAdherent", "logiciel", "versionLogiciel"],
        ..p01()
    };
    ok(&amc, Op::Idb, &r).await;
}

#[tokio::test]
async fn invalid_values_are_schema_faults() {
    let amc = amc(&[]);
    let base = p01();
    let cases: Vec<(&str, Req)> = vec![
        (
            "nir",
            Req {
                nir: "185077512345".into(),
                ..base.clone()
            },
        ),
        (
            "nir",
            Req {
                nir: "3850775123456".into(),
                ..base.clone()
            },
        ),
        (
            "cleNir",
            Req {
                cle: "8".into(),
                ..base.clone()
            },
        ),
        (
            "dateNaissance",
            Req {
                naissance: "1985-07-12".into(),
                ..base.clone()
            },
        ),
        (
            "rangGemellaire",
            Req {
                rang: "0".into(),
                ..base.clone()
            },
        ),
        (
            "rangGemellaire",
            Req {
                rang: "10".into(),
                ..base.clone()
            },
        ),
        (
            "numeroAdherent",
            Req {
                adherent: Some("A-1".into()),
                ..base.clone()
            },
        ),
        (
            "numeroAmc",
            Req {
                numero_amc: "1234567".into(),
                ..base.clone()
            },
        ),
        (
            "finessJuridique",
            Req {
                finess: "75071218".into(),
                ..base.clone()
            },
        ),
        (
            "typeConvention",
            Req {
                type_convention: "ro".into(),
                ..base.clone()
            },
        ),
        (
            "critereSecondaire",
            Req {
                csr: "12345678901".into(),
                ..base.clone()
            },
        ),
        (
            "dateEntree",
            Req {
                entree: "02/03/2026".into(),
                ..base.clone()
            },
        ),
        (
            "dateSortie",
            Req {
                sortie: Some("2026-3-5".into()),
                ..base.clone()
            },
        ),
        (
            "typePriseEnCharge",
            Req {
                type_pec: "HOSPI".into(),
                ..base.clone()
            },
        ),
        (
            "domaine",
            Req {
                domaine: "XYZ".into(),
                ..base.clone()
            },
        ),
        (
            "idFlux",
            Req {
                id_flux: "".into(),
                ..base.clone()
            },
        ),
        (
            "dateHeureEmission",
            Req {
                emission: "2026-03-02T10:15:00".into(),
                ..base.clone()
            },
        ),
        (
            "categorieEtablissement",
            Req {
                categorie: Some("PRIVE".into()),
                ..base.clone()
            },
        ),
    ];
    for (name, r) in cases {
        let a = fault_of(&amc, Op::Sim, &r.xml(Op::Sim)).await;
        assert_fault(&a, 400, "Sender", "SchemaInvalide");
        assert!(
            a.fault().reason.contains(name),
            "{name}: {}",
            a.fault().reason
        );
    }
    let lines: Vec<(&str, Line)> = vec![
        ("code", line("XX", "1", "1.00", "0.00")),
        ("quantite", line("TM", "0", "1.00", "0.00")),
        ("quantite", line("TM", "1.5", "1.00", "0.00")),
        ("montantTotal", line("TM", "1", "1,00", "0.00")),
        ("montantAmo", line("TM", "1", "1.00", "abc")),
    ];
    for (name, l) in lines {
        let r = Req {
            lines: vec![l],
            ..p01()
        };
        let a = fault_of(&amc, Op::Sim, &r.xml(Op::Sim)).await;
        assert!(a.fault().reason.contains(name), "{name}");
    }
    let r = Req {
        id_dossier: "123456789012345678901".into(),
        ..p01()
    };
    assert!(
        fault_of(&amc, Op::Clc, &r.xml(Op::Clc))
            .await
            .fault()
            .reason
            .contains("idDossier")
    );
    let r = Req {
        numero_engagement: "eng-1".into(),
        ..p01()
    };
    assert!(
        fault_of(&amc, Op::Del, &r.xml(Op::Del))
            .await
            .fault()
            .reason
            .contains("numeroEngagement")
    );
}

#[tokio::test]
async fn version_faults() {
    let a_ep = amc(&[]);
    let v3 = Req {
        version: "3.00".into(),
        ..p01()
    };
    let a = fault_of(&a_ep, Op::Idb, &v3.xml(Op::Idb)).await;
    assert_fault(&a, 400, "Sender", "VersionNonSupportee");
    // 2.00 accepted on A, not by the AMC of endpoint B.
    let v2 = Req {
        version: "2.00".into(),
        ..p01()
    };
    ok(&a_ep, Op::Idb, &v2).await;
    let b_ep = amc_on("B", &[]);
    ok(&b_ep, Op::Idb, &p08()).await;
    let p08v2 = Req {
        version: "2.00".into(),
        ..p08()
    };
    let a = fault_of(&b_ep, Op::Idb, &p08v2.xml(Op::Idb)).await;
    assert_fault(&a, 400, "Sender", "VersionNonSupportee");
    // Schema faults come before the version.
    let both = Req {
        version: "3.00".into(),
        nir: "x".into(),
        ..p01()
    };
    let a = fault_of(&a_ep, Op::Idb, &both.xml(Op::Idb)).await;
    assert_eq!(a.subcode(), "SchemaInvalide");
}

#[tokio::test]
async fn identity_binding() {
    let amc = amc(&[]);
    let body = p01().xml(Op::Idb);
    let a = fault_of_as(&amc, &body, Some("130000000")).await;
    assert_fault(&a, 403, "Sender", "NonAutorise");
    let a = fault_of_as(&amc, &body, None).await;
    assert_fault(&a, 403, "Sender", "NonAutorise");
    // Version before identity.
    let v3 = Req {
        version: "3.00".into(),
        ..p01()
    };
    let a = fault_of_as(&amc, &v3.xml(Op::Idb), Some("130000000")).await;
    assert_eq!(a.subcode(), "VersionNonSupportee");
}

async fn fault_of_as(amc: &Arc<Amc>, body: &str, cn: Option<&str>) -> Answer {
    send_as(amc, Op::Idb, body, cn).await
}

// ---------------------------------------------------------------- defects

#[test]
fn client_auth_of_defects() {
    assert_eq!(client_auth(&set(&[])), ClientAuth::Required);
    assert_eq!(
        client_auth(&set(&["no-client-cert-accepted"])),
        ClientAuth::Optional
    );
    assert_eq!(
        client_auth(&set(&["untrusted-client-accepted"])),
        ClientAuth::AcceptAny
    );
    assert_eq!(client_auth(&set(&["float-rounding"])), ClientAuth::Required);
}

#[test]
fn every_defect_is_known_and_wired() {
    let cfg = AmcConfig::new(population(), "A", set(&["nope", "hang-del"]));
    assert_eq!(cfg.unknown_defects(), ["nope"]);
    for d in crate::defects::AMC {
        let one = set(&[d.name]);
        let wired = deviations(&one) != Deviations::default()
            || client_auth(&one) != ClientAuth::Required
            || {
                let f = Flags::of(&one);
                f.no_idflux_echo
                    || f.idflux_copied
                    || f.fault_reason_en
                    || f.finess_unbound
                    || f.slow_clc
                    || f.hang_del
                    || f.del_answer_truncated
                    || f.soap11
                    || f.wrong_namespace
                    || f.schema_lax
                    || f.any_version
                    || f.faults_http_200
                    || f.anf_in_v1
                    || f.message_patient_in_v1
                    || f.rsp_not_atomic
            };
        assert!(wired, "{} does nothing", d.name);
    }
}

/// A standard set of exchanges whose answers no defect may change, except those that change
/// the form of every answer or the transport.
#[tokio::test]
async fn defects_leave_the_happy_path_alone() {
    let plain = Req {
        lines: vec![line("TM", "1", "120.00", "96.00")],
        ..p01()
    };
    for d in crate::defects::AMC {
        if matches!(
            d.name,
            "hang-del"
                | "slow-clc"
                | "soap11-envelope"
                | "wrong-namespace"
                | "del-answer-truncated"
        ) {
            continue;
        }
        let amc = amc(&[d.name]);
        ok(&amc, Op::Idb, &plain).await;
        let s = ok(&amc, Op::Sim, &plain).await;
        assert_eq!(s.amounts(), ["24.00"], "{}", d.name);
        assert_eq!(s.get("totalAmc").unwrap(), "24.00", "{}", d.name);
        let c = ok(&amc, Op::Clc, &plain).await;
        let del = Req {
            numero_engagement: c.get("numeroEngagement").unwrap(),
            ..p01()
        };
        ok(&amc, Op::Del, &del).await;
        assert_eq!(ko(&amc, Op::Idb, &p02()).await.len(), 3);
        // V2: a period, a DRE, an ANF.
        let numero = engage(&amc, &period_req(1, false, "D-HAPPY")).await;
        let dre = Req {
            numero_engagement: numero,
            ..p01()
        };
        let a = ok(&amc, Op::Dre, &dre).await;
        assert_eq!(
            a.get("accuseReception/numeroFacture").unwrap(),
            "F2026-0001",
            "{}",
            d.name
        );
        let anf = Req {
            version: "2.00".into(),
            ..p01()
        };
        ok(&amc, Op::Anf, &anf).await;
    }
}

#[tokio::test]
async fn defect_float_rounding() {
    let half = Req {
        lines: vec![line("TM", "1", "124.69", "100.00")],
        ..p04()
    };
    let a = ok(&amc(&["float-rounding"]), Op::Sim, &half).await;
    assert_eq!(a.amounts(), ["12.34"]);
    assert_eq!(a.get("totalResteACharge").unwrap(), "12.35");
}

#[tokio::test]
async fn defect_no_idflux_echo() {
    let amc = amc(&["no-idflux-echo"]);
    for (op, r) in [(Op::Idb, p01()), (Op::Idb, unknown())] {
        let a = send(&amc, op, &r).await;
        let head = a.body().child(SEL_NS, "enteteReponse").unwrap();
        assert_eq!(
            Answer::names(head),
            ["idFlux", "dateHeureReponse", "versionNorme"]
        );
    }
}

#[tokio::test]
async fn defect_r01_r02_swapped() {
    let amc = amc(&["r01-r02-swapped"]);
    assert_eq!(ko(&amc, Op::Idb, &unknown()).await, "R02");
    assert_eq!(ko(&amc, Op::Idb, &p02()).await, "R01");
}

#[tokio::test]
async fn defect_double_del_accepted() {
    let amc = amc(&["double-del-accepted"]);
    let n = ok(&amc, Op::Clc, &p01())
        .await
        .get("numeroEngagement")
        .unwrap();
    let del = Req {
        numero_engagement: n,
        ..p01()
    };
    ok(&amc, Op::Del, &del).await;
    ok(&amc, Op::Del, &del).await;
    let unknown = Req {
        numero_engagement: "ENG-1".into(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Del, &unknown).await, "R10");
}

#[tokio::test]
async fn defect_no_client_cert_accepted() {
    let amc = amc(&["no-client-cert-accepted"]);
    let body = p01().xml(Op::Idb);
    let a = send_as(&amc, Op::Idb, &body, None).await;
    assert_eq!(a.statut(), "OK");
    // A certificate with another CN is still refused.
    let a = send_as(&amc, Op::Idb, &body, Some("130000000")).await;
    assert_eq!(a.status, 403);
}

#[tokio::test]
async fn defect_finess_unbound() {
    let amc = amc(&["finess-unbound"]);
    let body = p01().xml(Op::Idb);
    assert_eq!(
        send_as(&amc, Op::Idb, &body, Some("130000000"))
            .await
            .statut(),
        "OK"
    );
    // Other faults unchanged.
    let v3 = Req {
        version: "3.00".into(),
        ..p01()
    };
    assert_eq!(fault_of(&amc, Op::Idb, &v3.xml(Op::Idb)).await.status, 400);
}

#[tokio::test]
async fn defect_slow_clc() {
    let amc = amc(&["slow-clc"]);
    let t = std::time::Instant::now();
    ok(&amc, Op::Idb, &p01()).await;
    assert!(t.elapsed() < Duration::from_secs(1));
    let t = std::time::Instant::now();
    ok(&amc, Op::Clc, &p01()).await;
    assert!(t.elapsed() >= SLOW_CLC_DELAY);
}

#[tokio::test]
async fn defect_hang_del() {
    let amc = amc(&["hang-del"]);
    ok(&amc, Op::Clc, &p01()).await;
    let del = request("/DEL", p01().xml(Op::Del).as_bytes(), Some(FINESS));
    let r = tokio::time::timeout(Duration::from_millis(300), amc.handle(del)).await;
    assert!(r.is_err(), "DEL answered");
}

#[tokio::test]
async fn defect_soap11_envelope() {
    let amc = amc(&["soap11-envelope"]);
    let a = send(&amc, Op::Idb, &p01()).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.root.ns.as_deref(), Some(soap::SOAP11_ENV));
    assert_eq!(a.content_type, "text/xml; charset=utf-8");
    assert_eq!(a.statut(), "OK");
    let f = send_as(&amc, Op::Idb, "<oops", Some(FINESS)).await;
    assert_eq!(f.status, 400);
    assert_eq!(f.root.ns.as_deref(), Some(soap::SOAP11_ENV));
    assert_eq!(
        f.fault().code,
        Some((soap::SOAP11_ENV.to_string(), "Client".to_string()))
    );
    // Requests are still SOAP 1.2.
    let r = p01().xml(Op::Idb).replace(ENV, soap::SOAP11_ENV);
    assert_eq!(send_as(&amc, Op::Idb, &r, Some(FINESS)).await.status, 400);
}

#[tokio::test]
async fn defect_wrong_namespace() {
    let amc = amc(&["wrong-namespace"]);
    let a = send(&amc, Op::Idb, &p01()).await;
    assert_eq!(a.body().ns.as_deref(), Some(WRONG_SEL_NS));
    let st = a.body().child(WRONG_SEL_NS, "statut").unwrap();
    assert_eq!(st.text(), "OK");
    // Faults keep their subcode namespace.
    let f = fault_of(&amc, Op::Idb, "<oops").await;
    assert_eq!(f.subcode(), "SchemaInvalide");
}

#[tokio::test]
async fn defect_unknown_beneficiary_ok() {
    let amc = amc(&["unknown-beneficiary-ok"]);
    let a = ok(&amc, Op::Idb, &unknown()).await;
    assert_eq!(a.get("droits/dateDebut").unwrap(), "2026-01-01");
    assert_eq!(a.get("droits/dateFin").unwrap(), "2026-12-31");
    let r = Req {
        lines: vec![line("TM", "1", "100.00", "80.00")],
        ..unknown()
    };
    assert_eq!(ok(&amc, Op::Sim, &r).await.amounts(), ["20.00"]);
    // Other KO codes unchanged.
    assert_eq!(ko(&amc, Op::Idb, &p02()).await, "R02");
}

#[tokio::test]
async fn defect_twins_confused() {
    let amc = amc(&["twins-confused"]);
    let t2 = Req {
        lines: vec![line("TM", "1", "100.00", "50.00")],
        ..twin2()
    };
    assert_eq!(ok(&amc, Op::Sim, &t2).await.amounts(), ["50.00"]);
}

#[tokio::test]
async fn defect_totals_not_sum() {
    let amc = amc(&["totals-not-sum"]);
    let r = Req {
        lines: vec![
            line("TM", "1", "120.00", "96.00"),
            line("PF", "1", "24.00", "0.00"),
        ],
        ..p01()
    };
    let a = ok(&amc, Op::Sim, &r).await;
    assert_eq!(a.amounts(), ["24.00", "24.00"]);
    assert_eq!(a.get("totalAmc").unwrap(), "24.00");
    assert_eq!(a.get("totalResteACharge").unwrap(), "0.00");
    let c = ok(&amc, Op::Clc, &r).await;
    assert_eq!(c.get("totalAmc").unwrap(), "24.00");
}

#[tokio::test]
async fn defect_nir_key_unchecked() {
    let amc = amc(&["nir-key-unchecked"]);
    let r = Req {
        cle: "09".into(),
        ..p01()
    };
    ok(&amc, Op::Idb, &r).await;
    let bad_date = Req {
        entree: "2026-02-30".into(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Idb, &bad_date).await, "R05");
}

#[tokio::test]
async fn defect_adherent_unchecked() {
    let amc = amc(&["adherent-unchecked"]);
    let r = Req {
        adherent: Some("Z9".into()),
        ..p01()
    };
    ok(&amc, Op::Idb, &r).await;
}

#[tokio::test]
async fn defect_any_amc_served() {
    let amc = amc(&["any-amc-served"]);
    ok(&amc, Op::Idb, &p08()).await;
    let r = Req {
        numero_amc: "99999999".into(),
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Idb, &r).await, "R06");
}

#[tokio::test]
async fn defect_schema_lax() {
    let amc = amc(&["schema-lax"]);
    for name in ["nir", "cleNir", "rangGemellaire", "dateEntree", "domaine"] {
        let r = Req {
            omit: vec![name],
            ..p01()
        };
        assert_eq!(ko(&amc, Op::Idb, &r).await, "R05", "{name}");
    }
    let r = Req {
        omit: vec!["dateSortie"],
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Sim, &r).await, "R05");
    // R06 still first.
    let r = Req {
        omit: vec!["nir"],
        ..p08()
    };
    assert_eq!(ko(&amc, Op::Idb, &r).await, "R06");
    // Other blocks and invalid values still faults.
    for r in [
        Req {
            omit: vec!["typeConvention"],
            ..p01()
        },
        Req {
            omit: vec!["idFlux"],
            ..p01()
        },
        Req {
            omit: vec!["beneficiaire"],
            ..p01()
        },
        Req {
            nir: "x".into(),
            ..p01()
        },
    ] {
        let a = fault_of(&amc, Op::Idb, &r.xml(Op::Idb)).await;
        assert_eq!(a.subcode(), "SchemaInvalide");
    }
}

#[tokio::test]
async fn defect_any_version() {
    let amc = amc(&["any-version"]);
    let v3 = Req {
        version: "3.00".into(),
        ..p01()
    };
    let a = ok(&amc, Op::Idb, &v3).await;
    assert_eq!(a.get("enteteReponse/versionNorme").unwrap(), "3.00");
    // Processed as 1.04: SSR refused.
    let ssr = Req {
        domaine: "SSR".into(),
        ..v3
    };
    assert_eq!(ko(&amc, Op::Idb, &ssr).await, "R03");
    // Accepted versions processed as they are.
    let v2 = Req {
        version: "2.00".into(),
        domaine: "SSR".into(),
        ..p01()
    };
    ok(&amc, Op::Idb, &v2).await;
    let b = amc_on("B", &["any-version"]);
    let p08v2 = Req {
        version: "2.00".into(),
        ..p08()
    };
    ok(&b, Op::Idb, &p08v2).await;
}

#[tokio::test]
async fn defect_cp_uncapped() {
    let cp = Req {
        lines: vec![line("CP", "3", "150.00", "0.00")],
        ..p05()
    };
    assert_eq!(
        ok(&amc(&["cp-uncapped"]), Op::Sim, &cp).await.amounts(),
        ["150.00"]
    );
}

#[tokio::test]
async fn defect_rights_end_exclusive() {
    let last = Req {
        entree: "2026-02-28".into(),
        sortie: Some("2026-03-01".into()),
        ..p02()
    };
    ok(&amc(&[]), Op::Idb, &last).await;
    assert_eq!(
        ko(&amc(&["rights-end-exclusive"]), Op::Idb, &last).await,
        "R02"
    );
}

#[tokio::test]
async fn defect_faults_http_200() {
    let amc = amc(&["faults-http-200"]);
    let a = send_as(&amc, Op::Idb, "<oops", Some(FINESS)).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.subcode(), "SchemaInvalide");
    let a = send_as(&amc, Op::Idb, &p01().xml(Op::Idb), Some("130000000")).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.subcode(), "NonAutorise");
}

#[tokio::test]
async fn defect_sim_on_ace() {
    let ace = Req {
        type_pec: "ACE".into(),
        ..p01()
    };
    ok(&amc(&["sim-on-ace"]), Op::Sim, &ace).await;
}

#[tokio::test]
async fn defect_v2_domain_in_v1() {
    let amc = amc(&["v2-domain-in-v1"]);
    let ssr = Req {
        domaine: "SSR".into(),
        ..p01()
    };
    ok(&amc, Op::Idb, &ssr).await;
    let cat = Req {
        categorie: Some("EXDG".into()),
        ..p01()
    };
    ok(&amc, Op::Idb, &cat).await;
    // Not covered is still R03.
    let t1_ssr = Req {
        domaine: "SSR".into(),
        ..person("12345678", "2920892123004", "12", "19920805", "1")
    };
    assert_eq!(ko(&amc, Op::Idb, &t1_ssr).await, "R03");
}

// ---------------------------------------------------------------- V2: R08, DRE, ANF, RSP

/// CLC OK: the engagement number.
async fn engage(amc: &Arc<Amc>, r: &Req) -> String {
    ok(amc, Op::Clc, r).await.get("numeroEngagement").unwrap()
}

/// P01 in 2.00, dossier `dossier`, period `rang` of March 2026 (no dateSortie).
fn period_req(rang: u32, derniere: bool, dossier: &str) -> Req {
    Req {
        version: "2.00".into(),
        sortie: None,
        id_dossier: dossier.into(),
        periode: Some(format!(
            "<roc:periodeFacturation><roc:rang>{rang}</roc:rang><roc:dateDebut>2026-03-02</roc:dateDebut><roc:dateFin>2026-03-31</roc:dateFin><roc:derniere>{derniere}</roc:derniere></roc:periodeFacturation>"
        )),
        ..p01()
    }
}

/// A DRE of P01's default CLC (one TM line, 24.00) on `numero` as `facture`.
fn dre_req(numero: &str, facture: &str) -> Req {
    Req {
        numero_engagement: numero.into(),
        numero_facture: facture.into(),
        ..p01()
    }
}

/// An ANF of `facture` in 2.00.
fn anf_req(facture: &str) -> Req {
    Req {
        version: "2.00".into(),
        numero_facture: facture.into(),
        ..p01()
    }
}

fn today() -> time::Date {
    Now::get().today
}

#[tokio::test]
async fn r08_periods_over_the_wire() {
    let amc = amc(&[]);
    ok(&amc, Op::Clc, &period_req(1, false, "D1")).await;
    let a = send(&amc, Op::Clc, &period_req(1, false, "D1")).await;
    assert_eq!(a.code().as_deref(), Some("R08"));
    assert_eq!(a.get("motif/libelle").unwrap(), "période déjà engagée");
    // R08 engages nothing.
    assert_eq!(amc.registry().len(), 1);
    // The computation checks come first: a bad amount is R05, an unknown beneficiary R01.
    let bad = Req {
        lines: vec![line("TM", "1", "12.5", "0.00")],
        ..period_req(1, false, "D1")
    };
    assert_eq!(ko(&amc, Op::Clc, &bad).await, "R05");
    let who = Req {
        version: "2.00".into(),
        ..unknown()
    };
    let who = Req {
        sortie: None,
        periode: period_req(1, false, "D1").periode,
        ..who
    };
    assert_eq!(ko(&amc, Op::Clc, &who).await, "R01");
    // SIM ignores the registry (no period in SIM); a CLC without period is never R08.
    ok(
        &amc,
        Op::Clc,
        &Req {
            version: "2.00".into(),
            id_dossier: "D1".into(),
            ..p01()
        },
    )
    .await;
    // Last period 2: rang 3 after it, R08.
    let n2 = engage(&amc, &period_req(2, true, "D1")).await;
    assert_eq!(ko(&amc, Op::Clc, &period_req(3, false, "D1")).await, "R08");
    assert_eq!(ko(&amc, Op::Clc, &period_req(3, true, "D1")).await, "R08");
    // A cancelled engagement frees its period (and the last one frees what follows).
    let del = Req {
        version: "2.00".into(),
        numero_engagement: n2,
        ..p01()
    };
    ok(&amc, Op::Del, &del).await;
    ok(&amc, Op::Clc, &period_req(2, false, "D1")).await;
    ok(&amc, Op::Clc, &period_req(3, true, "D1")).await;
    // Another dossier is free.
    ok(&amc, Op::Clc, &period_req(1, false, "D2")).await;
}

#[tokio::test]
async fn dre_ok_shape() {
    let amc = amc(&[]);
    let two = Req {
        lines: vec![
            line("TM", "1", "120.00", "96.00"),
            line("FJ", "3", "60.00", "0.00"),
        ],
        ..p01()
    };
    let numero = engage(&amc, &two).await;
    let dre = Req {
        numero_engagement: numero.clone(),
        montants_amc: vec!["24.00".into(), "60.00".into()],
        total_amc: "84.00".into(),
        ..two.clone()
    };
    let a = ok(&amc, Op::Dre, &dre).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.content_type, "application/soap+xml; charset=utf-8");
    assert_eq!(a.body().local, "dreReponse");
    assert_eq!(
        Answer::names(a.body()),
        ["enteteReponse", "statut", "accuseReception"]
    );
    let ar = a.body().child(SEL_NS, "accuseReception").unwrap();
    assert_eq!(Answer::names(ar), ["numeroFacture", "dateReception"]);
    assert_eq!(
        a.get("accuseReception/numeroFacture").unwrap(),
        "F2026-0001"
    );
    assert_eq!(
        a.get("accuseReception/dateReception").unwrap(),
        dates::format_iso(today())
    );
    assert_eq!(
        a.get("enteteReponse/idFluxRequete").unwrap(),
        dre.id_flux.as_str()
    );
    let reg = amc.registry();
    let e = reg.get(&numero).unwrap();
    assert_eq!(e.state, EngagementState::Invoiced);
    assert_eq!(e.facture.as_deref(), Some("F2026-0001"));
    let f = reg.facture("F2026-0001").unwrap();
    assert_eq!(f.state, crate::roc::FactureState::Received);
    assert_eq!(f.date_facture, time::macros::date!(2026 - 03 - 06));
    assert_eq!(f.finess_juridique, FINESS);
}

#[tokio::test]
async fn dre_ko_codes_in_order() {
    let amc = amc(&[]);
    let n1 = engage(&amc, &p01()).await;
    let n2 = engage(&amc, &p01()).await;
    let n3 = engage(&amc, &p01()).await;
    // R20: unknown; cancelled; another AMC number; another establishment.
    assert_eq!(
        ko(&amc, Op::Dre, &dre_req("ENG-FFFFFFFFFFFF", "F1")).await,
        "R20"
    );
    ok(
        &amc,
        Op::Del,
        &Req {
            numero_engagement: n3.clone(),
            ..p01()
        },
    )
    .await;
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n3, "F1")).await, "R20");
    let other_amc = Req {
        numero_amc: "23456789".into(),
        ..dre_req(&n1, "F1")
    };
    assert_eq!(ko(&amc, Op::Dre, &other_amc).await, "R20");
    let other_es = Req {
        finess: "130000000".into(),
        ..dre_req(&n1, "F1")
    };
    let a = send_as(&amc, Op::Dre, &other_es.xml(Op::Dre), Some("130000000")).await;
    assert_eq!(a.code().as_deref(), Some("R20"));
    // R06 for an AMC number this endpoint does not serve.
    let b = Req {
        numero_amc: "87654321".into(),
        ..dre_req(&n1, "F1")
    };
    assert_eq!(ko(&amc, Op::Dre, &b).await, "R06");
    // R21: total, a line, a missing line, an extra line.
    for bad in [
        Req {
            total_amc: "24.01".into(),
            ..dre_req(&n1, "F1")
        },
        Req {
            montants_amc: vec!["23.99".into()],
            ..dre_req(&n1, "F1")
        },
        Req {
            lines: vec![
                line("TM", "1", "120.00", "96.00"),
                line("PF", "1", "0.00", "0.00"),
            ],
            montants_amc: vec!["24.00".into(), "0.00".into()],
            ..dre_req(&n1, "F1")
        },
    ] {
        assert_eq!(ko(&amc, Op::Dre, &bad).await, "R21");
    }
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    // R22 whatever the engagement and amounts; R20 before R22.
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n1, "F1")).await, "R22");
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n2, "F1")).await, "R22");
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n3, "F1")).await, "R20");
    // R26 before R21.
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n1, "F2")).await, "R26");
    let wrong = Req {
        total_amc: "1.00".into(),
        ..dre_req(&n1, "F2")
    };
    assert_eq!(ko(&amc, Op::Dre, &wrong).await, "R26");
    // DEL of an invoiced engagement: R12.
    let del = Req {
        numero_engagement: n1.clone(),
        ..p01()
    };
    let a = send(&amc, Op::Del, &del).await;
    assert_eq!(a.code().as_deref(), Some("R12"));
    assert_eq!(a.get("motif/libelle").unwrap(), "engagement facturé");
    // A paid invoice: its engagement stays invoiced (R26), its number taken (R22).
    let drop = tempfile::tempdir().unwrap();
    amc.payment_run(drop.path()).unwrap();
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n1, "F3")).await, "R26");
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n2, "F1")).await, "R22");
    // Libellés.
    let a = send(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    assert_eq!(a.get("motif/libelle").unwrap(), "facture déjà reçue");
    // DRE is V1 and V2.
    let v2 = Req {
        version: "2.00".into(),
        ..dre_req(&n2, "F4")
    };
    ok(&amc, Op::Dre, &v2).await;
}

#[tokio::test]
async fn dre_and_anf_faults() {
    let amc = amc(&[]);
    for name in [
        "entete",
        "numeroEngagement",
        "numeroFacture",
        "dateFacture",
        "prestations",
        "prestation",
        "montantAmc",
        "totalAmc",
        "montantTotal",
        "code",
    ] {
        let r = Req {
            omit: vec![name],
            ..p01()
        };
        let a = fault_of(&amc, Op::Dre, &r.xml(Op::Dre)).await;
        assert_fault(&a, 400, "Sender", "SchemaInvalide");
        let reason = a.fault().reason;
        assert!(reason.contains(&format!("/{name}")), "{name}: {reason}");
        assert!(reason.contains("dreRequete/"), "{reason}");
    }
    let cases: Vec<(&str, Req)> = vec![
        (
            "numeroFacture",
            Req {
                numero_facture: "F".repeat(21),
                ..p01()
            },
        ),
        (
            "numeroFacture",
            Req {
                numero_facture: String::new(),
                ..p01()
            },
        ),
        (
            "dateFacture",
            Req {
                date_facture: "2026-02-30".into(),
                ..p01()
            },
        ),
        (
            "dateFacture",
            Req {
                date_facture: "06/03/2026".into(),
                ..p01()
            },
        ),
        (
            "totalAmc",
            Req {
                total_amc: "24.0".into(),
                ..p01()
            },
        ),
        (
            "montantAmc",
            Req {
                montants_amc: vec!["24,00".into()],
                ..p01()
            },
        ),
        (
            "numeroEngagement",
            Req {
                numero_engagement: "eng-1".into(),
                ..p01()
            },
        ),
    ];
    for (name, r) in cases {
        let a = fault_of(&amc, Op::Dre, &r.xml(Op::Dre)).await;
        assert_fault(&a, 400, "Sender", "SchemaInvalide");
        assert!(a.fault().reason.contains(name), "{name}");
    }
    for name in ["numeroFacture", "motif"] {
        let r = Req {
            omit: vec![name],
            ..anf_req("F1")
        };
        let a = fault_of(&amc, Op::Anf, &r.xml(Op::Anf)).await;
        assert_fault(&a, 400, "Sender", "SchemaInvalide");
        assert!(a.fault().reason.contains(&format!("anfRequete/{name}")));
    }
    // Versions: 3.00 refused; identity binding after the version.
    let v3 = Req {
        version: "3.00".into(),
        ..p01()
    };
    let a = fault_of(&amc, Op::Dre, &v3.xml(Op::Dre)).await;
    assert_fault(&a, 400, "Sender", "VersionNonSupportee");
    let a = send_as(&amc, Op::Dre, &p01().xml(Op::Dre), Some("130000000")).await;
    assert_fault(&a, 403, "Sender", "NonAutorise");
    let a = send_as(
        &amc,
        Op::Anf,
        &anf_req("F1").xml(Op::Anf),
        Some("130000000"),
    )
    .await;
    assert_fault(&a, 403, "Sender", "NonAutorise");
    // The request root must be the path's operation.
    let a = send_as(&amc, Op::Anf, &p01().xml(Op::Dre), Some(FINESS)).await;
    assert_fault(&a, 400, "Sender", "SchemaInvalide");
}

#[tokio::test]
async fn anf_only_in_2_00() {
    let amc_a = amc(&[]);
    let v1 = Req {
        version: "1.04".into(),
        ..anf_req("F1")
    };
    let a = fault_of(&amc_a, Op::Anf, &v1.xml(Op::Anf)).await;
    assert_fault(&a, 400, "Sender", "VersionNonSupportee");
    assert!(a.fault().reason.contains("2.00"), "{}", a.text);
    // Schema before version, version before identity.
    let v1_bad = Req {
        omit: vec!["motif"],
        ..v1.clone()
    };
    let a = fault_of(&amc_a, Op::Anf, &v1_bad.xml(Op::Anf)).await;
    assert_eq!(a.subcode(), "SchemaInvalide");
    let a = send_as(&amc_a, Op::Anf, &v1.xml(Op::Anf), Some("130000000")).await;
    assert_eq!(a.subcode(), "VersionNonSupportee");
    // Endpoint B accepts only 1.04: no ANF at all.
    let amc_b = amc_on("B", &[]);
    for version in ["1.04", "2.00"] {
        let r = Req {
            version: version.into(),
            ..p08()
        };
        let a = fault_of(&amc_b, Op::Anf, &r.xml(Op::Anf)).await;
        assert_fault(&a, 400, "Sender", "VersionNonSupportee");
    }
    // ...but DRE in 1.04 works there.
    let n = engage(&amc_b, &p08()).await;
    let dre = Req {
        numero_engagement: n,
        ..p08()
    };
    ok(&amc_b, Op::Dre, &dre).await;
}

#[tokio::test]
async fn anf_rules() {
    let amc = amc(&[]);
    let n1 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    // R23: unknown, another establishment's.
    assert_eq!(ko(&amc, Op::Anf, &anf_req("F9")).await, "R23");
    let other = Req {
        finess: "130000000".into(),
        ..anf_req("F1")
    };
    let a = send_as(&amc, Op::Anf, &other.xml(Op::Anf), Some("130000000")).await;
    assert_eq!(a.code().as_deref(), Some("R23"));
    assert_eq!(a.get("motif/libelle").unwrap(), "facture inconnue");
    // R06 first.
    let b = Req {
        numero_amc: "87654321".into(),
        ..anf_req("F1")
    };
    assert_eq!(ko(&amc, Op::Anf, &b).await, "R06");
    // OK.
    let a = ok(&amc, Op::Anf, &anf_req("F1")).await;
    assert_eq!(a.body().local, "anfReponse");
    assert_eq!(
        Answer::names(a.body()),
        ["enteteReponse", "statut", "dateAnnulation"]
    );
    assert_eq!(a.get("dateAnnulation").unwrap(), dates::format_iso(today()));
    assert_eq!(
        amc.registry().facture("F1").unwrap().state,
        crate::roc::FactureState::Cancelled
    );
    assert_eq!(
        amc.registry().get(&n1).unwrap().state,
        EngagementState::Active
    );
    // Again: accepted, nothing changes.
    ok(&amc, Op::Anf, &anf_req("F1")).await;
    // The engagement is invoiced again under a new number; the old one is R22.
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n1, "F1")).await, "R22");
    ok(&amc, Op::Dre, &dre_req(&n1, "F1b")).await;
    // A cancelled invoice is not paid.
    let drop = tempfile::tempdir().unwrap();
    let files = amc.payment_run(drop.path()).unwrap();
    assert_eq!(files.len(), 1);
    assert!(files[0].ends_with("RSP-F1b.xml"));
    // Paid: R24.
    let a = send(&amc, Op::Anf, &anf_req("F1b")).await;
    assert_eq!(a.code().as_deref(), Some("R24"));
    assert_eq!(
        a.get("motif/libelle").unwrap(),
        "facture déjà payée ou rejetée"
    );
    // Rejected: R24.
    let n2 = engage(&amc, &p01()).await;
    let early = Req {
        date_facture: "2026-03-04".into(),
        ..dre_req(&n2, "F2")
    };
    ok(&amc, Op::Dre, &early).await;
    amc.payment_run(drop.path()).unwrap();
    assert_eq!(ko(&amc, Op::Anf, &anf_req("F2")).await, "R24");
}

/// Parse a return file.
fn rsp(path: &Path) -> Element {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
    let root = xml::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(root.local, "rsp");
    assert_eq!(root.ns.as_deref(), Some(SEL_NS));
    root
}

fn rsp_get(root: &Element, path: &str) -> Option<String> {
    let mut e = root;
    for part in path.split('/') {
        e = e.child(SEL_NS, part)?;
    }
    Some(e.text())
}

#[tokio::test]
async fn payment_run_pays_and_rejects() {
    let amc = amc(&[]);
    let drop = tempfile::tempdir().unwrap();
    // Nothing received: nothing written.
    assert!(amc.payment_run(drop.path()).unwrap().is_empty());
    // Paid: dated on the day of exit. Rejected: the day before. Period: dateFin counts.
    let n1 = engage(&amc, &p01()).await;
    let on_exit = Req {
        date_facture: "2026-03-05".into(),
        ..dre_req(&n1, "F1")
    };
    ok(&amc, Op::Dre, &on_exit).await;
    let n2 = engage(&amc, &p01()).await;
    let early = Req {
        date_facture: "2026-03-04".into(),
        ..dre_req(&n2, "F2")
    };
    ok(&amc, Op::Dre, &early).await;
    let n3 = engage(&amc, &period_req(1, false, "D3")).await;
    let period_early = Req {
        version: "2.00".into(),
        date_facture: "2026-03-30".into(),
        ..dre_req(&n3, "F3")
    };
    ok(&amc, Op::Dre, &period_early).await;
    let n4 = engage(&amc, &period_req(2, true, "D3")).await;
    let period_ok = Req {
        date_facture: "2026-03-31".into(),
        ..dre_req(&n4, "2026/04 é")
    };
    ok(&amc, Op::Dre, &period_ok).await;

    let files = amc.payment_run(drop.path()).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "RSP-2026%2F04%20%C3%A9.xml",
            "RSP-F1.xml",
            "RSP-F2.xml",
            "RSP-F3.xml"
        ]
    );
    // Only the return files are left in the folder.
    let mut listed: Vec<String> = std::fs::read_dir(drop.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, names);

    let paid = rsp(&files[1]);
    assert_eq!(
        Answer::names(&paid),
        ["numeroFacture", "numeroEngagement", "paiement"]
    );
    assert_eq!(rsp_get(&paid, "numeroFacture").unwrap(), "F1");
    assert_eq!(rsp_get(&paid, "numeroEngagement").unwrap(), n1);
    let p = paid.child(SEL_NS, "paiement").unwrap();
    assert_eq!(
        Answer::names(p),
        ["montantPaye", "datePaiement", "referenceVirement"]
    );
    assert_eq!(rsp_get(&paid, "paiement/montantPaye").unwrap(), "24.00");
    assert_eq!(
        rsp_get(&paid, "paiement/datePaiement").unwrap(),
        dates::format_iso(today())
    );
    let reference = rsp_get(&paid, "paiement/referenceVirement").unwrap();
    let re = regex::Regex::new("^VIR-[0-9A-F]{12}$").unwrap();
    assert!(re.is_match(&reference), "{reference}");
    let other = rsp(&files[0]);
    assert_eq!(rsp_get(&other, "numeroFacture").unwrap(), "2026/04 é");
    assert_ne!(
        rsp_get(&other, "paiement/referenceVirement").unwrap(),
        reference
    );

    for (i, n) in [(2, &n2), (3, &n3)] {
        let rejected = rsp(&files[i]);
        assert_eq!(
            Answer::names(&rejected),
            ["numeroFacture", "numeroEngagement", "rejet"]
        );
        assert_eq!(rsp_get(&rejected, "numeroEngagement").unwrap(), *n);
        assert_eq!(rsp_get(&rejected, "rejet/code").unwrap(), "R25");
        assert_eq!(
            rsp_get(&rejected, "rejet/libelle").unwrap(),
            "facture antérieure à la fin des soins"
        );
    }
    {
        use crate::roc::FactureState;
        let reg = amc.registry();
        assert_eq!(reg.facture("F1").unwrap().state, FactureState::Paid);
        assert_eq!(
            reg.facture("F1").unwrap().reference_virement.as_deref(),
            Some(reference.as_str())
        );
        assert_eq!(reg.facture("F2").unwrap().state, FactureState::Rejected);
        assert_eq!(reg.get(&n1).unwrap().state, EngagementState::Invoiced);
        assert_eq!(reg.get(&n2).unwrap().state, EngagementState::Active);
        assert_eq!(reg.get(&n3).unwrap().state, EngagementState::Active);
    }
    // A second run has nothing to do.
    assert!(amc.payment_run(drop.path()).unwrap().is_empty());
    // After R25: invoice again with a new number, dated after the end of care: paid.
    ok(&amc, Op::Dre, &dre_req(&n2, "F2b")).await;
    let files = amc.payment_run(drop.path()).unwrap();
    assert_eq!(files.len(), 1);
    assert!(rsp_get(&rsp(&files[0]), "paiement/montantPaye").is_some());
    // The engaged period stays engaged after its payment: R08.
    assert_eq!(ko(&amc, Op::Clc, &period_req(2, false, "D3")).await, "R08");
}

#[tokio::test]
async fn payment_run_selected_and_missing_folder() {
    let amc = amc(&[]);
    let n1 = engage(&amc, &p01()).await;
    let n2 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    ok(&amc, Op::Dre, &dre_req(&n2, "F2")).await;
    let dir = tempfile::tempdir().unwrap();
    let drop = dir.path().join("retours/ES");
    let files = amc
        .payment_run_selected(&drop, |f| f.numero == "F2", |_| false)
        .unwrap();
    assert_eq!(files, [drop.join("RSP-F2.xml")]);
    assert_eq!(
        amc.registry().facture("F1").unwrap().state,
        crate::roc::FactureState::Received
    );
    // An unwritable drop: an error, and the invoice stays received.
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "x").unwrap();
    assert!(amc.payment_run(&blocked.join("sub")).is_err());
    assert_eq!(
        amc.registry().facture("F1").unwrap().state,
        crate::roc::FactureState::Received
    );
    let files = amc
        .payment_run_async(drop.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(files, [drop.join("RSP-F1.xml")]);
}

#[test]
fn rsp_file_names() {
    assert_eq!(rsp_file_name("F2026-0001"), "RSP-F2026-0001.xml");
    assert_eq!(rsp_file_name("a_b.c"), "RSP-a_b.c.xml");
    assert_eq!(rsp_file_name("../x"), "RSP-..%2Fx.xml");
    assert_eq!(rsp_file_name("50%"), "RSP-50%25.xml");
    assert_eq!(rsp_file_name("a\\b c"), "RSP-a%5Cb%20c.xml");
}

/// What a reader polling `dir` every millisecond saw: how many `RSP-*.xml` reads, and the
/// names of those that did not parse as XML.
struct Watch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

impl Watch {
    fn start(dir: &Path) -> Watch {
        use std::sync::atomic::Ordering;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (dir, flag) = (dir.to_path_buf(), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut reads = 0;
            let mut bad = Vec::new();
            let mut last = false;
            loop {
                if flag.load(Ordering::SeqCst) {
                    // One more pass after the run.
                    last = true;
                }
                for e in std::fs::read_dir(&dir).unwrap().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !(name.starts_with("RSP-") && name.ends_with(".xml")) {
                        continue;
                    }
                    let Ok(bytes) = std::fs::read(e.path()) else {
                        continue;
                    };
                    reads += 1;
                    let parses = String::from_utf8(bytes)
                        .ok()
                        .is_some_and(|t| xml::parse(&t).is_ok());
                    if !parses {
                        bad.push(name);
                    }
                }
                if last {
                    return (reads, bad);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Watch { stop, thread }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// `n` received invoices F0000… on fresh engagements of P01.
async fn received(amc: &Arc<Amc>, n: usize) {
    for i in 0..n {
        let e = engage(amc, &p01()).await;
        ok(amc, Op::Dre, &dre_req(&e, &format!("F{i:04}"))).await;
    }
}

#[tokio::test]
async fn a_polling_reader_never_sees_a_partial_return() {
    let amc = amc(&[]);
    received(&amc, 300).await;
    let drop = tempfile::tempdir().unwrap();
    let watch = Watch::start(drop.path());
    // Let the reader start polling.
    std::thread::sleep(Duration::from_millis(5));
    let files = amc.payment_run(drop.path()).unwrap();
    let (reads, bad) = watch.finish();
    assert_eq!(files.len(), 300);
    assert!(reads >= 300, "{reads} reads");
    assert!(bad.is_empty(), "partial files read: {bad:?}");
    for f in &files {
        rsp(f);
    }
}

// ---------------------------------------------------------------- V2 defects

#[tokio::test]
async fn defect_rsp_not_atomic() {
    let amc = amc(&["rsp-not-atomic"]);
    received(&amc, 3).await;
    let drop = tempfile::tempdir().unwrap();
    let watch = Watch::start(drop.path());
    let started = std::time::Instant::now();
    let files = amc.payment_run(drop.path()).unwrap();
    assert!(started.elapsed() >= RSP_NOT_ATOMIC_PAUSE * 3);
    let (_, bad) = watch.finish();
    assert!(!bad.is_empty(), "the reader never saw a partial file");
    // The files end whole, and no temporary file was used.
    assert_eq!(files.len(), 3);
    for f in &files {
        rsp(f);
    }
    assert_eq!(std::fs::read_dir(drop.path()).unwrap().count(), 3);
}

#[tokio::test]
async fn defect_r08_unchecked() {
    let amc = amc(&["r08-unchecked"]);
    ok(&amc, Op::Clc, &period_req(1, false, "D1")).await;
    ok(&amc, Op::Clc, &period_req(1, false, "D1")).await;
    // The last period still closes the dossier.
    ok(&amc, Op::Clc, &period_req(2, true, "D1")).await;
    assert_eq!(ko(&amc, Op::Clc, &period_req(3, false, "D1")).await, "R08");
}

#[tokio::test]
async fn defect_last_period_ignored() {
    let amc = amc(&["last-period-ignored"]);
    ok(&amc, Op::Clc, &period_req(1, true, "D1")).await;
    ok(&amc, Op::Clc, &period_req(2, false, "D1")).await;
    // The same period twice is still R08.
    assert_eq!(ko(&amc, Op::Clc, &period_req(2, false, "D1")).await, "R08");
}

#[tokio::test]
async fn defect_dre_cancelled_engagement() {
    let amc = amc(&["dre-cancelled-engagement"]);
    let n = engage(&amc, &p01()).await;
    let del = Req {
        numero_engagement: n.clone(),
        ..p01()
    };
    ok(&amc, Op::Del, &del).await;
    ok(&amc, Op::Dre, &dre_req(&n, "F1")).await;
    assert_eq!(
        ko(&amc, Op::Dre, &dre_req("ENG-FFFFFFFFFFFF", "F2")).await,
        "R20"
    );
}

#[tokio::test]
async fn defect_dre_duplicate_number() {
    let amc = amc(&["dre-duplicate-number"]);
    let n1 = engage(&amc, &p01()).await;
    let n2 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    ok(&amc, Op::Dre, &dre_req(&n2, "F1")).await;
    // R26 still holds.
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n1, "F2")).await, "R26");
}

#[tokio::test]
async fn defect_dre_twice_invoiced() {
    let amc = amc(&["dre-twice-invoiced"]);
    let n1 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F2")).await;
    // R22 still holds.
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n1, "F1")).await, "R22");
    // Both invoices are paid: a double payment.
    let drop = tempfile::tempdir().unwrap();
    assert_eq!(amc.payment_run(drop.path()).unwrap().len(), 2);
}

#[tokio::test]
async fn defect_dre_amounts_unchecked() {
    let amc = amc(&["dre-amounts-unchecked"]);
    let n1 = engage(&amc, &p01()).await;
    let wrong = Req {
        total_amc: "99.00".into(),
        montants_amc: vec!["99.00".into()],
        ..dre_req(&n1, "F1")
    };
    ok(&amc, Op::Dre, &wrong).await;
    // Paid what was invoiced.
    let drop = tempfile::tempdir().unwrap();
    let files = amc.payment_run(drop.path()).unwrap();
    assert_eq!(
        rsp_get(&rsp(&files[0]), "paiement/montantPaye").unwrap(),
        "99.00"
    );
}

#[tokio::test]
async fn defect_del_invoiced() {
    let amc = amc(&["del-invoiced"]);
    let n1 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    let del = Req {
        numero_engagement: n1.clone(),
        ..p01()
    };
    ok(&amc, Op::Del, &del).await;
    assert_eq!(
        amc.registry().get(&n1).unwrap().state,
        EngagementState::Cancelled
    );
    // R11 still holds.
    assert_eq!(ko(&amc, Op::Del, &del).await, "R11");
}

#[tokio::test]
async fn defect_anf_paid() {
    let amc = amc(&["anf-paid"]);
    let n1 = engage(&amc, &p01()).await;
    let n2 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    let early = Req {
        date_facture: "2026-03-01".into(),
        ..dre_req(&n2, "F2")
    };
    ok(&amc, Op::Dre, &early).await;
    let drop = tempfile::tempdir().unwrap();
    amc.payment_run(drop.path()).unwrap();
    ok(&amc, Op::Anf, &anf_req("F1")).await;
    assert_eq!(
        amc.registry().get(&n1).unwrap().state,
        EngagementState::Active
    );
    // Rejected is still R24.
    assert_eq!(ko(&amc, Op::Anf, &anf_req("F2")).await, "R24");
}

#[tokio::test]
async fn defect_anf_in_v1() {
    let amc = amc(&["anf-in-v1"]);
    let n1 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    let v1 = Req {
        version: "1.04".into(),
        ..anf_req("F1")
    };
    let a = ok(&amc, Op::Anf, &v1).await;
    assert_eq!(a.get("enteteReponse/versionNorme").unwrap(), "1.04");
    // Versions the AMC does not accept are still refused.
    let amc_b = amc_on("B", &["anf-in-v1"]);
    let v2 = Req {
        version: "2.00".into(),
        ..p08()
    };
    let a = fault_of(&amc_b, Op::Anf, &v2.xml(Op::Anf)).await;
    assert_eq!(a.subcode(), "VersionNonSupportee");
    let v1b = Req {
        version: "1.04".into(),
        ..p08()
    };
    assert_eq!(ko(&amc_b, Op::Anf, &v1b).await, "R23");
}

#[tokio::test]
async fn defect_rsp_early_invoice_paid() {
    let amc = amc(&["rsp-early-invoice-paid"]);
    let n1 = engage(&amc, &p01()).await;
    let early = Req {
        date_facture: "2026-03-04".into(),
        ..dre_req(&n1, "F1")
    };
    ok(&amc, Op::Dre, &early).await;
    let drop = tempfile::tempdir().unwrap();
    let files = amc.payment_run(drop.path()).unwrap();
    assert_eq!(
        rsp_get(&rsp(&files[0]), "paiement/montantPaye").unwrap(),
        "24.00"
    );
}

#[tokio::test]
async fn defect_rsp_amount_wrong() {
    let amc = amc(&["rsp-amount-wrong"]);
    let n1 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    let n2 = engage(&amc, &p01()).await;
    let early = Req {
        date_facture: "2026-03-04".into(),
        ..dre_req(&n2, "F2")
    };
    ok(&amc, Op::Dre, &early).await;
    let drop = tempfile::tempdir().unwrap();
    let files = amc.payment_run(drop.path()).unwrap();
    assert_eq!(
        rsp_get(&rsp(&files[0]), "paiement/montantPaye").unwrap(),
        "23.99"
    );
    // Rejections unchanged.
    assert_eq!(rsp_get(&rsp(&files[1]), "rejet/code").unwrap(), "R25");
}

#[tokio::test]
async fn defect_message_patient_in_v1() {
    let amc = amc(&["message-patient-in-v1"]);
    let a = ok(&amc, Op::Clc, &p06()).await;
    assert!(a.get("messagePatient").unwrap().contains("80 €"));
    // SIM and beneficiaries without a message unchanged.
    assert!(
        ok(&amc, Op::Sim, &p06())
            .await
            .get("messagePatient")
            .is_none()
    );
    assert!(
        ok(&amc, Op::Clc, &p01())
            .await
            .get("messagePatient")
            .is_none()
    );
}

#[tokio::test]
async fn defect_optam_ignored() {
    let mut dh = line("DH", "1", "200.00", "50.00");
    dh.optam = Some("false");
    let oqn = Req {
        version: "2.00".into(),
        categorie: Some("EXOQN".into()),
        lines: vec![dh, line("DH", "1", "200.00", "50.00")],
        ..p06()
    };
    assert_eq!(
        ok(&amc(&[]), Op::Clc, &oqn).await.amounts(),
        ["120.00", "150.00"]
    );
    assert_eq!(
        ok(&amc(&["optam-ignored"]), Op::Clc, &oqn).await.amounts(),
        ["150.00", "150.00"]
    );
}

#[tokio::test]
async fn defect_anf_engagement_stays_invoiced() {
    let amc = amc(&["anf-engagement-stays-invoiced"]);
    let n1 = engage(&amc, &p01()).await;
    ok(&amc, Op::Dre, &dre_req(&n1, "F1")).await;
    ok(&amc, Op::Anf, &anf_req("F1")).await;
    assert_eq!(
        amc.registry().facture("F1").unwrap().state,
        crate::roc::FactureState::Cancelled
    );
    assert_eq!(ko(&amc, Op::Dre, &dre_req(&n1, "F1b")).await, "R26");
    let del = Req {
        numero_engagement: n1,
        ..p01()
    };
    assert_eq!(ko(&amc, Op::Del, &del).await, "R12");
}

/// Every new defect leaves the rules of the others alone: each V2 rule still holds under
/// every defect but its own.
#[tokio::test]
async fn v2_defects_break_only_their_rule() {
    // (defect, the rule it breaks) for the rules checked below.
    let rules = [
        ("r08-unchecked", "R08-same"),
        ("last-period-ignored", "R08-last"),
        ("dre-cancelled-engagement", "R20"),
        ("dre-duplicate-number", "R22"),
        ("dre-twice-invoiced", "R26"),
        ("dre-amounts-unchecked", "R21"),
        ("del-invoiced", "R12"),
        ("anf-paid", "R24"),
        ("anf-in-v1", "ANF-V1"),
        ("rsp-early-invoice-paid", "R25"),
        ("rsp-amount-wrong", "PAID"),
        ("anf-engagement-stays-invoiced", "ANF-ACTIVE"),
    ];
    for d in crate::defects::AMC {
        if matches!(
            d.name,
            "hang-del"
                | "slow-clc"
                | "soap11-envelope"
                | "wrong-namespace"
                | "del-answer-truncated"
        ) {
            continue;
        }
        let broken = rules
            .iter()
            .find(|(n, _)| *n == d.name)
            .map(|(_, r)| *r)
            .unwrap_or("");
        let amc = amc(&[d.name]);
        let name = d.name;
        // R08, same period.
        ok(&amc, Op::Clc, &period_req(1, false, "S")).await;
        let a = send(&amc, Op::Clc, &period_req(1, false, "S")).await;
        assert_eq!(a.statut() == "KO", broken != "R08-same", "{name}");
        // R08, after the last.
        ok(&amc, Op::Clc, &period_req(1, true, "L")).await;
        let a = send(&amc, Op::Clc, &period_req(2, false, "L")).await;
        assert_eq!(a.statut() == "KO", broken != "R08-last", "{name}");
        // R20 on a cancelled engagement.
        let n = engage(&amc, &p01()).await;
        let del = Req {
            numero_engagement: n.clone(),
            ..p01()
        };
        ok(&amc, Op::Del, &del).await;
        let a = send(&amc, Op::Dre, &dre_req(&n, "C1")).await;
        assert_eq!(a.statut() == "KO", broken != "R20", "{name}");
        // R21.
        let n = engage(&amc, &p01()).await;
        let wrong = Req {
            total_amc: "25.00".into(),
            ..dre_req(&n, "W1")
        };
        let a = send(&amc, Op::Dre, &wrong).await;
        assert_eq!(a.statut() == "KO", broken != "R21", "{name}");
        // R22, R26, R12.
        let n = engage(&amc, &p01()).await;
        ok(&amc, Op::Dre, &dre_req(&n, "D1")).await;
        let n2 = engage(&amc, &p01()).await;
        let a = send(&amc, Op::Dre, &dre_req(&n2, "D1")).await;
        assert_eq!(a.statut() == "KO", broken != "R22", "{name}");
        let a = send(&amc, Op::Dre, &dre_req(&n, "D2")).await;
        assert_eq!(a.statut() == "KO", broken != "R26", "{name}");
        let del = Req {
            numero_engagement: n.clone(),
            ..p01()
        };
        let a = send(&amc, Op::Del, &del).await;
        assert_eq!(a.statut() == "KO", broken != "R12", "{name}");
        // ANF in 1.04.
        let n = engage(&amc, &p01()).await;
        ok(&amc, Op::Dre, &dre_req(&n, "A1")).await;
        let v1 = Req {
            version: "1.04".into(),
            ..anf_req("A1")
        };
        let a = send(&amc, Op::Anf, &v1).await;
        let fault = soap::find_fault(&a.root).is_some();
        assert_eq!(fault, broken != "ANF-V1", "{name}");
        // ANF frees the engagement.
        let n = engage(&amc, &p01()).await;
        ok(&amc, Op::Dre, &dre_req(&n, "B1")).await;
        ok(&amc, Op::Anf, &anf_req("B1")).await;
        let a = send(&amc, Op::Dre, &dre_req(&n, "B2")).await;
        assert_eq!(a.statut() == "OK", broken != "ANF-ACTIVE", "{name}");
        // The payment run: P1 paid 24.00, P2 (early) rejected; then ANF of P1 is R24.
        let drop = tempfile::tempdir().unwrap();
        amc.payment_run(drop.path()).unwrap();
        let n = engage(&amc, &p01()).await;
        ok(&amc, Op::Dre, &dre_req(&n, "P1")).await;
        let n = engage(&amc, &p01()).await;
        let early = Req {
            date_facture: "2026-03-04".into(),
            ..dre_req(&n, "P2")
        };
        ok(&amc, Op::Dre, &early).await;
        let files = amc.payment_run(drop.path()).unwrap();
        assert_eq!(files.len(), 2, "{name}");
        let paid = rsp_get(
            &rsp(&drop.path().join("RSP-P1.xml")),
            "paiement/montantPaye",
        );
        assert_eq!(paid.as_deref() == Some("24.00"), broken != "PAID", "{name}");
        let rejet = rsp_get(&rsp(&drop.path().join("RSP-P2.xml")), "rejet/code");
        assert_eq!(rejet.is_some(), broken != "R25", "{name}");
        let a = send(&amc, Op::Anf, &anf_req("P1")).await;
        assert_eq!(a.statut() == "KO", broken != "R24", "{name}");
    }
}

// ---------------------------------------------------------------- over TLS

#[tokio::test]
async fn serves_over_mutual_tls() {
    let pki = crate::pki::generate(FINESS).unwrap();
    let cfg = AmcConfig::new(population(), "A", BTreeSet::new());
    let server = start("127.0.0.1:0", &pki, cfg).await.unwrap();
    let tls = crate::net::tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
    let timeouts = crate::net::client::Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(10),
    };
    let req = crate::net::client::Request {
        url: server.url("/roc/IDB"),
        headers: soap::SoapVersion::V12.request_headers("urn:roc:model:sel:IDB"),
        body: p01().xml(Op::Idb).into_bytes(),
    };
    let ex = crate::net::client::post(&req, tls, timeouts, ("establishment", "amc", "IDB")).await;
    let resp = ex.response.as_ref().unwrap_or_else(|| panic!("{ex:?}"));
    assert_eq!(resp.status, Some(200));
    let root = xml::parse(&resp.text()).unwrap();
    let body = root.elements().find(|e| e.local == "Body").unwrap();
    let rep = body.child(SEL_NS, "idbReponse").unwrap();
    assert_eq!(rep.child(SEL_NS, "statut").unwrap().text(), "OK");

    // Without a client certificate: refused by TLS.
    let bare = crate::net::tls::client_config(&pki.ca_cert_pem, None).unwrap();
    let ex = crate::net::client::post(&req, bare, timeouts, ("establishment", "amc", "IDB")).await;
    assert!(ex.response.is_none(), "{ex:?}");
    assert_eq!(
        ex.error.as_ref().map(|e| e.kind),
        Some(crate::outcome::TransportErrorKind::Tls)
    );

    // Unknown defects are refused.
    let cfg = AmcConfig::new(population(), "A", set(&["nope"]));
    assert!(start("127.0.0.1:0", &pki, cfg).await.is_err());
    server.shutdown().await;
}

#[tokio::test]
async fn the_handle_serves_and_runs_payments() {
    let pki = crate::pki::generate(FINESS).unwrap();
    let cfg = AmcConfig::new(population(), "A", BTreeSet::new());
    let (server, amc) = start_with_handle("127.0.0.1:0", &pki, cfg).await.unwrap();
    let tls = crate::net::tls::client_config(&pki.ca_cert_pem, Some(&pki.client)).unwrap();
    let timeouts = crate::net::client::Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(10),
    };
    let post = |op: Op, body: String| {
        let req = crate::net::client::Request {
            url: server.url(&format!("/roc/{}", op.name())),
            headers: soap::SoapVersion::V12
                .request_headers(&format!("urn:roc:model:sel:{}", op.name())),
            body: body.into_bytes(),
        };
        let tls = tls.clone();
        async move {
            let ex =
                crate::net::client::post(&req, tls, timeouts, ("establishment", "amc", "X")).await;
            let text = ex
                .response
                .as_ref()
                .unwrap_or_else(|| panic!("{ex:?}"))
                .text();
            Answer::of(Response {
                status: 200,
                headers: vec![],
                body: text.into_bytes(),
            })
        }
    };
    let clc = post(Op::Clc, p01().xml(Op::Clc)).await;
    let n = clc.get("numeroEngagement").unwrap();
    let dre = post(Op::Dre, dre_req(&n, "F1").xml(Op::Dre)).await;
    assert_eq!(dre.statut(), "OK", "{}", dre.text);
    // The same AMC: its registry saw it, its payment run pays it.
    assert_eq!(
        amc.registry().get(&n).unwrap().state,
        EngagementState::Invoiced
    );
    let drop = tempfile::tempdir().unwrap();
    let files = amc
        .payment_run_async(drop.path().to_path_buf(), Default::default())
        .await
        .unwrap();
    assert_eq!(files, [drop.path().join("RSP-F1.xml")]);
    server.shutdown().await;
}
