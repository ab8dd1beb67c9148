//! Defect switches of the embedded reference SUTs. Each switch breaks exactly one rule of the
//! spec, so that the test suite can prove that the scenarios verifying that rule, and only
//! those, fail when it is on.

/// One defect switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defect {
    /// Name used on the command line, in profiles and in the tests.
    pub name: &'static str,
    /// Which embedded SUT it applies to (`amc`).
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
];

/// Every defect of every embedded SUT.
pub fn all() -> impl Iterator<Item = &'static Defect> {
    AMC.iter()
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
        assert_eq!(AMC.len(), 24);
        assert_eq!(find("amc", "hang-del").unwrap().sut, "amc");
        assert!(find("gap", "hang-del").is_none());
        assert!(find("amc", "nope").is_none());
    }
}
