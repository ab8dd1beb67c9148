//! Defect switches of the embedded reference SUTs. Each switch breaks exactly one rule of the
//! spec, so that the test suite can prove that the scenarios verifying that rule, and only
//! those, fail when it is on.

/// One defect switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defect {
    /// Name used on the command line, in profiles and in the tests.
    pub name: &'static str,
    /// Which embedded SUT it applies to (`amc` or `gap`).
    pub sut: &'static str,
    /// Spec section (and rule) it breaks.
    pub rule: &'static str,
    pub description: &'static str,
}

const fn amc(name: &'static str, rule: &'static str, description: &'static str) -> Defect {
    Defect {
        name,
        sut: "amc",
        rule,
        description,
    }
}

/// Defects of the reference AMC (`mirror::amc`).
pub const AMC: &[Defect] = &[
    amc(
        "float-rounding",
        "3 (rounding half away from zero, to the cent)",
        "TM and DH percentages computed in f64 with ties-to-even rounding: 24.69 × 50 % gives 12.34 instead of 12.35",
    ),
    amc(
        "no-idflux-echo",
        "3 (enteteReponse/idFluxRequete)",
        "idFluxRequete omitted from enteteReponse",
    ),
    amc(
        "del-answer-truncated",
        "3 (answers are well-formed SOAP 1.2 messages)",
        "DEL answers are cut in the middle of their XML",
    ),
    amc(
        "idflux-copied",
        "3 (enteteReponse/idFlux: new per answer)",
        "the answer's own idFlux is the request's idFlux instead of a new one",
    ),
    amc(
        "fault-reason-en",
        "3 (faults: Reason/Text xml:lang=\"fr\")",
        "fault reasons are given in English only (xml:lang=\"en\")",
    ),
    amc(
        "r01-r02-swapped",
        "5 (IDB checks 3 and 5: R01, R02)",
        "an unknown beneficiary is answered R02 and rights not open R01",
    ),
    amc(
        "double-del-accepted",
        "5 (registries: DEL R11)",
        "DEL of an already cancelled engagement answered OK",
    ),
    amc(
        "no-client-cert-accepted",
        "2 (mutual authentication: client without certificate refused)",
        "client certificate optional; requests without one are processed, identity binding skipped",
    ),
    amc(
        "untrusted-client-accepted",
        "2 (mutual authentication: client certificate from another CA refused)",
        "client certificates from any CA accepted",
    ),
    amc(
        "finess-unbound",
        "2 (identity binding, roc:NonAutorise)",
        "entete/emetteur/finessJuridique not compared with the client certificate CN",
    ),
    amc(
        "slow-clc",
        "2 (SLA: every SEL response within 4 s)",
        "CLC answers after 4.3 s",
    ),
    amc(
        "hang-del",
        "2 (SLA: every SEL response within 4 s)",
        "DEL never answers (sleeps one hour)",
    ),
    amc(
        "soap11-envelope",
        "1, 3 (SEL is SOAP 1.2)",
        "answers and faults in the SOAP 1.1 envelope namespace with Content-Type text/xml",
    ),
    amc(
        "wrong-namespace",
        "3 (SEL namespace urn:roc:model:sel)",
        "answer elements in namespace urn:roc:sel instead of the SEL namespace",
    ),
    amc(
        "unknown-beneficiary-ok",
        "5 (IDB check 3: R01)",
        "an unknown beneficiary is answered OK (rights 2026-01-01..2026-12-31, TM 100 %)",
    ),
    amc(
        "twins-confused",
        "3, 5 (rangGemellaire in the lookup)",
        "rangGemellaire ignored: the first beneficiary with that NIR and birth date is used",
    ),
    amc(
        "totals-not-sum",
        "5 (totals are the sums of the lines)",
        "with more than one line, totalAmc leaves out the last line",
    ),
    amc(
        "nir-key-unchecked",
        "3, 5 (NIR key, R05)",
        "a wrong cleNir is not answered R05",
    ),
    amc(
        "adherent-unchecked",
        "5 (IDB check 4: R04)",
        "R04 never raised",
    ),
    amc(
        "any-amc-served",
        "5 (IDB check 1: R06)",
        "R06 never raised: every AMC number of the population is served",
    ),
    amc(
        "schema-lax",
        "3, 4 (missing element: roc:SchemaInvalide fault)",
        "a missing mandatory element of beneficiaire or contexte is answered KO R05 instead of a fault",
    ),
    amc(
        "any-version",
        "3 (versionNorme: roc:VersionNonSupportee)",
        "versionNorme not checked: a value the AMC does not accept is processed as 1.04",
    ),
    amc(
        "cp-uncapped",
        "5 (CP: min(reste, plafondCp × quantite))",
        "CP line not capped by plafondCp × quantite",
    ),
    amc(
        "rights-end-exclusive",
        "5 (IDB check 5: rights period inclusive)",
        "the last day of the rights period is treated as outside (R02)",
    ),
    amc(
        "faults-http-200",
        "3 (faults: HTTP 400, 403, 500)",
        "faults sent with HTTP 200",
    ),
    amc(
        "sim-on-ace",
        "5 (SIM: R09)",
        "R09 never raised: SIM on ACE computed",
    ),
    amc(
        "v2-domain-in-v1",
        "5 (IDB check 6: R03 for V2 domains in 1.04)",
        "SSR/PSY/HAD and categorieEtablissement accepted in a 1.04 request",
    ),
    amc(
        "r08-unchecked",
        "5 (intermediate billing: R08, one engagement per (idDossier, rang))",
        "a CLC for a period whose engagement is active or invoiced is engaged again (the derniere rule still holds)",
    ),
    amc(
        "last-period-ignored",
        "5 (intermediate billing: R08 for a new rang once the derniere period is engaged)",
        "a new rang after (or missing before) the engaged derniere period is engaged",
    ),
    amc(
        "dre-cancelled-engagement",
        "5 (DRE: R20 for a cancelled engagement)",
        "a DRE on a cancelled engagement is processed as on an active one (an unknown engagement is still R20)",
    ),
    amc(
        "dre-duplicate-number",
        "5 (DRE: R22, numeroFacture already received)",
        "R22 never raised: an invoice number already received is accepted again and replaces the first invoice",
    ),
    amc(
        "dre-twice-invoiced",
        "5 (DRE: R26, engagement already invoiced under another number)",
        "R26 never raised: an invoiced engagement is invoiced again under a new number",
    ),
    amc(
        "dre-amounts-unchecked",
        "5 (DRE: R21, amounts different from the engagement)",
        "R21 never raised: totalAmc and the lines' montantAmc are not compared with the engagement",
    ),
    amc(
        "del-invoiced",
        "5 (DEL: R12 for an invoiced engagement)",
        "DEL of an invoiced engagement answered OK (the engagement is cancelled)",
    ),
    amc(
        "anf-paid",
        "5 (ANF: R24 for a paid invoice)",
        "ANF of a paid invoice answered OK (cancelled, its engagement active again); a rejected one is still R24",
    ),
    amc(
        "anf-in-v1",
        "5 (ANF only in 2.00: roc:VersionNonSupportee in a 1.04 request)",
        "ANF processed in a 1.04 request",
    ),
    amc(
        "rsp-early-invoice-paid",
        "5 (returns: R25 rejection of an invoice dated before the end of care)",
        "R25 never raised at the payment run: early invoices are paid",
    ),
    amc(
        "rsp-amount-wrong",
        "5 (returns: montantPaye = the invoice's totalAmc)",
        "montantPaye is totalAmc - 0.01 on every payment",
    ),
    amc(
        "rsp-not-atomic",
        "5 (returns: a file is written whole, temporary name then rename)",
        "each RSP file is written in place under its final name, in two halves 200 ms apart",
    ),
    amc(
        "message-patient-in-v1",
        "5 (messagePatient never in a 1.04 answer)",
        "messagePatient also sent in a 1.04 CLC answer",
    ),
    amc(
        "optam-ignored",
        "5 (DH: min(tauxDh, 100) - 20 for a non-OPTAM practitioner)",
        "praticienOptam false treated as true: every DH line at tauxDh",
    ),
    amc(
        "anf-engagement-stays-invoiced",
        "5 (registries: an engagement is active again when its invoice is cancelled by ANF)",
        "after an ANF the engagement stays invoiced by the cancelled invoice: a new DRE on it gets R26, a DEL R12",
    ),
];

const fn gap(name: &'static str, rule: &'static str, description: &'static str) -> Defect {
    Defect {
        name,
        sut: "gap",
        rule,
        description,
    }
}

/// Defects of the embedded reference GAP (`mirror::gap`).
pub const GAP: &[Defect] = &[
    gap(
        "skips-annuaire",
        "7 (look the AMC up in the annuaire, use the returned addresses)",
        "no annuaire search: SEL calls go to the statically configured <lab.amc_urls[endpoint]>/<OP>",
    ),
    gap(
        "clc-without-idb",
        "7 (IDB before SIM or CLC)",
        "compute calls CLC without calling IDB first",
    ),
    gap(
        "clc-after-ko-idb",
        "7 (CLC only when IDB listed CLC)",
        "compute goes on to CLC after a KO IDB",
    ),
    gap(
        "retries-ko",
        "7 (a KO is a business refusal: no retry)",
        "a KO answer is retried once",
    ),
    gap(
        "reuses-idflux",
        "3, 7 (each retry a new request with a new idFlux)",
        "a retry reuses the idFlux of the first request",
    ),
    gap(
        "wrong-nir-key",
        "3 (cleNir after replacing 2A by 19 and 2B by 18)",
        "cleNir computed with 2A/2B read as 20: wrong for Corsican NIRs only",
    ),
    gap(
        "accepts-any-server-cert",
        "2, 7 (verify the server's certificate and host name)",
        "any server certificate accepted (no chain, name or validity check)",
    ),
    gap(
        "no-client-cert",
        "2, 7 (present the client certificate)",
        "no client certificate presented",
    ),
    gap(
        "soap11-requests",
        "2, 3 (SEL requests are SOAP 1.2 envelopes)",
        "SEL requests are written in the SOAP 1.1 envelope namespace (headers still SOAP 1.2)",
    ),
    gap(
        "v2-field-in-v1",
        "3 (categorieEtablissement is V2 only)",
        "categorieEtablissement EXDG added to the emetteur of a 1.04 entete",
    ),
    gap(
        "recompute-without-del",
        "7 (DEL before recomputing a stay's CLC)",
        "compute on an engaged stay sends CLC without DEL of the active engagement",
    ),
    gap(
        "wrong-endpoint",
        "6, 7 (annuaire addresses are per AMC number)",
        "annuaire cache not keyed by AMC number: the first lookup's addresses serve every AMC",
    ),
    gap(
        "no-retry",
        "7 (retry an env:Receiver fault or a timeout)",
        "an env:Receiver fault or a timeout is not retried",
    ),
    gap(
        "too-many-retries",
        "7 (at most two retries)",
        "an env:Receiver fault or a timeout is retried up to 3 times",
    ),
    // V2 behaviour (norme 2.00, periods, billing, returns): tests/data/gap-v2-defects.yaml.
    gap(
        "v2-to-v1-only-amc",
        "7 (2.00 only with an AMC whose address accepts 2.00)",
        "a V2 GAP sends 2.00 to an AMC whose annuaire address lists only 1.04",
    ),
    gap(
        "no-paper-fallback",
        "7 (SSR/PSY/HAD or EXOQN with a 1.04-only AMC: no SEL call)",
        "a stay that needs 2.00 is sent in 1.04 instead of falling back to paper",
    ),
    gap(
        "periods-out-of-order",
        "7 (engage each period once, in order)",
        "periods are engaged in reverse order (and a period may be engaged before earlier ones)",
    ),
    gap(
        "last-period-unmarked",
        "7 (mark the last period)",
        "periodeFacturation/derniere is false on the last period",
    ),
    gap(
        "invoice-without-engagement",
        "7 (never invoice without an active engagement)",
        "DRE sent with the last engagement number even after its DEL",
    ),
    gap(
        "invoice-amounts-recomputed",
        "7 (invoice exactly the engaged amounts)",
        "DRE montantAmc recomputed: 1 cent off on the last line (and in totalAmc)",
    ),
    gap(
        "invoice-before-end",
        "7 (never date an invoice before the end of what was engaged)",
        "DRE dated the day of entry",
    ),
    gap(
        "reinvoice-paid",
        "7 (a paid invoice is never invoiced again)",
        "an engagement whose invoice was paid is invoiced again",
    ),
    gap(
        "message-patient-dropped",
        "7 (hand messagePatient to the patient)",
        "the CLC answer's messagePatient is not reported",
    ),
    gap(
        "rsp-ignored",
        "7 (read every RSP file of the return drop)",
        "read_returns reads nothing",
    ),
];

/// Every defect of every embedded SUT.
pub fn all() -> impl Iterator<Item = &'static Defect> {
    AMC.iter().chain(GAP.iter())
}

/// The defect `name` of `sut`.
pub fn find(sut: &str, name: &str) -> Option<&'static Defect> {
    all().find(|d| d.sut == sut && d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let mut names: Vec<_> = AMC.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), AMC.len());
        assert_eq!(AMC.len(), 42);
        assert_eq!(find("amc", "hang-del").unwrap().sut, "amc");
        assert!(find("gap", "hang-del").is_none());
        assert!(find("amc", "nope").is_none());
    }

    #[test]
    fn gap_defects_are_unique_and_found() {
        let mut names: Vec<_> = GAP.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), GAP.len());
        assert_eq!(GAP.len(), 24);
        assert!(GAP.iter().all(|d| d.sut == "gap"));
        assert_eq!(find("gap", "no-retry").unwrap().sut, "gap");
        assert!(find("amc", "no-retry").is_none());
        assert_eq!(all().count(), AMC.len() + GAP.len());
    }
}
