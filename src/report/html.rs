//! The conformity report as one self-contained HTML5 file, in French or English.
//!
//! Inline CSS (`html/report.css`) and one small script at the end (`html/report.js`: verdict,
//! tag and text filters over the scenario list, opening every `<details>` before printing).
//! Nothing is fetched from the network. Like the other reports it reads only the [`Outcome`];
//! everything taken from it is escaped, and C0 control characters (other than tab, newline
//! and carriage return) are shown as their Unicode control pictures (U+2400…).
//!
//! Layout: verdict banner with the counts, the SUT and the run, the requirement matrix, latency
//! per operation against the profile's SLA, then the scenarios (failed first), each a
//! `<details>` with a sequence diagram (inline SVG), its steps, findings, body diffs and the
//! messages as sent and received.

use crate::outcome::{
    Exchange, Finding, HttpMessage, Outcome, ReqStatus, ScenarioOutcome, Status, StepOutcome,
    TransportErrorKind, verdict,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write};

const CSS: &str = include_str!("html/report.css");
const JS: &str = include_str!("html/report.js");

/// Bodies longer than this (in bytes, after pretty-printing) are cut in the report; the JSON
/// outcome keeps them whole.
const MAX_BODY: usize = 256 * 1024;

/// The reason shown in a scenario's summary line is cut after this many characters.
const REASON_MAX: usize = 300;

/// The language of the report's labels. Data (ids, titles, messages, dates, numbers) is shown
/// as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    /// `fr` or `en`, case-insensitive, with or without a region (`fr-FR`, `en_GB`); the names
    /// `français`/`francais`/`french` and `english`/`anglais` are accepted too.
    pub fn parse(s: &str) -> Option<Lang> {
        let s = s.trim().to_lowercase();
        let base = s.split(['-', '_']).next().unwrap_or("");
        match base {
            "fr" | "fra" | "fre" | "french" | "francais" | "français" => Some(Lang::Fr),
            "en" | "eng" | "english" | "anglais" => Some(Lang::En),
            _ => None,
        }
    }

    /// The BCP 47 code written in `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Lang, String> {
        Lang::parse(s).ok_or_else(|| format!("unknown language `{s}` (expected fr or en)"))
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The translation table: every label of the report, in French and in English.
macro_rules! labels {
    ($($key:ident => $fr:expr, $en:expr;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum L { $($key,)* }
        impl Lang {
            fn t(self, l: L) -> &'static str {
                match self {
                    Lang::Fr => match l { $(L::$key => $fr,)* },
                    Lang::En => match l { $(L::$key => $en,)* },
                }
            }
        }
    };
}

labels! {
    ReportTitle => "Rapport de conformité ROC", "ROC conformity report";
    Lab => "roclab — laboratoire de conformité ROC", "roclab — ROC conformity lab";
    Contents => "Sommaire", "Contents";
    Colon => "\u{a0}: ", ": ";
    Verdict => "Verdict", "Verdict";
    GlossConformant => "", "conformant";
    GlossNotConformant => "", "not conformant";
    Interrupted => "INTERROMPU", "INTERROMPU";
    GlossInterrupted => "", "interrupted";
    InterruptedNote => "L’exécution a été interrompue avant la fin : les scénarios non exécutés ne sont pas évalués et le verdict est", "The run was interrupted before the end: scenarios not run were not assessed and the verdict is";
    VerdictRule => "Conforme : exécution complète du pack, aucun scénario échoué, en erreur, ignoré ou non exécuté, et chaque exigence évaluée et satisfaite.", "Conformant: a complete run of the pack, no scenario failed, errored, skipped or not run, and every requirement evaluated and met.";
    VScoped => "CONFORME SUR LE PÉRIMÈTRE TESTÉ", "CONFORME SUR LE PÉRIMÈTRE TESTÉ";
    GlossScoped => "", "conformant on the tested scope";
    VScopedRule => "Aucun contrôle n’a échoué, mais l’exécution ne couvre pas tout le pack : ce verdict ne vaut que pour le périmètre testé.", "No check failed, but the run does not cover the whole pack: this verdict holds for the tested scope only.";
    VNoVerdict => "AUCUN VERDICT POSSIBLE", "AUCUN VERDICT POSSIBLE";
    GlossNoVerdict => "", "no verdict possible";
    VNoVerdictRule => "Le laboratoire n’a pas pu tester (scénarios en erreur, ou aucun scénario réussi) ; aucun contrôle du système testé n’a échoué.", "The lab could not test (scenarios errored, or none passed); no check of the system under test failed.";
    VNotConformantRule => "Non conforme : au moins un contrôle du système testé a échoué ; les exigences non satisfaites sont dans la matrice.", "Not conformant: at least one check of the system under test failed; the requirements not met are in the matrix.";
    ScopeTitle => "Périmètre de l’exécution", "Scope of the run";
    ScopeFilter => "filtre <code>{f}</code> : {n} scénario(s) sur les {m} du pack", "filter <code>{f}</code>: {n} of the pack’s {m} scenarios";
    ScopeShare => "part {p} d’une exécution partagée", "share {p} of a partitioned run";
    ScopePart => "{n} scénario(s) sur les {m} du pack", "{n} of the pack’s {m} scenarios";
    ScopeSkipped => "{n} scénario(s) ignoré(s)", "{n} scenario(s) skipped";
    ScopeCaps => "capacités non déclarées par le profil", "capabilities not declared by the profile";
    ScopeErrored => "{n} scénario(s) en erreur (non testés)", "{n} scenario(s) errored (not tested)";
    ScopeNotRun => "{n} scénario(s) non exécuté(s)", "{n} scenario(s) not run";
    ScopeInterrupted => "exécution interrompue", "run interrupted";
    ScopeNotEvaluated => "{n} exigence(s) non évaluée(s)", "{n} requirement(s) not evaluated";
    RNotEvaluated => "non évaluée", "not evaluated";
    RMetPl => "satisfaites", "met";
    RNotMetPl => "non satisfaites", "not met";
    RNotEvaluatedPl => "non évaluées", "not evaluated";
    RUncoveredPl => "non couvertes", "uncovered";
    NotMetIn => "échoue dans", "fails in";
    NotEvaluatedIn => "non évaluée dans", "not evaluated in";
    Attributed => "Exigences", "Requirements";
    Unattributed => "rattaché à aucune exigence", "attributed to no requirement";
    ToExamine => "À examiner :", "To examine:";
    More => "et {n} autres", "and {n} more";
    CTotal => "scénarios", "scenarios";
    CPassed => "réussis", "passed";
    CFailed => "échoués", "failed";
    CErrored => "en erreur", "errored";
    CSkipped => "ignorés", "skipped";
    CNotRun => "non exécutés", "not run";
    SPassed => "Réussi", "Passed";
    SFailed => "Échoué", "Failed";
    SErrored => "En erreur", "Errored";
    SSkipped => "Ignoré", "Skipped";
    SNotRun => "Non exécuté", "Not run";
    RMet => "satisfaite", "met";
    RNotMet => "non satisfaite", "not met";
    RUncovered => "non couverte", "uncovered";
    Requirements => "exigences", "requirements";
    RequirementOne => "exigence", "requirement";
    SecRun => "Système testé et exécution", "System under test and run";
    SecReq => "Matrice des exigences", "Requirement matrix";
    SecLatency => "Latence par opération", "Latency per operation";
    SecScenarios => "Scénarios", "Scenarios";
    CardSut => "Système testé", "System under test";
    CardPack => "Pack de scénarios", "Scenario pack";
    CardRun => "Exécution", "Run";
    CardTls => "TLS observé", "TLS seen";
    Profile => "Profil", "Profile";
    SutKind => "Type de SUT", "SUT kind";
    KindAmc => "AMC — organisme complémentaire", "AMC — complementary insurer";
    KindGap => "GAP — logiciel de gestion administrative du patient", "GAP — hospital patient administration software";
    Embedded => "SUT embarqué", "Embedded SUT";
    EmbeddedYes => "oui (référence embarquée de roclab)", "yes (roclab’s embedded reference)";
    EmbeddedNo => "non (système externe)", "no (external system)";
    BaseUrl => "URL de base", "Base URL";
    Driver => "Pilote", "Driver";
    Defects => "Défauts injectés", "Injected defects";
    NoneM => "aucun", "none";
    Sla => "SLA du profil", "Profile SLA";
    SlaText => "médiane cible {m} ms, limite {l} ms", "target median {m} ms, limit {l} ms";
    SlaUnset => "non définie", "not set";
    PackId => "Identifiant", "Id";
    Title => "Titre", "Title";
    Version => "Version", "Version";
    Norme => "Norme ROC", "ROC norme";
    PackSut => "Côté testé", "Side tested";
    Path => "Chemin", "Path";
    Sha => "SHA-256", "SHA-256";
    RoclabVersion => "Version de roclab", "roclab version";
    Started => "Début", "Started";
    Duration => "Durée", "Duration";
    WasInterrupted => "Interrompue", "Interrupted";
    Yes => "oui", "yes";
    No => "non", "no";
    Format => "Format du résultat", "Outcome format";
    TlsVersions => "Versions TLS", "TLS versions";
    PeerSubjects => "Certificats présentés par les pairs", "Certificates presented by peers";
    LocalSubjects => "Certificats présentés par roclab", "Certificates presented by roclab";
    NoneSeen => "aucun", "none seen";
    Requirement => "Exigence", "Requirement";
    Statement => "Énoncé", "Statement";
    Spec => "Référence", "Reference";
    VerifiedBy => "Scénarios", "Scenarios";
    NoScenario => "aucun scénario", "no scenario";
    NoRequirement => "Le pack ne déclare aucune exigence.", "The pack declares no requirement.";
    Operation => "Opération", "Operation";
    Answers => "Réponses", "Answers";
    Unanswered => "Sans réponse", "Unanswered";
    Median => "Médiane", "Median";
    P95 => "p95", "p95";
    Max => "Max", "Max";
    SlaCol => "SLA", "SLA";
    WithinSla => "dans le SLA", "within SLA";
    OverTarget => "médiane au-dessus de la cible", "median over target";
    OverLimit => "max au-dessus de la limite", "max over limit";
    NoSla => "pas de SLA", "no SLA";
    LatencyNote => "Latence : de l’envoi de la requête au dernier octet de la réponse ; échanges ayant reçu une réponse seulement. p95 au rang le plus proche.", "Latency: from the request sent to the last byte of the answer; answered exchanges only. p95 by nearest rank.";
    NoExchange => "Aucun échange enregistré.", "No exchange recorded.";
    FilterVerdict => "Verdict", "Verdict";
    FilterTag => "Étiquette", "Tag";
    AllTags => "toutes", "all";
    Search => "Recherche", "Search";
    SearchPh => "identifiant, titre, constat…", "id, title, finding…";
    Shown => "{n} / {m} affichés", "{n} of {m} shown";
    ExpandAll => "Tout déplier", "Expand all";
    CollapseAll => "Tout replier", "Collapse all";
    NoScenarios => "Aucun scénario.", "No scenario.";
    Source => "Source", "Source";
    Verifies => "Vérifie", "Verifies";
    Tags => "Étiquettes", "Tags";
    Reason => "Motif", "Reason";
    NoStep => "Aucune étape exécutée.", "No step was run.";
    Step => "Étape", "Step";
    StepFindings => "constat(s)", "finding(s)";
    Findings => "Constats", "Findings";
    Location => "Emplacement", "Location";
    Expected => "Attendu", "Expected";
    Actual => "Obtenu", "Actual";
    BodyDiff => "Différences du corps", "Body differences";
    DiffLegend => "− attendu · + obtenu", "− expected · + actual";
    Request => "Requête", "Request";
    Response => "Réponse", "Response";
    NoResponse => "pas de réponse", "no answer";
    Bytes => "octets", "bytes";
    BodiesNote => "Corps XML et JSON réindentés pour la lecture (tels qu’envoyés et reçus dans outcome.json) ; tailles en octets sur le fil. Les scénarios échoués ou en erreur sont dépliés.", "XML and JSON bodies re-indented for reading (as sent and received in outcome.json); sizes in bytes on the wire. Failed and errored scenarios are expanded.";
    Binary => "corps non UTF-8, en base64", "non-UTF-8 body, in base64";
    Truncated => "… coupé ici : {n} octets au total, voir outcome.json", "… cut here: {n} bytes in all, see outcome.json";
    Captures => "Captures", "Captures";
    TransportError => "Erreur de transport", "Transport error";
    Latency => "latence", "latency";
    Total => "durée", "duration";
    KConnect => "connexion", "connect";
    KTls => "TLS", "TLS";
    KPeerCert => "certificat du pair", "peer certificate";
    KTimeout => "délai dépassé", "timeout";
    KProtocol => "protocole", "protocol";
    Establishment => "Établissement", "Establishment";
    Annuaire => "Annuaire", "Annuaire";
    Footer => "Rapport produit par roclab {v} à partir du résultat de l’exécution (format {f}). Fichier autonome : aucune ressource externe.", "Report produced by roclab {v} from the run’s outcome (format {f}). Self-contained file: no external resource.";
}

/// Render the whole report.
pub fn render(o: &Outcome, lang: Lang) -> String {
    let mut r = Renderer::new(o, lang);
    r.document();
    r.out
}

/// `write!` into a `String`, which cannot fail.
macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        let _ = write!($dst, $($arg)*);
    }};
}

// ---------------------------------------------------------------------------------------------
// Escaping and small helpers

/// Escapes text: `&`, `<`, `>`; control characters become visible pictures (U+2400…), other
/// characters HTML forbids become U+FFFD.
struct E<'a>(&'a str);

/// Escapes an attribute value: as [`E`], and the quotes too.
struct A<'a>(&'a str);

impl fmt::Display for E<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape(f, self.0, false)
    }
}

impl fmt::Display for A<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        escape(f, self.0, true)
    }
}

fn escape(f: &mut fmt::Formatter<'_>, s: &str, attr: bool) -> fmt::Result {
    let mut last = 0;
    let mut buf = [0u8; 4];
    for (i, c) in s.char_indices() {
        let rep: &str = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' if attr => "&quot;",
            '\'' if attr => "&#39;",
            '\t' | '\n' | '\r' => continue,
            c if (c as u32) < 0x20 => char::from_u32(0x2400 + c as u32)
                .unwrap_or('\u{fffd}')
                .encode_utf8(&mut buf),
            '\u{7f}' => "\u{2421}",
            '\u{80}'..='\u{9f}' => "\u{fffd}",
            c if is_noncharacter(c) => "\u{fffd}",
            _ => continue,
        };
        f.write_str(&s[last..i])?;
        f.write_str(rep)?;
        last = i + c.len_utf8();
    }
    f.write_str(&s[last..])
}

fn is_noncharacter(c: char) -> bool {
    let u = c as u32;
    (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE
}

fn esc(s: &str) -> String {
    E(s).to_string()
}

/// An id fragment made of `[A-Za-z0-9_.-]` only.
fn id_part(s: &str) -> String {
    let v: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if v.is_empty() { "_".into() } else { v }
}

/// Hands out document-unique ids.
#[derive(Default)]
struct Ids(HashSet<String>);

impl Ids {
    fn claim(&mut self, base: String) -> String {
        if self.0.insert(base.clone()) {
            return base;
        }
        (2..)
            .map(|n| format!("{base}-{n}"))
            .find(|c| self.0.insert(c.clone()))
            .expect("an unused id")
    }
}

/// Milliseconds as a short decimal with a dot (as in the data): 1.10, 42.3, 512.
fn ms(v: f64) -> String {
    if !v.is_finite() {
        "—".into()
    } else if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// A run's duration: milliseconds, seconds past a second, minutes past a minute.
fn duration(v: f64) -> String {
    if !v.is_finite() || v < 1000.0 {
        format!("{} ms", ms(v))
    } else if v < 60_000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        let s = (v / 1000.0).round() as u64;
        format!("{} min {:02} s ({:.1} s)", s / 60, s % 60, v / 1000.0)
    }
}

fn truncate(s: &str, max: usize) -> (&str, bool) {
    match s.char_indices().nth(max) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

/// The scenario status whose colours and icon a requirement status takes.
fn req_status(s: ReqStatus) -> Status {
    match s {
        ReqStatus::Met => Status::Passed,
        ReqStatus::NotMet => Status::Failed,
        ReqStatus::NotEvaluated => Status::Skipped,
    }
}

fn status_key(s: Status) -> &'static str {
    match s {
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Errored => "errored",
        Status::Skipped => "skipped",
        Status::NotRun => "not_run",
    }
}

fn status_icon(s: Status) -> &'static str {
    match s {
        Status::Passed => "✓",
        Status::Failed => "✗",
        Status::Errored => "⚠\u{fe0e}",
        Status::Skipped => "⊘",
        Status::NotRun => "◌",
    }
}

/// Failed first, then errored, not run, skipped, passed.
fn status_rank(s: Status) -> u8 {
    match s {
        Status::Failed => 0,
        Status::Errored => 1,
        Status::NotRun => 2,
        Status::Skipped => 3,
        Status::Passed => 4,
    }
}

const ORDER: [Status; 5] = [
    Status::Failed,
    Status::Errored,
    Status::NotRun,
    Status::Skipped,
    Status::Passed,
];

/// Lifelines: the establishment or the GAP first, then the annuaire, then the others sorted.
fn actor_rank(a: &str) -> u8 {
    match a {
        "establishment" => 0,
        "gap" => 1,
        "annuaire" => 2,
        _ => 3,
    }
}

/// A transport error that came after the request was sent (no answer in time, or not HTTP).
fn late_error(e: &Exchange) -> bool {
    e.response.is_none()
        && matches!(
            e.error.as_ref().map(|x| x.kind),
            Some(TransportErrorKind::Timeout | TransportErrorKind::Protocol)
        )
}

fn reason_phrase(start_line: &str) -> &str {
    let mut it = start_line.splitn(3, ' ');
    it.next();
    it.next();
    it.next().unwrap_or("").trim()
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Re-indent an XML (or JSON) body for reading; anything else comes back as it is.
fn pretty_body(body: &str) -> (String, bool) {
    let t = body.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('<')
        && let Ok(root) = crate::xml::parse(body)
    {
        let mut s = String::with_capacity(body.len() + 64);
        if t.starts_with("<?xml")
            && let Some(end) = t.find("?>")
        {
            s.push_str(&t[..end + 2]);
            s.push('\n');
        }
        s.push_str(&crate::xml::pretty(&root));
        return (s, true);
    }
    if (t.starts_with('{') || t.starts_with('['))
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(body)
        && let Ok(s) = serde_json::to_string_pretty(&v)
    {
        return (s, true);
    }
    (body.to_string(), false)
}

/// Word tokens for the emphasis of changed words: runs of letters, digits, `.` and `_`, runs of
/// white space, and every other character alone.
fn tokens(s: &str) -> Vec<&str> {
    let mut v = Vec::new();
    let mut start = 0;
    let mut kind = 0u8;
    for (i, c) in s.char_indices() {
        let k = if c.is_alphanumeric() || c == '.' || c == '_' {
            1
        } else if c.is_whitespace() {
            2
        } else {
            3
        };
        if (k == 3 || k != kind) && i > start {
            v.push(&s[start..i]);
            start = i;
        }
        kind = k;
    }
    if start < s.len() {
        v.push(&s[start..]);
    }
    v
}

/// Escaped HTML of `old` and `new` with the words that differ wrapped in `<del>` and `<ins>`,
/// when the two are alike enough for that to help; otherwise both plainly escaped.
fn emphasize(old: &str, new: &str) -> (String, String) {
    use similar::{Algorithm, DiffTag, capture_diff_slices};
    let (a, b) = (tokens(old), tokens(new));
    let ops = capture_diff_slices(Algorithm::Myers, &a, &b);
    let same: usize = ops
        .iter()
        .map(|op| op.as_tag_tuple())
        .filter(|(t, _, _)| *t == DiffTag::Equal)
        .map(|(_, r, _)| a[r].iter().map(|t| t.len()).sum::<usize>())
        .sum();
    if old.is_empty() || new.is_empty() || same * 10 < (old.len() + new.len()) * 3 {
        return (esc(old), esc(new));
    }
    let (mut x, mut y) = (String::new(), String::new());
    for op in &ops {
        let (tag, ro, rn) = op.as_tag_tuple();
        let so: String = a[ro].concat();
        let sn: String = b[rn].concat();
        match tag {
            DiffTag::Equal => {
                w!(x, "{}", E(&so));
                w!(y, "{}", E(&sn));
            }
            _ => {
                if !so.is_empty() {
                    w!(x, "<del>{}</del>", E(&so));
                }
                if !sn.is_empty() {
                    w!(y, "<ins>{}</ins>", E(&sn));
                }
            }
        }
    }
    (x, y)
}

/// Distance between two lifelines of a sequence diagram.
const COL: i32 = 220;

/// The arrows of a sequence diagram, gathered by style so each style is one `<path>`.
#[derive(Default)]
struct Seq {
    q: String,
    qb: String,
    r: String,
    rb: String,
    x: String,
    /// Loops of messages to oneself.
    lp: String,
    text: String,
}

impl Seq {
    /// One arrow at height `y`, labelled above: a request (`response` false) or an answer
    /// (dashed); `bad` in red; `broken` stops midway with a cross.
    #[allow(clippy::too_many_arguments)]
    fn arrow(
        &mut self,
        x1: i32,
        x2: i32,
        y: i32,
        label: &str,
        response: bool,
        bad: bool,
        broken: bool,
    ) {
        let bad = bad || broken;
        let path = match (response, bad) {
            (false, false) => &mut self.q,
            (false, true) => &mut self.qb,
            (true, false) => &mut self.r,
            (true, true) => &mut self.rb,
        };
        let (tx, ty, start) = if x1 == x2 {
            // A message to oneself: a small loop to the right (unfilled), then its head.
            w!(self.lp, "M{x1} {}h30v10H{}", y - 10, x1 + 9);
            w!(path, "M{} {y}l9 -4.5v9z", x1 + 1);
            (x1 + 36, y - 2, true)
        } else {
            let dir = if x2 > x1 { 1 } else { -1 };
            // The label sits between the sender's lifeline and the next one, never on a
            // lifeline it crosses.
            let tx = if (x2 - x1).abs() > COL {
                x1 + dir * COL / 2
            } else {
                (x1 + x2) / 2
            };
            if broken {
                let end = x1 + (x2 - x1) * 11 / 20;
                w!(path, "M{x1} {y}H{end}");
                w!(self.x, "M{} {}l10 10m0 -10l-10 10", end - 5, y - 5);
            } else {
                w!(path, "M{x1} {y}H{}m0 0l{} -4.5v9z", x2 - dir, -dir * 9);
            }
            (tx, y - 7, false)
        };
        let class = match (bad, start) {
            (false, false) => "",
            (true, false) => " class=\"b\"",
            (false, true) => " class=\"lt\"",
            (true, true) => " class=\"b lt\"",
        };
        let (short, cut) = truncate(label, 34);
        w!(self.text, "<text x=\"{tx}\" y=\"{ty}\"{class}>");
        if cut {
            w!(self.text, "<title>{}</title>{}…", E(label), E(short));
        } else {
            w!(self.text, "{}", E(short));
        }
        self.text.push_str("</text>");
    }
}

// ---------------------------------------------------------------------------------------------
// The renderer

struct Renderer<'a> {
    o: &'a Outcome,
    l: Lang,
    out: String,
    /// Anchor of each scenario, by index in `o.scenarios`.
    scen_anchor: Vec<String>,
    /// Scenario id → (anchor, status) of its first occurrence.
    scen_by_id: HashMap<&'a str, (String, Status)>,
    /// Requirement id → anchor.
    req_by_id: HashMap<&'a str, String>,
}

impl<'a> Renderer<'a> {
    fn new(o: &'a Outcome, l: Lang) -> Renderer<'a> {
        let mut ids = Ids::default();
        for fixed in [
            "top",
            "verdict",
            "verdict-h",
            "run",
            "requirements",
            "latency",
            "scenarios",
            "filters",
            "f-tag",
            "f-q",
            "f-count",
            "f-open",
            "f-close",
        ] {
            ids.claim(fixed.into());
        }
        for s in ORDER {
            ids.claim(format!("f-{}", status_key(s)));
        }
        let mut req_by_id = HashMap::new();
        for r in &o.requirements {
            let a = ids.claim(format!("r-{}", id_part(&r.id)));
            req_by_id.entry(r.id.as_str()).or_insert(a);
        }
        let mut scen_anchor = Vec::with_capacity(o.scenarios.len());
        let mut scen_by_id = HashMap::new();
        for s in &o.scenarios {
            let a = ids.claim(format!("s-{}", id_part(&s.id)));
            scen_by_id
                .entry(s.id.as_str())
                .or_insert((a.clone(), s.status));
            scen_anchor.push(a);
        }
        let size = 24_000 + o.scenarios.len() * 3_000 + o.requirements.len() * 400;
        Renderer {
            o,
            l,
            out: String::with_capacity(size),
            scen_anchor,
            scen_by_id,
            req_by_id,
        }
    }

    fn t(&self, l: L) -> &'static str {
        self.l.t(l)
    }

    fn status_label(&self, s: Status) -> &'static str {
        self.t(match s {
            Status::Passed => L::SPassed,
            Status::Failed => L::SFailed,
            Status::Errored => L::SErrored,
            Status::Skipped => L::SSkipped,
            Status::NotRun => L::SNotRun,
        })
    }

    fn verdict_word(&self) -> &'static str {
        match self.o.verdict.as_str() {
            verdict::CONFORMANT => "CONFORME",
            verdict::CONFORMANT_SCOPED => self.t(L::VScoped),
            verdict::NOT_CONFORMANT => "NON CONFORME",
            _ => self.t(L::VNoVerdict),
        }
    }

    fn verdict_gloss(&self) -> &'static str {
        self.t(match self.o.verdict.as_str() {
            verdict::CONFORMANT => L::GlossConformant,
            verdict::CONFORMANT_SCOPED => L::GlossScoped,
            verdict::NOT_CONFORMANT => L::GlossNotConformant,
            _ => L::GlossNoVerdict,
        })
    }

    /// What the verdict means, for the verdict given.
    fn verdict_rule(&self) -> &'static str {
        self.t(match self.o.verdict.as_str() {
            verdict::CONFORMANT => L::VerdictRule,
            verdict::CONFORMANT_SCOPED => L::VScopedRule,
            verdict::NOT_CONFORMANT => L::VNotConformantRule,
            _ => L::VNoVerdictRule,
        })
    }

    /// Why the run is not complete: the filter, partition, skipped capabilities, errored and
    /// not-run scenarios, and the requirements not evaluated.
    fn scope(&mut self) {
        let o = self.o;
        let sc = &o.scope;
        if sc.complete {
            return;
        }
        let c = &o.counts;
        let mut items: Vec<String> = vec![];
        let n = |x: usize| x.to_string();
        if let Some(f) = &sc.filter {
            items.push(
                self.t(L::ScopeFilter)
                    .replace("{f}", &esc(f))
                    .replace("{n}", &n(c.total))
                    .replace("{m}", &n(sc.pack_scenarios)),
            );
        }
        if let Some(p) = &o.partition {
            items.push(self.t(L::ScopeShare).replace("{p}", &esc(p)));
        }
        if sc.filter.is_none() && o.partition.is_none() && c.total < sc.pack_scenarios {
            items.push(
                self.t(L::ScopePart)
                    .replace("{n}", &n(c.total))
                    .replace("{m}", &n(sc.pack_scenarios)),
            );
        }
        if c.skipped > 0 {
            let mut t = self.t(L::ScopeSkipped).replace("{n}", &n(c.skipped));
            if !sc.missing_capabilities.is_empty() {
                let caps: Vec<String> = sc
                    .missing_capabilities
                    .iter()
                    .map(|x| format!("<code>{}</code>", esc(x)))
                    .collect();
                t.push_str(&format!(
                    " ({}{}{})",
                    self.t(L::ScopeCaps),
                    self.t(L::Colon),
                    caps.join(", ")
                ));
            }
            items.push(t);
        }
        if c.errored > 0 {
            items.push(self.t(L::ScopeErrored).replace("{n}", &n(c.errored)));
        }
        if c.not_run > 0 {
            items.push(self.t(L::ScopeNotRun).replace("{n}", &n(c.not_run)));
        }
        if o.interrupted {
            items.push(self.t(L::ScopeInterrupted).to_string());
        }
        if !sc.not_evaluated.is_empty() {
            let mut t = self
                .t(L::ScopeNotEvaluated)
                .replace("{n}", &n(sc.not_evaluated.len()));
            t.push_str(self.t(L::Colon));
            const SHOWN: usize = 24;
            let mut links: Vec<String> = sc
                .not_evaluated
                .iter()
                .take(SHOWN)
                .map(|id| match self.req_by_id.get(id.as_str()) {
                    Some(a) => format!("<a href=\"#{a}\"><code>{}</code></a>", esc(id)),
                    None => format!("<code>{}</code>", esc(id)),
                })
                .collect();
            if sc.not_evaluated.len() > SHOWN {
                links.push(
                    self.t(L::More)
                        .replace("{n}", &(sc.not_evaluated.len() - SHOWN).to_string()),
                );
            }
            t.push_str(&links.join(", "));
            items.push(t);
        }
        w!(
            self.out,
            "<div class=\"scope\"><p class=\"vlabel\">{}</p><ul>",
            self.t(L::ScopeTitle)
        );
        for i in items {
            w!(self.out, "<li>{i}</li>");
        }
        self.out.push_str("</ul></div>");
    }

    fn document(&mut self) {
        let o = self.o;
        let verdict = if o.interrupted {
            self.t(L::Interrupted)
        } else {
            self.verdict_word()
        };
        w!(
            self.out,
            "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <meta name=\"generator\" content=\"roclab {}\">\n\
             <title>{} — {} — {}</title>\n<style>\n{}</style>\n</head>\n<body>\n\
             <div class=\"wrap\" id=\"top\">\n",
            self.l.code(),
            A(&o.roclab_version),
            self.t(L::ReportTitle),
            E(&o.pack.id),
            verdict,
            CSS
        );
        self.header();
        self.banner();
        self.run_facts();
        self.requirements();
        self.latency();
        self.scenarios();
        let footer = self
            .t(L::Footer)
            .replace("{v}", &esc(&o.roclab_version))
            .replace("{f}", &o.format.to_string());
        w!(
            self.out,
            "<footer><p>{footer}</p></footer>\n</div>\n<script>\n{JS}</script>\n</body>\n</html>\n"
        );
    }

    fn header(&mut self) {
        let o = self.o;
        w!(
            self.out,
            "<header class=\"top\"><div><h1>{}</h1><p class=\"sub\">{} · <span class=\"mono\">{}</span> {} · {}</p></div>\
             <p class=\"lab\">{}<br>{} {}</p></header>\n",
            self.t(L::ReportTitle),
            E(&o.pack.title),
            E(&o.pack.id),
            E(&o.pack.version),
            E(&o.sut.profile),
            self.t(L::Lab),
            self.t(L::Started),
            E(&o.started),
        );
        w!(
            self.out,
            "<nav class=\"toc\" aria-label=\"{}\"><ul><li><a href=\"#verdict\">{}</a></li>\
             <li><a href=\"#run\">{}</a></li><li><a href=\"#requirements\">{}</a></li>\
             <li><a href=\"#latency\">{}</a></li><li><a href=\"#scenarios\">{}</a></li></ul></nav>\n",
            self.t(L::Contents),
            self.t(L::Verdict),
            self.t(L::SecRun),
            self.t(L::SecReq),
            self.t(L::SecLatency),
            self.t(L::SecScenarios),
        );
    }

    fn banner(&mut self) {
        let o = self.o;
        let c = &o.counts;
        let (class, icon) = if o.interrupted {
            ("v-int", "‖")
        } else {
            match o.verdict.as_str() {
                verdict::CONFORMANT => ("v-ok", "✓"),
                verdict::CONFORMANT_SCOPED => ("v-scoped", "✓"),
                verdict::NOT_CONFORMANT => ("v-nok", "✗"),
                _ => ("v-int", "?"),
            }
        };
        w!(
            self.out,
            "<section id=\"verdict\" class=\"banner {class}\" aria-labelledby=\"verdict-h\"><div class=\"vmain\">\
             <p class=\"vlabel\">{}</p>",
            self.t(L::Verdict)
        );
        if o.interrupted {
            w!(
                self.out,
                "<h2 class=\"vword\" id=\"verdict-h\"><span aria-hidden=\"true\">{icon}</span> {}</h2>",
                self.t(L::Interrupted)
            );
            let g = self.t(L::GlossInterrupted);
            if !g.is_empty() {
                w!(self.out, "<p class=\"vgloss\">{g}</p>");
            }
            let gloss = self.verdict_gloss();
            w!(
                self.out,
                "<p class=\"vsub\">{} <strong>{}</strong>{}.</p>",
                self.t(L::InterruptedNote),
                self.verdict_word(),
                if gloss.is_empty() {
                    String::new()
                } else {
                    format!(" ({gloss})")
                }
            );
        } else {
            w!(
                self.out,
                "<h2 class=\"vword\" id=\"verdict-h\"><span aria-hidden=\"true\">{icon}</span> {}</h2>",
                self.verdict_word()
            );
            let g = self.verdict_gloss();
            if !g.is_empty() {
                w!(self.out, "<p class=\"vgloss\">{g}</p>");
            }
        }
        if !o.interrupted {
            w!(self.out, "<p class=\"vrule\">{}</p>", self.verdict_rule());
        }
        self.scope();
        self.out
            .push_str("</div><div class=\"vcounts\"><ul class=\"counts\">");
        let items: [(&str, usize, L, &str); 6] = [
            ("total", c.total, L::CTotal, ""),
            ("passed", c.passed, L::CPassed, status_icon(Status::Passed)),
            ("failed", c.failed, L::CFailed, status_icon(Status::Failed)),
            (
                "errored",
                c.errored,
                L::CErrored,
                status_icon(Status::Errored),
            ),
            (
                "skipped",
                c.skipped,
                L::CSkipped,
                status_icon(Status::Skipped),
            ),
            (
                "not_run",
                c.not_run,
                L::CNotRun,
                status_icon(Status::NotRun),
            ),
        ];
        for (key, n, label, icon) in items {
            let nz = if n > 0 { " nz" } else { "" };
            let icon = if icon.is_empty() {
                String::new()
            } else {
                format!("<span aria-hidden=\"true\">{icon}</span> ")
            };
            w!(
                self.out,
                "<li class=\"c-{key}{nz}\"><span class=\"n\">{n}</span> <span class=\"cl\">{icon}{}</span></li>",
                self.t(label)
            );
        }
        self.out.push_str("</ul>");
        if c.total > 0 {
            self.out
                .push_str("<div class=\"bar\" aria-hidden=\"true\">");
            for (key, n) in [
                ("passed", c.passed),
                ("failed", c.failed),
                ("errored", c.errored),
                ("skipped", c.skipped),
                ("not_run", c.not_run),
            ] {
                if n > 0 {
                    let pct = n as f64 * 100.0 / c.total as f64;
                    w!(
                        self.out,
                        "<span class=\"k-{key}\" style=\"width:{pct:.3}%\"></span>"
                    );
                }
            }
            self.out.push_str("</div>");
        }
        self.out.push_str("</div>");
        // Quick links to what failed.
        let bad: Vec<usize> = (0..o.scenarios.len())
            .filter(|&i| matches!(o.scenarios[i].status, Status::Failed | Status::Errored))
            .collect();
        if !bad.is_empty() {
            w!(self.out, "<p class=\"examine\">{} ", self.t(L::ToExamine));
            let mut sorted = bad.clone();
            sorted.sort_by_key(|&i| status_rank(o.scenarios[i].status));
            for &i in sorted.iter().take(30) {
                let s = &o.scenarios[i];
                w!(
                    self.out,
                    "<a class=\"l-{}\" href=\"#{}\"><span aria-hidden=\"true\">{}</span> {}</a>",
                    status_key(s.status),
                    self.scen_anchor[i],
                    status_icon(s.status),
                    E(&s.id)
                );
            }
            if sorted.len() > 30 {
                w!(
                    self.out,
                    "{}",
                    self.t(L::More)
                        .replace("{n}", &(sorted.len() - 30).to_string())
                );
            }
            self.out.push_str("</p>");
        }
        self.out.push_str("</section>\n");
    }

    fn run_facts(&mut self) {
        let o = self.o;
        w!(
            self.out,
            "<section id=\"run\"><h2>{}</h2><div class=\"facts\">",
            self.t(L::SecRun)
        );
        // System under test.
        let kind = match o.sut.kind.as_str() {
            "amc" => self.t(L::KindAmc).to_string(),
            "gap" => self.t(L::KindGap).to_string(),
            k => esc(k),
        };
        let defects = if o.sut.defects.is_empty() {
            format!("<span class=\"dim\">{}</span>", self.t(L::NoneM))
        } else {
            o.sut
                .defects
                .iter()
                .map(|d| format!("<span class=\"chip defect\">⚠\u{fe0e} {}</span>", E(d)))
                .collect::<String>()
        };
        let sla = if o.sut.sla_median_ms == 0 && o.sut.sla_limit_ms == 0 {
            format!("<span class=\"dim\">{}</span>", self.t(L::SlaUnset))
        } else {
            self.t(L::SlaText)
                .replace("{m}", &o.sut.sla_median_ms.to_string())
                .replace("{l}", &o.sut.sla_limit_ms.to_string())
        };
        let base_label = if o.sut.kind == "gap" {
            L::Driver
        } else {
            L::BaseUrl
        };
        let rows = [
            (
                self.t(L::Profile),
                format!("<code>{}</code>", E(&o.sut.profile)),
            ),
            (self.t(L::SutKind), kind),
            (
                self.t(L::Embedded),
                self.t(if o.sut.embedded {
                    L::EmbeddedYes
                } else {
                    L::EmbeddedNo
                })
                .into(),
            ),
            (
                self.t(base_label),
                format!("<code>{}</code>", E(&o.sut.base_url)),
            ),
            (self.t(L::Defects), defects),
            (self.t(L::Sla), sla),
        ];
        self.card(self.t(L::CardSut), &rows);
        // Pack.
        let rows = [
            (self.t(L::PackId), format!("<code>{}</code>", E(&o.pack.id))),
            (self.t(L::Title), esc(&o.pack.title)),
            (self.t(L::Version), esc(&o.pack.version)),
            (self.t(L::Norme), esc(&o.pack.norme)),
            (self.t(L::PackSut), esc(&o.pack.sut)),
            (self.t(L::Path), format!("<code>{}</code>", E(&o.pack.path))),
            (
                self.t(L::Sha),
                format!("<span class=\"hash\">{}</span>", E(&o.pack.sha256)),
            ),
        ];
        self.card(self.t(L::CardPack), &rows);
        // Run.
        let rows = [
            (self.t(L::RoclabVersion), esc(&o.roclab_version)),
            (self.t(L::Started), esc(&o.started)),
            (self.t(L::Duration), duration(o.duration_ms)),
            (
                self.t(L::WasInterrupted),
                if o.interrupted {
                    format!("<strong>{}</strong>", self.t(L::Yes))
                } else {
                    self.t(L::No).into()
                },
            ),
            (self.t(L::Format), o.format.to_string()),
        ];
        self.card(self.t(L::CardRun), &rows);
        // TLS seen over every exchange.
        let (mut versions, mut peers, mut locals) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for e in o
            .scenarios
            .iter()
            .flat_map(|s| &s.steps)
            .filter_map(|st| st.exchange.as_ref())
        {
            if let Some(t) = &e.tls {
                versions.extend(t.version.as_deref());
                peers.extend(t.peer_subject.as_deref());
                locals.extend(t.local_subject.as_deref());
            }
        }
        let list = |set: &BTreeSet<&str>, none: &str| {
            if set.is_empty() {
                format!("<span class=\"dim\">{none}</span>")
            } else {
                let mut s = String::from("<ul class=\"plain\">");
                for v in set {
                    w!(s, "<li><code>{}</code></li>", E(v));
                }
                s.push_str("</ul>");
                s
            }
        };
        let none = self.t(L::NoneSeen);
        let rows = [
            (self.t(L::TlsVersions), list(&versions, none)),
            (self.t(L::PeerSubjects), list(&peers, none)),
            (self.t(L::LocalSubjects), list(&locals, none)),
        ];
        self.card(self.t(L::CardTls), &rows);
        self.out.push_str("</div></section>\n");
    }

    /// A card of label/value rows; values are HTML already.
    fn card(&mut self, title: &str, rows: &[(&str, String)]) {
        w!(
            self.out,
            "<div class=\"card\"><h3>{title}</h3><dl class=\"kv\">"
        );
        for (k, v) in rows {
            w!(self.out, "<div><dt>{k}</dt><dd>{v}</dd></div>");
        }
        self.out.push_str("</dl></div>");
    }

    fn scenario_link(&self, id: &str) -> String {
        match self.scen_by_id.get(id) {
            Some((a, st)) => format!(
                "<a class=\"l-{}\" href=\"#{a}\">{} {}</a>",
                status_key(*st),
                status_icon(*st),
                E(id)
            ),
            None => format!("<span>{}</span>", E(id)),
        }
    }

    fn requirements(&mut self) {
        let o = self.o;
        w!(
            self.out,
            "<section id=\"requirements\"><h2>{}</h2>",
            self.t(L::SecReq)
        );
        if o.requirements.is_empty() {
            w!(
                self.out,
                "<p class=\"note\">{}</p></section>\n",
                self.t(L::NoRequirement)
            );
            return;
        }
        // Summary line.
        let mut tally: BTreeMap<u8, (usize, L, &str)> = BTreeMap::new();
        for r in &o.requirements {
            let (rank, label, key) = if r.scenarios.is_empty() {
                (1, L::RUncoveredPl, "uncovered")
            } else {
                match r.status {
                    ReqStatus::NotMet => (0, L::RNotMetPl, "failed"),
                    ReqStatus::NotEvaluated => (2, L::RNotEvaluatedPl, "skipped"),
                    ReqStatus::Met => (5, L::RMetPl, "passed"),
                }
            };
            tally.entry(rank).or_insert((0, label, key)).0 += 1;
        }
        w!(
            self.out,
            "<p class=\"rsum\"><strong>{} {}</strong> — ",
            o.requirements.len(),
            self.t(if o.requirements.len() == 1 {
                L::RequirementOne
            } else {
                L::Requirements
            })
        );
        let parts: Vec<String> = tally
            .values()
            .map(|(n, label, key)| {
                format!(
                    "<span class=\"badge b-{key}\">{n} {}</span>",
                    self.t(*label)
                )
            })
            .collect();
        self.out.push_str(&parts.join(" "));
        w!(
            self.out,
            "</p><div class=\"tw\"><table class=\"req\"><thead><tr><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\">{}</th></tr></thead><tbody>",
            self.t(L::Requirement),
            self.t(L::Statement),
            self.t(L::Spec),
            self.t(L::VerifiedBy),
            self.t(L::Verdict)
        );
        let mut seen = HashSet::new();
        for r in &o.requirements {
            let uncovered = r.scenarios.is_empty();
            // Only the first occurrence of a requirement id carries the anchor.
            let id_attr = if seen.insert(r.id.as_str()) {
                format!(" id=\"{}\"", self.req_by_id[r.id.as_str()])
            } else {
                String::new()
            };
            let class = if uncovered {
                "uncovered".to_string()
            } else {
                format!("rs-{}", status_key(req_status(r.status)))
            };
            let statement = match (self.l, &r.statement_fr) {
                (Lang::Fr, Some(fr)) => fr,
                _ => &r.statement,
            };
            w!(
                self.out,
                "<tr{id_attr} class=\"{class}\"><th scope=\"row\"><code>{}</code></th><td>{}</td><td>{}</td><td>",
                E(&r.id),
                E(statement),
                E(&r.spec)
            );
            if uncovered {
                w!(
                    self.out,
                    "<span class=\"dim\">{}</span>",
                    self.t(L::NoScenario)
                );
            } else {
                self.out.push_str("<p class=\"links\">");
                for sid in &r.scenarios {
                    let link = self.scenario_link(sid);
                    w!(self.out, "{link} ");
                }
                self.out.push_str("</p>");
            }
            self.out.push_str("</td><td class=\"st\">");
            if uncovered {
                w!(
                    self.out,
                    "<span class=\"badge b-uncovered\">⚠\u{fe0e} {}</span>",
                    self.t(L::RUncovered)
                );
            } else {
                let label = match r.status {
                    ReqStatus::Met => L::RMet,
                    ReqStatus::NotMet => L::RNotMet,
                    ReqStatus::NotEvaluated => L::RNotEvaluated,
                };
                let st = req_status(r.status);
                w!(
                    self.out,
                    "<span class=\"badge b-{}\">{} {}</span>",
                    status_key(st),
                    status_icon(st),
                    self.t(label)
                );
                for (which, ids) in [
                    (L::NotMetIn, &r.not_met_in),
                    (L::NotEvaluatedIn, &r.not_evaluated_in),
                ] {
                    if ids.is_empty() {
                        continue;
                    }
                    let links: Vec<String> = ids.iter().map(|id| self.scenario_link(id)).collect();
                    w!(
                        self.out,
                        "<p class=\"links\">{} {}</p>",
                        self.t(which),
                        links.join(" ")
                    );
                }
            }
            self.out.push_str("</td></tr>");
        }
        self.out.push_str("</tbody></table></div></section>\n");
    }

    fn latency(&mut self) {
        let o = self.o;
        w!(
            self.out,
            "<section id=\"latency\"><h2>{}</h2><p class=\"note\">{}</p>",
            self.t(L::SecLatency),
            self.t(L::LatencyNote)
        );
        let mut by_op: BTreeMap<&str, (Vec<f64>, usize)> = BTreeMap::new();
        for e in o
            .scenarios
            .iter()
            .flat_map(|s| &s.steps)
            .filter_map(|st| st.exchange.as_ref())
        {
            let entry = by_op.entry(e.operation.as_str()).or_default();
            if e.response.is_some() {
                entry.0.push(e.latency_ms);
            } else {
                entry.1 += 1;
            }
        }
        if by_op.is_empty() {
            w!(
                self.out,
                "<p class=\"note\">{}</p></section>\n",
                self.t(L::NoExchange)
            );
            return;
        }
        let (target, limit) = (o.sut.sla_median_ms, o.sut.sla_limit_ms);
        let sla = if target == 0 && limit == 0 {
            self.t(L::SlaUnset).to_string()
        } else {
            self.t(L::SlaText)
                .replace("{m}", &target.to_string())
                .replace("{l}", &limit.to_string())
        };
        w!(
            self.out,
            "<div class=\"tw\"><table class=\"lat\"><caption>{}{}{sla}</caption><thead><tr>\
             <th scope=\"col\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\" class=\"num\">{}</th>\
             <th scope=\"col\" class=\"num\">{} (ms)</th><th scope=\"col\" class=\"num\">{} (ms)</th>\
             <th scope=\"col\" class=\"num\">{} (ms)</th><th scope=\"col\">{}</th></tr></thead><tbody>",
            self.t(L::Sla),
            self.t(L::Colon),
            self.t(L::Operation),
            self.t(L::Answers),
            self.t(L::Unanswered),
            self.t(L::Median),
            self.t(L::P95),
            self.t(L::Max),
            self.t(L::SlaCol)
        );
        for (op, (mut v, unanswered)) in by_op {
            v.sort_by(|a, b| a.total_cmp(b));
            w!(
                self.out,
                "<tr><th scope=\"row\"><code>{}</code></th><td class=\"num\">{}</td><td class=\"num\">{unanswered}</td>",
                E(op),
                v.len()
            );
            if v.is_empty() {
                self.out.push_str(
                    "<td class=\"num\">—</td><td class=\"num\">—</td><td class=\"num\">—</td><td>—</td></tr>",
                );
                continue;
            }
            let (med, p95, max) = (median(&v), percentile(&v, 0.95), v[v.len() - 1]);
            let over_target = target > 0 && med > target as f64;
            let over_limit = limit > 0 && max > limit as f64;
            let cell = |val: f64, over: bool| {
                if over {
                    format!(
                        "<td class=\"num over\"><span aria-hidden=\"true\">⚠\u{fe0e}</span> {}</td>",
                        ms(val)
                    )
                } else {
                    format!("<td class=\"num\">{}</td>", ms(val))
                }
            };
            let row = format!(
                "{}{}{}",
                cell(med, over_target),
                cell(p95, false),
                cell(max, over_limit)
            );
            self.out.push_str(&row);
            let verdict = if target == 0 && limit == 0 {
                format!("<span class=\"dim\">{}</span>", self.t(L::NoSla))
            } else if over_target || over_limit {
                let mut parts = Vec::new();
                if over_target {
                    parts.push(self.t(L::OverTarget));
                }
                if over_limit {
                    parts.push(self.t(L::OverLimit));
                }
                format!(
                    "<span class=\"badge b-failed\">✗ {}</span>",
                    parts.join(" ; ")
                )
            } else {
                format!(
                    "<span class=\"badge b-passed\">✓ {}</span>",
                    self.t(L::WithinSla)
                )
            };
            w!(self.out, "<td>{verdict}</td></tr>");
        }
        self.out.push_str("</tbody></table></div></section>\n");
    }

    fn scenarios(&mut self) {
        let o = self.o;
        w!(
            self.out,
            "<section id=\"scenarios\"><h2>{} ({})</h2>",
            self.t(L::SecScenarios),
            o.scenarios.len()
        );
        if o.scenarios.is_empty() {
            w!(
                self.out,
                "<p class=\"note\">{}</p></section>\n",
                self.t(L::NoScenarios)
            );
            return;
        }
        w!(self.out, "<p class=\"note\">{}</p>", self.t(L::BodiesNote));
        // Filters, shown by the script only (they do nothing without it).
        let mut per_status: BTreeMap<Status, usize> = BTreeMap::new();
        let mut tags = BTreeSet::new();
        for s in &o.scenarios {
            *per_status.entry(s.status).or_default() += 1;
            tags.extend(s.tags.iter().map(String::as_str));
        }
        w!(
            self.out,
            "<div id=\"filters\" class=\"filters\" role=\"search\" hidden data-shown=\"{}\">\
             <fieldset><legend>{}</legend>",
            A(self.t(L::Shown)),
            self.t(L::FilterVerdict)
        );
        for s in ORDER {
            let n = per_status.get(&s).copied().unwrap_or(0);
            w!(
                self.out,
                "<label><input type=\"checkbox\" id=\"f-{k}\" value=\"{k}\" checked> \
                 <span aria-hidden=\"true\">{}</span> {} ({n})</label>",
                status_icon(s),
                self.status_label(s),
                k = status_key(s)
            );
        }
        w!(
            self.out,
            "</fieldset><div class=\"fld\"><label for=\"f-tag\">{}</label><select id=\"f-tag\">\
             <option value=\"\">{}</option>",
            self.t(L::FilterTag),
            self.t(L::AllTags)
        );
        for t in &tags {
            w!(self.out, "<option value=\"{}\">{}</option>", A(t), E(t));
        }
        w!(
            self.out,
            "</select></div><div class=\"fld\"><label for=\"f-q\">{}</label>\
             <input type=\"search\" id=\"f-q\" placeholder=\"{}\" autocomplete=\"off\"></div>\
             <div class=\"fld\"><button type=\"button\" id=\"f-open\">{}</button>\
             <button type=\"button\" id=\"f-close\">{}</button></div>\
             <p id=\"f-count\" aria-live=\"polite\"></p></div>\n<div class=\"scs\">\n",
            self.t(L::Search),
            A(self.t(L::SearchPh)),
            self.t(L::ExpandAll),
            self.t(L::CollapseAll)
        );
        let mut order: Vec<usize> = (0..o.scenarios.len()).collect();
        order.sort_by_key(|&i| status_rank(o.scenarios[i].status));
        for i in order {
            self.scenario(i);
        }
        self.out.push_str("</div></section>\n");
    }

    fn scenario(&mut self, i: usize) {
        let o = self.o;
        let s = &o.scenarios[i];
        let key = status_key(s.status);
        // The lowercase text the filter searches: id, title, reason, findings, tags, requirements.
        let mut q = String::with_capacity(128);
        q.push_str(&s.id);
        q.push(' ');
        q.push_str(&s.title);
        for x in s
            .reason
            .iter()
            .chain(s.tags.iter())
            .chain(s.verifies.iter())
        {
            q.push(' ');
            q.push_str(x);
        }
        for f in s.findings() {
            if Some(&f.message) != s.reason.as_ref() {
                q.push(' ');
                q.push_str(&f.message);
            }
        }
        let q = q.to_lowercase();
        let mut tags = String::from("|");
        for t in &s.tags {
            tags.push_str(t);
            tags.push('|');
        }
        let open = if matches!(s.status, Status::Failed | Status::Errored) {
            " open"
        } else {
            ""
        };
        w!(
            self.out,
            "<details class=\"sc\" id=\"{}\" data-st=\"{key}\" data-tags=\"{}\" data-q=\"{}\"{open}>\
             <summary><span class=\"badge b-{key}\">{} {}</span><span class=\"sid\">{}</span>\
             <span class=\"stitle\">{}</span><span class=\"sdur\">{}</span>",
            self.scen_anchor[i],
            A(&tags),
            A(&q),
            status_icon(s.status),
            self.status_label(s.status),
            E(&s.id),
            E(&s.title),
            duration(s.duration_ms)
        );
        if s.status != Status::Passed
            && let Some(r) = &s.reason
        {
            let (r, cut) = truncate(r, REASON_MAX);
            w!(
                self.out,
                "<span class=\"sreason\">{}{}</span>",
                E(r),
                if cut { "…" } else { "" }
            );
        }
        self.out.push_str("</summary><div class=\"sbody\">");
        // Facts.
        w!(
            self.out,
            "<p class=\"smeta\"><span class=\"k\">{}</span> <code>{}</code>",
            self.t(L::Source),
            E(&s.source)
        );
        if !s.verifies.is_empty() {
            w!(
                self.out,
                " <span class=\"k\">{}</span>",
                self.t(L::Verifies)
            );
            for r in &s.verifies {
                match self.req_by_id.get(r.as_str()) {
                    Some(a) => w!(self.out, " <a href=\"#{a}\">{}</a>", E(r)),
                    None => w!(self.out, " {}", E(r)),
                }
            }
        }
        if !s.tags.is_empty() {
            w!(
                self.out,
                " <span class=\"k\">{}</span> <span class=\"tags\">{}</span>",
                self.t(L::Tags),
                E(&s.tags.join(", "))
            );
        }
        self.out.push_str("</p>");
        // The reason in full when the summary could not show it.
        if let Some(r) = &s.reason
            && (s.status == Status::Passed || r.chars().count() > REASON_MAX)
        {
            w!(
                self.out,
                "<p class=\"smeta\"><span class=\"k\">{}</span> {}</p>",
                self.t(L::Reason),
                E(r)
            );
        }
        if s.steps.is_empty() {
            w!(self.out, "<p class=\"note\">{}</p>", self.t(L::NoStep));
        } else {
            self.sequence(s);
            self.out.push_str("<ol class=\"steps\">");
            for (st, number) in s.steps.iter().zip(super::step_numbers(&s.steps)) {
                self.step(st, &number);
            }
            self.out.push_str("</ol>");
        }
        self.out.push_str("</div></details>\n");
    }

    fn actor_name(&self, a: &str) -> String {
        match a {
            "establishment" => self.t(L::Establishment).into(),
            "annuaire" => self.t(L::Annuaire).into(),
            "gap" => "GAP".into(),
            "amc" => "AMC".into(),
            _ => match a.strip_prefix("amc-") {
                Some(x) if !x.is_empty() => format!("AMC {x}"),
                _ => a.into(),
            },
        }
    }

    fn kind_label(&self, k: TransportErrorKind) -> &'static str {
        self.t(match k {
            TransportErrorKind::Connect => L::KConnect,
            TransportErrorKind::Tls => L::KTls,
            TransportErrorKind::PeerCertificate => L::KPeerCert,
            TransportErrorKind::Timeout => L::KTimeout,
            TransportErrorKind::Protocol => L::KProtocol,
        })
    }

    /// The scenario's exchanges as a sequence diagram (inline SVG): one lifeline per actor, an
    /// arrow per request and per answer, notes for steps without exchange, broken arrows for
    /// transport errors. It repeats what the step list says in words, so it is hidden from
    /// assistive technologies.
    fn sequence(&mut self, s: &ScenarioOutcome) {
        let mut actors: Vec<&str> = s
            .steps
            .iter()
            .filter_map(|st| st.exchange.as_ref())
            .flat_map(|e| [e.from.as_str(), e.to.as_str()])
            .collect();
        if actors.is_empty() {
            return;
        }
        actors.sort_by(|a, b| (actor_rank(a), *a).cmp(&(actor_rank(b), *b)));
        actors.dedup();
        const MX: i32 = 110;
        const HEAD: i32 = 30;
        const TOP: i32 = 6;
        const ROW: i32 = 28;
        const NOTE: i32 = 30;
        let n = actors.len() as i32;
        let x = |a: &str| MX + COL * actors.iter().position(|b| *b == a).unwrap_or(0) as i32;
        let width = 2 * MX + COL * (n - 1) + if n == 1 { 60 } else { 0 };
        let rows: i32 = s
            .steps
            .iter()
            .map(|st| match &st.exchange {
                None => NOTE,
                Some(e) if e.response.is_some() || late_error(e) => 2 * ROW,
                Some(_) => ROW,
            })
            .sum();
        let height = TOP + HEAD + 4 + rows + 12;
        w!(
            self.out,
            "<svg class=\"sq\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" \
             aria-hidden=\"true\"><path class=\"ll\" d=\""
        );
        for a in &actors {
            w!(self.out, "M{} {}V{}", x(a), TOP + HEAD, height - 4);
        }
        // Actor boxes (one path), then their names.
        self.out.push_str("\"/><path class=\"hb\" d=\"");
        for a in &actors {
            w!(self.out, "M{} {TOP}h180v{HEAD}h-180z", x(a) - 90);
        }
        self.out.push_str("\"/><g class=\"hd\">");
        for a in &actors {
            let name = self.actor_name(a);
            let (nm, cut) = truncate(&name, 24);
            w!(
                self.out,
                "<text x=\"{}\" y=\"{}\">{}{}</text>",
                x(a),
                TOP + 20,
                E(nm),
                if cut { "…" } else { "" }
            );
        }
        self.out.push_str("</g>");
        let mut d = Seq::default();
        let mut y = TOP + HEAD + 4;
        let (left, right) = (x(actors[0]) - 90, x(actors[actors.len() - 1]) + 90);
        for (st, number) in s.steps.iter().zip(super::step_numbers(&s.steps)) {
            let bad = !st.findings.is_empty();
            let Some(e) = &st.exchange else {
                let (label, cut) = truncate(&st.label, 70);
                w!(
                    self.out,
                    "<g class=\"nt{}\"><rect x=\"{left}\" y=\"{}\" width=\"{}\" height=\"22\" rx=\"3\"/>\
                     <text x=\"{}\" y=\"{}\">{}{}. {}{}</text></g>",
                    if bad { " b" } else { "" },
                    y + 4,
                    right - left,
                    (left + right) / 2,
                    y + 19,
                    if bad { "✗ " } else { "" },
                    number,
                    E(label),
                    if cut { "…" } else { "" }
                );
                y += NOTE;
                continue;
            };
            let (xf, xt) = (x(&e.from), x(&e.to));
            let kind = e.error.as_ref().map(|x| x.kind);
            let early = e.response.is_none() && kind.is_some() && !late_error(e);
            y += ROW;
            let req_label = match kind {
                Some(k) if early => {
                    format!("{number}. {} ✗ {}", e.operation, self.kind_label(k))
                }
                _ => format!("{number}. {}", e.operation),
            };
            d.arrow(
                xf,
                xt,
                y,
                &req_label,
                false,
                bad && e.response.is_none(),
                early,
            );
            if let Some(r) = &e.response {
                y += ROW;
                // An HTTP answer shows its status; another (a payment run's) its own line.
                let what = match r.status {
                    Some(c) => format!("{c} {}", reason_phrase(&r.start_line)),
                    None => r.start_line.clone(),
                };
                let label = format!(
                    "{}{} · {} ms",
                    if bad { "✗ " } else { "" },
                    what.trim(),
                    ms(e.latency_ms)
                );
                d.arrow(xt, xf, y, &label, true, bad, false);
            } else if let Some(k) = kind.filter(|_| late_error(e)) {
                y += ROW;
                let label = format!("✗ {}", self.kind_label(k));
                d.arrow(xt, xf, y, &label, true, true, true);
            }
        }
        for (class, path) in [
            ("q", &d.q),
            ("q b", &d.qb),
            ("r", &d.r),
            ("r b", &d.rb),
            ("x", &d.x),
            ("lp", &d.lp),
        ] {
            if !path.is_empty() {
                w!(self.out, "<path class=\"{class}\" d=\"{path}\"/>");
            }
        }
        w!(self.out, "<g class=\"t\">{}</g></svg>", d.text);
    }

    /// One step, shown with `number` (see [`super::step_numbers`]).
    fn step(&mut self, st: &StepOutcome, number: &str) {
        let bad = !st.findings.is_empty();
        let transport = st.exchange.as_ref().and_then(|e| e.error.as_ref());
        w!(
            self.out,
            "<li><p class=\"sth\"><b>{} {}</b> <span>{}</span>",
            self.t(L::Step),
            number,
            E(&st.label)
        );
        if bad {
            w!(
                self.out,
                "<span class=\"badge b-failed\">✗ {} {}</span>",
                st.findings.len(),
                self.t(L::StepFindings)
            );
        } else if transport.is_some() {
            w!(
                self.out,
                "<span class=\"badge b-errored\">⚠\u{fe0e} {}</span>",
                self.t(L::TransportError)
            );
        } else {
            self.out.push_str("<span class=\"badge b-passed\">✓</span>");
        }
        self.out.push_str("</p>");
        if let Some(e) = &st.exchange {
            self.exchange_line(e);
            if let Some(err) = &e.error {
                w!(
                    self.out,
                    "<p class=\"terr\"><strong>⚠\u{fe0e} {} ({})</strong> — {}</p>",
                    self.t(L::TransportError),
                    self.kind_label(err.kind),
                    E(&err.message)
                );
            }
        }
        if bad {
            w!(
                self.out,
                "<ul class=\"findings\" aria-label=\"{}\">",
                self.t(L::Findings)
            );
            for f in &st.findings {
                self.finding(f);
            }
            self.out.push_str("</ul>");
        }
        if let Some(d) = &st.body_diff {
            self.diff(d);
        }
        if !st.captures.is_empty() {
            let names: Vec<&str> = st.captures.keys().map(String::as_str).collect();
            w!(
                self.out,
                "<details class=\"cap\"><summary><b>{}</b> <span class=\"mono\">{}</span></summary>\
                 <table class=\"caps\"><tbody>",
                self.t(L::Captures),
                E(&names.join(", "))
            );
            for (k, v) in &st.captures {
                let (v, _) = pretty_body(v);
                w!(
                    self.out,
                    "<tr><th scope=\"row\">{}</th><td><pre>{}</pre></td></tr>",
                    E(k),
                    E(&v)
                );
            }
            self.out.push_str("</tbody></table></details>");
        }
        if let Some(e) = &st.exchange {
            self.message(L::Request, &e.request);
            match &e.response {
                Some(r) => self.message(L::Response, r),
                None => w!(
                    self.out,
                    "<p class=\"xl\">{}{}{}</p>",
                    self.t(L::Response),
                    self.t(L::Colon),
                    self.t(L::NoResponse)
                ),
            }
        }
        self.out.push_str("</li>");
    }

    fn exchange_line(&mut self, e: &Exchange) {
        let method = e.request.start_line.split(' ').next().unwrap_or("");
        w!(
            self.out,
            "<p class=\"xl\">{} → {} · <code>{} {}</code>",
            E(&e.from),
            E(&e.to),
            E(method),
            E(&e.url)
        );
        if let Some(r) = &e.response {
            w!(
                self.out,
                " · {} · {} {} ms · {} {} ms",
                r.status.map(|c| c.to_string()).unwrap_or_default(),
                self.t(L::Latency),
                ms(e.latency_ms),
                self.t(L::Total),
                ms(e.duration_ms)
            );
        }
        if let Some(v) = e.tls.as_ref().and_then(|t| t.version.as_deref()) {
            w!(self.out, " · {}", E(v));
        }
        w!(self.out, " · {}</p>", E(&e.started));
    }

    fn finding(&mut self, f: &Finding) {
        w!(
            self.out,
            "<li><span class=\"chk\">{}</span><span class=\"fmsg\">{}</span>",
            E(&f.check),
            E(&f.message)
        );
        {
            self.out.push_str("<dl class=\"fkv\">");
            let reqs = if f.requirements.is_empty() {
                format!("<span class=\"dim\">{}</span>", self.t(L::Unattributed))
            } else {
                f.requirements
                    .iter()
                    .map(|r| match self.req_by_id.get(r.as_str()) {
                        Some(a) => format!("<a href=\"#{a}\"><code>{}</code></a>", esc(r)),
                        None => format!("<code>{}</code>", esc(r)),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            w!(
                self.out,
                "<div><dt>{}</dt><dd>{reqs}</dd></div>",
                self.t(L::Attributed)
            );
            if let Some(l) = &f.location {
                w!(
                    self.out,
                    "<div><dt>{}</dt><dd><code>{}</code></dd></div>",
                    self.t(L::Location),
                    E(l)
                );
            }
            let (exp, act) = match (&f.expected, &f.actual) {
                (Some(a), Some(b)) => {
                    let (x, y) = emphasize(a, b);
                    (Some(x), Some(y))
                }
                (a, b) => (a.as_deref().map(esc), b.as_deref().map(esc)),
            };
            if let Some(x) = exp {
                w!(
                    self.out,
                    "<div><dt>{}</dt><dd><code class=\"exp\">{x}</code></dd></div>",
                    self.t(L::Expected)
                );
            }
            if let Some(y) = act {
                w!(
                    self.out,
                    "<div><dt>{}</dt><dd><code class=\"act\">{y}</code></dd></div>",
                    self.t(L::Actual)
                );
            }
            self.out.push_str("</dl>");
        }
        self.out.push_str("</li>");
    }

    /// A unified diff: header, hunk, context, `-` (expected) and `+` (actual) lines; paired
    /// `-`/`+` lines get their changed words emphasized.
    fn diff(&mut self, d: &str) {
        w!(
            self.out,
            "<p class=\"difft\">{}<span class=\"lg\">{}</span></p><pre class=\"diff\">",
            self.t(L::BodyDiff),
            self.t(L::DiffLegend)
        );
        let lines: Vec<&str> = d.lines().collect();
        let mut in_hunk = false;
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            if !in_hunk && (l.starts_with("---") || l.starts_with("+++")) {
                w!(self.out, "<span class=\"dl d-head\">{}</span>", E(l));
                i += 1;
            } else if l.starts_with("@@") {
                in_hunk = true;
                w!(self.out, "<span class=\"dl d-hunk\">{}</span>", E(l));
                i += 1;
            } else if l.starts_with('-') || l.starts_with('+') {
                let j = i + lines[i..].iter().take_while(|l| l.starts_with('-')).count();
                let k = j + lines[j..].iter().take_while(|l| l.starts_with('+')).count();
                let (dels, inss) = (&lines[i..j], &lines[j..k]);
                let pairs = dels.len().min(inss.len());
                let mut emph: Vec<(String, String)> = Vec::with_capacity(pairs);
                for p in 0..pairs {
                    emph.push(emphasize(&dels[p][1..], &inss[p][1..]));
                }
                for (p, l) in dels.iter().enumerate() {
                    let body = match emph.get(p) {
                        Some((x, _)) => x.clone(),
                        None => esc(&l[1..]),
                    };
                    w!(self.out, "<span class=\"dl d-exp\">-{body}</span>");
                }
                for (p, l) in inss.iter().enumerate() {
                    let body = match emph.get(p) {
                        Some((_, y)) => y.clone(),
                        None => esc(&l[1..]),
                    };
                    w!(self.out, "<span class=\"dl d-act\">+{body}</span>");
                }
                i = k;
            } else {
                w!(self.out, "<span class=\"dl\">{}</span>", E(l));
                i += 1;
            }
        }
        self.out.push_str("</pre>");
    }

    /// A request or response: start line, headers and the body (re-indented when it is XML or
    /// JSON), collapsed.
    fn message(&mut self, which: L, m: &HttpMessage) {
        let (body, _) = match (&m.body, &m.body_base64) {
            (Some(b), _) => pretty_body(b),
            (None, Some(b64)) => {
                let mut s = String::with_capacity(b64.len() + b64.len() / 76 + 1);
                for (n, c) in b64.chars().enumerate() {
                    if n > 0 && n % 76 == 0 {
                        s.push('\n');
                    }
                    s.push(c);
                }
                (s, false)
            }
            (None, None) => (String::new(), false),
        };
        let mut note = String::new();
        if m.body.is_none() && m.body_base64.is_some() {
            w!(note, " · {}", self.t(L::Binary));
        }
        w!(
            self.out,
            "<details class=\"msg\"><summary><b>{}</b> <span class=\"dim\">{} {}{note}</span>\
             </summary><pre class=\"code\">{}\n",
            self.t(which),
            m.body_len,
            self.t(L::Bytes),
            E(&m.start_line)
        );
        for (k, v) in &m.headers {
            w!(self.out, "{}: {}\n", E(k), E(v));
        }
        if !body.is_empty() {
            self.out.push('\n');
            if body.len() > MAX_BODY {
                let mut cut = MAX_BODY;
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                w!(
                    self.out,
                    "{}\n{}",
                    E(&body[..cut]),
                    self.t(L::Truncated).replace("{n}", &m.body_len.to_string())
                );
            } else {
                w!(self.out, "{}", E(body.trim_end_matches('\n')));
            }
        }
        self.out.push_str("</pre></details>");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{
        Exchange, Finding, HttpMessage, Outcome, PackInfo, ScenarioOutcome, Status, StepOutcome,
        SutInfo, TlsInfo, TransportError, TransportErrorKind,
    };
    use std::collections::BTreeMap;

    /// The outcome of `scenarios`, each requirement verified by the scenarios listing it, and
    /// each scenario's requirements met, not met or not evaluated from its status.
    fn build(
        pack: PackInfo,
        sut: SutInfo,
        reqs: &[(String, String, String)],
        mut scenarios: Vec<ScenarioOutcome>,
        started: String,
        duration_ms: f64,
        interrupted: bool,
    ) -> Outcome {
        for s in &mut scenarios {
            if s.requirements.is_empty() {
                let st = match s.status {
                    Status::Passed => ReqStatus::Met,
                    Status::Failed => ReqStatus::NotMet,
                    _ => ReqStatus::NotEvaluated,
                };
                s.requirements = s.verifies.iter().map(|r| (r.clone(), st)).collect();
            }
        }
        let defs: Vec<crate::outcome::RequirementDef> = reqs
            .iter()
            .map(|(id, st, sp)| crate::outcome::RequirementDef {
                id: id.clone(),
                statement: st.clone(),
                statement_fr: None,
                spec: sp.clone(),
                scenarios: scenarios
                    .iter()
                    .filter(|s| s.verifies.contains(id))
                    .map(|s| s.id.clone())
                    .collect(),
            })
            .collect();
        let plan = crate::outcome::Plan {
            filter: None,
            partition: None,
            pack_scenarios: scenarios.len(),
        };
        Outcome::build(
            pack,
            sut,
            &defs,
            &plan,
            scenarios,
            started,
            duration_ms,
            interrupted,
        )
    }

    fn pack() -> PackInfo {
        PackInfo {
            id: "roc-test".into(),
            title: "ROC test pack".into(),
            version: "1.0.0".into(),
            norme: "1.04".into(),
            sut: "amc".into(),
            path: "scenarios/roc-test".into(),
            sha256: "ab".repeat(32),
        }
    }

    fn sut() -> SutInfo {
        SutInfo {
            profile: "profiles/reference-amc.yaml".into(),
            kind: "amc".into(),
            embedded: true,
            base_url: "https://127.0.0.1:8443".into(),
            defects: vec!["float-rounding".into()],
            sla_median_ms: 400,
            sla_limit_ms: 4000,
        }
    }

    fn message(start: &str, status: Option<u16>, body: &str) -> HttpMessage {
        HttpMessage {
            start_line: start.into(),
            status,
            headers: vec![(
                "Content-Type".into(),
                "application/soap+xml; charset=utf-8".into(),
            )],
            body: Some(body.into()),
            body_base64: None,
            body_len: body.len(),
        }
    }

    fn exchange(op: &str, to: &str, latency: f64, answered: bool) -> Exchange {
        Exchange {
            from: "establishment".into(),
            to: to.into(),
            operation: op.into(),
            url: format!("https://127.0.0.1:8443/{op}"),
            request: message(
                &format!("POST /{op} HTTP/1.1"),
                None,
                "<env:Envelope xmlns:env=\"urn:e\"><env:Body><x>1</x></env:Body></env:Envelope>",
            ),
            response: answered.then(|| {
                message(
                    "HTTP/1.1 200 OK",
                    Some(200),
                    "<env:Envelope xmlns:env=\"urn:e\"><env:Body><y>2</y></env:Body></env:Envelope>",
                )
            }),
            started: "2026-11-23T14:01:26.165Z".into(),
            duration_ms: latency + 1.0,
            latency_ms: latency,
            tls: Some(TlsInfo {
                version: Some("TLSv1.3".into()),
                peer_subject: Some("CN=amc.localhost".into()),
                local_subject: Some("CN=750712184, O=CH Modèle".into()),
            }),
            error: None,
        }
    }

    fn step(index: usize, label: &str, ex: Option<Exchange>) -> StepOutcome {
        StepOutcome {
            index,
            label: label.into(),
            exchange: ex,
            findings: vec![],
            captures: BTreeMap::new(),
            body_diff: None,
        }
    }

    fn scenario(
        id: &str,
        status: Status,
        verifies: &[&str],
        steps: Vec<StepOutcome>,
    ) -> ScenarioOutcome {
        ScenarioOutcome {
            id: id.into(),
            title: format!("title of {id}"),
            source: format!("scenarios/x.yaml:{}:3", id.len()),
            verifies: verifies.iter().map(|s| s.to_string()).collect(),
            tags: vec!["idb".into(), "ok".into()],
            status,
            reason: None,
            duration_ms: 3.5,
            steps,
            requirements: BTreeMap::new(),
        }
    }

    /// A passed, a failed (findings, body diff), an errored (transport error), a skipped and a
    /// not-run scenario; one requirement has no scenario.
    fn sample() -> Outcome {
        let passed = scenario(
            "IDB-OK",
            Status::Passed,
            &["REQ-1"],
            vec![step(0, "IDB", Some(exchange("IDB", "amc", 12.0, true)))],
        );
        let mut ex = exchange("SIM", "amc", 500.0, true);
        ex.response.as_mut().unwrap().body =
            Some("<a><b>12.34</b><c>x & y <script>alert(1)</script> ]]> \u{1}</c></a>".into());
        let mut st = step(0, "SIM", Some(ex));
        st.findings = vec![Finding {
            check: "body".into(),
            message: "text at /Envelope/Body/simReponse/montantAmc: expected 12.35, got 12.34"
                .into(),
            location: Some("/Envelope/Body/simReponse/montantAmc".into()),
            expected: Some("12.35".into()),
            actual: Some("12.34".into()),
            step: Some(0),
            requirements: vec![],
        }];
        st.body_diff = Some(
            "--- expected\n+++ actual\n@@ -1,3 +1,3 @@\n <roc:lignes>\n-  <roc:montantAmc>12.35</roc:montantAmc>\n+  <roc:montantAmc>12.34</roc:montantAmc>\n </roc:lignes>\n"
                .into(),
        );
        let mut failed = scenario(
            "SIM-ROUNDING",
            Status::Failed,
            &["REQ-1", "REQ-2"],
            vec![st],
        );
        failed.reason =
            Some("text at /Envelope/Body/simReponse/montantAmc: expected 12.35, got 12.34".into());
        let mut ex = exchange("CLC", "amc", 0.0, false);
        ex.error = Some(TransportError {
            kind: TransportErrorKind::Tls,
            message: "peer sent TLS alert CertificateRequired".into(),
        });
        let mut st = step(0, "CLC", Some(ex));
        st.findings = vec![Finding {
            check: "transport".into(),
            message: "tls: peer sent TLS alert CertificateRequired".into(),
            location: None,
            expected: None,
            actual: None,
            step: Some(0),
            requirements: vec![],
        }];
        let mut errored = scenario("CLC-TLS", Status::Errored, &["REQ-2"], vec![st]);
        errored.reason = Some("tls: peer sent TLS alert CertificateRequired".into());
        let mut skipped = scenario("DEL-SKIP", Status::Skipped, &["REQ-3"], vec![]);
        skipped.reason = Some("requires capability del".into());
        let not_run = scenario("DEL-LATER", Status::NotRun, &["REQ-3"], vec![]);
        let reqs = [
            (
                "REQ-1".to_string(),
                "The AMC computes.".to_string(),
                "§5".to_string(),
            ),
            (
                "REQ-2".to_string(),
                "The AMC answers.".to_string(),
                "§4".to_string(),
            ),
            (
                "REQ-3".to_string(),
                "The AMC cancels.".to_string(),
                "§6".to_string(),
            ),
            (
                "REQ-NONE".to_string(),
                "Nobody tests this.".to_string(),
                "§9".to_string(),
            ),
        ];
        // Passed first in the input, so the report's order is its own.
        build(
            pack(),
            sut(),
            &reqs,
            vec![passed, skipped, failed, not_run, errored],
            "2026-11-23T14:01:26+00:00".into(),
            69.2,
            false,
        )
    }

    fn section<'h>(html: &'h str, id: &str) -> &'h str {
        let start = html
            .find(&format!("<section id=\"{id}\""))
            .unwrap_or_else(|| panic!("section {id}"));
        let end = start + html[start..].find("</section>").expect("section end");
        &html[start..end]
    }

    fn ids(html: &str) -> Vec<&str> {
        html.match_indices(" id=\"")
            .map(|(i, m)| {
                let rest = &html[i + m.len()..];
                &rest[..rest.find('"').expect("closing quote")]
            })
            .collect()
    }

    #[test]
    fn banner_says_non_conforme_with_the_counts() {
        let html = render(&sample(), Lang::Fr);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"fr\">"));
        let b = section(&html, "verdict");
        assert!(b.contains("NON CONFORME"), "{b}");
        assert!(b.contains("v-nok"));
        for (key, n) in [
            ("total", 5),
            ("passed", 1),
            ("failed", 1),
            ("errored", 1),
            ("skipped", 1),
            ("not_run", 1),
        ] {
            let c = format!("<li class=\"c-{key}");
            let at = b.find(&c).unwrap_or_else(|| panic!("count {key}"));
            assert!(
                b[at..].contains(&format!("<span class=\"n\">{n}</span>")),
                "count {key}"
            );
            let li = &b[at..at + b[at..].find("</li>").unwrap()];
            assert!(
                li.contains(&format!("<span class=\"n\">{n}</span>")),
                "{li}"
            );
        }
        assert!(b.contains("réussis") && b.contains("échoués") && b.contains("non exécutés"));
        // English adds the gloss.
        let en = render(&sample(), Lang::En);
        let b = section(&en, "verdict");
        assert!(b.contains("NON CONFORME") && b.contains("not conformant"));
    }

    #[test]
    fn conformant_and_interrupted_banners() {
        let mut o = sample();
        o.scenarios.retain(|s| s.status == Status::Passed);
        let o = build(o.pack, o.sut, &[], o.scenarios, o.started, 1.0, false);
        let html = render(&o, Lang::En);
        let b = section(&html, "verdict");
        assert!(b.contains("> CONFORME</h2>") && b.contains("conformant") && b.contains("v-ok"));
        let o = build(
            pack(),
            sut(),
            &[],
            sample().scenarios,
            "t".into(),
            1.0,
            true,
        );
        let html = render(&o, Lang::Fr);
        let b = section(&html, "verdict");
        assert!(b.contains("INTERROMPU") && b.contains("NON CONFORME") && b.contains("v-int"));
        let html = render(&o, Lang::En);
        assert!(section(&html, "verdict").contains("interrupted"));
    }

    #[test]
    fn failed_first_then_errored_not_run_skipped_passed() {
        let html = render(&sample(), Lang::Fr);
        let list = section(&html, "scenarios");
        let at = |id: &str| {
            list.find(&format!("id=\"s-{id}\""))
                .unwrap_or_else(|| panic!("scenario {id}"))
        };
        let order = ["SIM-ROUNDING", "CLC-TLS", "DEL-LATER", "DEL-SKIP", "IDB-OK"];
        for pair in order.windows(2) {
            assert!(at(pair[0]) < at(pair[1]), "{} before {}", pair[0], pair[1]);
        }
        // Failed and errored are open, the others closed.
        let tag = |id: &str| {
            let s = at(id);
            &list[s..s + list[s..].find('>').unwrap()]
        };
        assert!(tag("SIM-ROUNDING").ends_with(" open"));
        assert!(tag("CLC-TLS").ends_with(" open"));
        assert!(!tag("IDB-OK").contains(" open"));
        assert!(!tag("DEL-SKIP").contains(" open"));
    }

    #[test]
    fn uncovered_requirement_stands_out() {
        let html = render(&sample(), Lang::Fr);
        let m = section(&html, "requirements");
        let at = m
            .find("<tr id=\"r-REQ-NONE\" class=\"uncovered\">")
            .expect("row");
        let row = &m[at..at + m[at..].find("</tr>").unwrap()];
        assert!(
            row.contains("b-uncovered") && row.contains("non couverte"),
            "{row}"
        );
        // Covered requirements link to their scenarios.
        let at = m.find("<tr id=\"r-REQ-1\"").expect("row");
        let row = &m[at..at + m[at..].find("</tr>").unwrap()];
        assert!(row.contains("href=\"#s-SIM-ROUNDING\"") && row.contains("href=\"#s-IDB-OK\""));
        assert!(row.contains("non satisfaite"));
        let en = render(&sample(), Lang::En);
        assert!(section(&en, "requirements").contains("uncovered"));
    }

    #[test]
    fn everything_from_the_outcome_is_escaped() {
        let mut o = sample();
        o.scenarios[0].title = "<b>bold</b> & \"quoted\" 'single'".into();
        o.scenarios[0].id = "IDB OK <x>\"".into();
        o.pack.title = "</title><script>alert(2)</script>".into();
        for lang in [Lang::Fr, Lang::En] {
            let html = render(&o, lang);
            assert_eq!(html.matches("<script").count(), 1, "only our script");
            assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
            assert!(html.contains("x &amp; y"));
            assert!(html.contains("]]&gt;"));
            assert!(
                html.contains("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; &#39;single&#39;")
            );
            assert!(!html.contains("<b>bold"));
            // Control characters never reach the output.
            assert!(
                !html
                    .chars()
                    .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')),
                "no C0 control"
            );
            assert!(html.contains('\u{2401}'), "shown as a control picture");
            // The scenario's anchor is HTML-safe.
            assert!(html.contains("id=\"s-IDB_OK__x__\""));
        }
    }

    #[test]
    fn ids_are_unique_even_for_clashing_scenario_ids() {
        let mut o = sample();
        let mut twin = o.scenarios[0].clone();
        twin.id = "IDB/OK".into(); // sanitized to the same anchor as IDB_OK
        o.scenarios.push(twin.clone());
        twin.id = "IDB_OK".into();
        o.scenarios.push(twin.clone());
        o.scenarios.push(twin); // a duplicate id
        let html = render(&o, Lang::Fr);
        let all = ids(&html);
        assert!(all.len() > 10);
        let mut seen = HashSet::new();
        for id in &all {
            assert!(
                !id.is_empty() && !id.contains(char::is_whitespace),
                "{id:?}"
            );
            assert!(seen.insert(*id), "duplicate id {id}");
        }
        let html = render(&sample(), Lang::En);
        let all = ids(&html);
        assert_eq!(all.len(), all.iter().collect::<HashSet<_>>().len());
    }

    #[test]
    fn both_languages_label_differently() {
        let fr = render(&sample(), Lang::Fr);
        let en = render(&sample(), Lang::En);
        assert!(fr.contains("<html lang=\"fr\">") && en.contains("<html lang=\"en\">"));
        for (f, e) in [
            ("Matrice des exigences", "Requirement matrix"),
            ("Latence par opération", "Latency per operation"),
            ("Système testé et exécution", "System under test and run"),
            ("Constats", "Findings"),
            ("Attendu", "Expected"),
            ("Tout déplier", "Expand all"),
        ] {
            assert!(fr.contains(f) && !fr.contains(e), "fr: {f}");
            assert!(en.contains(e) && !en.contains(f), "en: {e}");
        }
        assert_eq!(Lang::parse("FR"), Some(Lang::Fr));
        assert_eq!(Lang::parse("fr-FR"), Some(Lang::Fr));
        assert_eq!(Lang::parse("français"), Some(Lang::Fr));
        assert_eq!(Lang::parse("en_GB"), Some(Lang::En));
        assert_eq!(Lang::parse("English"), Some(Lang::En));
        assert_eq!(Lang::parse("de"), None);
        assert_eq!(Lang::parse(""), None);
        assert_eq!("en".parse::<Lang>(), Ok(Lang::En));
    }

    #[test]
    fn findings_diffs_and_transport_errors() {
        let html = render(&sample(), Lang::En);
        let list = section(&html, "scenarios");
        // The changed words are emphasized in the paired lines and in expected/actual.
        assert!(
            list.contains("<span class=\"dl d-exp\">-  &lt;roc:montantAmc&gt;<del>12.35</del>")
        );
        assert!(
            list.contains("<span class=\"dl d-act\">+  &lt;roc:montantAmc&gt;<ins>12.34</ins>")
        );
        assert!(list.contains("<span class=\"dl d-hunk\">@@ -1,3 +1,3 @@</span>"));
        assert!(list.contains("<code class=\"exp\">"));
        assert!(list.contains("/Envelope/Body/simReponse/montantAmc"));
        // The transport error: a broken arrow with its kind, and the message.
        assert!(list.contains("1. CLC ✗ TLS"));
        assert!(list.contains("class=\"x\""));
        assert!(list.contains("peer sent TLS alert CertificateRequired"));
        // XML bodies are re-indented.
        assert!(list.contains("&lt;env:Body&gt;\n    &lt;x&gt;1&lt;/x&gt;"));
    }

    #[test]
    fn latency_per_operation_against_the_sla() {
        let html = render(&sample(), Lang::En);
        let l = section(&html, "latency");
        // SIM answered in 500 ms against a 400 ms target median.
        let at = l.find("<code>SIM</code>").expect("SIM row");
        let row = &l[at..at + l[at..].find("</tr>").unwrap()];
        assert!(
            row.contains("class=\"num over\"") && row.contains("median over target"),
            "{row}"
        );
        let at = l.find("<code>IDB</code>").expect("IDB row");
        let row = &l[at..at + l[at..].find("</tr>").unwrap()];
        assert!(!row.contains("over") && row.contains("within SLA"), "{row}");
        // CLC never got an answer: one unanswered, no figures.
        assert!(
            l.contains("<code>CLC</code></th><td class=\"num\">0</td><td class=\"num\">1</td>")
        );
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.95), 4.0);
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
        assert_eq!(median(&[1.0, 2.0, 9.0]), 2.0);
    }

    #[test]
    fn sequence_diagram_lifelines_in_order_with_notes() {
        let mk = |to: &str, op: &str| {
            let mut e = exchange(op, to, 3.0, true);
            e.from = "gap".into();
            e
        };
        let steps = vec![
            step(0, "trigger compute", None),
            step(1, "expect amc-B CLC", Some(mk("amc-B", "CLC"))),
            step(2, "expect annuaire search", Some(mk("annuaire", "search"))),
            step(3, "expect amc-A IDB", Some(mk("amc-A", "IDB"))),
            step(4, "expect no request", None),
        ];
        let mut o = sample();
        o.scenarios = vec![scenario("GAP-FLOW", Status::Passed, &["REQ-1"], steps)];
        let html = render(&o, Lang::En);
        let svg_at = html.find("<svg").expect("svg");
        let svg = &html[svg_at..svg_at + html[svg_at..].find("</svg>").unwrap()];
        let pos = |s: &str| svg.find(s).unwrap_or_else(|| panic!("{s} in {svg}"));
        assert!(pos(">GAP<") < pos(">Annuaire<"));
        assert!(pos(">Annuaire<") < pos(">AMC A<"));
        assert!(pos(">AMC A<") < pos(">AMC B<"));
        assert!(svg.contains(">1. trigger compute<") && svg.contains(">5. expect no request<"));
        assert!(svg.contains(">2. CLC<") && svg.contains("200 OK · 3.00 ms"));
    }

    /// Closed tags balance for the elements the report nests.
    #[test]
    fn tags_balance() {
        let html = render(&sample(), Lang::Fr);
        for t in [
            "details", "summary", "table", "tr", "section", "svg", "g", "pre", "ul", "dl", "div",
        ] {
            let open =
                html.matches(&format!("<{t}>")).count() + html.matches(&format!("<{t} ")).count();
            let close = html.matches(&format!("</{t}>")).count();
            assert_eq!(open, close, "<{t}>");
        }
    }

    /// Odd data: empty and non-ASCII ids, control characters, a base64 body, a message to
    /// oneself, long labels, odd tags, duplicate requirements, NaN latencies.
    fn torture() -> Outcome {
        let mut e = exchange("IDB", "amc", f64::NAN, true);
        e.from = "amc".into();
        e.request.body = None;
        e.request.body_base64 = Some("AAECAwQFBgcICQ==".repeat(20));
        e.request.start_line = String::new();
        let r = e.response.as_mut().unwrap();
        r.status = None;
        r.headers.clear();
        r.body = Some("{\"a\": [1, 2, {\"b\": \"<&>\"}]}".into());
        let mut st = step(0, &"x".repeat(200), Some(e));
        st.captures.insert(
            "k<&>".into(),
            "v\u{0}\u{1b}[31m\u{85}\u{fffe}\u{fdd0}".into(),
        );
        st.body_diff = Some("-only\n+\n--- not a header\n+++ nor this\n \u{7}bell\n".into());
        st.findings.push(Finding {
            check: "<check>".into(),
            message: "\u{1}".into(),
            location: None,
            expected: Some(String::new()),
            actual: None,
            step: None,
            requirements: vec![],
        });
        let mut a = scenario("", Status::Failed, &["R<1>", "R<1>", "UNKNOWN"], vec![st]);
        a.tags = vec!["a b".into(), "|".into(), "\"".into()];
        a.title = "\u{0}\u{1b}[31mred\r\nnext".into();
        a.reason = Some("r".repeat(1000));
        let mut st = step(0, "trigger", None);
        st.findings.push(Finding {
            check: "template".into(),
            message: "no request sent".into(),
            location: None,
            expected: None,
            actual: None,
            step: Some(0),
            requirements: vec![],
        });
        let b = scenario("SCÉNARIO 1", Status::Errored, &[], vec![st]);
        let mut e = exchange("CLC", "amc-Z", 1.0, false);
        e.error = Some(TransportError {
            kind: TransportErrorKind::Timeout,
            message: "late".into(),
        });
        e.tls = None;
        let c = scenario(
            "SCÉNARIO_1",
            Status::Errored,
            &[],
            vec![step(0, "CLC", Some(e))],
        );
        let reqs = [
            ("R<1>".to_string(), "<b>".to_string(), String::new()),
            ("R<1>".to_string(), "again".to_string(), "&".to_string()),
        ];
        let mut sut = sut();
        sut.sla_median_ms = 0;
        sut.sla_limit_ms = 0;
        sut.kind = "<other>".into();
        build(
            pack(),
            sut,
            &reqs,
            vec![a, b, c],
            String::new(),
            f64::NAN,
            false,
        )
    }

    #[test]
    fn odd_data_renders_with_unique_ids_and_no_control_characters() {
        for lang in [Lang::Fr, Lang::En] {
            let html = render(&torture(), lang);
            let all = ids(&html);
            assert_eq!(
                all.len(),
                all.iter().collect::<HashSet<_>>().len(),
                "{all:?}"
            );
            assert!(all.iter().all(|id| {
                !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            }));
            assert!(
                !html
                    .chars()
                    .any(|c| ((c as u32) < 0x20 && !"\t\n\r".contains(c))
                        || ('\u{7f}'..='\u{9f}').contains(&c)
                        || is_noncharacter(c))
            );
            assert_eq!(html.matches("<script").count(), 1);
            assert!(html.contains("id=\"s-_\"") && html.contains("id=\"s-SC_NARIO_1\""));
            assert!(html.contains("id=\"s-SC_NARIO_1-2\""));
            assert!(html.contains("&lt;check&gt;"));
        }
    }

    /// 1,000 small scenarios: one exchange each (small SOAP bodies), 2 % failed with a finding
    /// and a body diff, 2 % errored on a transport error, 2 % skipped.
    fn thousand(exchanges_per_scenario: usize) -> Outcome {
        let mut scenarios = Vec::new();
        for i in 0..1000 {
            let status = match i % 50 {
                0 => Status::Failed,
                1 => Status::Errored,
                2 => Status::Skipped,
                _ => Status::Passed,
            };
            let mut steps: Vec<StepOutcome> = (0..exchanges_per_scenario)
                .map(|k| {
                    let op = ["IDB", "CLC", "DEL"][k % 3];
                    step(k, op, Some(exchange(op, "amc", (i % 97) as f64, true)))
                })
                .collect();
            match status {
                Status::Failed => {
                    steps[0].findings.push(Finding {
                        check: "body".into(),
                        message: "text at /Envelope/Body/y: expected 3, got 2".into(),
                        location: Some("/Envelope/Body/y".into()),
                        expected: Some("3".into()),
                        actual: Some("2".into()),
                        step: Some(0),
                        requirements: vec![],
                    });
                    steps[0].body_diff = Some(
                        "--- expected\n+++ actual\n@@ -1 +1 @@\n-<y>3</y>\n+<y>2</y>\n".into(),
                    );
                }
                Status::Errored => {
                    let e = steps[0].exchange.as_mut().unwrap();
                    e.response = None;
                    e.error = Some(TransportError {
                        kind: TransportErrorKind::Timeout,
                        message: "no answer within 4000 ms".into(),
                    });
                }
                Status::Skipped => steps.clear(),
                _ => {}
            }
            let mut s = scenario(&format!("SC-{i:04}"), status, &["REQ-1"], steps);
            s.tags.push(format!("group-{}", i % 10));
            scenarios.push(s);
        }
        let reqs = [("REQ-1".to_string(), "x".to_string(), "§1".to_string())];
        build(pack(), sut(), &reqs, scenarios, "t".into(), 1.0, false)
    }

    #[test]
    fn a_thousand_scenarios_render_fast_and_small() {
        let o = thousand(1);
        let t0 = std::time::Instant::now();
        let html = render(&o, Lang::Fr);
        let took = t0.elapsed();
        println!(
            "1000 scenarios, 1 exchange each: {} bytes ({:.2} MiB) in {took:?}",
            html.len(),
            html.len() as f64 / 1_048_576.0,
        );
        // Size, not time: timings are measured by `cargo bench --bench report`.
        assert!(html.len() < 3 * 1024 * 1024, "{} bytes", html.len());
        assert_eq!(html.matches("<details class=\"sc\"").count(), 1000);
        assert_eq!(html.matches("<script").count(), 1);
        // Three exchanges per scenario, for the record.
        let o = thousand(3);
        let t0 = std::time::Instant::now();
        let html = render(&o, Lang::Fr);
        println!(
            "1000 scenarios, 3 exchanges each: {} bytes ({:.2} MiB) in {:?}",
            html.len(),
            html.len() as f64 / 1_048_576.0,
            t0.elapsed()
        );
    }
}
