//! Money use cases: payments, refunds, credit notes, issuing and voiding invoices, the ledger.
//!
//! Every operation reads the subscriber's account, computes the change with the domain's
//! allocation rules (named invoices first, then oldest debit first), and writes it with one
//! `record_account_change`, guarded by the account revision; a concurrent change makes it
//! start over. A payment or credit that clears everything overdue resumes the services dunning
//! suspended, in the same transaction.

use crate::retry::{optimistic, Attempt};
use crate::services::ServiceAction;
use crate::{App, AppError, AppResult};
use jiff::civil::Date;
use lastmile_api_types::{CreateCreditNote, CreatePayment, CreateRefund};
use lastmile_domain::audit::{Actor, AuditEvent};
use lastmile_domain::billing::account::{
    checked_sum, running_balances, Account, Allocation, Credit, CreditNote, Debit, DocumentKind,
    DocumentRef, LedgerEntry, MoneyOverflow, Payment, Refund,
};
use lastmile_domain::billing::invoice::{status_at_issue, Invoice, InvoiceStatus};
use lastmile_domain::billing::money::{check_amount, div_round_half_even};
use lastmile_domain::ids::*;
use lastmile_domain::service::{ServiceStatus, SuspensionCause};
use lastmile_domain::validate::{self, Currency, ValidationErrors};
use lastmile_store::{
    AccountChange, CreditNoteFilter, IssueInvoice, NewCreditNote, Page, PaymentFilter,
    ServiceFilter, VoidInvoice,
};

/// What a busy account's `409` names.
const ACCOUNT: &str = "the subscriber's account";

/// What a payment did.
#[derive(Clone, Debug)]
pub struct PaymentOutcome {
    pub payment: Payment,
    pub allocations: Vec<Allocation>,
    pub unallocated_minor: i64,
    pub resumed_services: Vec<ServiceId>,
}

/// A subscriber's ledger with the account summary, every sum checked.
#[derive(Clone, Debug)]
pub struct Ledger {
    pub account: Account,
    pub entries: Vec<LedgerEntry>,
    /// The balance after each entry (same order as `entries`).
    pub balances: Vec<i64>,
    pub today: Date,
    /// What the subscriber owes; negative: credit in their favour.
    pub balance_minor: i64,
    /// Open amount of issued invoices.
    pub open_minor: i64,
    /// Open amount past its due date.
    pub overdue_minor: i64,
    /// Money received or credited and not allocated yet.
    pub credit_minor: i64,
}

fn invoice_doc(id: InvoiceId) -> DocumentRef {
    DocumentRef {
        kind: DocumentKind::Invoice,
        id: id.0,
    }
}

impl App {
    pub async fn get_account(&self, sub: SubscriberId) -> AppResult<Account> {
        self.store
            .get_account(sub)
            .await?
            .ok_or_else(|| AppError::not_found("subscriber", sub))
    }

    /// Settles `account` (already holding the change's new documents and allocations),
    /// records which invoices it settled, and resumes the services dunning suspended when
    /// nothing is overdue any more. Returns the services resumed.
    async fn finish_account_change(
        &self,
        actor: &Actor,
        account: &mut Account,
        change: &mut AccountChange,
    ) -> AppResult<Vec<ServiceId>> {
        let now = self.clock.now();
        change.allocations.extend(account.settle(now)?);
        change.paid_invoices = account.invoices_settled_by(&change.allocations);
        self.resume_dunning_suspensions(actor, account, change, self.billing_today())
            .await
    }

    /// The dunning rule for lifting a suspension: once nothing is overdue, whatever cleared
    /// it (a payment, a credit note, a negative invoice of corrections, a void), every service
    /// suspended *by dunning* gets a resume in `change`. Services an operator suspended stay
    /// so. A subscriber with nothing overdue is never dunned, so a suspension that outlived
    /// its cause would otherwise last until someone noticed.
    pub(crate) async fn resume_dunning_suspensions(
        &self,
        actor: &Actor,
        account: &Account,
        change: &mut AccountChange,
        today: Date,
    ) -> AppResult<Vec<ServiceId>> {
        let mut resumed = Vec::new();
        if account.has_overdue(today) {
            return Ok(resumed);
        }
        let suspended = self
            .store
            .list_services(
                &ServiceFilter {
                    subscriber_id: Some(account.subscriber_id),
                    status: Some(ServiceStatus::Suspended),
                    ..ServiceFilter::default()
                },
                Page {
                    after: None,
                    limit: 1000,
                },
            )
            .await?;
        for s in suspended {
            if s.suspension_cause != Some(SuspensionCause::Dunning)
                || change.service_changes.iter().any(|c| c.service.id == s.id)
            {
                continue;
            }
            let sc = match self
                .prepare_service_change(
                    actor,
                    s.id,
                    &ServiceAction::Resume,
                    Some("overdue balance cleared".into()),
                    None,
                    None,
                )
                .await
            {
                Ok(sc) => sc,
                // Resumed or terminated meanwhile: nothing to do for it.
                Err(AppError::Conflict {
                    kind: "invalid-state",
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            resumed.push(s.id);
            change.service_changes.push(sc);
        }
        Ok(resumed)
    }

    /// Writes an account change; `Retry` when the account moved on since it was read.
    async fn try_record(&self, change: &AccountChange) -> AppResult<Attempt<()>> {
        let written = Attempt::from_write(self.store.record_account_change(change).await)?;
        if matches!(written, Attempt::Done(()))
            && (change.service_changes.iter().any(|c| !c.jobs.is_empty())
                || !change.jobs.is_empty())
        {
            (self.jobs_queued)();
        }
        Ok(written)
    }

    /// Allocates available credit to open invoices (after a billing run issued new ones).
    pub async fn settle_account(&self, sub: SubscriberId) -> AppResult<()> {
        let actor = Actor::system("billing");
        optimistic(ACCOUNT, || async {
            let before = self.get_account(sub).await?;
            let mut account = before.clone();
            let mut change = AccountChange::new(&before);
            self.finish_account_change(&actor, &mut account, &mut change)
                .await?;
            if change.allocations.is_empty() && change.service_changes.is_empty() {
                return Ok(Attempt::Done(()));
            }
            self.try_record(&change).await
        })
        .await
    }

    pub async fn record_payment(
        &self,
        actor: &Actor,
        req: CreatePayment,
    ) -> AppResult<PaymentOutcome> {
        let sub_id = SubscriberId(req.subscriber_id);
        let subscriber = self
            .store
            .get_subscriber(sub_id)
            .await?
            .ok_or_else(|| AppError::invalid("subscriber_id", "no such subscriber"))?;
        let mut e = ValidationErrors::new();
        if req.amount_minor <= 0 {
            e.add("amount_minor", "must be positive");
        } else {
            e.check("amount_minor", check_amount(req.amount_minor));
        }
        if let Some(c) = &req.currency {
            match Currency::parse(c) {
                Ok(c) if c == subscriber.currency => {}
                Ok(_) => e.add(
                    "currency",
                    format!("the subscriber is billed in {}", subscriber.currency),
                ),
                Err(m) => e.add("currency", m),
            }
        }
        let reference = e
            .check(
                "reference",
                validate::optional(req.reference.as_deref(), 200),
            )
            .flatten();
        let external_id = e
            .check(
                "external_id",
                validate::optional(req.external_id.as_deref(), 200),
            )
            .flatten();
        let now = self.clock.now();
        let received_at = req.received_at.map(crate::clock::to_micros).unwrap_or(now);
        if received_at > now + jiff::SignedDuration::from_hours(24) {
            e.add("received_at", "must not be in the future");
        }
        // Each named amount is bounded, so their sum (in i128) is exact.
        let mut named_total = 0i128;
        for (i, a) in req.allocations.iter().enumerate() {
            let field = format!("allocations[{i}].amount_minor");
            if a.amount_minor <= 0 {
                e.add(field, "must be positive");
            } else {
                e.check(&field, check_amount(a.amount_minor));
            }
            named_total += i128::from(a.amount_minor);
        }
        if req.amount_minor > 0 && named_total > i128::from(req.amount_minor) {
            e.add("allocations", "allocate at most the amount of the payment");
        }
        e.into_result().map_err(AppError::Validation)?;
        // A reference naming an invoice of this subscriber (`INV-000042`, as a bank
        // statement's would) pays that invoice first, after the explicit allocations; any
        // other reference is only a reference.
        let referenced = match &reference {
            Some(r) => self
                .invoice_named_in(r)
                .await?
                .filter(|i| i.subscriber_id == sub_id && i.status == InvoiceStatus::Issued)
                .map(|i| invoice_doc(i.id)),
            None => None,
        };
        let payment = Payment {
            id: PaymentId::generate(),
            subscriber_id: sub_id,
            currency: subscriber.currency.clone(),
            amount_minor: req.amount_minor,
            method: req.method,
            reference,
            external_id,
            received_at,
            recorded_at: now,
        };
        let doc = DocumentRef {
            kind: DocumentKind::Payment,
            id: payment.id.0,
        };
        let (account, change, resumed) = optimistic(ACCOUNT, || async {
            let before = self.get_account(sub_id).await?;
            let mut account = before.clone();
            let mut change = AccountChange::new(&before);
            account.credits.push(Credit {
                doc,
                at: payment.received_at,
                amount_minor: payment.amount_minor,
                allocated_minor: 0,
            });
            for (i, a) in req.allocations.iter().enumerate() {
                let target = invoice_doc(InvoiceId(a.invoice_id));
                let field = format!("allocations[{i}].invoice_id");
                let Some(d) = account.debit(target) else {
                    return Err(AppError::invalid(
                        &field,
                        "not an open invoice of this subscriber",
                    ));
                };
                if a.amount_minor > d.open_minor() {
                    return Err(AppError::invalid(
                        &format!("allocations[{i}].amount_minor"),
                        format!("the invoice has {} open", d.open_minor()),
                    ));
                }
                change
                    .allocations
                    .extend(account.allocate(doc, target, a.amount_minor, now)?);
            }
            if let Some(target) = referenced {
                change
                    .allocations
                    .extend(account.allocate(doc, target, i64::MAX, now)?);
            }
            let resumed = self
                .finish_account_change(actor, &mut account, &mut change)
                .await?;
            change.payment = Some(payment.clone());
            change.audit.push(AuditEvent::new(
                now,
                actor,
                Some(sub_id),
                "payment",
                payment.id,
                "payment.recorded",
                None::<&()>,
                Some(&payment),
            ));
            Ok(self
                .try_record(&change)
                .await?
                .map(|()| (account, change, resumed)))
        })
        .await?;
        let mut unallocated = account.credit(doc).map_or(0, Credit::available_minor);
        let mut allocations: Vec<Allocation> = change
            .allocations
            .into_iter()
            .filter(|a| a.credit == doc)
            .collect();
        // A billing batch may have committed an invoice for this subscriber after the
        // account was read: settle once more so the credit pays it now. (The batch
        // settles after its own commit, so whichever commits last sees both.)
        if unallocated > 0 {
            self.settle_account(sub_id).await?;
            unallocated = self.payment_unallocated(&payment).await?;
            allocations = self
                .store
                .list_allocations(sub_id)
                .await?
                .into_iter()
                .filter(|a| a.credit == doc)
                .collect();
        }
        Ok(PaymentOutcome {
            payment,
            allocations,
            unallocated_minor: unallocated,
            resumed_services: resumed,
        })
    }

    /// What is still unallocated of a payment.
    pub async fn payment_unallocated(&self, p: &Payment) -> AppResult<i64> {
        let mut amounts = self.store.payments_unallocated(&[p.id]).await?;
        Ok(amounts.remove(&p.id).unwrap_or(0))
    }

    pub async fn get_payment(&self, id: PaymentId) -> AppResult<Payment> {
        self.store
            .get_payment(id)
            .await?
            .ok_or_else(|| AppError::not_found("payment", id))
    }

    /// A page of payments, each with what is still unallocated of it: two reads, whatever the
    /// page's size or how many subscribers it spans.
    pub async fn list_payments(
        &self,
        f: &PaymentFilter,
        page: Page,
    ) -> AppResult<Vec<(Payment, i64)>> {
        let payments = self.store.list_payments(f, page).await?;
        let ids: Vec<PaymentId> = payments.iter().map(|p| p.id).collect();
        let mut amounts = self.store.payments_unallocated(&ids).await?;
        Ok(payments
            .into_iter()
            .map(|p| {
                let unallocated = amounts.remove(&p.id).unwrap_or(0);
                (p, unallocated)
            })
            .collect())
    }

    /// Issues a draft: numbered now (gap-free), due after the payment terms; credit waiting
    /// on the account pays it at once.
    pub async fn issue_invoice(&self, actor: &Actor, id: InvoiceId) -> AppResult<Invoice> {
        optimistic(ACCOUNT, || async {
            let inv = self.get_invoice(id).await?;
            if inv.status != InvoiceStatus::Draft {
                return Err(AppError::invalid_state(
                    format!(
                        "only a draft can be issued; this invoice is {}",
                        inv.status.as_str()
                    ),
                    inv.status.as_str(),
                ));
            }
            let now = self.clock.now();
            let settings = self.billing_settings().await?;
            let due = crate::billing::due_date(&settings, self.billing_today());
            let before = self.get_account(inv.subscriber_id).await?;
            let mut account = before.clone();
            let mut change = AccountChange::new(&before);
            let doc = invoice_doc(id);
            if inv.total_minor > 0 {
                account.debits.push(Debit {
                    doc,
                    label: String::new(),
                    due,
                    at: now,
                    amount_minor: inv.total_minor,
                    allocated_minor: 0,
                });
            } else if inv.total_minor < 0 {
                account.credits.push(Credit {
                    doc,
                    at: now,
                    amount_minor: -inv.total_minor,
                    allocated_minor: 0,
                });
            }
            self.finish_account_change(actor, &mut account, &mut change)
                .await?;
            // Nothing to pay: settled as it is issued (the store marks it paid after
            // numbering it, in the same transaction).
            if status_at_issue(inv.total_minor) == InvoiceStatus::Paid {
                change.paid_invoices.push(id);
            }
            change.issue_invoice = Some(IssueInvoice {
                invoice_id: id,
                issued_at: now,
                due_date: due,
                number_prefix: settings.invoice_prefix.clone(),
            });
            change.audit.push(AuditEvent::new(
                now,
                actor,
                Some(inv.subscriber_id),
                "invoice",
                id,
                "invoice.issued",
                None::<&()>,
                Some(&serde_json::json!({ "due_date": due.to_string() })),
            ));
            self.try_record(&change).await
        })
        .await?;
        self.get_invoice(id).await
    }

    /// Voids a draft, or an issued invoice nothing was paid or credited against yet (its
    /// ledger entry is reversed). Void invoices no longer count for rating: the next run
    /// bills what they charged again, as corrections. To forgive money, issue a credit note.
    pub async fn void_invoice(
        &self,
        actor: &Actor,
        id: InvoiceId,
        reason: &str,
    ) -> AppResult<Invoice> {
        let reason =
            validate::non_empty(reason, 500).map_err(|m| AppError::invalid("reason", m))?;
        optimistic(ACCOUNT, || async {
            let inv = self.get_invoice(id).await?;
            match inv.status {
                InvoiceStatus::Draft | InvoiceStatus::Issued => {}
                s => {
                    return Err(AppError::invalid_state(
                        format!(
                            "a {} invoice cannot be voided; issue a credit note instead",
                            s.as_str()
                        ),
                        s.as_str(),
                    ))
                }
            }
            let before = self.get_account(inv.subscriber_id).await?;
            let doc = invoice_doc(id);
            let applied = before.debit(doc).is_some_and(|d| d.allocated_minor != 0)
                || before.credit(doc).is_some_and(|c| c.allocated_minor != 0);
            let credited = self
                .store
                .list_credit_notes(
                    &CreditNoteFilter {
                        invoice_id: Some(id),
                        ..CreditNoteFilter::default()
                    },
                    Page {
                        after: None,
                        limit: 1,
                    },
                )
                .await?;
            if applied || !credited.is_empty() {
                return Err(AppError::invalid_state(
                    "payments or credit notes are applied to this invoice; issue a credit note instead",
                    inv.status.as_str(),
                ));
            }
            let now = self.clock.now();
            let mut change = AccountChange::new(&before);
            // Without the invoice nothing may be overdue any more: dunning suspensions end.
            let mut account = before.clone();
            account.debits.retain(|d| d.doc != doc);
            account.credits.retain(|c| c.doc != doc);
            self.finish_account_change(actor, &mut account, &mut change)
                .await?;
            change.void_invoice = Some(VoidInvoice {
                invoice_id: id,
                voided_at: now,
                reason: reason.clone(),
            });
            change.audit.push(
                AuditEvent::new(
                    now,
                    actor,
                    Some(inv.subscriber_id),
                    "invoice",
                    id,
                    "invoice.voided",
                    None::<&()>,
                    None::<&()>,
                )
                .with_reason(Some(reason.clone())),
            );
            self.try_record(&change).await
        })
        .await?;
        self.get_invoice(id).await
    }

    pub async fn create_credit_note(
        &self,
        actor: &Actor,
        req: CreateCreditNote,
    ) -> AppResult<CreditNote> {
        let reason =
            validate::non_empty(&req.reason, 500).map_err(|m| AppError::invalid("reason", m))?;
        let id = InvoiceId(req.invoice_id);
        let inv = self
            .store
            .get_invoice(id)
            .await?
            .ok_or_else(|| AppError::invalid("invoice_id", "no such invoice"))?;
        if !matches!(inv.status, InvoiceStatus::Issued | InvoiceStatus::Paid) {
            return Err(AppError::invalid_state(
                format!(
                    "only an issued invoice can be credited; this one is {}",
                    inv.status.as_str()
                ),
                inv.status.as_str(),
            ));
        }
        if inv.total_minor <= 0 {
            return Err(AppError::invalid(
                "invoice_id",
                "the invoice charges nothing to credit",
            ));
        }
        let (account, note) = optimistic(ACCOUNT, || async {
            let earlier = self
                .store
                .list_credit_notes(
                    &CreditNoteFilter {
                        invoice_id: Some(id),
                        ..CreditNoteFilter::default()
                    },
                    Page {
                        after: None,
                        limit: 10_000,
                    },
                )
                .await?;
            let credited = checked_sum(earlier.iter().map(|c| c.total_minor))?;
            let remaining = inv.total_minor.checked_sub(credited).ok_or(MoneyOverflow)?;
            let amount = req.amount_minor.unwrap_or(remaining);
            if let Err(m) = check_amount(amount) {
                return Err(AppError::invalid("amount_minor", m));
            }
            if amount <= 0 || amount > remaining {
                return Err(AppError::invalid(
                    "amount_minor",
                    format!("must be between 1 and {remaining}, what is not credited yet"),
                ));
            }
            // The tax share of a partial credit is the invoice's, rounded once (exact in
            // i128, then checked back into i64); the last credit takes what is left of it.
            let tax = if amount == remaining {
                let credited_tax = checked_sum(earlier.iter().map(|c| c.tax_minor))?;
                inv.tax_minor
                    .checked_sub(credited_tax)
                    .ok_or(MoneyOverflow)?
            } else {
                let share = div_round_half_even(
                    i128::from(inv.tax_minor) * i128::from(amount),
                    i128::from(inv.total_minor),
                );
                i64::try_from(share).map_err(|_| MoneyOverflow)?
            };
            let subtotal = amount.checked_sub(tax).ok_or(MoneyOverflow)?;
            let now = self.clock.now();
            let note = CreditNote {
                id: CreditNoteId::generate(),
                number: String::new(),
                subscriber_id: inv.subscriber_id,
                invoice_id: id,
                currency: inv.currency.clone(),
                reason: reason.clone(),
                subtotal_minor: subtotal,
                tax_minor: tax,
                total_minor: amount,
                issued_at: now,
            };
            let doc = DocumentRef {
                kind: DocumentKind::CreditNote,
                id: note.id.0,
            };
            let before = self.get_account(inv.subscriber_id).await?;
            let mut account = before.clone();
            let mut change = AccountChange::new(&before);
            account.credits.push(Credit {
                doc,
                at: now,
                amount_minor: amount,
                allocated_minor: 0,
            });
            // It reduces what is open on its own invoice first; the rest is credit.
            change
                .allocations
                .extend(account.allocate(doc, invoice_doc(id), i64::MAX, now)?);
            self.finish_account_change(actor, &mut account, &mut change)
                .await?;
            change.audit.push(
                AuditEvent::new(
                    now,
                    actor,
                    Some(inv.subscriber_id),
                    "credit_note",
                    note.id,
                    "credit_note.issued",
                    None::<&()>,
                    Some(&note),
                )
                .with_reason(Some(reason.clone())),
            );
            change.credit_note = Some(NewCreditNote {
                note: note.clone(),
                number_prefix: self.billing_settings().await?.credit_note_prefix,
            });
            Ok(self.try_record(&change).await?.map(|()| (account, note)))
        })
        .await?;
        // As for payments: an invoice committed meanwhile gets the credit now.
        if account.available_credit_minor()? > 0 {
            self.settle_account(inv.subscriber_id).await?;
        }
        self.get_credit_note(note.id).await
    }

    pub async fn get_credit_note(&self, id: CreditNoteId) -> AppResult<CreditNote> {
        self.store
            .get_credit_note(id)
            .await?
            .ok_or_else(|| AppError::not_found("credit note", id))
    }

    pub async fn list_credit_notes(
        &self,
        f: &CreditNoteFilter,
        page: Page,
    ) -> AppResult<Vec<CreditNote>> {
        Ok(self.store.list_credit_notes(f, page).await?)
    }

    /// Pays money back out of the subscriber's credit balance.
    pub async fn create_refund(
        &self,
        actor: &Actor,
        sub: SubscriberId,
        req: CreateRefund,
    ) -> AppResult<Refund> {
        let mut e = ValidationErrors::new();
        if req.amount_minor <= 0 {
            e.add("amount_minor", "must be positive");
        } else {
            e.check("amount_minor", check_amount(req.amount_minor));
        }
        let reason = e.check("reason", validate::non_empty(&req.reason, 500));
        let reference = e
            .check(
                "reference",
                validate::optional(req.reference.as_deref(), 200),
            )
            .flatten();
        e.into_result().map_err(AppError::Validation)?;
        let reason = reason.unwrap_or_default();
        optimistic(ACCOUNT, || async {
            let before = self.get_account(sub).await?;
            let mut account = before.clone();
            account.settle(self.clock.now())?;
            let credit = account.available_credit_minor()?;
            if req.amount_minor > credit {
                return Err(AppError::invalid(
                    "amount_minor",
                    format!("exceeds the subscriber's credit balance of {credit}"),
                ));
            }
            let now = self.clock.now();
            let refund = Refund {
                id: RefundId::generate(),
                subscriber_id: sub,
                currency: before.currency.clone(),
                amount_minor: req.amount_minor,
                method: req.method,
                reference: reference.clone(),
                reason: reason.clone(),
                refunded_at: now,
            };
            let mut account = before.clone();
            let mut change = AccountChange::new(&before);
            account.debits.push(Debit {
                doc: DocumentRef {
                    kind: DocumentKind::Refund,
                    id: refund.id.0,
                },
                label: String::new(),
                due: Date::MIN,
                at: now,
                amount_minor: refund.amount_minor,
                allocated_minor: 0,
            });
            self.finish_account_change(actor, &mut account, &mut change)
                .await?;
            change.refund = Some(refund.clone());
            change.audit.push(
                AuditEvent::new(
                    now,
                    actor,
                    Some(sub),
                    "refund",
                    refund.id,
                    "refund.paid",
                    None::<&()>,
                    Some(&refund),
                )
                .with_reason(Some(reason.clone())),
            );
            Ok(self.try_record(&change).await?.map(|()| refund))
        })
        .await
    }

    pub async fn ledger(&self, sub: SubscriberId) -> AppResult<Ledger> {
        let account = self.get_account(sub).await?;
        let entries = self.store.ledger(sub).await?;
        let today = self.billing_today();
        Ok(Ledger {
            balances: running_balances(&entries)?,
            balance_minor: account.balance_minor()?,
            open_minor: account.open_invoices_minor()?,
            overdue_minor: account.overdue_minor(today)?,
            credit_minor: account.available_credit_minor()?,
            account,
            entries,
            today,
        })
    }

    pub async fn list_allocations(&self, sub: SubscriberId) -> AppResult<Vec<Allocation>> {
        Ok(self.store.list_allocations(sub).await?)
    }

    pub async fn list_refunds(&self, sub: SubscriberId) -> AppResult<Vec<Refund>> {
        Ok(self.store.list_refunds(sub).await?)
    }
}
