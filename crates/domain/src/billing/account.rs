//! A subscriber's account: the money documents (invoices, credit notes, payments, refunds) and
//! how credits are allocated to debits.
//!
//! Debits are what the subscriber owes: issued invoices with a positive total, and refunds
//! (money paid back out of a credit). Credits pay debits: payments, credit notes, and invoices
//! whose total is negative (a period of corrections). An allocation moves part of a credit
//! onto a debit. The balance is derived from the documents alone:
//!
//! balance = Σ invoices − Σ credit notes − Σ payments + Σ refunds = Σ open debits − Σ available
//! credits
//!
//! and settling (allocating available credit to open debits, oldest first) never changes it.

use crate::ids::*;
use crate::validate::Currency;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// How money arrived or left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PaymentMethod {
    BankTransfer,
    Cash,
    Card,
    DirectDebit,
    Other,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BankTransfer => "bank_transfer",
            Self::Cash => "cash",
            Self::Card => "card",
            Self::DirectDebit => "direct_debit",
            Self::Other => "other",
        }
    }
}

impl FromStr for PaymentMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bank_transfer" => Ok(Self::BankTransfer),
            "cash" => Ok(Self::Cash),
            "card" => Ok(Self::Card),
            "direct_debit" => Ok(Self::DirectDebit),
            "other" => Ok(Self::Other),
            o => Err(format!(
                "unknown payment method `{o}` (bank_transfer, cash, card, direct_debit, other)"
            )),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: PaymentId,
    pub subscriber_id: SubscriberId,
    pub currency: Currency,
    /// Always positive.
    pub amount_minor: i64,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    /// The bank's transaction id or an import fingerprint: a second payment with the same one
    /// is a duplicate.
    pub external_id: Option<String>,
    pub received_at: Timestamp,
    pub recorded_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub id: RefundId,
    pub subscriber_id: SubscriberId,
    pub currency: Currency,
    /// Always positive.
    pub amount_minor: i64,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    pub reason: String,
    pub refunded_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditNote {
    pub id: CreditNoteId,
    /// Gap-free, its own sequence (`CN-000001`).
    pub number: String,
    pub subscriber_id: SubscriberId,
    pub invoice_id: InvoiceId,
    pub currency: Currency,
    pub reason: String,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    /// Positive: the amount credited.
    pub total_minor: i64,
    pub issued_at: Timestamp,
}

/// Kinds of money documents, as the ledger and allocations name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DocumentKind {
    Invoice,
    CreditNote,
    Payment,
    Refund,
}

impl DocumentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invoice => "invoice",
            Self::CreditNote => "credit_note",
            Self::Payment => "payment",
            Self::Refund => "refund",
        }
    }
}

impl FromStr for DocumentKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "invoice" => Ok(Self::Invoice),
            "credit_note" => Ok(Self::CreditNote),
            "payment" => Ok(Self::Payment),
            "refund" => Ok(Self::Refund),
            o => Err(format!("unknown document kind `{o}`")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DocumentRef {
    pub kind: DocumentKind,
    pub id: uuid::Uuid,
}

/// Something owed: an issued invoice with a positive total, or a refund.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Debit {
    pub doc: DocumentRef,
    /// Invoice number or refund reference, for messages.
    pub label: String,
    /// Due date (invoices) or refund date.
    pub due: Date,
    pub at: Timestamp,
    pub amount_minor: i64,
    pub allocated_minor: i64,
}

impl Debit {
    /// What is still owed. `0 ≤ allocated ≤ amount` always holds (allocations never exceed
    /// either side, the schema keeps amounts positive), so this difference cannot overflow;
    /// it saturates all the same rather than wrap on corrupt data.
    pub fn open_minor(&self) -> i64 {
        self.amount_minor.saturating_sub(self.allocated_minor)
    }
}

/// Something that pays: a payment, a credit note or an invoice with a negative total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credit {
    pub doc: DocumentRef,
    pub at: Timestamp,
    /// Positive.
    pub amount_minor: i64,
    pub allocated_minor: i64,
}

impl Credit {
    /// What is still available (see [`Debit::open_minor`] on why this cannot overflow).
    pub fn available_minor(&self) -> i64 {
        self.amount_minor.saturating_sub(self.allocated_minor)
    }
}

/// A money sum left the range of `i64`: every account total, allocation and running balance
/// is computed with checked arithmetic, so this is an error, never a wrapped amount. Inputs
/// are bounded by [`super::money::MAX_AMOUNT_MINOR`], so only corrupt data can cause it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a money sum overflows: an amount is beyond any real account")]
pub struct MoneyOverflow;

/// The exact sum of `amounts`, or [`MoneyOverflow`].
pub fn checked_sum(amounts: impl IntoIterator<Item = i64>) -> Result<i64, MoneyOverflow> {
    amounts
        .into_iter()
        .try_fold(0i64, |acc, a| acc.checked_add(a).ok_or(MoneyOverflow))
}

/// The balance after each ledger entry, in order (entries' `amount_minor` is their effect on
/// the balance), with checked sums.
pub fn running_balances(entries: &[LedgerEntry]) -> Result<Vec<i64>, MoneyOverflow> {
    let mut balance = 0i64;
    entries
        .iter()
        .map(|e| {
            balance = balance.checked_add(e.amount_minor).ok_or(MoneyOverflow)?;
            Ok(balance)
        })
        .collect()
}

/// Part of a credit applied to a debit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    pub id: AllocationId,
    pub subscriber_id: SubscriberId,
    pub credit: DocumentRef,
    pub debit: DocumentRef,
    pub amount_minor: i64,
    pub created_at: Timestamp,
}

/// The money state of one subscriber, as read from the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub subscriber_id: SubscriberId,
    pub currency: Currency,
    /// Optimistic-concurrency guard: every account change increments it.
    pub revision: i64,
    pub debits: Vec<Debit>,
    pub credits: Vec<Credit>,
}

impl Account {
    /// What the subscriber owes (negative: credit in their favour).
    pub fn balance_minor(&self) -> Result<i64, MoneyOverflow> {
        let open = checked_sum(self.debits.iter().map(Debit::open_minor))?;
        open.checked_sub(self.available_credit_minor()?)
            .ok_or(MoneyOverflow)
    }

    pub fn available_credit_minor(&self) -> Result<i64, MoneyOverflow> {
        checked_sum(self.credits.iter().map(Credit::available_minor))
    }

    /// Open amount of invoices (refunds are allocated in full when made).
    pub fn open_invoices_minor(&self) -> Result<i64, MoneyOverflow> {
        checked_sum(
            self.debits
                .iter()
                .filter(|d| d.doc.kind == DocumentKind::Invoice)
                .map(Debit::open_minor),
        )
    }

    /// Open amount of debits due before `today`.
    pub fn overdue_minor(&self, today: Date) -> Result<i64, MoneyOverflow> {
        checked_sum(
            self.debits
                .iter()
                .filter(|d| d.due < today)
                .map(Debit::open_minor),
        )
    }

    /// Whether anything is open past its due date (no sum needed).
    pub fn has_overdue(&self, today: Date) -> bool {
        self.debits
            .iter()
            .any(|d| d.due < today && d.open_minor() > 0)
    }

    /// The oldest debit still open and past due, with its days overdue.
    pub fn oldest_overdue(&self, today: Date) -> Option<(&Debit, i64)> {
        self.debits
            .iter()
            .filter(|d| d.open_minor() > 0 && d.due < today)
            .min_by_key(|d| (d.due, d.at, d.doc))
            .map(|d| (d, super::period::days_between(d.due, today)))
    }

    pub fn debit(&self, doc: DocumentRef) -> Option<&Debit> {
        self.debits.iter().find(|d| d.doc == doc)
    }

    pub fn credit(&self, doc: DocumentRef) -> Option<&Credit> {
        self.credits.iter().find(|c| c.doc == doc)
    }

    /// Applies allocations to the in-memory state (to compute the result of a change).
    pub fn apply(&mut self, allocations: &[Allocation]) -> Result<(), MoneyOverflow> {
        for a in allocations {
            if let Some(d) = self.debits.iter_mut().find(|d| d.doc == a.debit) {
                d.allocated_minor = d
                    .allocated_minor
                    .checked_add(a.amount_minor)
                    .ok_or(MoneyOverflow)?;
            }
            if let Some(c) = self.credits.iter_mut().find(|c| c.doc == a.credit) {
                c.allocated_minor = c
                    .allocated_minor
                    .checked_add(a.amount_minor)
                    .ok_or(MoneyOverflow)?;
            }
        }
        Ok(())
    }

    /// Allocates as much as possible of `credit` to `debit`; the allocation made, if any.
    pub fn allocate(
        &mut self,
        credit: DocumentRef,
        debit: DocumentRef,
        max_minor: i64,
        now: Timestamp,
    ) -> Result<Option<Allocation>, MoneyOverflow> {
        let (Some(c), Some(d)) = (self.credit(credit), self.debit(debit)) else {
            return Ok(None);
        };
        let amount = c.available_minor().min(d.open_minor()).min(max_minor);
        if amount <= 0 {
            return Ok(None);
        }
        let a = Allocation {
            id: AllocationId::generate(),
            subscriber_id: self.subscriber_id,
            credit,
            debit,
            amount_minor: amount,
            created_at: now,
        };
        self.apply(std::slice::from_ref(&a))?;
        Ok(Some(a))
    }

    /// Allocates available credit to open debits, oldest credit to oldest debit, until one
    /// side is exhausted. Returns the allocations made (and applies them).
    ///
    /// Every credit counts alike, whatever produced it: a payment, a credit note, or an
    /// invoice whose total is negative (corrections crediting more than the period charges).
    pub fn settle(&mut self, now: Timestamp) -> Result<Vec<Allocation>, MoneyOverflow> {
        let mut debits: Vec<(Date, Timestamp, DocumentRef)> = self
            .debits
            .iter()
            .filter(|d| d.open_minor() > 0)
            .map(|d| (d.due, d.at, d.doc))
            .collect();
        debits.sort();
        let mut credits: Vec<(Timestamp, DocumentRef)> = self
            .credits
            .iter()
            .filter(|c| c.available_minor() > 0)
            .map(|c| (c.at, c.doc))
            .collect();
        credits.sort();
        let mut out = Vec::new();
        let (mut di, mut ci) = (0, 0);
        while di < debits.len() && ci < credits.len() {
            let (debit, credit) = (debits[di].2, credits[ci].1);
            if let Some(a) = self.allocate(credit, debit, i64::MAX, now)? {
                out.push(a);
            }
            if self.debit(debit).is_none_or(|d| d.open_minor() <= 0) {
                di += 1;
            }
            if self.credit(credit).is_none_or(|c| c.available_minor() <= 0) {
                ci += 1;
            }
        }
        Ok(out)
    }

    /// Invoices settled by now: those with a positive total fully paid, and those with a
    /// negative total (a credit) whose credit is used up, by other invoices or refunds.
    ///
    /// An invoice's status tells an operator whether anything is still open on it, either
    /// way: `issued` means money is still owed on it (positive total) or still available
    /// from it (negative total); `paid` means it is settled. A zero invoice is settled when
    /// it is issued ([`super::invoice::status_at_issue`]).
    pub fn paid_invoices(&self) -> Vec<InvoiceId> {
        self.debits
            .iter()
            .filter(|d| d.doc.kind == DocumentKind::Invoice && d.open_minor() == 0)
            .map(|d| InvoiceId(d.doc.id))
            .chain(
                self.credits
                    .iter()
                    .filter(|c| c.doc.kind == DocumentKind::Invoice && c.available_minor() == 0)
                    .map(|c| InvoiceId(c.doc.id)),
            )
            .collect()
    }

    /// Of [`Self::paid_invoices`], those `allocations` touched (as debit or credit): the
    /// invoices a change makes paid.
    pub fn invoices_settled_by(&self, allocations: &[Allocation]) -> Vec<InvoiceId> {
        let touched: std::collections::BTreeSet<DocumentRef> = allocations
            .iter()
            .flat_map(|a| [a.debit, a.credit])
            .filter(|d| d.kind == DocumentKind::Invoice)
            .collect();
        self.paid_invoices()
            .into_iter()
            .filter(|i| {
                touched.contains(&DocumentRef {
                    kind: DocumentKind::Invoice,
                    id: i.0,
                })
            })
            .collect()
    }
}

/// One line of a subscriber's ledger: a money document's effect on the balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub kind: LedgerEntryKind,
    pub document_id: uuid::Uuid,
    /// Invoice or credit note number, payment or refund reference.
    pub label: Option<String>,
    pub at: Timestamp,
    /// Positive: the subscriber owes more.
    pub amount_minor: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LedgerEntryKind {
    Invoice,
    /// Reverses an issued invoice that was voided.
    InvoiceVoid,
    CreditNote,
    Payment,
    Refund,
}

impl FromStr for LedgerEntryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "invoice" => Ok(Self::Invoice),
            "invoice_void" => Ok(Self::InvoiceVoid),
            "credit_note" => Ok(Self::CreditNote),
            "payment" => Ok(Self::Payment),
            "refund" => Ok(Self::Refund),
            o => Err(format!("unknown ledger entry kind `{o}`")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn acct() -> Account {
        Account {
            subscriber_id: SubscriberId::generate(),
            currency: Currency::parse("EUR").unwrap(),
            revision: 0,
            debits: vec![],
            credits: vec![],
        }
    }

    fn at(day: i8) -> Timestamp {
        date(2026, 3, day)
            .at(12, 0, 0, 0)
            .in_tz("UTC")
            .unwrap()
            .timestamp()
    }

    fn debit(a: &mut Account, day: i8, amount: i64) -> DocumentRef {
        let doc = DocumentRef {
            kind: DocumentKind::Invoice,
            id: uuid::Uuid::now_v7(),
        };
        a.debits.push(Debit {
            doc,
            label: format!("INV-{day}"),
            due: date(2026, 3, day),
            at: at(day),
            amount_minor: amount,
            allocated_minor: 0,
        });
        doc
    }

    fn credit(a: &mut Account, day: i8, amount: i64) -> DocumentRef {
        let doc = DocumentRef {
            kind: DocumentKind::Payment,
            id: uuid::Uuid::now_v7(),
        };
        a.credits.push(Credit {
            doc,
            at: at(day),
            amount_minor: amount,
            allocated_minor: 0,
        });
        doc
    }

    #[test]
    fn settle_pays_oldest_invoice_first_and_keeps_the_rest_as_credit() {
        let mut a = acct();
        let new = debit(&mut a, 20, 6000);
        let old = debit(&mut a, 5, 4000);
        credit(&mut a, 21, 12000);
        assert_eq!(a.balance_minor().unwrap(), -2000);
        let allocs = a.settle(at(22)).unwrap();
        assert_eq!(allocs.len(), 2);
        assert_eq!(allocs[0].debit, old);
        assert_eq!(allocs[1].debit, new);
        assert_eq!(a.available_credit_minor().unwrap(), 2000);
        assert_eq!(a.balance_minor().unwrap(), -2000);
        assert_eq!(a.paid_invoices().len(), 2);
    }

    #[test]
    fn overdue_is_open_debits_due_before_today() {
        let mut a = acct();
        debit(&mut a, 5, 4000);
        debit(&mut a, 20, 6000);
        credit(&mut a, 6, 1000);
        a.settle(at(6)).unwrap();
        assert_eq!(a.overdue_minor(date(2026, 3, 10)).unwrap(), 3000);
        let (d, days) = a.oldest_overdue(date(2026, 3, 10)).unwrap();
        assert_eq!((d.open_minor(), days), (3000, 5));
        assert_eq!(a.overdue_minor(date(2026, 3, 5)).unwrap(), 0);
    }

    #[test]
    fn sums_that_overflow_are_errors_not_wraps() {
        // The ledger: two payments of i64::MAX showed balance 2, credit -2.
        let mut a = acct();
        credit(&mut a, 1, i64::MAX);
        credit(&mut a, 2, i64::MAX);
        assert_eq!(a.available_credit_minor(), Err(MoneyOverflow));
        assert_eq!(a.balance_minor(), Err(MoneyOverflow));
        let mut b = acct();
        debit(&mut b, 1, i64::MAX);
        debit(&mut b, 2, 1);
        assert_eq!(b.overdue_minor(date(2026, 3, 10)), Err(MoneyOverflow));
        assert_eq!(b.open_invoices_minor(), Err(MoneyOverflow));
        let entry = |amount_minor| LedgerEntry {
            kind: LedgerEntryKind::Payment,
            document_id: uuid::Uuid::now_v7(),
            label: None,
            at: at(1),
            amount_minor,
        };
        assert_eq!(running_balances(&[entry(5), entry(-7)]), Ok(vec![5, -2]));
        assert_eq!(
            running_balances(&[entry(-i64::MAX), entry(-i64::MAX)]),
            Err(MoneyOverflow)
        );
        assert_eq!(checked_sum([i64::MAX, 1]), Err(MoneyOverflow));
        assert_eq!(checked_sum([i64::MAX, -1, 1]), Ok(i64::MAX));
    }

    #[test]
    fn a_negative_invoice_is_credit_and_paid_once_used() {
        let mut a = acct();
        let open = debit(&mut a, 5, 4000);
        let neg = DocumentRef {
            kind: DocumentKind::Invoice,
            id: uuid::Uuid::now_v7(),
        };
        a.credits.push(Credit {
            doc: neg,
            at: at(6),
            amount_minor: 1500,
            allocated_minor: 0,
        });
        let allocs = a.settle(at(7)).unwrap();
        assert_eq!(allocs.len(), 1);
        assert_eq!((allocs[0].credit, allocs[0].debit), (neg, open));
        // The credit invoice is used up (settled); the other still has 2500 open.
        assert_eq!(a.invoices_settled_by(&allocs), vec![InvoiceId(neg.id)]);
        assert_eq!(a.balance_minor().unwrap(), 2500);
    }

    proptest! {
        /// Whatever order debits and credits arrive in and whenever settling happens, the
        /// balance is Σ debits − Σ credits, no allocation exceeds either side, and after a
        /// settle either no debit is open or no credit is available (a subscriber with a zero
        /// or negative balance has nothing overdue).
        #[test]
        fn settling_keeps_the_balance_and_clears_what_it_can(
            ops in prop::collection::vec((any::<bool>(), 1i64..50_000, 1i8..28, any::<bool>()), 1..40)
        ) {
            let mut a = acct();
            let (mut owed, mut paid) = (0i64, 0i64);
            for (is_debit, amount, day, settle_now) in ops {
                if is_debit { debit(&mut a, day, amount); owed += amount; }
                else { credit(&mut a, day, amount); paid += amount; }
                if settle_now { a.settle(at(27)).unwrap(); }
                prop_assert_eq!(a.balance_minor().unwrap(), owed - paid);
            }
            a.settle(at(27)).unwrap();
            prop_assert_eq!(a.balance_minor().unwrap(), owed - paid);
            for d in &a.debits { prop_assert!(d.open_minor() >= 0); }
            for c in &a.credits { prop_assert!(c.available_minor() >= 0); }
            let open: i64 = a.debits.iter().map(Debit::open_minor).sum();
            prop_assert!(open == 0 || a.available_credit_minor().unwrap() == 0);
            if a.balance_minor().unwrap() <= 0 {
                prop_assert_eq!(a.overdue_minor(date(2026, 4, 30)).unwrap(), 0);
            }
        }
    }
}
