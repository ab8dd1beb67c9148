//! The AMC's engagement and invoice registry (section 5, "Intermediate billing",
//! "Registries" and "Returns"): an engagement is `active` from its CLC, `cancelled` by DEL,
//! `invoiced` by a DRE, and `active` again when its invoice is cancelled (ANF) or rejected
//! (RSP). An invoice is `received` by a DRE, then `paid` or `rejected` at a payment run, or
//! `cancelled` by ANF while still `received`.
//!
//! The registry is plain data; the AMC server keeps one behind a mutex. Every rule here takes
//! the date and the random bits it needs from its caller.
//!
//! # Scopes
//!
//! - An engagement is seen only by the establishment (`finessJuridique`) and the AMC number
//!   that obtained it: for anyone else it is unknown (DEL R10, DRE R20).
//! - R08 looks at the engagements of the same establishment, AMC number and `idDossier` that
//!   carry a billing period; a CLC without `periodeFacturation` is never R08.
//! - Invoice numbers are one namespace per AMC (one registry): a `numeroFacture` already
//!   received from anyone is R22, which keeps the return files `RSP-<numeroFacture>.xml` of
//!   one payment run distinct. An invoice is seen (ANF) only by the establishment and AMC
//!   number that sent it: for anyone else it is unknown (R23).

use super::rules::Ligne;
use super::{Deviations, Ko, Version};
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};
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
    /// `numeroFacture` of the invoice holding it (while `invoiced`).
    pub facture: Option<String>,
}

impl Engagement {
    /// The end of what was engaged: the period's `dateFin`, else the stay's `dateSortie`.
    pub fn end_of_care(&self) -> Option<Date> {
        self.periode.map(|p| p.date_fin).or(self.date_sortie)
    }

    fn seen_by(&self, numero_amc: &str, finess: &str) -> bool {
        self.numero_amc == numero_amc && self.finess_juridique == finess
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FactureState {
    Received,
    Paid,
    Rejected,
    Cancelled,
}

/// One invoice (DRE).
#[derive(Debug, Clone, PartialEq)]
pub struct Facture {
    pub numero: String,
    pub numero_engagement: String,
    pub numero_amc: String,
    /// The establishment that sent it.
    pub finess_juridique: String,
    pub date_facture: Date,
    /// `montantAmc` of each line, in the DRE's order.
    pub montants: Vec<Decimal>,
    pub total_amc: Decimal,
    pub state: FactureState,
    pub received_on: Date,
    /// Payment run that paid or rejected it.
    pub settled_on: Option<Date>,
    pub cancelled_on: Option<Date>,
    /// What its payment said (paid only).
    pub montant_paye: Option<Decimal>,
    pub reference_virement: Option<String>,
    /// Why it was rejected (rejected only).
    pub rejet: Option<Ko>,
}

/// A DRE, schema-valid, as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DreDemande {
    pub numero_engagement: String,
    pub numero_facture: String,
    pub numero_amc: String,
    pub finess_juridique: String,
    pub date_facture: Date,
    /// `montantAmc` of each line, in the DRE's order.
    pub montants: Vec<Decimal>,
    pub total_amc: Decimal,
}

/// What a payment run decided for one invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reglement {
    Paiement {
        montant: Decimal,
        date: Date,
        reference: String,
    },
    Rejet(Ko),
}

/// One invoice settled by a payment run: the content of its return file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub numero_facture: String,
    pub numero_engagement: String,
    pub reglement: Reglement,
}

/// `ENG-` and 12 uppercase hexadecimal digits taken from `bits` (its low 48 bits).
pub fn engagement_number(bits: u128) -> String {
    format!("ENG-{:012X}", bits & 0xFFFF_FFFF_FFFF)
}

/// `VIR-` and 12 uppercase hexadecimal digits taken from `bits` (its low 48 bits).
pub fn reference_virement(bits: u128) -> String {
    format!("VIR-{:012X}", bits & 0xFFFF_FFFF_FFFF)
}

/// Engagements by number, invoices by number, the transfer references used.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    engagements: BTreeMap<String, Engagement>,
    factures: BTreeMap<String, Facture>,
    references: BTreeSet<String>,
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
            .filter(|e| e.seen_by(numero_amc, finess))
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

    /// An invoice by number.
    pub fn facture(&self, numero: &str) -> Option<&Facture> {
        self.factures.get(numero)
    }

    /// Every invoice, by number.
    pub fn factures(&self) -> impl Iterator<Item = &Facture> {
        self.factures.values()
    }

    /// R08 for a CLC of `id_dossier` engaging `p`, checked against the engagements of the
    /// same establishment and AMC number (section 5, "Intermediate billing"):
    /// - its `rang` already has an active or invoiced engagement (not under the
    ///   `r08_unchecked` deviation);
    /// - the dossier's `derniere` period is engaged (active or invoiced, rang L) and the
    ///   request's `rang` is new: above L, or below L with no engagement ever recorded for
    ///   it (not under the `last_period_ignored` deviation). Re-engaging a rang below L whose
    ///   engagement was cancelled (DEL, then CLC to recompute) is allowed.
    ///
    /// A cancelled engagement frees its period.
    pub fn check_periode(
        &self,
        numero_amc: &str,
        finess: &str,
        id_dossier: &str,
        p: &Periode,
        dev: &Deviations,
    ) -> Result<(), Ko> {
        let mut taken = false;
        let mut ever = BTreeSet::new();
        let mut last: Option<u32> = None;
        for e in self
            .engagements
            .values()
            .filter(|e| e.seen_by(numero_amc, finess) && e.id_dossier == id_dossier)
        {
            let Some(ep) = e.periode else { continue };
            ever.insert(ep.rang);
            if e.state == EngagementState::Cancelled {
                continue;
            }
            if ep.rang == p.rang {
                taken = true;
            }
            if ep.derniere {
                last = Some(last.map_or(ep.rang, |l| l.min(ep.rang)));
            }
        }
        if taken && !dev.r08_unchecked {
            return Err(Ko::R08);
        }
        if let Some(l) = last
            && !dev.last_period_ignored
            && p.rang != l
            && (p.rang > l || !ever.contains(&p.rang))
        {
            return Err(Ko::R08);
        }
        Ok(())
    }

    /// DEL: unknown (or not visible) → R10; already cancelled → R11 (accepted without change
    /// under the `double_del_accepted` deviation); invoiced → R12 (cancelled under the
    /// `del_invoiced` deviation, its invoice left as it is); otherwise cancelled on `on`.
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
            .filter(|e| e.seen_by(numero_amc, finess))
            .ok_or(Ko::R10)?;
        match e.state {
            EngagementState::Cancelled if dev.double_del_accepted => Ok(e),
            EngagementState::Cancelled => Err(Ko::R11),
            EngagementState::Invoiced if !dev.del_invoiced => Err(Ko::R12),
            EngagementState::Active | EngagementState::Invoiced => {
                e.state = EngagementState::Cancelled;
                e.cancelled_on = Some(on);
                Ok(e)
            }
        }
    }

    /// Mark an engagement invoiced under `facture` (without an invoice record: for tests).
    pub fn mark_invoiced(&mut self, numero: &str, facture: &str) -> Result<(), Ko> {
        let e = self.engagements.get_mut(numero).ok_or(Ko::R20)?;
        if e.state != EngagementState::Active {
            return Err(Ko::R20);
        }
        e.state = EngagementState::Invoiced;
        e.facture = Some(facture.to_string());
        Ok(())
    }

    /// Back to `active` after its invoice was cancelled or rejected.
    pub fn reactivate(&mut self, numero: &str) {
        if let Some(e) = self.engagements.get_mut(numero)
            && e.state == EngagementState::Invoiced
        {
            e.state = EngagementState::Active;
            e.facture = None;
        }
    }

    /// Back to `active` if it is still held by invoice `facture`.
    fn release(&mut self, numero: &str, facture: &str) {
        if self
            .engagements
            .get(numero)
            .is_some_and(|e| e.facture.as_deref() == Some(facture))
        {
            self.reactivate(numero);
        }
    }

    /// DRE, in the spec's order: engagement unknown (or not visible) or cancelled → R20;
    /// `numeroFacture` already received, whatever its state → R22; engagement already
    /// invoiced under another number → R26; `totalAmc`, the number of lines or a line's
    /// `montantAmc` (lines in the engagement's order) different from the engagement → R21;
    /// otherwise the invoice is `received` on `on` and the engagement `invoiced`.
    /// Deviations: `dre_cancelled_engagement` (a cancelled engagement goes on as an active
    /// one), `dre_duplicate_number` (no R22: the new invoice replaces the old record),
    /// `dre_twice_invoiced` (no R26: the engagement moves to the new invoice),
    /// `dre_amounts_unchecked` (no R21).
    pub fn invoice(&mut self, d: &DreDemande, on: Date, dev: &Deviations) -> Result<&Facture, Ko> {
        let e = self
            .visible(&d.numero_engagement, &d.numero_amc, &d.finess_juridique)
            .ok_or(Ko::R20)?;
        if e.state == EngagementState::Cancelled && !dev.dre_cancelled_engagement {
            return Err(Ko::R20);
        }
        if self.factures.contains_key(&d.numero_facture) && !dev.dre_duplicate_number {
            return Err(Ko::R22);
        }
        if e.state == EngagementState::Invoiced
            && e.facture.as_deref() != Some(d.numero_facture.as_str())
            && !dev.dre_twice_invoiced
        {
            return Err(Ko::R26);
        }
        let same_amounts = d.total_amc == e.total_amc
            && d.montants.len() == e.lignes.len()
            && d.montants
                .iter()
                .zip(&e.lignes)
                .all(|(m, l)| *m == l.montant_amc);
        if !same_amounts && !dev.dre_amounts_unchecked {
            return Err(Ko::R21);
        }
        if let Some(e) = self.engagements.get_mut(&d.numero_engagement) {
            e.state = EngagementState::Invoiced;
            e.facture = Some(d.numero_facture.clone());
        }
        let f = Facture {
            numero: d.numero_facture.clone(),
            numero_engagement: d.numero_engagement.clone(),
            numero_amc: d.numero_amc.clone(),
            finess_juridique: d.finess_juridique.clone(),
            date_facture: d.date_facture,
            montants: d.montants.clone(),
            total_amc: d.total_amc,
            state: FactureState::Received,
            received_on: on,
            settled_on: None,
            cancelled_on: None,
            montant_paye: None,
            reference_virement: None,
            rejet: None,
        };
        self.factures.insert(f.numero.clone(), f);
        Ok(&self.factures[&d.numero_facture])
    }

    /// ANF: unknown (or not visible) → R23; paid or rejected → R24 (a paid one is cancelled
    /// under the `anf_paid` deviation); already cancelled → accepted again without change
    /// (the spec lists no refusal for it); otherwise cancelled on `on`, and its engagement,
    /// if that invoice still holds it, `active` again (not under the
    /// `anf_engagement_stays_invoiced` deviation).
    pub fn cancel_invoice(
        &mut self,
        numero: &str,
        numero_amc: &str,
        finess: &str,
        on: Date,
        dev: &Deviations,
    ) -> Result<&Facture, Ko> {
        let f = self
            .factures
            .get(numero)
            .filter(|f| f.numero_amc == numero_amc && f.finess_juridique == finess)
            .ok_or(Ko::R23)?;
        match f.state {
            FactureState::Cancelled => return Ok(&self.factures[numero]),
            FactureState::Paid if dev.anf_paid => {}
            FactureState::Paid | FactureState::Rejected => return Err(Ko::R24),
            FactureState::Received => {}
        }
        let engagement = f.numero_engagement.clone();
        if let Some(f) = self.factures.get_mut(numero) {
            f.state = FactureState::Cancelled;
            f.cancelled_on = Some(on);
        }
        if !dev.anf_engagement_stays_invoiced {
            self.release(&engagement, numero);
        }
        Ok(&self.factures[numero])
    }

    /// A transfer reference not used yet (`VIR-` + 12 hex digits), drawing from `draw`.
    fn fresh_reference(&mut self, draw: &mut impl FnMut() -> u128) -> String {
        loop {
            let r = reference_virement(draw());
            if self.references.insert(r.clone()) {
                return r;
            }
        }
    }

    /// A payment run over the `received` invoices that `select` keeps, in invoice number
    /// order: an invoice dated before the end of what its engagement engaged
    /// ([`Engagement::end_of_care`]) is rejected R25 (paid under the `rsp_early_invoice_paid`
    /// deviation) and its engagement `active` again; any other is paid `totalAmc`
    /// (`totalAmc − 0.01` under `rsp_amount_wrong`) on `today` with a fresh transfer
    /// reference. The states change here; the caller writes the returns.
    pub fn settle(
        &mut self,
        select: impl Fn(&Facture) -> bool,
        today: Date,
        draw: impl FnMut() -> u128,
        dev: &Deviations,
    ) -> Vec<Settlement> {
        self.settle_rejecting(select, |_| false, today, draw, dev)
    }

    /// [`Registry::settle`], where the invoices `reject` keeps are rejected R25 whatever
    /// their date: a lab's mirror AMC injecting the model's batch rejection into a GAP's
    /// flow, as it injects KO answers.
    pub fn settle_rejecting(
        &mut self,
        select: impl Fn(&Facture) -> bool,
        reject: impl Fn(&Facture) -> bool,
        today: Date,
        mut draw: impl FnMut() -> u128,
        dev: &Deviations,
    ) -> Vec<Settlement> {
        let due: Vec<String> = self
            .factures
            .values()
            .filter(|f| f.state == FactureState::Received && select(f))
            .map(|f| f.numero.clone())
            .collect();
        let mut out = Vec::with_capacity(due.len());
        for numero in due {
            let f = &self.factures[&numero];
            let engagement = f.numero_engagement.clone();
            let forced = reject(f);
            let early = self
                .engagements
                .get(&engagement)
                .and_then(Engagement::end_of_care)
                .is_some_and(|end| f.date_facture < end);
            let reglement = if forced || (early && !dev.rsp_early_invoice_paid) {
                self.release(&engagement, &numero);
                Reglement::Rejet(Ko::R25)
            } else {
                let montant = if dev.rsp_amount_wrong {
                    f.total_amc - Decimal::new(1, 2)
                } else {
                    f.total_amc
                };
                Reglement::Paiement {
                    montant,
                    date: today,
                    reference: self.fresh_reference(&mut draw),
                }
            };
            if let Some(f) = self.factures.get_mut(&numero) {
                f.settled_on = Some(today);
                match &reglement {
                    Reglement::Paiement {
                        montant, reference, ..
                    } => {
                        f.state = FactureState::Paid;
                        f.montant_paye = Some(*montant);
                        f.reference_virement = Some(reference.clone());
                    }
                    Reglement::Rejet(ko) => {
                        f.state = FactureState::Rejected;
                        f.rejet = Some(*ko);
                    }
                }
            }
            out.push(Settlement {
                numero_facture: numero,
                numero_engagement: engagement,
                reglement,
            });
        }
        out
    }

    /// Undo the settlement of an invoice whose return could not be delivered: `received`
    /// again, and, for a rejection, its engagement `invoiced` by it again when nothing took
    /// the engagement meanwhile (it is still `active` and free; otherwise the invoice stays
    /// rejected). Returns whether the invoice is `received` again.
    pub fn unsettle(&mut self, numero: &str) -> bool {
        let Some(f) = self.factures.get(numero) else {
            return false;
        };
        match f.state {
            FactureState::Paid => {}
            FactureState::Rejected => {
                let Some(e) = self
                    .engagements
                    .get_mut(&f.numero_engagement)
                    .filter(|e| e.state == EngagementState::Active && e.facture.is_none())
                else {
                    return false;
                };
                e.state = EngagementState::Invoiced;
                e.facture = Some(numero.to_string());
            }
            FactureState::Received | FactureState::Cancelled => return false,
        }
        if let Some(f) = self.factures.get_mut(numero) {
            f.state = FactureState::Received;
            f.settled_on = None;
            f.montant_paye = None;
            f.reference_virement = None;
            f.rejet = None;
        }
        true
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
        assert_eq!(reference_virement(0xABCDEF), "VIR-000000ABCDEF");
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

    fn per(rang: u32, derniere: bool) -> Periode {
        Periode {
            rang,
            date_debut: date!(2026 - 03 - 02),
            date_fin: date!(2026 - 03 - 31),
            derniere,
        }
    }

    /// An engagement of dossier D1 for period `rang`.
    fn eng_per(r: &mut Registry, numero: &str, rang: u32, derniere: bool) {
        let mut e = eng(numero);
        e.periode = Some(per(rang, derniere));
        r.record(e).unwrap();
    }

    fn r08(r: &Registry, rang: u32, dev: &Deviations) -> Result<(), Ko> {
        r.check_periode("12345678", "750712184", "D1", &per(rang, false), dev)
    }

    #[test]
    fn r08_one_engagement_per_period() {
        let dev = Deviations::default();
        let mut r = Registry::new();
        assert_eq!(r08(&r, 1, &dev), Ok(()));
        eng_per(&mut r, "ENG-1", 1, false);
        assert_eq!(r08(&r, 1, &dev), Err(Ko::R08));
        assert_eq!(r08(&r, 2, &dev), Ok(()));
        // Invoiced still holds the period.
        r.mark_invoiced("ENG-1", "F1").unwrap();
        assert_eq!(r08(&r, 1, &dev), Err(Ko::R08));
        // Another dossier, establishment or AMC number is another scope.
        assert_eq!(
            r.check_periode("12345678", "750712184", "D2", &per(1, false), &dev),
            Ok(())
        );
        assert_eq!(
            r.check_periode("12345678", "130000000", "D1", &per(1, false), &dev),
            Ok(())
        );
        assert_eq!(
            r.check_periode("23456789", "750712184", "D1", &per(1, false), &dev),
            Ok(())
        );
        // A cancelled engagement frees its period.
        eng_per(&mut r, "ENG-2", 2, false);
        r.cancel("ENG-2", "12345678", "750712184", TODAY, &dev)
            .unwrap();
        assert_eq!(r08(&r, 2, &dev), Ok(()));
        // An engagement without period does not count.
        let mut r = Registry::new();
        r.record(eng("ENG-3")).unwrap();
        assert_eq!(r08(&r, 1, &dev), Ok(()));
        // The deviation lets the same period through, not a period after the last.
        let unchecked = Deviations {
            r08_unchecked: true,
            ..Deviations::default()
        };
        let mut r = Registry::new();
        eng_per(&mut r, "ENG-1", 1, false);
        assert_eq!(r08(&r, 1, &unchecked), Ok(()));
        eng_per(&mut r, "ENG-2", 2, true);
        assert_eq!(r08(&r, 2, &unchecked), Ok(()));
        assert_eq!(r08(&r, 3, &unchecked), Err(Ko::R08));
    }

    #[test]
    fn r08_after_the_last_period() {
        let dev = Deviations::default();
        let mut r = Registry::new();
        eng_per(&mut r, "ENG-1", 1, false);
        eng_per(&mut r, "ENG-3", 3, true);
        // After the last: R08; rang 2 was never engaged: a new rang, R08 too.
        assert_eq!(r08(&r, 4, &dev), Err(Ko::R08));
        assert_eq!(r08(&r, 2, &dev), Err(Ko::R08));
        // Recomputing rang 1 (DEL, then CLC) is allowed.
        r.cancel("ENG-1", "12345678", "750712184", TODAY, &dev)
            .unwrap();
        assert_eq!(r08(&r, 1, &dev), Ok(()));
        let ignored = Deviations {
            last_period_ignored: true,
            ..Deviations::default()
        };
        assert_eq!(r08(&r, 4, &ignored), Ok(()));
        assert_eq!(r08(&r, 2, &ignored), Ok(()));
        // The same rule for the same rang still holds under it.
        assert_eq!(r08(&r, 3, &ignored), Err(Ko::R08));
        // Once the last period is cancelled, new rangs are free again.
        r.cancel("ENG-3", "12345678", "750712184", TODAY, &dev)
            .unwrap();
        assert_eq!(r08(&r, 4, &dev), Ok(()));
        assert_eq!(r08(&r, 3, &dev), Ok(()));
    }

    fn dec(s: &str) -> Decimal {
        use std::str::FromStr;
        Decimal::from_str(s).unwrap()
    }

    /// ENG-1 with two lines 24.00 + 36.00, stay ending 2026-03-05.
    fn with_lines(numero: &str) -> Engagement {
        use super::super::CodePrestation;
        let l = |m: &str| Ligne {
            code: CodePrestation::Tm,
            montant_amc: dec(m),
            reste_a_charge: Decimal::ZERO,
        };
        Engagement {
            lignes: vec![l("24.00"), l("36.00")],
            total_amc: dec("60.00"),
            ..eng(numero)
        }
    }

    fn dre(engagement: &str, facture: &str) -> DreDemande {
        DreDemande {
            numero_engagement: engagement.into(),
            numero_facture: facture.into(),
            numero_amc: "12345678".into(),
            finess_juridique: "750712184".into(),
            date_facture: date!(2026 - 03 - 06),
            montants: vec![dec("24.00"), dec("36.00")],
            total_amc: dec("60.00"),
        }
    }

    #[test]
    fn dre_rules_in_order() {
        let dev = Deviations::default();
        let mut r = Registry::new();
        r.record(with_lines("ENG-1")).unwrap();
        r.record(with_lines("ENG-2")).unwrap();
        r.record(with_lines("ENG-3")).unwrap();
        // R20: unknown, another establishment's, cancelled.
        assert_eq!(
            r.invoice(&dre("ENG-9", "F1"), TODAY, &dev).err(),
            Some(Ko::R20)
        );
        let other = DreDemande {
            finess_juridique: "130000000".into(),
            ..dre("ENG-1", "F1")
        };
        assert_eq!(r.invoice(&other, TODAY, &dev).err(), Some(Ko::R20));
        r.cancel("ENG-3", "12345678", "750712184", TODAY, &dev)
            .unwrap();
        assert_eq!(
            r.invoice(&dre("ENG-3", "F1"), TODAY, &dev).err(),
            Some(Ko::R20)
        );
        // R21: total, one line, the lines' order, a missing line.
        for bad in [
            DreDemande {
                total_amc: dec("60.01"),
                ..dre("ENG-1", "F1")
            },
            DreDemande {
                montants: vec![dec("24.00"), dec("36.01")],
                ..dre("ENG-1", "F1")
            },
            DreDemande {
                montants: vec![dec("36.00"), dec("24.00")],
                ..dre("ENG-1", "F1")
            },
            DreDemande {
                montants: vec![dec("60.00")],
                ..dre("ENG-1", "F1")
            },
        ] {
            assert_eq!(r.invoice(&bad, TODAY, &dev).err(), Some(Ko::R21));
        }
        assert_eq!(r.get("ENG-1").unwrap().state, EngagementState::Active);
        // OK.
        let f = r.invoice(&dre("ENG-1", "F1"), TODAY, &dev).unwrap();
        assert_eq!(f.state, FactureState::Received);
        assert_eq!(f.received_on, TODAY);
        let e = r.get("ENG-1").unwrap();
        assert_eq!(e.state, EngagementState::Invoiced);
        assert_eq!(e.facture.as_deref(), Some("F1"));
        // R22 before R26 and R21: the same number again, anywhere, whatever its amounts.
        assert_eq!(
            r.invoice(&dre("ENG-1", "F1"), TODAY, &dev).err(),
            Some(Ko::R22)
        );
        let wrong = DreDemande {
            total_amc: dec("1.00"),
            ..dre("ENG-2", "F1")
        };
        assert_eq!(r.invoice(&wrong, TODAY, &dev).err(), Some(Ko::R22));
        // R26 before R21.
        assert_eq!(
            r.invoice(&dre("ENG-1", "F2"), TODAY, &dev).err(),
            Some(Ko::R26)
        );
        let wrong = DreDemande {
            total_amc: dec("1.00"),
            ..dre("ENG-1", "F2")
        };
        assert_eq!(r.invoice(&wrong, TODAY, &dev).err(), Some(Ko::R26));
        // R20 before R22.
        assert_eq!(
            r.invoice(&dre("ENG-3", "F1"), TODAY, &dev).err(),
            Some(Ko::R20)
        );
        // DEL of an invoiced engagement: R12.
        assert_eq!(
            r.cancel("ENG-1", "12345678", "750712184", TODAY, &dev)
                .err(),
            Some(Ko::R12)
        );
    }

    #[test]
    fn dre_deviations() {
        let mut r = Registry::new();
        for n in ["ENG-1", "ENG-2", "ENG-3"] {
            r.record(with_lines(n)).unwrap();
        }
        let dev = Deviations::default();
        r.cancel("ENG-3", "12345678", "750712184", TODAY, &dev)
            .unwrap();
        let d = Deviations {
            dre_cancelled_engagement: true,
            ..Deviations::default()
        };
        assert_eq!(
            r.invoice(&dre("ENG-9", "F3"), TODAY, &d).err(),
            Some(Ko::R20)
        );
        r.invoice(&dre("ENG-3", "F3"), TODAY, &d).unwrap();
        assert_eq!(r.get("ENG-3").unwrap().state, EngagementState::Invoiced);

        r.invoice(&dre("ENG-1", "F1"), TODAY, &dev).unwrap();
        let d = Deviations {
            dre_duplicate_number: true,
            ..Deviations::default()
        };
        assert!(r.invoice(&dre("ENG-1", "F1"), TODAY, &d).is_ok());
        // Other rules unchanged.
        assert_eq!(
            r.invoice(&dre("ENG-1", "F2"), TODAY, &d).err(),
            Some(Ko::R26)
        );

        let d = Deviations {
            dre_twice_invoiced: true,
            ..Deviations::default()
        };
        assert_eq!(
            r.invoice(&dre("ENG-1", "F1"), TODAY, &d).err(),
            Some(Ko::R22)
        );
        r.invoice(&dre("ENG-1", "F2"), TODAY, &d).unwrap();
        assert_eq!(r.get("ENG-1").unwrap().facture.as_deref(), Some("F2"));

        let d = Deviations {
            dre_amounts_unchecked: true,
            ..Deviations::default()
        };
        let wrong = DreDemande {
            total_amc: dec("99.00"),
            montants: vec![],
            ..dre("ENG-2", "F4")
        };
        assert!(r.invoice(&wrong, TODAY, &d).is_ok());

        let d = Deviations {
            del_invoiced: true,
            ..Deviations::default()
        };
        let e = r
            .cancel("ENG-2", "12345678", "750712184", TODAY, &d)
            .unwrap();
        assert_eq!(e.state, EngagementState::Cancelled);
        assert_eq!(
            r.cancel("ENG-2", "12345678", "750712184", TODAY, &d).err(),
            Some(Ko::R11)
        );
    }

    fn draws() -> impl FnMut() -> u128 {
        let mut n = 0u128;
        move || {
            n += 1;
            n
        }
    }

    #[test]
    fn anf_rules() {
        let dev = Deviations::default();
        let mut r = Registry::new();
        for n in ["ENG-1", "ENG-2", "ENG-3"] {
            r.record(with_lines(n)).unwrap();
        }
        r.invoice(&dre("ENG-1", "F1"), TODAY, &dev).unwrap();
        let anf = |r: &mut Registry, n: &str, finess: &str, dev: &Deviations| {
            r.cancel_invoice(n, "12345678", finess, TODAY, dev)
                .map(|f| f.state)
        };
        assert_eq!(anf(&mut r, "F9", "750712184", &dev), Err(Ko::R23));
        assert_eq!(anf(&mut r, "F1", "130000000", &dev), Err(Ko::R23));
        assert_eq!(
            anf(&mut r, "F1", "750712184", &dev),
            Ok(FactureState::Cancelled)
        );
        assert_eq!(r.facture("F1").unwrap().cancelled_on, Some(TODAY));
        let e = r.get("ENG-1").unwrap();
        assert_eq!(e.state, EngagementState::Active);
        assert_eq!(e.facture, None);
        // Again: accepted, nothing changes.
        assert_eq!(
            anf(&mut r, "F1", "750712184", &dev),
            Ok(FactureState::Cancelled)
        );
        // The engagement can be invoiced again, under a new number (F1 is R22).
        assert_eq!(
            r.invoice(&dre("ENG-1", "F1"), TODAY, &dev).err(),
            Some(Ko::R22)
        );
        r.invoice(&dre("ENG-1", "F1b"), TODAY, &dev).unwrap();
        // Cancelling the old F1 again does not free the engagement held by F1b.
        anf(&mut r, "F1", "750712184", &dev).unwrap();
        assert_eq!(r.get("ENG-1").unwrap().facture.as_deref(), Some("F1b"));
        // Paid, rejected: R24.
        r.invoice(&dre("ENG-2", "F2"), TODAY, &dev).unwrap();
        let early = DreDemande {
            date_facture: date!(2026 - 03 - 04),
            ..dre("ENG-3", "F3")
        };
        r.invoice(&early, TODAY, &dev).unwrap();
        r.settle(|f| f.numero != "F1b", TODAY, draws(), &dev);
        assert_eq!(r.facture("F2").unwrap().state, FactureState::Paid);
        assert_eq!(r.facture("F3").unwrap().state, FactureState::Rejected);
        assert_eq!(anf(&mut r, "F2", "750712184", &dev), Err(Ko::R24));
        assert_eq!(anf(&mut r, "F3", "750712184", &dev), Err(Ko::R24));
        // anf-paid: a paid one is cancelled and frees its engagement; rejected still R24.
        let d = Deviations {
            anf_paid: true,
            ..Deviations::default()
        };
        assert_eq!(anf(&mut r, "F3", "750712184", &d), Err(Ko::R24));
        assert_eq!(
            anf(&mut r, "F2", "750712184", &d),
            Ok(FactureState::Cancelled)
        );
        assert_eq!(r.get("ENG-2").unwrap().state, EngagementState::Active);
        // anf-engagement-stays-invoiced: the engagement stays held, a new DRE is R26.
        let d = Deviations {
            anf_engagement_stays_invoiced: true,
            ..Deviations::default()
        };
        assert_eq!(
            anf(&mut r, "F1b", "750712184", &d),
            Ok(FactureState::Cancelled)
        );
        assert_eq!(r.get("ENG-1").unwrap().state, EngagementState::Invoiced);
        assert_eq!(
            r.invoice(&dre("ENG-1", "F1c"), TODAY, &dev).err(),
            Some(Ko::R26)
        );
        assert_eq!(
            r.cancel("ENG-1", "12345678", "750712184", TODAY, &dev)
                .err(),
            Some(Ko::R12)
        );
    }

    #[test]
    fn settle_pays_rejects_and_unsettles() {
        let dev = Deviations::default();
        let mut r = Registry::new();
        for n in ["ENG-1", "ENG-2", "ENG-3"] {
            r.record(with_lines(n)).unwrap();
        }
        let mut p = with_lines("ENG-4");
        p.periode = Some(per(1, false));
        r.record(p).unwrap();
        // On the last day of care: paid. The day before: R25.
        let on_end = DreDemande {
            date_facture: date!(2026 - 03 - 05),
            ..dre("ENG-1", "F1")
        };
        r.invoice(&on_end, TODAY, &dev).unwrap();
        let early = DreDemande {
            date_facture: date!(2026 - 03 - 04),
            ..dre("ENG-2", "F2")
        };
        r.invoice(&early, TODAY, &dev).unwrap();
        // A period ends on its dateFin (2026-03-31), not the stay's dateSortie.
        let period_early = DreDemande {
            date_facture: date!(2026 - 03 - 30),
            ..dre("ENG-4", "F4")
        };
        r.invoice(&period_early, TODAY, &dev).unwrap();
        r.invoice(&dre("ENG-3", "F3"), TODAY, &dev).unwrap();
        r.cancel_invoice("F3", "12345678", "750712184", TODAY, &dev)
            .unwrap();
        let out = r.settle(|_| true, TODAY, || 7, &dev);
        // Cancelled F3 is not settled; the same draw twice still gives distinct references.
        let names: Vec<_> = out.iter().map(|s| s.numero_facture.as_str()).collect();
        assert_eq!(names, ["F1", "F2", "F4"]);
        assert_eq!(
            out[0].reglement,
            Reglement::Paiement {
                montant: dec("60.00"),
                date: TODAY,
                reference: "VIR-000000000007".into()
            }
        );
        assert_eq!(out[1].reglement, Reglement::Rejet(Ko::R25));
        assert_eq!(out[2].reglement, Reglement::Rejet(Ko::R25));
        assert_eq!(out[1].numero_engagement, "ENG-2");
        let f1 = r.facture("F1").unwrap();
        assert_eq!(f1.state, FactureState::Paid);
        assert_eq!(f1.montant_paye, Some(dec("60.00")));
        assert_eq!(f1.settled_on, Some(TODAY));
        assert_eq!(r.get("ENG-1").unwrap().state, EngagementState::Invoiced);
        assert_eq!(r.facture("F2").unwrap().rejet, Some(Ko::R25));
        assert_eq!(r.get("ENG-2").unwrap().state, EngagementState::Active);
        // Nothing left to settle.
        assert!(r.settle(|_| true, TODAY, draws(), &dev).is_empty());
        // After R25, invoice again with a new number dated after the end of care.
        r.invoice(&dre("ENG-2", "F2b"), TODAY, &dev).unwrap();
        let mut n = 0u128;
        let out = r.settle(
            |_| true,
            TODAY,
            || {
                n += 1;
                // The first draw is the reference already used.
                if n == 1 { 7 } else { 8 }
            },
            &dev,
        );
        assert!(
            matches!(&out[0].reglement, Reglement::Paiement { reference, .. } if reference == "VIR-000000000008")
        );
        // unsettle: paid → received; rejected → received and the engagement held again.
        assert!(r.unsettle("F2b"));
        assert_eq!(r.facture("F2b").unwrap().state, FactureState::Received);
        assert_eq!(r.facture("F2b").unwrap().reference_virement, None);
        let e = with_lines("ENG-5");
        r.record(e).unwrap();
        let early5 = DreDemande {
            date_facture: date!(2026 - 03 - 01),
            ..dre("ENG-5", "F5")
        };
        r.invoice(&early5, TODAY, &dev).unwrap();
        r.settle(|f| f.numero == "F5", TODAY, draws(), &dev);
        assert_eq!(r.get("ENG-5").unwrap().state, EngagementState::Active);
        assert!(r.unsettle("F5"));
        let e = r.get("ENG-5").unwrap();
        assert_eq!(e.state, EngagementState::Invoiced);
        assert_eq!(e.facture.as_deref(), Some("F5"));
        assert!(!r.unsettle("F5"));
        assert!(!r.unsettle("F9"));
    }

    #[test]
    fn settle_deviations() {
        let mut r = Registry::new();
        let dev = Deviations::default();
        for n in ["ENG-1", "ENG-2"] {
            r.record(with_lines(n)).unwrap();
        }
        let early = DreDemande {
            date_facture: date!(2026 - 03 - 04),
            ..dre("ENG-1", "F1")
        };
        r.invoice(&early, TODAY, &dev).unwrap();
        r.invoice(&dre("ENG-2", "F2"), TODAY, &dev).unwrap();
        let d = Deviations {
            rsp_early_invoice_paid: true,
            rsp_amount_wrong: true,
            ..Deviations::default()
        };
        let out = r.settle(|_| true, TODAY, draws(), &d);
        for s in &out {
            match &s.reglement {
                Reglement::Paiement { montant, .. } => assert_eq!(*montant, dec("59.99")),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(r.facture("F1").unwrap().state, FactureState::Paid);
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
