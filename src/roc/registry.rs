//! The AMC's engagement registry (section 5, "Registries"): an engagement is `active` from its
//! CLC, `cancelled` by DEL, `invoiced` by a DRE, and `active` again when its invoice is
//! cancelled (ANF) or rejected (RSP).
//!
//! The registry is plain data; the AMC server keeps one behind a mutex. Invoices (DRE, ANF,
//! RSP) and billing periods (R08) will be added beside engagements: an engagement already
//! records what they need (establishment, AMC, `idDossier`, period, lines, end of care).

use super::rules::Ligne;
use super::{Deviations, Ko, Version};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use time::Date;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngagementState {
    Active,
    Cancelled,
    Invoiced,
}

/// The billing period an engagement covers (V2 intermediate billing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periode {
    pub rang: u32,
    pub date_debut: Date,
    pub date_fin: Date,
    pub derniere: bool,
}

/// One engagement, as its CLC answer gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct Engagement {
    pub numero: String,
    pub numero_amc: String,
    /// The establishment that obtained it (`entete/emetteur/finessJuridique`).
    pub finess_juridique: String,
    pub id_dossier: String,
    /// Population id of the beneficiary.
    pub beneficiaire_id: String,
    pub version: Version,
    pub date_entree: Date,
    pub date_sortie: Option<Date>,
    pub periode: Option<Periode>,
    /// In the CLC's order.
    pub lignes: Vec<Ligne>,
    pub total_amc: Decimal,
    pub total_reste_a_charge: Decimal,
    pub state: EngagementState,
    pub created_on: Date,
    pub cancelled_on: Option<Date>,
    /// `numeroFacture` of the invoice holding it (DRE, later).
    pub facture: Option<String>,
}

impl Engagement {
    /// The end of what was engaged: the period's `dateFin`, else the stay's `dateSortie`.
    pub fn end_of_care(&self) -> Option<Date> {
        self.periode.map(|p| p.date_fin).or(self.date_sortie)
    }
}

/// `ENG-` and 12 uppercase hexadecimal digits taken from `bits` (its low 48 bits).
pub fn engagement_number(bits: u128) -> String {
    format!("ENG-{:012X}", bits & 0xFFFF_FFFF_FFFF)
}

/// Engagements by number.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    engagements: BTreeMap<String, Engagement>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A number not used yet, drawing random bits from `draw` (e.g. a v4 UUID) until one is
    /// free.
    pub fn fresh_number(&self, mut draw: impl FnMut() -> u128) -> String {
        loop {
            let n = engagement_number(draw());
            if !self.engagements.contains_key(&n) {
                return n;
            }
        }
    }

    /// Record a new engagement. Refuses a number already used.
    pub fn record(&mut self, e: Engagement) -> Result<&Engagement, String> {
        use std::collections::btree_map::Entry;
        match self.engagements.entry(e.numero.clone()) {
            Entry::Occupied(o) => Err(format!("engagement {} already recorded", o.key())),
            Entry::Vacant(v) => Ok(v.insert(e)),
        }
    }

    pub fn get(&self, numero: &str) -> Option<&Engagement> {
        self.engagements.get(numero)
    }

    /// An engagement as seen by an establishment and an AMC number: another establishment's
    /// or another AMC number's engagement is unknown to it.
    pub fn visible(&self, numero: &str, numero_amc: &str, finess: &str) -> Option<&Engagement> {
        self.engagements
            .get(numero)
            .filter(|e| e.numero_amc == numero_amc && e.finess_juridique == finess)
    }

    pub fn len(&self) -> usize {
        self.engagements.len()
    }

    pub fn is_empty(&self) -> bool {
        self.engagements.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Engagement> {
        self.engagements.values()
    }

    /// DEL: unknown (or not visible) → R10; already cancelled → R11 (accepted without change
    /// under the `double_del_accepted` deviation); invoiced → R12; otherwise cancelled on
    /// `on`.
    pub fn cancel(
        &mut self,
        numero: &str,
        numero_amc: &str,
        finess: &str,
        on: Date,
        dev: &Deviations,
    ) -> Result<&Engagement, Ko> {
        let e = self
            .engagements
            .get_mut(numero)
            .filter(|e| e.numero_amc == numero_amc && e.finess_juridique == finess)
            .ok_or(Ko::R10)?;
        match e.state {
            EngagementState::Cancelled if dev.double_del_accepted => Ok(e),
            EngagementState::Cancelled => Err(Ko::R11),
            EngagementState::Invoiced => Err(Ko::R12),
            EngagementState::Active => {
                e.state = EngagementState::Cancelled;
                e.cancelled_on = Some(on);
                Ok(e)
            }
        }
    }

    /// Mark an engagement invoiced under `facture` (for DRE, later work).
    pub fn mark_invoiced(&mut self, numero: &str, facture: &str) -> Result<(), Ko> {
        let e = self.engagements.get_mut(numero).ok_or(Ko::R20)?;
        if e.state != EngagementState::Active {
            return Err(Ko::R20);
        }
        e.state = EngagementState::Invoiced;
        e.facture = Some(facture.to_string());
        Ok(())
    }

    /// Back to `active` after its invoice was cancelled or rejected (ANF, RSP; later work).
    pub fn reactivate(&mut self, numero: &str) {
        if let Some(e) = self.engagements.get_mut(numero)
            && e.state == EngagementState::Invoiced
        {
            e.state = EngagementState::Active;
            e.facture = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn eng(numero: &str) -> Engagement {
        Engagement {
            numero: numero.into(),
            numero_amc: "12345678".into(),
            finess_juridique: "750712184".into(),
            id_dossier: "D1".into(),
            beneficiaire_id: "P01".into(),
            version: Version::V1_04,
            date_entree: date!(2026 - 03 - 02),
            date_sortie: Some(date!(2026 - 03 - 05)),
            periode: None,
            lignes: vec![],
            total_amc: Decimal::ZERO,
            total_reste_a_charge: Decimal::ZERO,
            state: EngagementState::Active,
            created_on: date!(2026 - 03 - 02),
            cancelled_on: None,
            facture: None,
        }
    }

    const TODAY: Date = date!(2026 - 03 - 03);

    #[test]
    fn numbers() {
        assert_eq!(engagement_number(0xABCDEF), "ENG-000000ABCDEF");
        assert_eq!(engagement_number(u128::MAX), "ENG-FFFFFFFFFFFF");
        assert!(super::super::ids::is_numero_engagement(&engagement_number(
            12345
        )));
        let mut r = Registry::new();
        r.record(eng("ENG-000000000001")).unwrap();
        let mut draws = [1u128, 1, 2].into_iter();
        assert_eq!(r.fresh_number(|| draws.next().unwrap()), "ENG-000000000002");
        assert!(r.record(eng("ENG-000000000001")).is_err());
    }

    #[test]
    fn del_r10_r11_r12() {
        let dev = Deviations::default();
        let mut r = Registry::new();
        r.record(eng("ENG-1")).unwrap();
        r.record(eng("ENG-2")).unwrap();
        assert_eq!(
            r.cancel("ENG-9", "12345678", "750712184", TODAY, &dev)
                .err(),
            Some(Ko::R10)
        );
        // Another establishment or AMC number does not see it.
        assert_eq!(
            r.cancel("ENG-1", "12345678", "130000000", TODAY, &dev)
                .err(),
            Some(Ko::R10)
        );
        assert_eq!(
            r.cancel("ENG-1", "23456789", "750712184", TODAY, &dev)
                .err(),
            Some(Ko::R10)
        );
        let e = r
            .cancel("ENG-1", "12345678", "750712184", TODAY, &dev)
            .unwrap();
        assert_eq!(e.state, EngagementState::Cancelled);
        assert_eq!(e.cancelled_on, Some(TODAY));
        assert_eq!(
            r.cancel("ENG-1", "12345678", "750712184", TODAY, &dev)
                .err(),
            Some(Ko::R11)
        );
        r.mark_invoiced("ENG-2", "F1").unwrap();
        assert_eq!(
            r.cancel("ENG-2", "12345678", "750712184", TODAY, &dev)
                .err(),
            Some(Ko::R12)
        );
        r.reactivate("ENG-2");
        assert!(
            r.cancel("ENG-2", "12345678", "750712184", TODAY, &dev)
                .is_ok()
        );
        assert_eq!(r.mark_invoiced("ENG-1", "F2"), Err(Ko::R20));
    }

    #[test]
    fn double_del_deviation() {
        let dev = Deviations {
            double_del_accepted: true,
            ..Deviations::default()
        };
        let mut r = Registry::new();
        r.record(eng("ENG-1")).unwrap();
        r.record(eng("ENG-2")).unwrap();
        r.cancel("ENG-1", "12345678", "750712184", TODAY, &dev)
            .unwrap();
        assert!(
            r.cancel("ENG-1", "12345678", "750712184", TODAY, &dev)
                .is_ok()
        );
        // Unknown and invoiced unchanged.
        assert_eq!(
            r.cancel("ENG-9", "12345678", "750712184", TODAY, &dev)
                .err(),
            Some(Ko::R10)
        );
        r.mark_invoiced("ENG-2", "F1").unwrap();
        assert_eq!(
            r.cancel("ENG-2", "12345678", "750712184", TODAY, &dev)
                .err(),
            Some(Ko::R12)
        );
    }

    #[test]
    fn end_of_care() {
        let mut e = eng("ENG-1");
        assert_eq!(e.end_of_care(), Some(date!(2026 - 03 - 05)));
        e.periode = Some(Periode {
            rang: 1,
            date_debut: date!(2026 - 03 - 02),
            date_fin: date!(2026 - 03 - 31),
            derniere: false,
        });
        assert_eq!(e.end_of_care(), Some(date!(2026 - 03 - 31)));
    }
}
