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
    pub fn open_minor(&self) -> i64 {
        self.amount_minor - self.allocated_minor
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
    pub fn available_minor(&self) -> i64 {
        self.amount_minor - self.allocated_minor
    }
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
    pub fn balance_minor(&self) -> i64 {
        self.debits.iter().map(Debit::open_minor).sum::<i64>()
            - self
                .credits
                .iter()
                .map(Credit::available_minor)
                .sum::<i64>()
    }

    pub fn available_credit_minor(&self) -> i64 {
        self.credits.iter().map(Credit::available_minor).sum()
    }

    /// Open amount of debits due before `today`.
    pub fn overdue_minor(&self, today: Date) -> i64 {
        self.debits
            .iter()
            .filter(|d| d.due < today)
            .map(Debit::open_minor)
            .sum()
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
    pub fn apply(&mut self, allocations: &[Allocation]) {
        for a in allocations {
            if let Some(d) = self.debits.iter_mut().find(|d| d.doc == a.debit) {
                d.allocated_minor += a.amount_minor;
            }
            if let Some(c) = self.credits.iter_mut().find(|c| c.doc == a.credit) {
                c.allocated_minor += a.amount_minor;
            }
        }
    }

    /// Allocates as much as possible of `credit` to `debit`; the allocation made, if any.
    pub fn allocate(
        &mut self,
        credit: DocumentRef,
        debit: DocumentRef,
        max_minor: i64,
        now: Timestamp,
    ) -> Option<Allocation> {
        let avail = self.credit(credit)?.available_minor();
        let open = self.debit(debit)?.open_minor();
        let amount = avail.min(open).min(max_minor);
        if amount <= 0 {
            return None;
        }
        let a = Allocation {
            id: AllocationId::generate(),
            subscriber_id: self.subscriber_id,
            credit,
            debit,
            amount_minor: amount,
            created_at: now,
        };
        self.apply(std::slice::from_ref(&a));
        Some(a)
    }

    /// Allocates available credit to open debits, oldest credit to oldest debit, until one
    /// side is exhausted. Returns the allocations made (and applies them).
    pub fn settle(&mut self, now: Timestamp) -> Vec<Allocation> {
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
            if let Some(a) = self.allocate(credit, debit, i64::MAX, now) {
                out.push(a);
            }
            if self.debit(debit).is_none_or(|d| d.open_minor() <= 0) {
                di += 1;
            }
            if self.credit(credit).is_none_or(|c| c.available_minor() <= 0) {
                ci += 1;
            }
        }
        out
    }

    /// Invoices fully paid by now.
    pub fn paid_invoices(&self) -> Vec<InvoiceId> {
        self.debits
            .iter()
            .filter(|d| d.doc.kind == DocumentKind::Invoice && d.open_minor() == 0)
            .map(|d| InvoiceId(d.doc.id))
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
        assert_eq!(a.balance_minor(), -2000);
        let allocs = a.settle(at(22));
        assert_eq!(allocs.len(), 2);
        assert_eq!(allocs[0].debit, old);
        assert_eq!(allocs[1].debit, new);
        assert_eq!(a.available_credit_minor(), 2000);
        assert_eq!(a.balance_minor(), -2000);
        assert_eq!(a.paid_invoices().len(), 2);
    }

    #[test]
    fn overdue_is_open_debits_due_before_today() {
        let mut a = acct();
        debit(&mut a, 5, 4000);
        debit(&mut a, 20, 6000);
        credit(&mut a, 6, 1000);
        a.settle(at(6));
        assert_eq!(a.overdue_minor(date(2026, 3, 10)), 3000);
        let (d, days) = a.oldest_overdue(date(2026, 3, 10)).unwrap();
        assert_eq!((d.open_minor(), days), (3000, 5));
        assert_eq!(a.overdue_minor(date(2026, 3, 5)), 0);
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
                if settle_now { a.settle(at(27)); }
                prop_assert_eq!(a.balance_minor(), owed - paid);
            }
            a.settle(at(27));
            prop_assert_eq!(a.balance_minor(), owed - paid);
            for d in &a.debits { prop_assert!(d.open_minor() >= 0); }
            for c in &a.credits { prop_assert!(c.available_minor() >= 0); }
            let open: i64 = a.debits.iter().map(Debit::open_minor).sum();
            prop_assert!(open == 0 || a.available_credit_minor() == 0);
            if a.balance_minor() <= 0 {
                prop_assert_eq!(a.overdue_minor(date(2026, 4, 30)), 0);
            }
        }
    }
}
